"""The batched engine trains exactly the runs the reference loop trains, only together; its
driver checkpoints, stops (a ``stop()`` callback, no global state) and resumes."""

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from mgs_teach import train as T
from mgs_teach.lab import engine
from mgs_teach.models import FCN
from mgs_teach.penalties import NAMES, regulariser
from mgs_teach.records import TrainingDiverged

from .helpers import CFG, STRENGTHS, assert_same_history, data, jobs_for, make_model


@pytest.mark.parametrize("name", NAMES)
def test_a_run_in_a_batch_equals_the_run_alone(name):
    """Every regulariser: the engine's runs (vmapped together, each its own strength, seed,
    data and learning rate) have the histories of the same runs in the reference loop."""
    jobs = jobs_for(name)
    batched = engine.train_runs(make_model, jobs, share="vmap", progress=False)
    for job, run in zip(jobs, batched):
        alone = T.train(make_model, job.data, job.reg, job.config, seed=job.seed, progress=False)
        assert run.status == alone.status == "finished"
        assert_same_history(run.history, alone.history)
        assert (run.history["strength"] == job.reg.strength).all()


def test_the_hutchinson_penalty_is_batched_like_the_rest():
    jobs = jobs_for("mgs_trace", method="hutchinson")
    for job, run in zip(jobs, engine.train_runs(make_model, jobs, progress=False)):
        alone = T.train(make_model, job.data, job.reg, job.config, seed=job.seed, progress=False)
        assert_same_history(run.history, alone.history)


def test_serial_sharing_equals_vmap():
    jobs = jobs_for("dropout")
    a = engine.train_runs(make_model, jobs, share="vmap", progress=False)
    b = engine.train_runs(make_model, jobs, share="serial", progress=False)
    for x, y in zip(a, b):
        assert_same_history(x.history, y.history)


def test_a_diverging_run_is_flagged_and_spares_the_others():
    def relu_model(dropout, rngs):
        return FCN(2, 2, depth=2, width=16, dropout=dropout, rngs=rngs)

    wild = T.Config(**{**CFG.__dict__, "learning_rate": 1e30})
    jobs = [engine.Job(regulariser("none"), CFG, 0, data(0)),
            engine.Job(regulariser("none"), wild, 1, data(1)),
            engine.Job(regulariser("none"), CFG, 2, data(2))]  # fmt: skip
    runs = engine.train_runs(relu_model, jobs, progress=False)
    assert [r.status for r in runs] == ["finished", "diverged", "finished"]
    assert "diverged at step" in runs[1].message and len(runs[1].history) < CFG.n_records
    assert np.isfinite(runs[1].history["test_loss"]).all()
    for k in (0, 2):
        alone = T.train(relu_model, jobs[k].data, jobs[k].reg, CFG, seed=k, progress=False)
        assert_same_history(runs[k].history, alone.history)


def test_stop_ends_a_group_at_its_next_chunk_and_keeps_the_chunks_done(tmp_path, monkeypatch):
    """A ``stop()`` that turns true while the first chunk trains: the group stops cleanly at
    the next chunk boundary, the finished chunk stays in the checkpoint, and the same call
    without a stop resumes to the same histories."""
    # the penalty's runs and chunks of two records: the programs of the tests around this one
    jobs, ckpt, real = jobs_for("mgs_trace"), tmp_path / "group.pkl", engine.save
    expected = engine.train_runs(make_model, jobs, share="vmap", progress=False)
    asked, saved = [], []
    monkeypatch.setattr(engine, "save", lambda *a: saved.append(1) or real(*a))

    def stop():  # true once the first chunk is saved: a deadline passed while it trained
        asked.append(1)
        return bool(saved)

    with pytest.warns(TrainingDiverged, match="interrupted"):
        runs = engine.train_runs(make_model, jobs, share="vmap", progress=False,
                                 checkpoint=ckpt, chunk_records=2, stop=stop)  # fmt: skip
    assert len(asked) == 2 and len(saved) == 1  # asked before every chunk, stopped before 2nd
    assert [r.status for r in runs] == ["interrupted"] * 3 and ckpt.exists()
    assert all(len(r.history) == 2 for r in runs)  # one chunk of two records
    resumed = engine.train_runs(make_model, jobs, share="vmap", progress=False,
                                checkpoint=ckpt, chunk_records=2)  # fmt: skip
    assert not ckpt.exists()
    for run, want in zip(resumed, expected):
        assert run.status == "finished"
        assert_same_history(run.history, want.history)


