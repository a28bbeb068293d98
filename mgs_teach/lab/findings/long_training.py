"""The long FCN table: does Loss grad. collapse late, and does MGS hold a plateau?

The paper (Appendix A.4) on the loss-gradient penalty: "the issue arises as to how this
penalty performs when any minima is approached, as the second term will diminish, causing
the whole penalty to lose influence over training. This might then lead to the model
starting to overfit after landing in a minima, which we have observed in our experiments."
At 80 % noise it has 15.1 (17.2) in Table 1 (LeNet-5) and 12.1 (14.8) in Table D.2 (the FCN),
against MGS's 74.5 (75.1) and 51.4 (55.0).

:func:`late_collapse` reads that off the run-averaged test accuracy of each method and noise
level of a table trained for longer than the 35-epoch tables: its accuracy at the end of
the short tables (the record nearest ``short_epochs``), its peak and its final, and two
computed verdicts (:data:`RULES`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mgs_teach.lab.findings import join_and, ordinal
from mgs_teach.lab.findings.mnist_texts import NAMES

__all__ = ["COLLAPSE_POINTS", "RULES", "late_collapse", "texts"]

#: Points of test accuracy that a fall must lose to count as a collapse.
COLLAPSE_POINTS = 5.0

#: The rules behind :func:`late_collapse`'s verdicts.
RULES = {
    "late_collapse": f"the final is at least {COLLAPSE_POINTS:g} points below the accuracy at "
                     "the end of the short tables (a fall that comes after them)",
    "plateau": "the final is within 2 points of both the peak and the accuracy at the end of "
               "the short tables",
}  # fmt: skip


def late_collapse(runs: pd.DataFrame, short_epochs: int, last: int = 5) -> pd.DataFrame:
    """Each method's curve at the end of the short tables, at its peak and at the end.

    Parameters
    ----------
    runs : pandas.DataFrame
        Histories of the long table (``label_noise, regulariser, seed, step, epoch,
        test_acc, status``).
    short_epochs : int
        Epochs of the short tables (35 in the ``cpu`` plan).
    last : int
        Records averaged into the final, as in the paper's tables.

    Returns
    -------
    pandas.DataFrame
        One row per noise level and method: ``label_noise, method, short`` (the mean of the
        ``last`` records up to the one nearest ``short_epochs``: the short tables' final),
        ``peak, peak_epoch, final`` (percent), ``after_short`` (short - final),
        ``late_collapse`` and ``plateau`` (:data:`RULES`), and ``runs`` (finished runs
        averaged).
    """
    ok = runs[runs["status"] == "finished"]
    rows = []
    for (p, reg), g in ok.groupby(["label_noise", "regulariser"], sort=False):
        curve = g.groupby("step")[["epoch", "test_acc"]].mean().sort_index()
        acc, epoch = 100 * curve["test_acc"].to_numpy(), curve["epoch"].to_numpy()
        k = int(np.argmin(np.abs(epoch - short_epochs)))
        short = acc[max(k - last + 1, 0) : k + 1].mean()  # a final, as the short tables
        final, i = acc[-last:].mean(), int(np.argmax(acc))
        rows.append(dict(label_noise=p, method=NAMES.get(reg, reg), short=short, peak=acc[i],
                         peak_epoch=epoch[i], final=final, after_short=short - final,
                         late_collapse=bool(short - final >= COLLAPSE_POINTS),
                         plateau=bool(acc[i] - final <= 2 and abs(short - final) <= 2),
                         runs=g["seed"].nunique()))  # fmt: skip
    return pd.DataFrame(rows)


def texts(found: pd.DataFrame, short_epochs: int) -> dict[str, str]:
    """The chapter's glued phrases from :func:`late_collapse`: the late collapses, Loss grad.'s
    and MGS's curves at each noise level, MGS's plateaus and its rank by final."""
    pct = lambda p: f"{p:.0%}".replace("%", " %")  # noqa: E731
    fall = found[found["late_collapse"]]
    out = {"collapses": join_and(f"{r.method} at {pct(r.label_noise)} (from {r.short:.1f} % at "
                                 f"epoch {short_epochs} to {r.final:.1f} %)"
                                 for r in fall.itertuples()) or "none",
           "mgs_plateaus": f"{int(found.loc[found['method'] == 'MGS', 'plateau'].sum())} of "
                           f"{found['label_noise'].nunique()}"}  # fmt: skip
    for method, key in (("Loss grad.", "lossgrad"), ("MGS", "mgs")):
        rows = found[found["method"] == method].itertuples()
        out[f"{key}_curves"] = "; ".join(
            f"at {pct(r.label_noise)} noise, {r.short:.1f} % at epoch {short_epochs}, "
            f"{r.peak:.1f} % at its peak (epoch {r.peak_epoch:.0f}) and {r.final:.1f} % at "
            "the end" for r in rows)  # fmt: skip
    ranks = []
    for p, g in found.groupby("label_noise"):
        order = g.sort_values("final", ascending=False)["method"].tolist()
        ranks.append(f"{ordinal(order.index('MGS') + 1)} at {pct(p)} (first: {order[0]})")
    return out | {"mgs_rank": join_and(ranks)}
