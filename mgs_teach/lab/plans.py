"""The sizes of the MNIST chapter's experiments, as literal frozen values: three plans.

``QUICK``
    For CI and laptops: the chapter trains it while it executes, in a few minutes, to show
    the pipeline working. Too small to test the paper's claims.
``CPU``
    The largest version that one command trains on a 2-core CPU in at most an hour: the
    paper's FCN 6 x 300 and LeNet-5, 3,000 training samples, all four noise levels, three
    runs per entry, tuned strengths, and long enough for the unregularised networks to
    memorise the wrong labels. The epochs come from a pilot (three unregularised runs of
    each network at 60 % noise, 100 epochs): both networks peak near epoch 10 (FCN 80 %,
    LeNet-5 86 %) and are below 57 % by epoch 35, so 35 epochs show the decline the claim is
    about, with one record per epoch. LeNet-5's MGS penalty uses the one-probe Hutchinson
    estimate of tr K (a penalised step costs 2.8 plain steps when runs train one at a time,
    3.6 to 4.3 in the batched engine: ``results/bench/training-cpu.json``), and
    :class:`TraceCheck` trains both side by side. Results under ``results/mnist-cpu/``.
    Its test bench (Appendix F, a command of its own, results under
    ``results/testbench-cpu/``): the FCN at 4 sizes x 5 noise levels, 3 runs, 35 epochs.
    Three more parts, each a command of its own within its own hour
    (``python -m mgs_teach.lab part NAME --plan cpu``, results under ``results/NAME-cpu/``),
    all on the FCN with the tables' tuned strengths (the methods without a tuned strength
    at the middle of their candidates): ``figure3``, the nine regularisers of Figure 3 at
    50 % noise for 100 epochs; ``long_fcn``, the five methods at 60 % and 80 % noise for
    100 epochs (a late collapse needs more than 35); ``figure4``, the five methods in
    Figure 4's middle scenario (3,000 samples, 50 % noise, 30 epochs: the tuning's) and
    with one of its five settings lower or higher. The offline digits hold 3,000
    training samples, so the training-size spokes are both smaller, as in the paper's.
``PAPER``
    The paper's sizes (Appendix D): 400 epochs and 10 runs for the tables, tuning with 100
    epochs and 5 runs on the paper's 6,000 samples (and 1,500 for validation) where the full
    MNIST is there, else on the offline digits' 2,250 + 750, AlexNet for Figure 3, Figure 4
    over its five axes, and Appendix F's 143 scenarios (11 sizes x 13 noise levels; the paper
    gives only the ranges and the count) for LeNet-5. For a GPU (``scripts/gpu_reproduce.sh``).

Every plan is one :class:`MNISTPlan`; :meth:`MNISTPlan.tuning` and :meth:`MNISTPlan.grids`"""

from __future__ import annotations

from typing import Any

from mgs_teach.lab.plan import (
    CANDIDATES,
    FIGURE3_REGULARISERS,
    TABLE_METHODS,
    Figure3,
    Figure4,
    MNISTPlan,
    Table,
    TestBench,
    TraceCheck,
    Tuning,
)
from mgs_teach.lab.specs import ModelSpec

__all__ = [
    "CPU",
    "FIGURE3_REGULARISERS",
    "PAPER",
    "PLANS",
    "QUICK",
    "REGRESSION_CPU",
    "REGRESSION_CPU_SCALED",
    "REGRESSION_NOISES",
    "REGRESSION_PAPER",
    "REGRESSION_PLANS",
    "REGRESSION_QUICK",
    "TABLE_METHODS",
    "plans_for",
]

FCN = ModelSpec("fcn", depth=6, width=300)
LENET5 = ModelSpec("lenet5")
ALEXNET = ModelSpec("alexnet")


QUICK = MNISTPlan(
    name="quick",
    source="offline",
    noise="uniform",
    n_records=20,
    monitor_size=16,
    tuning=Tuning(n_train=750, n_val=250, label_noise=0.5, epochs=10, runs=1,
                  candidates=(("mgs_trace", (1e-5, 1e-4)), ("weight_decay", (1e-3, 1e-2)))),
    tables=(Table("fcn_table", ModelSpec("fcn", depth=2, width=64), (0.0, 0.6), n_train=1000,
                  epochs=10, runs=1),),
    figure3=None,
    figure4=None,
    testbench=TestBench(ModelSpec("fcn", depth=2, width=64), sizes=(250, 500),
                        noises=(0.0, 0.6), epochs=10, runs=1, methods=("none", "mgs_trace")),
)  # fmt: skip