@pytest.mark.parametrize("share", ["vmap", "serial"])
def test_no_state_is_used_again_once_an_accelerator_took_it_over(tmp_path, monkeypatch, share):
    """On an accelerator the compiled chunk takes its input states over (buffer donation),
    which a CPU does not do: here every chunk deletes its input states after use, as a GPU
    would, and training and the benchmark's segment runner must still work."""
    jobs = jobs_for("mgs_trace")
    expected = engine.train_runs(make_model, jobs, share=share, progress=False)
    real = engine.make_train

    def donating(*args, **kwargs):
        program = real(*args, **kwargs)

        def chunk(states, *rest):
            out = jax.block_until_ready(program.chunk(states, *rest))
            for leaf in jax.tree.leaves(states):
                leaf.delete()
            return out

        return program._replace(chunk=chunk)

    monkeypatch.setattr(engine, "make_train", donating)
    runs = engine.train_runs(make_model, jobs, share=share, progress=False,
                             checkpoint=tmp_path / "group.pkl", chunk_records=2)  # fmt: skip
    for run, want in zip(runs, expected):
        assert_same_history(run.history, want.history, rtol=1e-6)
    run = engine.segment_runner(make_model, jobs, share=share)
    for steps in (0, 3, 3):
        run(steps)


@pytest.mark.parametrize("share", ["vmap", "serial"])
def test_an_interrupted_group_resumes_from_its_last_chunk(tmp_path, monkeypatch, share):
    """Killed while saving the third chunk: a vmapped group has saved two chunks of all its
    runs; a serial one two chunks of its first run, and nothing of the others."""
    jobs = jobs_for("weight_decay")
    reference = engine.train_runs(make_model, jobs, chunk_records=1, share=share, progress=False)
    path = tmp_path / "group.pkl"
    real, calls = engine.save, {"n": 0}

    def flaky(*args):
        calls["n"] += 1
        if calls["n"] == 3:  # killed while saving the third chunk
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(engine, "save", flaky)
    with pytest.warns(TrainingDiverged, match="interrupted"):
        partial = engine.train_runs(make_model, jobs, chunk_records=1, checkpoint=path,
                                    share=share, progress=False)  # fmt: skip
    monkeypatch.setattr(engine, "save", real)
    assert all(r.status == "interrupted" for r in partial) and path.exists()
    chunks = []
    real_program = engine.make_train

    def counting(*args):
        program = real_program(*args)

        def counted(*a):
            chunks.append(1)
            return program.chunk(*a)

        return program._replace(chunk=counted)

    monkeypatch.setattr(engine, "make_train", counting)
    resumed = engine.train_runs(make_model, jobs, chunk_records=1, checkpoint=path,
                                share=share, progress=False)  # fmt: skip
    left = CFG.n_records - 2  # only the chunks after the last saved one
    assert len(chunks) == (left if share == "vmap" else left + CFG.n_records * (len(jobs) - 1))
    assert not path.exists()  # a finished group leaves no checkpoint
    for a, b in zip(resumed, reference):
        assert a.status == "finished"
        assert_same_history(a.history, b.history, rtol=1e-6)


def test_a_prefix_of_the_records_equals_the_start_of_the_full_run():
    jobs = jobs_for("mgs_trace")
    full = engine.train_runs(make_model, jobs, share="vmap", progress=False)
    head = engine.train_runs(make_model, jobs, share="vmap", n_records=3, progress=False)
    for a, b in zip(head, full):
        assert len(a.history) == 3
        assert_same_history(a.history, b.history.head(3), rtol=1e-6)


def test_the_share_must_be_known():
    with pytest.raises(ValueError, match="share must be one of"):
        engine.train_runs(make_model, jobs_for("none"), share="threads")


def test_runs_share_a_program_serially_on_a_cpu_and_vmapped_elsewhere():
    from flax import nnx

    params = nnx.state(make_model(0.0, nnx.Rngs(0)), nnx.Param)
    assert engine.share_for(params, "cpu") == "serial"
    assert engine.share_for(params, "gpu") == engine.share_for(params, "tpu") == "vmap"


