"""Figure 3 on the CPU: do the MGS metrics track generalisation across nine regularisers?

The paper (Section 4): "the test accuracy or generalisation performance (figure 3) is
strongly correlated with the evolution of the MGS metrics. The slower the rate of MGS
growth, the better the final generalisation". :func:`figure3_findings` computes, from the
histories of one network, one noise level and the nine regularisers:

- each regulariser's growth of tr K (the log of the last over the first record of its
  run-averaged curve) and of log det K (last minus first), and its final test accuracy;
- Spearman's correlation of each growth with the final accuracy across the regularisers,
  its sign against the paper's (negative), and its chance level: the exact permutation
  probability of a correlation at least as negative when the pairing is random;
- a computed yes or no for each observation the paper lists under Figure 3 (:data:`RULES`).
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pandas as pd

from mgs_teach.lab.findings import join_and, number, signed, spearman
from mgs_teach.lab.findings.mnist_texts import NAMES as TABLE_NAMES

__all__ = ["NAMES", "OVERFIT_POINTS", "RULES", "Figure3Findings", "after_peak", "curves",
           "exact_p", "figure3_findings", "growths", "observations", "plateau"]  # fmt: skip

#: The nine regularisers' names on the page: the tables' five and four more.
NAMES = {**TABLE_NAMES, "adam": "Adam", "cyclical_lr": "Cyclical LR",
         "input_gradient": "Input grad.", "mgs_logdet": "MGS log det"}  # fmt: skip

#: Points of test accuracy a curve must lose after its peak to count as overfitting.
OVERFIT_POINTS = 2.0

#: The observations under the paper's Figure 3 (Section 4) and the rule that tests each.
RULES = {
    "plateau": "the unregularised network overfits (its final is at least 2 points below its "
               "peak); the slowest growth of log tr K per epoch over 4 consecutive records "
               "overlaps the accuracy's top (the records within 2 points of its peak); and "
               "log tr K grows faster per epoch after the top than across it",
    "weight": "weight decay overfits late (its peak is after the unregularised network's and its "
              "final at least 2 points below it) and, after its peak, log tr K rises while the "
              "accuracy falls (a negative Spearman correlation over those records)",
    "gaps": "dropout's log det K is -inf (a singular kernel) at a larger share of its records "
            "than any other regulariser's, and at one record at least",
    "stable": "MGS ends within 2 points of its peak and every other regulariser does not",
}  # fmt: skip


def curves(runs: pd.DataFrame) -> pd.DataFrame:
    """Run-averaged curves of the finished runs: one row per regulariser and record,
    ``regulariser, step, epoch, trace, logdet, train_loss, test_acc`` (accuracy in percent),
    and ``singular``, the share of runs whose log det K is -inf at that record."""
    runs = runs[runs["status"] == "finished"].assign(
        singular=lambda f: f["logdet"] == -np.inf,
        logdet=lambda f: f["logdet"].where(np.isfinite(f["logdet"])),
        test_acc=lambda f: 100 * f["test_acc"])  # fmt: skip
    cols = ["epoch", "trace", "logdet", "train_loss", "test_acc", "singular"]
    return runs.groupby(["regulariser", "step"], sort=False)[cols].mean().reset_index()


def growths(c: pd.DataFrame, last: int = 5) -> pd.DataFrame:
    """Per regulariser, from :func:`curves`: ``trace_growth`` (log of last over first tr K),
    ``logdet_growth`` (last minus first finite log det K), ``final`` (the mean of the last
    ``last`` records of test accuracy), ``peak``, ``peak_epoch``, ``drop`` (peak - final)
    and ``singular`` (the share of records with a singular kernel)."""
    rows = {}
    for reg, g in c.groupby("regulariser", sort=False):
        g = g.sort_values("step")
        finite = g["logdet"].dropna()
        final, i = g["test_acc"].tail(last).mean(), int(np.argmax(g["test_acc"].to_numpy()))
        peak = g["test_acc"].iloc[i]
        rows[reg] = dict(trace_growth=math.log(g["trace"].iloc[-1] / g["trace"].iloc[0]),
                         logdet_growth=finite.iloc[-1] - finite.iloc[0] if len(finite) > 1
                         else float("nan"),
                         final=final, peak=peak, peak_epoch=g["epoch"].iloc[i],
                         drop=peak - final, singular=g["singular"].mean())  # fmt: skip
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("regulariser")


def exact_p(x: np.ndarray, y: np.ndarray) -> float:
    """The chance of a Spearman correlation at most ``spearman(x, y)`` (the paper's negative
    direction) when ``y`` is paired with ``x`` at random: the share of all orderings of
    ``y``'s ranks that correlate as negatively, counted exactly (at most 10 pairs)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) == len(y):  # pairs where both are known, as spearman() takes them
        x, y = x[np.isfinite(x) & np.isfinite(y)], y[np.isfinite(x) & np.isfinite(y)]
    if len(x) != len(y) or not 3 <= len(x) <= 10:
        raise ValueError(f"exact_p needs 3 to 10 pairs of equal length, got {len(x)}, {len(y)}")
    observed = spearman(x, y)
    if np.isnan(observed):  # a constant side: no ordering to compare
        return float("nan")
    rx, ry = pd.Series(x).rank().to_numpy(), pd.Series(y).rank().to_numpy()
    orders = np.array(list(itertools.permutations(ry)))
    dx = rx - rx.mean()
    dy = orders - orders.mean(axis=1, keepdims=True)
    rho = dy @ dx / np.sqrt((dx @ dx) * (dy * dy).sum(axis=1))
    return float(np.mean(rho <= observed + 1e-12))