CPU = MNISTPlan(
    name="cpu",
    source="offline",
    noise="uniform",
    n_records=35,
    monitor_size=32,
    tuning=Tuning(n_train=2250, n_val=750, label_noise=0.5, epochs=30, runs=1,
                  candidates=CANDIDATES[:4]),
    tables=(Table("table1", LENET5, (0.0, 0.3, 0.6, 0.8), n_train=3000, epochs=35, runs=3,
                  trace_method="hutchinson"),
            Table("fcn_table", FCN, (0.0, 0.3, 0.6, 0.8), n_train=3000, epochs=35, runs=3)),
    figure3=Figure3(FCN, label_noise=0.5, n_train=3000, epochs=100, runs=3),
    figure4=Figure4(FCN, tuple(TABLE_METHODS.values()), n_train=3000, label_noise=0.5,
                    epochs=30,
                    changes=(("n_train", (1000, 2000)), ("label_noise", (0.2, 0.8)),
                             ("batch_size", (16, 128)), ("learning_rate", (0.03, 0.3)),
                             ("epochs", (15, 60))), runs=3),
    trace_check=TraceCheck(LENET5, label_noise=0.6, n_train=3000, epochs=10, runs=1),
    testbench=TestBench(FCN, sizes=(250, 500, 1000, 2000), noises=(0.0, 0.2, 0.4, 0.6, 0.8),
                        epochs=35, runs=3),
    long_table=Table("long_fcn", FCN, (0.6, 0.8), n_train=3000, epochs=100, runs=3),
    own=("figure3", "long_fcn", "figure4"),
)  # fmt: skip

PAPER = MNISTPlan(
    name="paper",
    source="auto",
    noise="uniform",
    n_records=100,
    monitor_size=32,
    tuning=Tuning(n_train=2250, n_val=750, label_noise=0.5, epochs=100, runs=5,
                  candidates=CANDIDATES, full=(6000, 1500)),
    tables=(Table("table1", LENET5, (0.0, 0.3, 0.6, 0.8), n_train=3000, epochs=400, runs=10),
            Table("fcn_table", FCN, (0.0, 0.3, 0.6, 0.8), n_train=3000, epochs=400, runs=10)),
    figure3=Figure3(ALEXNET, label_noise=0.5, n_train=3000, epochs=100, runs=3),
    figure4=Figure4(LENET5, tuple(TABLE_METHODS.values()), n_train=3000, label_noise=0.5,
                    epochs=100,
                    changes=(("n_train", (1000, 2000)), ("label_noise", (0.2, 0.8)),
                             ("batch_size", (16, 128)), ("learning_rate", (0.03, 0.3)),
                             ("epochs", (50, 200))), runs=3),
    testbench=TestBench(LENET5, sizes=(250, 500, 1000, 1500, 2000, 3000, 4000, 5000, 6000,
                                       7500, 9000),
                        noises=(0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95,
                                1.0),
                        epochs=400, runs=10),
)  # fmt: skip

#: Every plan by name.
PLANS = {plan.name: plan for plan in (QUICK, CPU, PAPER)}

# ------------------------------------------------------------- the regression benchmark
#
# Table 2 (LeNet-5) and the regression half of Table D.2 (FCN 6 x 300): the five methods on
# motion-blurred keypoint faces with Gaussian noise on the targets, an MSE loss. The paper
# (Appendix D.1): "the training size was held fixed at 30% of the total data, while the
# amount of noise was changed [...] Each method was tuned with a noise scale of 15 for 50
# epochs. Each scenario was then run for 400 epochs in the case of the FCN architecture and
# 50 epochs for the LeNet-5 architecture [...] A batch size of 128 was used".

#: Target-noise scales of Table 2, in pixels of a 96-pixel image.
REGRESSION_NOISES = (0.0, 10.0, 20.0, 30.0)


def _faces_net(kind: str, side: int, **kw: Any) -> ModelSpec:
    return ModelSpec(kind, d_in=side * side, d_out=30, **kw)


REGRESSION_CANDIDATES = (
    ("weight_decay", (1e-4, 1e-3, 1e-2)),
    ("dropout", (0.1, 0.3, 0.5)),
    ("param_gradient", (0.01, 0.1, 1.0)),
    ("mgs_trace", (1e-6, 1e-5, 1e-4)),
)

REGRESSION_QUICK = MNISTPlan(
    name="quick", task="faces", source="procedural", noise="uniform", n_records=10,
    monitor_size=4, batch_size=32, image_size=32, n_test=200, learning_rate=0.01,
    face_targets="pixels",
    tuning=Tuning(n_train=150, n_val=100, label_noise=15.0, epochs=10, runs=1,
                  candidates=(("mgs_trace", (1e-3, 1e-2)), ("weight_decay", (1e-3, 1e-2)))),
    tables=(Table("fcn_regression", _faces_net("fcn", 32, depth=2, width=64), (0.0, 30.0),
                  n_train=200, epochs=20, runs=1),),
    figure3=None, figure4=None,
)  # fmt: skip