SHARDED = textwrap.dedent("""
    import jax, jax.numpy as jnp, numpy as np
    assert len(jax.devices()) == 2, jax.devices()
    from mgs_teach import train as T
    from mgs_teach.data import two_circles_task
    from mgs_teach.lab import engine
    from mgs_teach.models import FCN
    from mgs_teach.penalties import regulariser
    def make_model(dropout, rngs):
        return FCN(2, 2, depth=2, width=16, activation=jnp.tanh, dropout=dropout, rngs=rngs)
    cfg = T.Config(epochs=2, batch_size=16, n_records=3, monitor_size=8, learning_rate=0.2)
    jobs = [engine.Job(regulariser("weight_decay", s), cfg, k, two_circles_task(64, 32, seed=k))
            for k, s in enumerate((1e-2, 3e-2, 1e-3))]
    sharded = engine.train_runs(make_model, jobs, progress=False)
    single = engine.train_runs(make_model, jobs, devices=jax.devices()[:1], progress=False)
    cols = ["test_loss", "test_acc", "trace", "logdet"]
    for a, b in zip(sharded, single):
        np.testing.assert_allclose(a.history[cols], b.history[cols], rtol=1e-5)
    import tempfile, warnings
    path = tempfile.mkdtemp() + "/group.pkl"
    real, calls = engine.save, []
    def flaky(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args)
    engine.save = flaky
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        engine.train_runs(make_model, jobs, chunk_records=1, checkpoint=path, progress=False)
    engine.save = real
    resumed = engine.train_runs(make_model, jobs, chunk_records=1, checkpoint=path, progress=False)
    for a, b in zip(resumed, sharded):  # a padded, sharded group resumes to the same runs
        np.testing.assert_allclose(a.history[cols], b.history[cols], rtol=1e-5)
    print("SHARDED OK", len(sharded))
""")


def test_the_run_axis_shards_over_devices():
    """Three runs on two forced host devices (padded to four) equal the same on one."""
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=2"
    env = {**os.environ, "XLA_FLAGS": flags.strip(), "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", SHARDED], capture_output=True, text=True,
                          env=env, timeout=600)  # fmt: skip
    assert "SHARDED OK 3" in done.stdout, done.stderr[-3000:]


def test_history_columns_match_the_reference_loop():
    (run,) = engine.train_runs(make_model, jobs_for("none")[:1], progress=False)
    alone = T.train(make_model, data(0), regulariser("none"), CFG, progress=False)
    assert list(run.history.columns) == list(alone.history.columns)
    assert isinstance(run.history, pd.DataFrame)
    assert jax.tree.structure(run.params) == jax.tree.structure(alone.params)


@pytest.mark.parametrize("name", ["none", "param_gradient", "mgs_trace"])
def test_a_regression_run_in_a_batch_equals_the_run_alone(name):
    """The MSE loss (the regression benchmark's) in the engine: the same histories as the
    reference loop, no accuracy, and a test loss that is the MSE of the final network."""
    rng = np.random.default_rng(0)

    def task(seed):
        x = np.random.default_rng(seed).normal(size=(80, 2)).astype(np.float32)
        y = np.stack([np.sin(x[:, 0]), x[:, 0] * x[:, 1], np.cos(x[:, 1])], 1)
        return x[:64], (y[:64] + 0.1 * rng.normal(size=(64, 3))).astype(np.float32), x[64:], y[64:]

    s1, s2 = STRENGTHS[name]
    jobs = [engine.Job(regulariser(name, s1), CFG, 0, task(0)),
            engine.Job(regulariser(name, s2), CFG, 1, task(1))]  # fmt: skip
    runs = engine.train_runs(_regression_model, jobs, share="vmap", progress=False, loss="mse")
    for job, run in zip(jobs, runs):
        alone = T.train(_regression_model, job.data, job.reg, job.config, seed=job.seed,
                        progress=False, loss="mse")  # fmt: skip
        assert run.status == alone.status == "finished"
        assert_same_history(run.history, alone.history)
        assert run.history["test_acc"].isna().all()
        apply_fn = T.build(_regression_model, job.reg, 0)[0]
        x_te, y_te = job.data[2:]
        final = float(np.mean((np.asarray(apply_fn(run.params, x_te)) - y_te) ** 2))
        assert run.history["test_loss"].iloc[-1] == pytest.approx(final, rel=1e-4)
        assert run.history["test_loss"].iloc[-1] < run.history["test_loss"].iloc[0]


def _regression_model(dropout, rngs):
    return FCN(2, 3, depth=2, width=16, activation=jnp.tanh, dropout=dropout, rngs=rngs)


def test_an_unknown_loss_is_refused():
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        engine.train_runs(make_model, jobs_for("none")[:1], progress=False, loss="hinge")
