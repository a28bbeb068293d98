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

import numpy as np
import pandas as pd

from mgs_teach.lab.experiment import Experiment
from mgs_teach.lab.plan import MNISTPlan, plan_options
from mgs_teach.lab.plans import REGRESSION_CPU
from mgs_teach.lab.stability import mean_keypoint_mse, run_verdicts
from mgs_teach.penalties import Regulariser

__all__ = [
    "PilotSpec",
    "REGRESSION_PILOT",
    "pilot_baselines",
    "pilot_grid",
    "pilot_summary",
    "pilot_table",
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
                base = plan.base(table.model, spec.n_train, noise, spec.epochs)
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
        ``{target noise: the mean-keypoint predictor's test MSE}`` (:func:`pilot_baselines`),
        the ceiling of a converged run's final MSE; none by default.
    """
    baselines = baselines or {}
    verdicts = pd.concat(
        [
            run_verdicts(g, mse_unit, baselines.get(float(noise), np.inf))
            for noise, g in runs.groupby("target_noise")
        ],
        ignore_index=True,
    )
    rows = []
    keys = ["model", "learning_rate", "target_noise", "regulariser", "strength"]
    for key, g in verdicts.groupby(keys, sort=False):
        ok = g[g["converged"]]
        rows.append(dict(zip(keys, key), runs=len(g), converged=int(g["converged"].sum()),
                         diverged=int(g["diverged"].sum()), learned=int(g["learned"].sum()),
                         final=float(ok["final"].mean()) if len(ok) else np.nan,
                         lowest=float(ok["lowest"].mean()) if len(ok) else np.nan,
                         eta_s_max=float(g["eta_s_max"].max())))  # fmt: skip
    return pd.DataFrame(rows)


def pilot_baselines(
    spec: PilotSpec = REGRESSION_PILOT, plan: MNISTPlan = REGRESSION_CPU
) -> dict[float, float]:
    """``{target noise: test MSE of the mean-keypoint predictor}`` on the pilot's data (px²)."""
    model = plan.tables[0].model
    return {float(p): mean_keypoint_mse(plan.base(model, spec.n_train, p, spec.epochs).data)
            for p in spec.noises}  # fmt: skip


def pilot_summary(runs: pd.DataFrame, spec: PilotSpec = REGRESSION_PILOT,
                  plan: MNISTPlan = REGRESSION_CPU) -> dict:  # fmt: skip
    """``summary.json`` of the pilot: its settings, the baselines and :func:`pilot_table`."""
    baselines = pilot_baselines(spec, plan)
    table = pilot_table(runs, plan.mse_unit, baselines)
    return dict(
        spec=dataclasses.asdict(spec),
        mse_unit=plan.mse_unit,
        baselines={f"{k:g}": round(v, 2) for k, v in baselines.items()},
        rows=json.loads(table.round(4).to_json(orient="records")),
    )
