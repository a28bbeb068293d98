"""What the lab's tests share: small runs of two circles, a small experiment and a smoke plan.

Every test module imports the same :func:`make_model` (one object), so that the engine's and
the reference loop's compiled programs (cached by their arguments) are compiled once per
process, whichever module asks first.
"""

import numpy as np

from mgs_teach.config import Config
from mgs_teach.data import two_circles_task
from mgs_teach.lab import engine
from mgs_teach.lab.experiment import Experiment
from mgs_teach.lab.plan import MNISTPlan, Table, TestBench, Tuning
from mgs_teach.lab.specs import DataSpec, ModelSpec
from mgs_teach.penalties import regulariser

from ..helpers import CFG, make_model  # noqa: F401  (one object for every test module)

STRENGTHS = dict(
    none=(0.0, 0.0),
    weight_decay=(1e-2, 3e-2),
    dropout=(0.2, 0.4),
    adam=(0.05, 0.1),
    cyclical_lr=(0.5, 2.0),
    input_gradient=(0.1, 0.3),
    param_gradient=(0.1, 0.3),
    mgs_trace=(1e-2, 3e-2),
    mgs_logdet=(1e-2, 3e-2),
)
COLUMNS = ["step", "epoch", "lr", "train_loss", "test_loss", "test_acc", "trace", "logdet"]


def data(seed, noise=0.2):
    return two_circles_task(64, 32, seed=seed, label_noise=noise)


def jobs_for(name, method="auto"):
    """Three runs of one regulariser: two strengths, two seeds, two learning rates."""
    s1, s2 = STRENGTHS[name]
    other = Config(**{**CFG.__dict__, "learning_rate": 0.1})
    mk = lambda s: regulariser(name, s, cycle_steps=5, method=method)  # noqa: E731
    return [engine.Job(mk(s1), CFG, 0, data(0)), engine.Job(mk(s2), CFG, 1, data(1, 0.3)),
            engine.Job(mk(s1), other, 2, data(2))]  # fmt: skip


def assert_same_history(a, b, rtol=2e-4):
    """Equal to float32 tolerance. log det K sums the logs of the smallest eigenvalues, which
    magnify the round-off by which batched and unbatched float32 steps differ: it gets ten
    times the tolerance (and so does every column of the log-det penalty's runs, whose
    gradient goes through the inverse of the jittered kernel)."""
    if (a["regulariser"] == "mgs_logdet").any():
        rtol = 10 * rtol
    plain = [c for c in COLUMNS if c != "logdet"]
    x, y = a[plain].to_numpy(float), b[plain].to_numpy(float)
    np.testing.assert_allclose(x, y, rtol=rtol, atol=1e-6, equal_nan=True)
    np.testing.assert_allclose(a["logdet"], b["logdet"], rtol=10 * rtol, atol=1e-6)


def count_groups(monkeypatch):
    """Note the size of every group the engine trains, in a list that this returns."""
    real, groups = engine.train_runs, []

    def counted(model, jobs, **kw):
        groups.append(len(jobs))
        return real(model, jobs, **kw)

    monkeypatch.setattr(engine, "train_runs", counted)
    return groups


# ------------------------------------------------------------------ a small experiment

BASE = Experiment(
    ModelSpec("fcn", d_in=2, d_out=2, depth=1, width=8),
    DataSpec("two_circles", 48, label_noise=0.2, noise="other", n_test=64),
    regulariser("none"),
    Config(epochs=2, batch_size=16, n_records=3, monitor_size=8),
)


def grid():
    """Three experiments of three programs."""
    return [BASE.replace(regulariser=regulariser(r, s))
            for r, s in [("none", 0.0), ("weight_decay", 0.1), ("mgs_trace", 0.01)]]  # fmt: skip


# ------------------------------------------------------------ the MNIST chapter's command

#: A plan of the MNIST chapter's shape, small enough to train in seconds (one epoch).
SMOKE = MNISTPlan(
    name="smoke", source="offline", noise="uniform", n_records=3, monitor_size=8,
    tuning=Tuning(n_train=60, n_val=30, label_noise=0.5, epochs=1, runs=1,
                  candidates=(("mgs_trace", (1e-5, 1e-4)),)),
    tables=(Table("fcn_table", ModelSpec("fcn", depth=1, width=8), (0.0, 0.6),
                  n_train=64, epochs=1, runs=2),),
    figure3=None, figure4=None,
    testbench=TestBench(ModelSpec("fcn", depth=1, width=8), sizes=(32, 64),
                        noises=(0.0, 0.6), epochs=1, runs=2, methods=("none", "mgs_trace")),
)  # fmt: skip


def smoke_argv(out, *more):
    """The command line that trains :data:`SMOKE` into ``out`` (less ``python -m ...``)."""
    return ["mnist", "--plan", "smoke", "--out", str(out), "--no-progress", *more]
