"""Figure 4: how a method tuned in one scenario fares when one setting changes.

The paper (Appendix D.2): "each method is first tuned using the same scenario. Then, the
tuned scenario is used as a starting point from which each of the 5 training parameters were
changed independently. [...] The final performance results were aggregated, with the
quantiles being drawn, based on all the results." :func:`spoke_finals` labels every run with
its spoke and its final accuracy, :func:`spoke_quantiles` gives the quantiles over runs that
the radar charts draw, and :func:`robustness` the verdicts: each method's median over the
spokes, its weakest spoke, and the spokes where MGS has the best median.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from mgs_teach.lab.findings import join_and, ordinal
from mgs_teach.lab.findings.mnist_texts import NAMES

__all__ = ["AXIS_NAMES", "middle", "robustness", "spoke_finals", "spoke_quantiles", "texts"]

#: Figure 4's five settings and the short names its spokes use.
AXIS_NAMES = {"n_train": "n", "label_noise": "noise", "batch_size": "batch",
              "learning_rate": "lr", "epochs": "epochs"}  # fmt: skip


def middle(plan: Any) -> dict[str, Any]:
    """The middle scenario of a plan's Figure 4: each setting of :data:`AXIS_NAMES` as the
    middle trains it (the batch size and learning rate are the plan's)."""
    f = plan.figure4
    return dict(n_train=f.n_train, label_noise=f.label_noise, batch_size=plan.batch_size,
                learning_rate=plan.learning_rate, epochs=f.epochs)  # fmt: skip


def _spoke(run: pd.Series, middle: Mapping[str, Any]) -> str:
    changed = [f"{short} {run[a]:g}" for a, short in AXIS_NAMES.items() if run[a] != middle[a]]
    if len(changed) > 1:
        raise ValueError(f"a run of Figure 4 changes more than one setting: {changed}")
    return changed[0] if changed else "middle"


def spoke_finals(runs: pd.DataFrame, middle: Mapping[str, Any], last: int = 5) -> pd.DataFrame:
    """One row per run: ``method, spoke, seed, final`` (percent, the mean of its last
    ``last`` records; NaN for a run that diverged).

    Parameters
    ----------
    runs : pandas.DataFrame
        Histories of Figure 4's grid, with the five settings as columns.
    middle : mapping
        The middle scenario's value of each setting of :data:`AXIS_NAMES`; a run that
        differs in one is on that setting's spoke (``"n 1000"``, ``"lr 0.3"``...).
    """
    rows = []
    for (_, seed), g in runs.groupby(["key", "seed"], sort=False):
        g = g.sort_values("step")
        first = g.iloc[0]
        final = 100 * g["test_acc"].tail(last).mean() if first["status"] == "finished" else None
        rows.append(dict(method=NAMES.get(first["regulariser"], first["regulariser"]),
                         spoke=_spoke(first, middle), seed=seed, final=final))  # fmt: skip
    return pd.DataFrame(rows).astype({"final": float})


def spoke_quantiles(finals: pd.DataFrame, q: Sequence[float] = (0.25, 0.5, 0.75)) -> pd.DataFrame:
    """Quantiles of the finals over the runs of each method and spoke (runs that diverged
    left out): index ``(method, quantile)``, one column per spoke, ``middle`` first."""
    table = finals.groupby(["method", "spoke"])["final"].quantile(list(q)).unstack("spoke")
    table.index = table.index.set_names(["method", "quantile"])
    return table[sorted(table.columns, key=_order)]


def _order(spoke: str) -> tuple[int, float]:
    """``middle`` first, then the spokes in :data:`AXIS_NAMES`' order, lower values first."""
    if spoke == "middle":
        return (-1, 0.0)
    short, value = spoke.rsplit(" ", 1)
    return (list(AXIS_NAMES.values()).index(short), float(value))


def robustness(finals: pd.DataFrame) -> pd.DataFrame:
    """Per method, from :func:`spoke_finals`: ``median`` (of its spokes' medians),
    ``weakest`` (the spoke with the lowest median) and ``weakest_median``, ``spread`` (largest
    minus smallest spoke median), ``best_spokes`` (the spokes where its median is the highest
    of all methods) and ``rank`` (by ``median``, 1 the highest)."""
    med = finals.groupby(["method", "spoke"])["final"].median().unstack("spoke")
    winners = med.idxmax(axis=0)
    out = pd.DataFrame({"median": med.median(axis=1), "weakest": med.idxmin(axis=1),
                        "weakest_median": med.min(axis=1),
                        "spread": med.max(axis=1) - med.min(axis=1),
                        "best_spokes": [int((winners == m).sum()) for m in med.index]})  # fmt: skip
    return out.assign(rank=out["median"].rank(ascending=False, method="min").astype(int))


def texts(r: pd.DataFrame, finals: pd.DataFrame) -> dict[str, str]:
    """The chapter's glued phrases from :func:`robustness` and :func:`spoke_finals`."""
    order = r.sort_values("median", ascending=False)
    mgs = r.loc["MGS"]
    spokes = finals["spoke"].nunique()
    return {"order": join_and(f"{m} ({v:.1f} %)" for m, v in order["median"].items()),
            "mgs_rank": f"{ordinal(int(mgs['rank']))} of {len(r)}",
            "mgs_best": f"{int(mgs['best_spokes'])} of {spokes}",
            "winners": join_and(f"{m} {int(n)}" for m, n in
                                order["best_spokes"].sort_values(ascending=False).items() if n),
            "mgs_weakest": f"{mgs['weakest']} ({mgs['weakest_median']:.1f} %)",
            "weakest": join_and(f"{m}: {w.weakest} ({w.weakest_median:.1f} %)"
                                for m, w in order.iterrows()),
            "runs": str(len(finals)),
            "diverged": str(int(finals["final"].isna().sum()))}  # fmt: skip
