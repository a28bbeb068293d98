"""The penalty benchmark command writes its table; neural-tangents agrees with mgs_kernel.

The agreement test runs neural-tangents 0.6.5 for real, in its own pinned environment
(``.nt-env``, created from ``requirements-nt.txt`` on first use): it cannot import next to
modern JAX.
"""

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from mgs_teach import mgs_kernel
from mgs_teach.lab import bench, bench_training
from mgs_teach.models import functional


def test_bench_command_writes_the_table(tmp_path, capsys):
    out = tmp_path / "bench.json"
    bench.main(["--models", "fcn", "--methods", "plain", "structured", "hutchinson_k1",
                "--repeats", "1", "--batch", "8", "--nt", "off", "--json", str(out)])  # fmt: skip
    rows = json.loads(out.read_text())
    assert [r["method"] for r in rows] == ["plain", "structured", "hutchinson_k1"]
    for row in rows:
        assert set(row) == {"model", "method", "device", "seconds_per_step", "ratio_to_plain"}
        assert row["model"] == "fcn" and row["seconds_per_step"] > 0
    assert rows[0]["ratio_to_plain"] == 1.0
    assert "x plain" in capsys.readouterr().out
    record = json.loads((tmp_path / "bench.provenance.json").read_text())
    assert record["command"].startswith("python -m mgs_teach.lab bench --models fcn")
    assert record["wall_s"] >= 0 and record["versions"]["jax"]


def test_the_penalty_steps_are_the_training_step(capsys):
    """The benchmark times train.make_step's update: a step with a penalty equals the same
    step built by hand from the same regulariser."""
    import jax
    import jax.numpy as jnp

    from mgs_teach import train as T
    from mgs_teach.penalties import regulariser

    apply_fn, params = functional(bench.MODELS["fcn"]())
    x, y = bench.inputs(8)
    step, init = bench.penalty_step(apply_fn, "structured", batch=8)
    new = step(init(params), x, y)
    reg = regulariser("mgs_trace", bench.STRENGTH)
    loss = lambda p: (
        T.cross_entropy(apply_fn(p, x), y)  # noqa: E731
        + reg.penalty(apply_fn, p, x, y, T.cross_entropy)
    )
    grads = jax.grad(loss)(params)
    by_hand = jax.tree.map(lambda p, g: p - 0.01 * g, params, grads)
    for a, b in zip(jax.tree.leaves(new.params), jax.tree.leaves(by_hand)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    assert jnp.all(new.diverged_at < 0)


def test_the_nt_environment_is_ready_only_once_installed(tmp_path, monkeypatch):
    """Workers that set it up at once install it once, and none uses it half-built."""
    env, installs = tmp_path / "nt", []

    def create(path, with_pip):
        (path / "bin").mkdir(parents=True)
        (path / "bin" / "python").touch()

    def install(cmd, check):
        assert bench.nt_python(env) is None  # not ready while installing
        installs.append(cmd)

    monkeypatch.setattr(bench.venv, "create", create)
    monkeypatch.setattr(bench.subprocess, "run", install)
    assert bench.nt_python(env) is None
    with ThreadPoolExecutor(4) as pool:
        pythons = set(pool.map(lambda _: bench.setup_nt(env), range(4)))
    assert pythons == {env / "bin" / "python"} and len(installs) == 1
    assert bench.nt_python(env) == env / "bin" / "python"
    changed = tmp_path / "requirements-nt.txt"
    changed.write_text(bench.NT_REQUIREMENTS.read_text() + "extra==1\n")
    monkeypatch.setattr(bench, "NT_REQUIREMENTS", changed)
    assert bench.nt_python(env) is None  # other requirements: installed again
    bench.setup_nt(env)
    assert len(installs) == 2 and bench.nt_python(env) == env / "bin" / "python"


@pytest.fixture(scope="module")
def nt_kernels():
    """The kernels of the three models in the neural-tangents environment, one worker for all."""
    python = bench.nt_python() or bench.setup_nt()
    x, y = bench.inputs(8, seed=3)
    nets = {model: functional(make()) for model, make in bench.MODELS.items()}
    params = {model: p for model, (_, p) in nets.items()}
    return x, nets, bench.neural_tangents(params, x, y, python=python, kernel_batch=4,
                                          time_steps=False)  # fmt: skip


@pytest.mark.parametrize("model", ["fcn", "lenet5", "alexnet"])
def test_neural_tangents_agrees_with_mgs_kernel(model, nt_kernels):
    x, nets, results = nt_kernels
    apply_fn, params = nets[model]
    ours = np.asarray(mgs_kernel(apply_fn, params, x[:4]), dtype=np.float64)
    methods = {r["method"]: r for r in results[model]["rows"]}
    assert set(methods) == {"nt_jacobian_contraction", "nt_ntk_vector_products"}
    for method, row in methods.items():
        assert "error" not in row, row.get("error")
        theirs = np.asarray(row["kernel"])
        assert theirs.shape == ours.shape == (40, 40)
        assert np.abs(theirs - ours).max() <= 1e-4 * np.abs(ours).max(), method
    assert "plain_seconds" not in results[model]  # only the kernels were asked for
    assert not any("seconds_per_step" in row for row in methods.values())


class Clock:
    """A fake ``time.perf_counter`` that a fake step advances by set amounts."""

    def __init__(self, durations):
        self.now, self.durations, self.calls = 0.0, list(durations), 0

    def __call__(self):
        return self.now

    def step(self):
        self.now += self.durations[min(self.calls, len(self.durations) - 1)]
        self.calls += 1


@pytest.mark.parametrize("durations, budget, repeats, calls, expected", [
    ([5.0, 3.0, 2.0, 4.0, 6.0], 10.0, 5, 5, 4.0),  # compile, warm-up 3 s, so 3 repeats fit
    ([5.0, 1.0, 1.0], 10.0, 3, 5, 1.0),  # all repeats fit
    ([30.0, 20.0], 10.0, 5, 2, 20.0),  # first call over budget: one timed run, no warm-up
    ([1.0, 8.0, 7.0], 10.0, 5, 3, 7.0),  # a slow warm-up leaves room for one timed run
    ([30.0, 20.0, 1.0, 2.0], None, 2, 4, 1.5),  # no budget: warm-up and every repeat
])  # fmt: skip
def test_median_seconds_fits_repeats_into_the_budget(monkeypatch, durations, budget, repeats,
                                                     calls, expected):  # fmt: skip
    clock = Clock(durations)
    monkeypatch.setattr(bench_training.time, "perf_counter", clock)
    assert bench.median_seconds(clock.step, repeats, budget) == expected
    assert clock.calls == calls
