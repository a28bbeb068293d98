import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from mgs_teach import float64
from mgs_teach import train as T
from mgs_teach.models import FCN
from mgs_teach.penalties import NAMES, regulariser
from tests.helpers import CFG, circles, make_model

STRENGTH = dict(
    none=0.0,
    weight_decay=1e-2,
    dropout=0.2,
    adam=0.05,
    cyclical_lr=0.5,
    input_gradient=0.1,
    param_gradient=0.1,
    mgs_trace=1e-2,
    mgs_logdet=1e-2,
)


data = pytest.fixture(scope="module", name="data")(circles)


def test_history_is_a_tidy_table_of_evenly_spaced_records(data):
    run = T.train(make_model, data, regulariser("none"), CFG, progress=False)
    h = run.history
    assert run.status == "finished"
    assert isinstance(h, pd.DataFrame) and len(h) == CFG.n_records
    assert h["step"].tolist() == [0, 4, 8, 12, 16]  # 4 epochs x 4 steps, evenly spaced
    for col in ["epoch", "lr", "test_loss", "test_acc", "trace", "logdet"]:
        assert np.isfinite(h[col]).all(), col
    assert np.isnan(h["train_loss"].iloc[0]) and np.isfinite(h["train_loss"].iloc[1:]).all()
    assert (h["regulariser"] == "none").all() and (h["seed"] == 0).all()
    assert h["lr"].is_monotonic_decreasing
    # it learns: the mini-batch loss falls (32 test points are too few to show it in 16 steps)
    assert h["train_loss"].iloc[-1] < h["train_loss"].iloc[1]


def test_train_loss_is_the_mean_batch_loss_since_the_last_record(data):
    """Re-derive one record's train_loss by stepping the same step function by hand."""
    x_tr, y_tr = (jnp.asarray(a) for a in data[:2])
    reg = regulariser("none")
    apply_fn, train_fn, params = T.build(make_model, reg, 0)
    builder = T.make_step(apply_fn, train_fn, reg, CFG, len(x_tr))
    hyper = T.Hyper.of(reg, CFG)
    with float64():
        state = builder.init(params, jax.random.key(0))
        losses = []
        for t in range(4):
            state, loss = jax.jit(builder.step)(state, x_tr, y_tr, jnp.int32(t), hyper)
            losses.append(float(loss))
    run = T.train(make_model, data, reg, CFG, progress=False)
    assert run.history["train_loss"].iloc[1] == pytest.approx(np.mean(losses), rel=1e-6)


def test_advance_in_pieces_is_advance_at_once(data):
    """The reference loop's inner loop resumes at any step: 0->2 then 2->4 is 0->4."""
    reg = regulariser("dropout", 0.2)  # the step number seeds the dropout masks
    builder, step, _ = T.compiled_step(make_model, *T.compile_key(reg, CFG), 64)
    xy, hyper = tuple(jnp.asarray(a) for a in data[:2]), T.Hyper.of(reg, CFG)
    with float64():
        start = builder.init(T.build(make_model, reg, 0)[2], jax.random.key(0))
        whole, losses = T.advance(step, start, xy, hyper, 0, 4)
        half, first = T.advance(step, start, xy, hyper, 0, 2)
        half, second = T.advance(step, half, xy, hyper, 2, 4)
    assert len(losses) == 4 and T.advance(step, whole, xy, hyper, 4, 4) == (whole, [])
    np.testing.assert_allclose(np.array(losses), np.array(first + second), rtol=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), whole.params,
                 half.params)  # fmt: skip


def test_deterministic_given_the_seed(data):
    reg = regulariser("dropout", 0.3)
    a = T.train(make_model, data, reg, CFG, progress=False).history
    b = T.train(make_model, data, reg, CFG, progress=False).history
    c = T.train(make_model, data, reg, CFG, seed=1, progress=False).history
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["test_loss"], c["test_loss"])


def test_the_mgs_penalty_lowers_the_trace(data):
    none = T.train(make_model, data, regulariser("none"), CFG, progress=False).history
    mgs = T.train(make_model, data, regulariser("mgs_trace", 1e-2), CFG, progress=False).history
    assert mgs["trace"].iloc[0] == pytest.approx(none["trace"].iloc[0])  # same initialisation
    assert mgs["trace"].iloc[-1] < 0.5 * none["trace"].iloc[-1]


def test_strength_and_learning_rate_are_data_not_program(data):
    """Two strengths and two learning rates share one compiled step: the cache holds one
    program for them, and the histories still differ as the numbers say."""
    T.compiled_step.cache_clear()
    reg = regulariser("weight_decay", 1e-3)
    a = T.train(make_model, data, reg, CFG, progress=False).history
    b = T.train(make_model, data, regulariser("weight_decay", 1.0), CFG, progress=False).history
    c = T.train(make_model, data, reg, T.Config(**{**CFG.__dict__, "learning_rate": 0.01}),
                progress=False).history  # fmt: skip
    assert T.compiled_step.cache_info().currsize == 1
    assert not np.allclose(a["trace"], b["trace"]) and not np.allclose(a["trace"], c["trace"])
    assert c["lr"].iloc[0] == pytest.approx(0.01)


