"""The one tuner: every regulariser's strength chosen by one rule on validation runs.

:func:`tuning_grid` lists the candidates as experiments on validation data, :func:`select`
applies the rule (:data:`SELECTION_RULE`) to their runs, and :func:`tune` trains what is
missing and selects. :func:`plan_tuning` and :func:`tuning_order` say what a plan tunes, and
in which order its networks are tuned.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mgs_teach.lab.aggregate import summarise
from mgs_teach.lab.experiment import Experiment
from mgs_teach.lab.grid import run_grid
from mgs_teach.lab.store import Store

__all__ = ["SELECTION_RULE", "plan_tuning", "select", "tune", "tuning_grid", "tuning_order"]

#: How :func:`select` chooses, in words (the chapters print it).
SELECTION_RULE = (
    "the strength with the highest final validation accuracy (mean of the last 5 records, "
    "then over runs), ties to the lower final validation loss; a strength whose runs diverged "
    "loses. The validation samples are held out from the same noisy source as the training "
    "samples; the test set plays no part. For the regression benchmark (no accuracy): the "
    "strength with the lowest final validation MSE, on targets as noisy as the training ones."
)


def tuning_grid(
    base: Experiment,
    candidates: dict[str, Sequence[float]],
    n_val: int,
    options: dict[str, dict[str, Any]] | None = None,
) -> list[Experiment]:
    """The experiments :func:`tune` trains: ``base`` with each candidate, on validation data.

    Each regulariser keeps the options of ``base``'s (its trace method, say), updated by
    ``options[name]``.
    """
    options = options or {}
    return [base.replace(regulariser=name, strength=float(s), n_val=n_val, **options.get(name, {}))
            for name, values in candidates.items() for s in values]  # fmt: skip


def select(grid: Sequence[Experiment], runs: pd.DataFrame,
           seeds: Iterable[int]) -> tuple[dict[str, float], pd.DataFrame]:  # fmt: skip
    """Apply :data:`SELECTION_RULE` to the runs of a tuning grid.

    Why accuracy and not loss: the validation labels carry the same label noise as the
    training labels (nobody has clean labels to tune on). Under symmetric noise, accuracy on
    noisy labels is an increasing affine function of accuracy on clean labels, so it ranks
    models as clean accuracy would; cross-entropy instead punishes every confident prediction
    that contradicts a wrong label, and favours a model that has learnt little and hedges.

    Parameters
    ----------
    grid : sequence of Experiment
        From :func:`tuning_grid`.
    runs : pandas.DataFrame
        Their runs (with ``key``, ``seed`` and ``status`` columns).
    seeds : iterable of int

    Returns
    -------
    best : dict
        ``{regulariser: strength}``.
    table : pandas.DataFrame
        ``regulariser, strength, val_acc, val_loss, diverged, best``.
    """
    n_seeds = len(list(seeds))
    rows = []
    for e in grid:
        frame = runs[runs["key"] == e.key]
        ok = frame[frame["status"] == "finished"]
        diverged = ok["seed"].nunique() < n_seeds
        acc = summarise(ok, ["key"])["final"] if len(ok) else pd.Series(dtype=float)
        val_loss = (summarise(ok, ["key"], metric="test_loss")["final"] if len(ok)
                    else pd.Series(dtype=float))  # fmt: skip
        acc = acc.fillna(-np.inf)  # a regression has no accuracy
        rows.append(dict(regulariser=e.regulariser.name, strength=e.regulariser.strength,
                         val_acc=-np.inf if diverged or acc.empty else float(acc.iloc[0]),
                         val_loss=np.inf if diverged or val_loss.empty
                         else float(val_loss.iloc[0]),
                         diverged=bool(diverged)))  # fmt: skip
    table = pd.DataFrame(rows)
    # a regression has no accuracy (all -inf): its validation loss alone ranks it (zero-mean
    # target noise adds the same constant to every MSE)
    order = table.sort_values(["val_acc", "val_loss"], ascending=[False, True])
    best_idx = order.groupby("regulariser", sort=False).head(1).index
    table["best"] = table.index.isin(best_idx)
    best = dict(zip(table.loc[best_idx, "regulariser"], table.loc[best_idx, "strength"]))
    return best, table


def tune(
    base: Experiment,
    candidates: dict[str, Sequence[float]],
    seeds: Iterable[int],
    out: str | Path | Store,
    *,
    n_val: int,
    options: dict[str, dict[str, Any]] | None = None,
    progress: bool = True,
    share: str = "auto",
    stop: Callable[[], bool] | None = None,
) -> tuple[dict[str, float], pd.DataFrame]:
    """Train every candidate (what is not stored yet) and :func:`select` the strengths.

    Each candidate trains as ``base`` with that regulariser and strength, evaluated on
    ``n_val`` validation samples (``DataSpec.n_val``), resumably under ``out``.

    Parameters
    ----------
    base : Experiment
        The tuning scenario; its regulariser's options are kept.
    candidates : dict
        ``{regulariser name: candidate strengths}``.
    seeds : iterable of int
    out : path or Store
    n_val : int
        Validation samples.
    options : dict, optional
        ``{regulariser name: {option: value}}``, e.g. ``{"cyclical_lr": {"cycle_steps": 300}}``.
    progress, share, stop
        As in :func:`mgs_teach.lab.grid.run_grid`.

    Returns
    -------
    best, table
        As :func:`select` returns them.
    """
    seeds = list(seeds)
    grid = tuning_grid(base, candidates, n_val, options)
    runs = run_grid(grid, seeds, out, progress=progress, share=share, stop=stop)
    return select(grid, runs, seeds)


def plan_tuning(plan: Any) -> dict[str, tuple[Experiment, list[Experiment]]]:
    """``{network: (base, tuning grid)}`` of every network a plan tunes (with candidates)."""
    return {name: (base, tuning_grid(base, candidates, plan.tuning.n_val, options))
            for name, (base, candidates, options) in plan.tuning_bases().items()
            if candidates}  # fmt: skip


def tuning_order(plan: Any) -> list[str]:
    """The networks of a plan in the order they are tuned: each just before its first grid
    (the plan's grids run cheapest network first), then any network without a grid."""
    order = [e.model.name for grid in plan.grids({}).values() for e in grid]
    return list(dict.fromkeys([*order, *plan.tuning_bases()]))
