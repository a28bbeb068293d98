"""Aggregation the paper's way (Appendix D.1): finals, spreads and the best of the curve.

:func:`summarise` turns run histories into one row per group; :func:`entry` turns such a row
into one entry of a stored ``summary.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["entry", "summarise"]


def summarise(
    runs: pd.DataFrame,
    by: Sequence[str],
    *,
    metric: str = "test_acc",
    last: int = 5,
    include_failed: bool = False,
    best: str = "max",
) -> pd.DataFrame:
    """Aggregate runs the paper's way (Appendix D.1).

    For each group: every run's *final* value is the mean of its last ``last`` records; the
    table gives the mean and standard deviation of the finals over runs, and the *max* of
    the run-averaged curve (the curve averaged over runs at each record, then maximised).

    Parameters
    ----------
    runs : pandas.DataFrame
        From :func:`mgs_teach.lab.grid.run_grid` or a store.
    by : sequence of str
        Columns that define a group, e.g. ``["label_noise", "regulariser"]``.
    metric : str
    last : int
    include_failed : bool
        Also aggregate runs whose ``status`` is not ``"finished"`` (their histories stop
        where they diverged).
    best : {"max", "min"}
        The column ``max`` holds the maximum of the run-averaged curve, or its minimum with
        ``"min"`` (for an error such as the regression benchmark's MSE, where the paper's
        parenthesised number is the best, lowest, value).

    Returns
    -------
    pandas.DataFrame
        Columns ``by + [final, sd, max, runs, diverged]``: ``runs`` counts the runs
        aggregated, ``diverged`` those left out because they did not finish. A group whose
        runs all diverged keeps its row, with NaN statistics.
    """
    rows = []
    for group, frame in runs.groupby(list(by), sort=False):
        status = frame.groupby("seed")["status"].first() if "status" in frame else None
        failed = 0 if status is None else int((status != "finished").sum())
        if not include_failed and status is not None:
            frame = frame[frame["seed"].isin(status.index[status == "finished"])]
        finals = (
            frame.groupby("seed").apply(
                lambda r: r.sort_values("step")[metric].tail(last).mean(), include_groups=False
            )
            if len(frame)
            else pd.Series(dtype=float)
        )
        curve = frame.groupby("step")[metric].mean()
        group = group if isinstance(group, tuple) else (group,)
        rows.append({**dict(zip(by, group)),
                     "final": finals.mean() if len(finals) else float("nan"),
                     "sd": finals.std(ddof=1) if len(finals) > 1 else float("nan"),
                     "max": (curve.max() if best == "max" else curve.min())
                     if len(curve) else float("nan"),
                     "runs": len(finals),
                     "diverged": failed if not include_failed else 0})  # fmt: skip
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------- tuning


def entry(row: Any, scale: float) -> dict[str, Any]:
    """One summary entry from a row of :func:`summarise`: final, sd and max times ``scale``
    (``null`` where every run diverged), rounded to 2 decimals, and the runs behind them."""

    def value(v: float) -> float | None:
        return None if np.isnan(v) else round(scale * v, 2)

    return dict(final=value(row.final), sd=value(row.sd), max=value(row.max),
                runs=int(row.runs), diverged=int(row.diverged))  # fmt: skip