@pytest.mark.parametrize("name", NAMES)
def test_the_step_stays_float32_while_float64_is_on(name, data):
    """The records need float64; the step must not silently widen the training to it."""
    reg = regulariser(name, STRENGTH[name], method="hutchinson" if name == "mgs_trace" else "auto")
    apply_fn, train_fn, params = T.build(make_model, reg, 0)
    builder = T.make_step(apply_fn, train_fn, reg, CFG, 64)
    x, y = (jnp.asarray(a) for a in data[:2])
    with float64():
        state = builder.init(params, jax.random.key(0))
        jaxpr = jax.make_jaxpr(builder.step)(state, x, y, jnp.int32(3), T.Hyper.of(reg, CFG))
        new, _ = jax.jit(builder.step)(state, x, y, jnp.int32(3), T.Hyper.of(reg, CFG))
    wide = [v for eqn in jaxpr.eqns for v in eqn.outvars
            if str(v.aval.dtype) == "float64" and np.prod(v.aval.shape) > 1]  # fmt: skip
    assert not wide, f"float64 arrays in the {name} step: {wide[:3]}"
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(new.params))


def test_divergence_is_reported_not_hidden(data):
    cfg = T.Config(**{**CFG.__dict__, "learning_rate": 1e30})

    def relu_model(dropout, rngs):  # unbounded activations overflow float32 at this rate
        return FCN(2, 2, depth=2, width=16, dropout=dropout, rngs=rngs)

    with pytest.warns(T.TrainingDiverged, match="diverged at step"):
        run = T.train(relu_model, data, regulariser("none"), cfg, progress=False)
    assert run.status == "diverged" and "NaN or inf" in run.message
    assert len(run.history) >= 1 and np.isfinite(run.history["test_loss"]).all()
    assert all(np.isfinite(np.asarray(a)).all() for a in jax.tree.leaves(run.params))


def test_singular_monitoring_kernel_is_flagged(data):
    x_tr, y_tr, x_te, y_te = data
    same = np.repeat(x_tr[:1], len(x_tr), axis=0)  # identical inputs: rank K <= C = 2 < 16
    run = T.train(make_model, (same, y_tr, x_te, y_te), regulariser("none"), CFG, progress=False)
    assert run.history["singular"].all()
    assert (run.history["logdet"] == -np.inf).all()
    assert "singular at 5 of 5 records" in run.message


def test_interrupted_run_resumes_to_the_same_history(data, tmp_path, monkeypatch):
    reg = regulariser("dropout", 0.2)
    reference = T.train(make_model, data, reg, CFG, progress=False).history
    path = tmp_path / "ckpt.pkl"

    calls = {"n": 0}
    real = T.save

    def flaky(*args):
        calls["n"] += 1
        if calls["n"] == 3:  # Ctrl-C while the third record's checkpoint is being written
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(T, "save", flaky)
    with pytest.warns(T.TrainingDiverged, match="interrupted"):
        partial = T.train(make_model, data, reg, CFG, checkpoint=path, progress=False)
    monkeypatch.setattr(T, "save", real)
    assert partial.status == "interrupted" and len(partial.history) == 3 and path.exists()
    assert len(T.load(path, _fp(path))["records"]) == 2  # the third never reached the disk
    resumed = T.train(make_model, data, reg, CFG, checkpoint=path, progress=False)
    assert resumed.status == "finished"
    pd.testing.assert_frame_equal(resumed.history, reference, rtol=1e-6)


def _fp(path):
    import pickle

    with open(path, "rb") as f:
        return pickle.load(f)["fingerprint"]


def test_checkpoint_of_another_run_is_refused(data, tmp_path):
    path = tmp_path / "ckpt.pkl"
    T.train(make_model, data, regulariser("none"), CFG, checkpoint=path, progress=False)
    with pytest.raises(ValueError, match="different run"):
        T.train(make_model, data, regulariser("weight_decay", 1e-3), CFG, checkpoint=path,
                progress=False)  # fmt: skip


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(epochs=0), "epochs must be at least 1"),
        (dict(learning_rate=-1.0), "learning_rate > 0"),
        (dict(lr_decay=1.5), "lr_decay"),
    ],
)
def test_bad_config_is_rejected(change, message):
    with pytest.raises(ValueError, match=message):
        T.Config(**change)


def test_bad_data_is_rejected(data):
    x_tr, y_tr, x_te, y_te = data
    with pytest.raises(ValueError, match="differ in length"):
        T.train(make_model, (x_tr, y_tr[:-1], x_te, y_te), regulariser("none"), CFG)
    with pytest.raises(ValueError, match="exceeds the 8 training samples"):
        T.train(make_model, (x_tr[:8], y_tr[:8], x_te, y_te), regulariser("none"), CFG)
    with pytest.raises(ValueError, match="test set is empty"):
        T.train(make_model, (x_tr, y_tr, x_te[:0], y_te[:0]), regulariser("none"), CFG)
