import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from mgs_teach import train as T
from mgs_teach.data import two_circles
from mgs_teach.models import FCN
from mgs_teach.penalties import regulariser

CFG = T.Config(epochs=4, batch_size=16, n_records=5, monitor_size=8, learning_rate=0.2)


def make_model(dropout, rngs):
    return FCN(2, 2, depth=2, width=16, activation=jnp.tanh, dropout=dropout, rngs=rngs)


@pytest.fixture(scope="module")
def data():
    x, y = two_circles(96, noise=0.1, seed=1)
    return x[:64], y[:64], x[64:], y[64:]


def test_history_is_a_tidy_table_of_evenly_spaced_records(data):
    run = T.train(make_model, data, regulariser("none"), CFG, progress=False)
    h = run.history
    assert run.status == "finished"
    assert isinstance(h, pd.DataFrame) and len(h) == CFG.n_records
    assert h["step"].tolist() == [0, 4, 8, 12, 16]  # 4 epochs x 4 steps, evenly spaced
    for col in ["epoch", "lr", "train_loss", "test_loss", "test_acc", "trace", "logdet"]:
        assert np.isfinite(h[col]).all(), col
    assert (h["regulariser"] == "none").all() and (h["seed"] == 0).all()
    assert h["lr"].is_monotonic_decreasing
    assert h["train_loss"].iloc[-1] < h["train_loss"].iloc[0]  # it learns


def test_deterministic_given_the_seed(data):
    reg = regulariser("dropout", 0.3)
    a = T.train(make_model, data, reg, CFG, progress=False).history
    b = T.train(make_model, data, reg, CFG, progress=False).history
    c = T.train(make_model, data, reg, T.Config(**{**CFG.__dict__, "seed": 1}), progress=False)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["train_loss"], c.history["train_loss"])


def test_the_mgs_penalty_lowers_the_trace(data):
    none = T.train(make_model, data, regulariser("none"), CFG, progress=False).history
    mgs = T.train(make_model, data, regulariser("mgs_trace", 1e-2), CFG, progress=False).history
    assert mgs["trace"].iloc[0] == pytest.approx(none["trace"].iloc[0])  # same initialisation
    assert mgs["trace"].iloc[-1] < 0.5 * none["trace"].iloc[-1]


def test_divergence_is_reported_not_hidden(data):
    cfg = T.Config(**{**CFG.__dict__, "learning_rate": 1e30})

    def relu_model(dropout, rngs):  # unbounded activations overflow float32 at this rate
        return FCN(2, 2, depth=2, width=16, dropout=dropout, rngs=rngs)

    with pytest.warns(T.TrainingDiverged, match="diverged between steps"):
        run = T.train(relu_model, data, regulariser("none"), cfg, progress=False)
    assert run.status == "diverged" and "NaN or inf" in run.message
    assert len(run.history) >= 1 and np.isfinite(run.history["train_loss"]).all()
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
    real_evaluate = T.evaluate

    def flaky_evaluate(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 7:  # 2 evaluations per record: dies while making the 4th record
            raise KeyboardInterrupt
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(T, "evaluate", flaky_evaluate)
    with pytest.warns(T.TrainingDiverged, match="interrupted"):
        partial = T.train(make_model, data, reg, CFG, checkpoint=path, progress=False)
    assert partial.status == "interrupted" and len(partial.history) == 3 and path.exists()

    monkeypatch.setattr(T, "evaluate", real_evaluate)
    resumed = T.train(make_model, data, reg, CFG, checkpoint=path, progress=False)
    assert resumed.status == "finished"
    pd.testing.assert_frame_equal(resumed.history, reference, rtol=1e-5)


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


def test_tune_picks_the_best_final_validation_accuracy(data):
    x_tr, y_tr, _, _ = data
    table = T.tune(make_model, (x_tr, y_tr), "weight_decay", [1e-4, 10.0], CFG, progress=False)
    assert table["best"].sum() == 1
    best = table.loc[table["best"]].iloc[0]
    assert best["val_acc"] == table["val_acc"].max()
    assert best["strength"] == 1e-4  # a weight decay of 10 cannot fit anything
    cyc = T.tune(make_model, (x_tr, y_tr), "cyclical_lr", [1.0], CFG, progress=False,
                 cycle_steps=4)  # fmt: skip
    assert cyc["best"].all()  # extra keywords reach the regulariser
    with pytest.raises(ValueError, match="val_fraction"):
        T.tune(make_model, (x_tr, y_tr), "none", [0.0], CFG, val_fraction=1.0)
