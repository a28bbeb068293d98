"""The parts of a plan, as frozen values: its tuning, tables, figures, test bench and checks.

:class:`mgs_teach.lab.plan.MNISTPlan` holds one value of each (and
:mod:`mgs_teach.lab.plans` the plans themselves); the plan turns them into experiments.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from mgs_teach.lab.specs import ModelSpec

__all__ = ["FIGURE3_REGULARISERS", "TABLE_METHODS", "Figure3", "Figure4", "Table", "TestBench",
           "TraceCheck", "Tuning"]  # fmt: skip

#: The columns of Table 1 and Table D.2: the paper's name -> regulariser.
TABLE_METHODS = {"Unregularised": "none", "Dropout": "dropout", "Weight": "weight_decay",
                 "Loss grad.": "param_gradient", "MGS": "mgs_trace"}  # fmt: skip

#: Every regulariser of Figure 3, in the paper's order.
FIGURE3_REGULARISERS = ("none", "weight_decay", "dropout", "adam", "cyclical_lr",
                        "input_gradient", "param_gradient", "mgs_trace", "mgs_logdet")  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Tuning:
    """How every method's strength is chosen (:func:`mgs_teach.lab.tuner.tune`).

    Attributes
    ----------
    n_train, n_val : int
        Training and validation samples, both from the training pool, both noisy.
    label_noise : float
    epochs, runs : int
    candidates : tuple of (regulariser, strengths)
    full : (int, int) or None
        ``(n_train, n_val)`` where the plan trains on the full MNIST, which holds more than
        the offline digits' 3,000 training samples
        (:meth:`mgs_teach.lab.plan.MNISTPlan.for_source`).
    """

    n_train: int
    n_val: int
    label_noise: float
    epochs: int
    runs: int
    candidates: tuple[tuple[str, tuple[float, ...]], ...]
    full: tuple[int, int] | None = None


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