#: Candidate strengths for targets in pixels of a 96-pixel image. The MSE is (96 / 2)² times
#: larger than on scaled targets while tr K is not, so MGS needs larger strengths; the pilot
#: (``results/regression-pilot``) trained 1e-3 and 1e-2 at the ``cpu`` plan's learning rate:
#: 1e-3 converged in every run, 1e-2 diverged or stalled, hence candidates around 1e-3.
REGRESSION_PIXEL_CANDIDATES = (
    ("weight_decay", (1e-4, 1e-3, 1e-2)),
    ("dropout", (0.1, 0.3, 0.5)),
    ("param_gradient", (0.01, 0.1, 1.0)),
    ("mgs_trace", (3e-4, 1e-3, 3e-3)),
)

#: The ``cpu`` plan: the paper's targets (pixels of a 96-pixel image, not standardised), its
#: training share (642 faces, 30 % of Kaggle's 2,140 complete ones), batch, epochs and
#: schedule, on 32 x 32 faces (a convolution's cost grows with the image's area: larger
#: faces would take the plan past an hour), 3 runs per entry, the one-probe estimate of tr K
#: as the penalty, and the initial learning rate the pilot chose
#: (``results/regression-pilot``: at the paper's 0.1 every method diverges).
REGRESSION_CPU = MNISTPlan(
    name="cpu", task="faces", source="procedural", noise="uniform", n_records=25,
    monitor_size=8, batch_size=128, image_size=32, n_test=500, learning_rate=0.01,
    face_targets="pixels",
    tuning=Tuning(n_train=450, n_val=192, label_noise=15.0, epochs=50, runs=1,
                  candidates=REGRESSION_PIXEL_CANDIDATES),
    tables=(Table("table2", _faces_net("lenet5", 32), REGRESSION_NOISES, n_train=642, epochs=50,
                  runs=3, trace_method="hutchinson"),
            Table("fcn_regression", _faces_net("fcn", 32), REGRESSION_NOISES, n_train=642,
                  epochs=400, runs=3, trace_method="hutchinson")),
    figure3=None, figure4=None,
)  # fmt: skip

#: The standardised variant, kept as the chapter's second table: targets scaled to [-1, 1],
#: 600 training faces, the paper's learning rate. Every method converges there.
REGRESSION_CPU_SCALED = MNISTPlan(
    name="cpu-scaled", task="faces", source="procedural", noise="uniform", n_records=20,
    monitor_size=4, batch_size=128, image_size=32, n_test=500,
    tuning=Tuning(n_train=450, n_val=150, label_noise=15.0, epochs=50, runs=1,
                  candidates=REGRESSION_CANDIDATES),
    tables=(Table("table2", _faces_net("lenet5", 32), REGRESSION_NOISES, n_train=600, epochs=50,
                  runs=3, trace_method="hutchinson"),
            Table("fcn_regression", _faces_net("fcn", 32), REGRESSION_NOISES, n_train=600,
                  epochs=400, runs=3, trace_method="hutchinson")),
    figure3=None, figure4=None,
)  # fmt: skip

#: The paper's sizes: 96 x 96 faces, 642 training faces (30 % of Kaggle's 2,140 complete
#: ones, which leaves 1,498 for the 1,000 test faces), the paper's learning rate, 10 runs.
REGRESSION_PAPER = MNISTPlan(
    name="paper", task="faces", source="procedural", noise="uniform", n_records=100,
    monitor_size=16, batch_size=128, image_size=96, n_test=1000, learning_rate=0.1,
    face_targets="pixels",
    tuning=Tuning(n_train=450, n_val=192, label_noise=15.0, epochs=50, runs=5,
                  candidates=REGRESSION_PIXEL_CANDIDATES),
    tables=(Table("table2", _faces_net("lenet5", 96), REGRESSION_NOISES, n_train=642,
                  epochs=50, runs=10),
            Table("fcn_regression", _faces_net("fcn", 96), REGRESSION_NOISES, n_train=642,
                  epochs=400, runs=10)),
    figure3=None, figure4=None,
)  # fmt: skip

#: The regression benchmark's plans by name (``python -m mgs_teach.lab regression``).
REGRESSION_PLANS = {
    p.name: p for p in (REGRESSION_QUICK, REGRESSION_CPU, REGRESSION_CPU_SCALED, REGRESSION_PAPER)
}


def plans_for(task: str = "mnist") -> dict[str, MNISTPlan]:
    """The plans of a task by name: ``"mnist"`` (:data:`PLANS`) or ``"faces"``/``"regression"``
    (:data:`REGRESSION_PLANS`)."""
    if task not in ("mnist", "faces", "regression"):
        raise ValueError(f"unknown task {task!r}; choose mnist or regression")
    return PLANS if task == "mnist" else REGRESSION_PLANS
