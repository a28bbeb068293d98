"""Pilots: small grids trained before a plan is fixed, to find the regime a claim is about.

:data:`REGRESSION_PILOT` asks where the paper's regression claim can be tested. Section 6.2
says "only Dropout and MGS were actually able to converge to a satisfactory performance
level"; Table 2's unregularised network has 68.2 ± 36.7 against MGS's 14.1, runs that fail
to converge. The pilot trains both networks on faces with the paper's targets (pixels of a
96-pixel image, not standardised), its training share (642 faces, 30 % of Kaggle's 2,140
complete ones), batch 128 and schedule (SGD, 0.99 decay per epoch), for the 50 epochs of its
tuning, at two noise scales and two initial learning rates (the paper's 0.1 and 0.01), with
each method at fixed strengths. ``scripts/regression_pilot.py`` trains it into
``results/regression-pilot/``; :func:`pilot_table` reads it back, one row per setting.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mgs_teach.lab import stability
from mgs_teach.lab.experiment import Experiment
from mgs_teach.lab.findings import join_and
from mgs_teach.lab.plan import MNISTPlan, plan_options
from mgs_teach.lab.plans import REGRESSION_CPU
from mgs_teach.lab.stability import RUN_KEYS, run_verdicts
from mgs_teach.lab.store import Store
from mgs_teach.penalties import Regulariser

__all__ = [
    "PilotSpec",
    "REGRESSION_PILOT",
    "load_pilot",
    "pilot_grid",
    "pilot_summary",
    "pilot_table",
    "pilot_texts",
]


@dataclasses.dataclass(frozen=True)
class PilotSpec:
    r"""A regression pilot: every method at fixed strengths over learning rates and noises.

    Attributes
    ----------
    n_train, epochs, runs : int
    noises : tuple of float
        Target noise, pixels of a 96-pixel image.
    learning_rates : tuple of float
        Initial learning rates.
    methods : tuple of (regulariser, strength)
    monitor_size, n_records : int
        As in :class:`mgs_teach.config.Config`; the rest of the data and the training come
        from the plan given to :func:`pilot_grid`.
    onset_epochs : int
        The onset grid (:func:`pilot_grid` with ``onset=True``): the same settings, one seed,
        trained this many epochs with a record at every step, to see what happens to
        :math:`\eta S` in the first steps, where the diverging runs blow up.
    """

    n_train: int
    epochs: int
    runs: int
    noises: tuple[float, ...]
    learning_rates: tuple[float, ...]
    methods: tuple[tuple[str, float], ...]
    onset_epochs: int = 3
    monitor_size: int = 16
    n_records: int = 25


REGRESSION_PILOT = PilotSpec(
    n_train=642, epochs=50, runs=2, noises=(0.0, 30.0), learning_rates=(0.1, 0.01),
    methods=(("none", 0.0), ("dropout", 0.3), ("weight_decay", 1e-3), ("param_gradient", 0.1),
             ("mgs_trace", 1e-3), ("mgs_trace", 1e-2)),
)  # fmt: skip


def pilot_grid(
    spec: PilotSpec = REGRESSION_PILOT, plan: MNISTPlan = REGRESSION_CPU, onset: bool = False
) -> list[Experiment]:
    """The pilot's experiments on every network of ``plan``'s tables (their trace method),
    with ``plan``'s data, batch and records; with ``onset``, its onset grid (every step
    recorded for ``spec.onset_epochs`` epochs)."""
    grid = []
    for table in plan.tables:
        for lr in spec.learning_rates:
            for noise in spec.noises:
                base = plan.base(table.model, spec.n_train, noise, spec.epochs).replace(
                    monitor_size=spec.monitor_size, n_records=spec.n_records
                )
                if onset:  # record_steps keeps every step when asked for more records
                    base = base.replace(epochs=spec.onset_epochs, n_records=10_000)
                for name, strength in spec.methods:
                    reg = Regulariser(name, strength, **plan_options(name, table.trace_method))
                    grid.append(base.replace(learning_rate=lr, regulariser=reg))
    return grid


def pilot_table(
    runs: pd.DataFrame, mse_unit: float = 1.0, baselines: dict[float, float] | None = None
) -> pd.DataFrame:
    """One row per network, learning rate, noise and method: how many runs diverged,
    converged and learned more than the average face
    (:func:`mgs_teach.lab.stability.run_verdicts`), their final and lowest test MSE (px²,
    means over the converged runs) and the largest η S over training against the limit 2.

    Parameters
    ----------
    runs : pandas.DataFrame
        Histories as :func:`mgs_teach.lab.grid.run_grid` returns them.
    mse_unit : float
        Squared pixels in one unit of the runs' MSE.
    baselines : dict, optional
        ``{target noise: the mean-keypoint predictor's test MSE}``
        (:func:`mgs_teach.lab.stability.baselines`),
        the ceiling of a converged run's final MSE; none by default.
    """
    # by noise first (stable), the order the summary's rows have always had
    verdicts = run_verdicts(runs, mse_unit, baselines or {})
    verdicts = verdicts.sort_values("target_noise", kind="stable")
    rows = []
    keys = [k for k in RUN_KEYS if k != "seed"]
    for key, g in verdicts.groupby(keys, sort=False):
        ok = g[g["converged"]]
        rows.append(dict(zip(keys, key), runs=len(g), converged=int(g["converged"].sum()),
                         diverged=int(g["diverged"].sum()), learned=int(g["learned"].sum()),
                         final=float(ok["final"].mean()) if len(ok) else np.nan,
                         lowest=float(ok["lowest"].mean()) if len(ok) else np.nan,
                         eta_s_max=float(g["eta_s_max"].max())))  # fmt: skip
    return pd.DataFrame(rows)


def pilot_summary(runs: pd.DataFrame, spec: PilotSpec = REGRESSION_PILOT,
                  plan: MNISTPlan = REGRESSION_CPU) -> dict:  # fmt: skip
    """``summary.json`` of the pilot: its settings, the baselines and :func:`pilot_table`."""
    baselines = stability.baselines(plan, spec.n_train, spec.noises)
    table = pilot_table(runs, plan.mse_unit, baselines)
    return dict(
        spec=dataclasses.asdict(spec),
        mse_unit=plan.mse_unit,
        baselines={f"{k:g}": round(v, 2) for k, v in baselines.items()},
        rows=json.loads(table.round(4).to_json(orient="records")),
    )


def load_pilot(out: str | Path, spec: PilotSpec = REGRESSION_PILOT,
               plan: MNISTPlan = REGRESSION_CPU) -> dict[str, Any] | None:  # fmt: skip
    """The pilot's results under ``out`` (``results/regression-pilot``), or ``None`` where it
    has not finished: ``runs`` and ``onset`` (histories), ``summary`` and ``provenance``."""
    out = Path(out)
    if not (out / "summary.json").exists():
        return None
    return dict(runs=Store(out / "runs").read_grid(pilot_grid(spec, plan), range(spec.runs)),
                onset=Store(out / "onset").read_grid(pilot_grid(spec, plan, onset=True), [0]),
                summary=json.loads((out / "summary.json").read_text()),
                provenance=json.loads((out / "provenance.json").read_text()))  # fmt: skip


_NET = {"lenet5": "LeNet-5", "fcn-6x300": "the FCN"}
_METHOD = {"none": "unregularised", "dropout": "dropout", "weight_decay": "weight decay",
           "param_gradient": "loss gradient", "mgs_trace": "MGS"}  # fmt: skip


def pilot_texts(table: pd.DataFrame) -> dict[str, str]:
    """What the pilot says, per initial learning rate ``r`` (as ``f"{r:g}"``):
    ``diverged_<r>`` ("k of n runs"), ``converged_<r>`` (the settings that converged in every
    run at every noise scale, or "none") and ``unreg_<r>`` (the unregularised runs that
    diverged).

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`pilot_table`'s rows.
    """
    out = {}
    for lr, g in table.groupby("learning_rate"):
        r = f"{lr:g}"
        out[f"diverged_{r}"] = f"{int(g['diverged'].sum())} of {int(g['runs'].sum())} runs"
        whole = g.groupby(["model", "regulariser", "strength"], sort=False)
        good = [key for key, c in whole if (c["converged"] == c["runs"]).all()]
        names = [f"{_METHOD.get(m, m)}{f' {s:g}' if m != 'none' else ''} ({_NET.get(n, n)})"
                 for n, m, s in good]  # fmt: skip
        out[f"converged_{r}"] = join_and(names) if names else "none"
        unreg = g[g["regulariser"] == "none"]
        out[f"unreg_{r}"] = f"{int(unreg['diverged'].sum())} of {int(unreg['runs'].sum())}"
    return out