def _log_trace(g: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One curve of :func:`curves` in step order: its epochs, log tr K and accuracy."""
    g = g.sort_values("step")
    return g["epoch"].to_numpy(), np.log(g["trace"].to_numpy()), g["test_acc"].to_numpy()


def _rate(e: np.ndarray, lt: np.ndarray, a: int, b: int) -> float:
    """Growth of log tr K per epoch from record ``a`` to record ``b`` (NaN unless b > a)."""
    return float((lt[b] - lt[a]) / (e[b] - e[a])) if b > a else float("nan")


def after_peak(g: pd.DataFrame, around: int = 2) -> dict[str, float]:
    """After the accuracy's peak of one curve of :func:`curves`: ``after``, the growth of
    log tr K per epoch from ``around`` records past the peak to the last record, and
    ``after_rho``, Spearman's correlation of log tr K with the accuracy from the peak on."""
    e, lt, acc = _log_trace(g)
    i = int(np.argmax(acc))
    return dict(after=_rate(e, lt, min(i + around, len(e) - 1), len(e) - 1),
                after_rho=spearman(lt[i:], acc[i:]))  # fmt: skip


def plateau(g: pd.DataFrame, width: int = 3) -> dict[str, float]:
    """Where one curve of :func:`curves` grows slowest, and whether that is at the top of
    its accuracy: ``slowest`` (the least growth of log tr K per epoch over ``width``
    intervals, ``width + 1`` consecutive records, after the first record) from
    ``slowest_epoch``, ``top`` (the first and last epoch where the accuracy is within 2
    points of its peak), ``meets`` (the two overlap), ``across`` (the growth per epoch from
    the first to the last record of the top; NaN if it is one record) and ``after`` (from
    the end of the top to the last record; NaN if the top is at the end)."""
    e, lt, acc = _log_trace(g)
    rates = [_rate(e, lt, j, j + width) for j in range(1, len(e) - width)]
    j = 1 + int(np.argmin(rates))
    top = np.flatnonzero(acc >= acc.max() - OVERFIT_POINTS)
    t0, t1 = int(top[0]), int(top[-1])
    return dict(slowest=float(min(rates)), slowest_epoch=float(e[j]), top=(e[t0], e[t1]),
                meets=bool(j <= t1 and j + width >= t0), across=_rate(e, lt, t0, t1),
                after=_rate(e, lt, t1, len(e) - 1))  # fmt: skip


def observations(c: pd.DataFrame, g: pd.DataFrame) -> pd.DataFrame:
    """The paper's observations under Figure 3, each with a computed ``holds`` (:data:`RULES`).

    ``c`` and ``g`` are :func:`curves` and :func:`growths` of the same runs, which hold
    ``none``, ``weight_decay``, ``dropout`` and ``mgs_trace``.
    """
    by = {r: f for r, f in c.groupby("regulariser", sort=False)}
    s_none, s_wd = plateau(by["none"]), after_peak(by["weight_decay"])
    flat = (g.loc["none", "drop"] >= OVERFIT_POINTS and s_none["meets"]
            and s_none["after"] > s_none["across"])  # fmt: skip
    weight = (g.loc["weight_decay", "drop"] >= OVERFIT_POINTS and s_wd["after_rho"] < 0
              and g.loc["weight_decay", "peak_epoch"] > g.loc["none", "peak_epoch"]
              and s_wd["after"] > 0)  # fmt: skip
    others = g.drop(index="dropout")["singular"].max()
    gaps = g.loc["dropout", "singular"] > max(others, 0.0)
    held = g["drop"] < OVERFIT_POINTS
    stable = bool(held["mgs_trace"]) and not held.drop(index="mgs_trace").any()
    rows = [("plateau", "none", flat, s_none), ("weight", "weight_decay", weight, s_wd),
            ("gaps", "dropout", gaps, {"dropout": g.loc["dropout", "singular"],
                                        "others_largest": others}),
            ("stable", "mgs_trace", stable, {"drop": g.loc["mgs_trace", "drop"],
                                             "also within": list(held.index[held])})]  # fmt: skip
    return pd.DataFrame(
        [
            dict(observation=o, regulariser=r, holds=bool(h), numbers=n, rule=RULES[o])
            for o, r, h, n in rows
        ]
    ).set_index("observation")


@dataclasses.dataclass(frozen=True)
class Figure3Findings:
    """What Figure 3's runs show (:func:`figure3_findings`).

    Attributes
    ----------
    curves : pandas.DataFrame
        :func:`curves`.
    growths : pandas.DataFrame
        :func:`growths`.
    rho, p : dict
        ``{"trace": ..., "logdet": ...}``: Spearman's correlation of each growth with the
        final accuracy across the regularisers, and its chance level (:func:`exact_p`).
    per_seed : dict
        ``{"trace": [...]}``: the same correlation for each seed's runs alone.
    observations : pandas.DataFrame
        :func:`observations`.
    """

    curves: pd.DataFrame
    growths: pd.DataFrame
    rho: dict[str, float]
    p: dict[str, float]
    per_seed: dict[str, list[float]]
    observations: pd.DataFrame

    def texts(self) -> dict[str, str]:
        """The chapter's glued phrases: the correlations, their sign against the paper's and
        chance level, the order of the finals, and each observation's verdict."""
        g, o = self.growths.sort_values("final", ascending=False), self.observations
        sign = {True: "the paper's sign", False: "the opposite of the paper's sign"}
        out = {f"rho_{m}": signed(self.rho[m]) for m in self.rho}
        out |= {f"p_{m}": number(self.p[m], 2) for m in self.p}
        out |= {f"sign_{m}": sign[self.rho[m] < 0] for m in self.rho}
        out |= {
            "per_seed": join_and(signed(r) for r in self.per_seed["trace"]),
            "order": join_and(f"{NAMES.get(r, r)} ({f:.1f} %)" for r, f in g["final"].items()),
            "held": f"{int(o['holds'].sum())} of {len(o)}",
            "top": _top(o.loc["plateau", "numbers"]["top"]),
            "regularisers": str(len(g)),
        }
        return out | {f"obs_{k}": _verdict(k, o.loc[k], g) for k in o.index}


def _top(top: tuple[float, float]) -> str:
    """The accuracy's top as words: ``epochs 9 to 18``, or ``epoch 12 alone``."""
    first, last = top
    return f"epoch {first:.0f} alone" if first == last else f"epochs {first:.0f} to {last:.0f}"


def _verdict(name: str, row: pd.Series, g: pd.DataFrame) -> str:
    """One observation's verdict, "yes" or "no", with the numbers behind it."""
    n, yes = row["numbers"], "yes" if row["holds"] else "no"
    signed = lambda v, d=2: f"{v:.{d}f}".replace("-", "−")  # noqa: E731
    if name == "plateau":
        where = "overlaps" if n["meets"] else "does not overlap"
        growth = [
            f"{signed(v, 3)} per epoch {w}"
            for v, w in ((n["across"], "across the top"), (n["after"], "after it"))
            if not np.isnan(v)
        ]
        return (
            f"{yes}: the unregularised network ends {g.loc['none', 'drop']:.1f} points "
            f"below its peak; log tr K grows slowest ({signed(n['slowest'], 3)} per epoch) "
            f"from epoch {n['slowest_epoch']:.0f}, which {where} the accuracy's top "
            f"({_top(n['top'])})" + (f"; it grows {join_and(growth)}" if growth else "")
        )
    if name == "weight":
        w = g.loc["weight_decay"]
        return (
            f"{yes}: weight decay peaks at epoch {w['peak_epoch']:.0f} and ends "
            f"{w['drop']:.1f} points below its peak; after it, log tr K grows "
            f"{n['after']:.3f} per epoch (Spearman with the accuracy "
            f"{signed(n['after_rho'])})"
        )
    if name == "gaps":
        return (
            f"{yes}: {100 * n['dropout']:.0f} % of dropout's records have a singular "
            f"kernel, against at most {100 * n['others_largest']:.0f} % for the others"
        )
    others = [f"{NAMES.get(r, r)} ({g.loc[r, 'drop']:.1f})" for r in n["also within"]
              if r != "mgs_trace"]  # fmt: skip
    if n["drop"] >= OVERFIT_POINTS:
        return f"{yes}: MGS ends {n['drop']:.1f} points below its peak, more than 2"
    return f"{yes}: MGS ends {n['drop']:.1f} points below its peak" + (
        f"; so do {join_and(others)}, within 2 points"
        if others
        else ", and no other regulariser ends within 2 points of its own"
    )


def figure3_findings(runs: pd.DataFrame) -> Figure3Findings:
    """Figure 3's findings from the histories of its grid (one network and noise level,
    several seeds, the nine regularisers)."""
    c = curves(runs)
    g = growths(c)
    rho = {m: spearman(g[f"{m}_growth"], g["final"]) for m in ("trace", "logdet")}
    p = {m: exact_p(g[f"{m}_growth"], g["final"]) for m in ("trace", "logdet")}
    seeds = [growths(curves(r)) for _, r in runs.groupby("seed")]
    per_seed = {"trace": [spearman(s["trace_growth"], s["final"]) for s in seeds]}
    return Figure3Findings(c, g, rho, p, per_seed, observations(c, g))
