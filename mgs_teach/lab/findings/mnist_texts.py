"""The MNIST chapter's glued phrases, from the small tables of :mod:`mgs_teach.lab.findings.mnist`.

Every function here returns ``name -> phrase`` and always returns the same names, whatever
the inputs hold: a table, a test bench, a benchmark or a trace check that was not run gives
a neutral "not measured" phrase, and a sentence that only makes sense when runs diverged
is one phrase, chosen here from the counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from mgs_teach import paper
from mgs_teach.lab.findings import join_and, ordinal, signed
from mgs_teach.lab.plans import TABLE_METHODS

__all__ = ["LABELS", "NAMES", "NOT_MEASURED", "bench_texts", "cost_texts", "divergence_texts",
           "figure3_texts", "run_texts", "table_texts", "trace_texts"]  # fmt: skip

#: The paper's column name of each regulariser (``"param_gradient" -> "Loss grad."``).
NAMES = {r: m for m, r in TABLE_METHODS.items()}
#: The paper's name of each table.
LABELS = {"table1": "Table 1", "fcn_table": "Table D.2"}
#: The phrase of a value whose experiment was not run.
NOT_MEASURED = "not measured"


def _pct(p: float) -> str:
    return f"{p:.0%}".replace("%", " %")


def _levels(ps: Sequence[float]) -> str:
    """``[0.3, 0.6, 0.8]`` -> ``"30, 60 and 80 %"``."""
    return join_and([f"{100 * p:.0f}" for p in ps]) + " %"


def _span(values: Any, digits: int = 1, unit: str = "") -> str:
    lo, hi = (f"{float(f(values)):.{digits}f}" for f in (np.nanmin, np.nanmax))
    return f"{lo}{unit}" if lo == hi else f"{lo} to {hi}{unit}"


def _per_table(v: pd.DataFrame) -> dict[str, str]:
    out = {f"{n}_{k}": NOT_MEASURED for n in LABELS for k in ("ranks", "winners", "behind", "lead")}
    for name, t in v.groupby("table", sort=False):
        n = int(t["methods"].iloc[0])
        out[f"{name}_ranks"] = join_and([f"{ordinal(r)} of {n} at {_levels(g['label_noise'])}"
                                      for r, g in t.groupby("mgs_rank", sort=False)])  # fmt: skip
        lost, won = t[t["mgs_rank"] > 1], t[t["mgs_rank"] == 1]
        winners = [f"{w} at {_levels(g['label_noise'])}" for w, g in lost.groupby("best")]
        out[f"{name}_winners"] = join_and(winners) or "none"
        out[f"{name}_behind"] = _span(-lost["mgs_margin"], 2, " points") if len(lost) else "0"
        out[f"{name}_lead"] = _span(won["mgs_margin"], 2, " points") if len(won) else "0"
    return out


def _close(v: pd.DataFrame, runs: str) -> str:
    """The "within the noise" sentence, chosen by how many entries are that close."""
    close = int((v["mgs_margin"].abs() < v[["mgs_sd", "rival_sd"]].max(axis=1)).sum())
    if close == 0:
        return ("At every table entry, MGS and the best other method are more than one "
                f"standard deviation of their runs apart: {runs} runs order them.")  # fmt: skip
    where = f"every one of the {len(v)}" if close == len(v) else f"{close} of {len(v)}"
    return (f"MGS and the best other method are less than one standard deviation of their runs "
            f"apart at {where} table entries, too close for {runs} runs to order them"
            + ("." if close == len(v) else " there."))  # fmt: skip


def table_texts(v: pd.DataFrame, pv: pd.DataFrame, runs: str = "the") -> dict[str, str]:
    """MGS's ranks and gaps in the book's tables ``v`` and the paper's ``pv`` (both
    ``rank_verdicts``); ``runs`` is the runs per entry."""
    best, pbest, pnot = v[v["mgs_rank"] == 1], pv[pv["mgs_rank"] == 1], pv[pv["mgs_rank"] > 1]
    where = [("every noise level" if len(g) == (v["table"] == n).sum()
              else _levels(g["label_noise"])) + f" of {LABELS.get(n, n)}"
             for n, g in best.groupby("table", sort=False)]  # fmt: skip
    close = int((v["mgs_margin"].abs() < v[["mgs_sd", "rival_sd"]].max(axis=1)).sum())
    at60, p60 = v[v["label_noise"] == 0.6], pv[pv["label_noise"] == 0.6]
    noisy, pnoisy = v[v["label_noise"] > 0], pv[pv["label_noise"] > 0]
    return {**_per_table(v), "entries": str(len(v)), "mgs_best": f"{len(best)} of {len(v)}",
            "mgs_best_where": join_and(where) or "no entry", "close": f"{close} of {len(v)}",
            "close_sentence": _close(v, runs),
            "unreg_drop_60": join_and([f"{d:.1f} points ({LABELS.get(n, n)})"
                                    for n, d in zip(at60["table"], at60["unreg_drop"])]),
            "paper_unreg_drop_60": join_and([f"{d:.1f}" for d in p60["unreg_drop"]]),
            "unreg_drop_span": _span(noisy["unreg_drop"], 1, " points"),
            "paper_unreg_drop_span": _span(pnoisy["unreg_drop"], 1, " points"),
            "lead": _span(best["mgs_margin"], 2, " points") if len(best) else "none",
            "mgs_drop_max": f"{v['mgs_drop'].max():.1f}",
            "paper_mgs_drop_max": f"{pv['mgs_drop'].max():.1f}",
            "paper_mgs_best": f"{len(pbest)} of {len(pv)}",
            "paper_lead": _span(pbest["mgs_margin"], 1, " points") if len(pbest) else "none",
            "paper_exceptions": join_and([
                f"at {_pct(r.label_noise)} of {LABELS.get(r.table, r.table)}, where {r.best} "
                f"has {r.best_final:.1f} and MGS {r.mgs_final:.1f}" for r in pnot.itertuples()])
            or "nowhere"}  # fmt: skip


def figure3_texts(c: pd.DataFrame) -> dict[str, str]:
    """The Figure 3 stand-in's correlations (``growth_correlations``)."""
    label = lambda r: LABELS.get(r.table, r.table)
    signs = {float(np.sign(r)) for r in c["rho"]}
    where = "both tables" if len(c) == 2 else join_and([label(r) for r in c.itertuples()])
    within = [x for w in c["within"] for x in w.values() if not np.isnan(x)]
    return {**{f"{n}_rho": NOT_MEASURED for n in LABELS},
            **{f"{r.table}_rho": signed(r.rho) for r in c.itertuples()},
            "rho_sign": f"positive in {where}, against the paper's negative sign"
            if signs == {1.0} else f"negative in {where}, the paper's sign"
            if signs == {-1.0} else "of mixed sign, where the paper's is negative",
            "rho_noise": join_and([f"{signed(r.rho_noise)} ({label(r)})" for r in c.itertuples()]),
            "within_negative": f"{sum(x < 0 for x in within)} of {len(within)}",
            "within_mean": join_and([f"{signed(np.nanmean(list(r.within.values())))} ({label(r)})"
                                  for r in c.itertuples()]),
            "slower": join_and([f"{r.slower} of {r.regularised} ({label(r)})"
                             for r in c.itertuples()])}  # fmt: skip


def bench_texts(b: pd.DataFrame | None, m: pd.DataFrame | None) -> dict[str, str]:
    """The test bench's verdicts (``bench_verdicts``, ``monotonicity``);
    "not measured" without a bench."""
    if b is None or m is None or b.empty:
        return {k: NOT_MEASURED for k in ("tb_mgs_best", "tb_margin_low", "tb_margin_high",
                "tb_unreg_drop_low", "tb_unreg_drop_high", "tb_falling", "tb_not_falling")} | {
                "tb_panels": "(no test bench was run)"}  # fmt: skip
    falling = [k for k, r in m.iterrows() if not r.rises and not r.blank]
    others = []
    for method, r in m.drop(index=falling).iterrows():
        parts = [f"{method}'s final rises with the noise " + "; ".join(
            f"at {n:,} samples from {100 * ps[0]:.0f} to {100 * ps[-1]:.0f} % noise "
            f"({' → '.join(f'{a:.1f}' for a in fs)} %)" for n, ps, fs in r.rises)]  # fmt: skip
        parts = parts if r.rises else []
        if r.blank:
            parts.append("every run diverged at " + join_and([f"{n:,} samples, {_pct(p)}"
                                                          for n, p in r.blank]))  # fmt: skip
        others.append("; ".join(parts))
    return dict(
        tb_mgs_best=f"{int(b['mgs_best'].sum())} of {int(b['scenarios'].sum())}",
        tb_margin_low=f"{signed(b['mgs_margin'].iloc[0], 1)} points at {_pct(b.index[0])}",
        tb_margin_high=f"{signed(b['mgs_margin'].iloc[-1], 1)} at {_pct(b.index[-1])}",
        tb_unreg_drop_low=f"{b['unreg_drop'].iloc[0]:.1f}",
        tb_unreg_drop_high=f"{b['unreg_drop'].iloc[-1]:.1f}",
        tb_falling=join_and(falling) or "no method",
        tb_panels=("in the panels of " + (join_and(falling) or "none") if others
                   else "in every panel"),
        tb_not_falling=". ".join(others) or "none",
    )  # fmt: skip


def run_texts(d: pd.DataFrame, epochs: Sequence[int], tb_epochs: Sequence[int]) -> dict[str, str]:
    """Runs per table entry (from ``divergence``) and the epochs the tables and
    the bench trained."""
    totals = d.loc[d["source"] != "bench", "total"]
    fmt = lambda e: join_and([str(int(x)) for x in sorted(set(e))]) or NOT_MEASURED
    return {"runs": _span(totals, 0) if len(totals) else NOT_MEASURED,
            "epochs": fmt(epochs), "tb_epochs": fmt(tb_epochs)}  # fmt: skip


def trace_texts(ends: pd.DataFrame | None) -> dict[str, str]:
    """The exact penalty against its estimate (``trace_check_ends``)."""
    if ends is None or len(ends) < 2:
        return {"trace_acc_gap": NOT_MEASURED, "trace_ratio": NOT_MEASURED,
                "trace_sentence": "The results hold no trace check, so the two penalties are "
                "not compared here."}  # fmt: skip
    tr, acc = ends.iloc[:, 0], ends.iloc[:, 1]
    gap, ratio = f"{acc.max() - acc.min():.1f}", f"{tr.max() / tr.min():.2f}"
    return {"trace_acc_gap": gap, "trace_ratio": ratio,
            "trace_sentence": f"The two runs end {gap} points apart in test accuracy, their "
            f"traces within a factor {ratio} of each other."}  # fmt: skip


def cost_texts(cost: pd.DataFrame | None) -> dict[str, str]:
    """A penalised step's cost (``penalty_cost``) per engine, and ``cost``, the
    phrase that follows "the book's training benchmark"."""
    c = cost["cost in plain steps"].dropna() if cost is not None else pd.Series(dtype=float)
    out, parts, runs = {}, [], []
    for engine, where in (("sequential", "in the sequential loop"),
                          ("batched", "in the batched engine")):  # fmt: skip
        e = c[c.index.get_level_values("engine") == engine] if len(c) else c
        out[f"cost_{engine}"] = _span(e) if len(e) else NOT_MEASURED
        ns = e.index.get_level_values("runs") if len(e) else []
        runs.append(join_and([str(int(r)) for r in ns]))
        parts.append(f"{_span(e)} plain steps {where}" if len(e) else f"is not measured {where}")
    if not len(c):
        return {**out, "cost": "has no LeNet-5 rows with and without the penalty, so it does "
                "not measure this cost"}  # fmt: skip
    runs = [f"{r} run" + ("" if r == "1" else "s") if r else "" for r in runs]
    said = [f"{p} ({r})" if r else p for p, r in zip(parts, runs)]
    if runs[0] == runs[1]:
        said = [parts[0], f"{parts[1]} ({runs[0]} each)"]
    return {**out, "cost": "measures a LeNet-5 step with it at " + join_and(said)}


def _count(frame: pd.DataFrame) -> str:
    return f"{int(frame['diverged'].sum())} of {int(frame['total'].sum())}"


_NO_DIVERGENCE = {
    "div_method": "no method", "div_levels": "no noise level",
    "div_sentence": "No run diverged, in the tables or on the test bench.",
    "div_paragraph": "No run diverged, in the tables or on the test bench: there is nothing "
    "to diagnose here.",
    "div_summary": "No run diverged, in the tables or on the test bench.",
    "div_why": "no run diverged", "div_why_sentence": "No run diverged, so no divergence "
    "needs explaining.",
}  # fmt: skip


def _bench_parts(b: pd.DataFrame) -> tuple[str, str]:
    """The diverging method's bench runs: (the detailed phrase, the short one)."""
    if not len(b):
        return "", ""
    if not b["diverged"].any():
        none = f"none of its {int(b['total'].sum())} runs at those levels on the test bench"
        return none, none
    start = b.loc[b["diverged"] > 0, "n_train"].min()
    sizes = join_and([f"{_count(g)} at {int(n):,} samples" for n, g in b.groupby("n_train")])
    after = f"{_count(b[b['n_train'] >= start])} at {int(start):,} samples and more"
    return f"on the test bench in {sizes}, that is {after}", f"{after} on the test bench"


def divergence_texts(d: pd.DataFrame, runs: pd.DataFrame) -> dict[str, str]:
    """Which method diverged, where, and what the records say (from ``divergence``
    and ``diverged_runs``); the sentences about divergence are chosen here, a
    neutral one when no run diverged."""
    p = pd.concat([paper.frame(n).assign(table=n) for n in paper.TABLES]).reset_index()
    w = p.loc[p["sd"].idxmax()]
    out = {"paper_max_sd": f"{w['method']}'s {w['final']:.1f} ± {w['sd']:.1f} at "
           f"{_pct(w['label_noise'])} of {LABELS[w['table']]}"}  # fmt: skip
    if not d["diverged"].any():
        return {**out, **_NO_DIVERGENCE}
    method = d.groupby("method")["diverged"].sum().idxmax()
    mine = d[d["method"] == method]
    levels = _levels(sorted(mine.loc[mine["diverged"] > 0, "label_noise"].unique()))
    hit = mine[mine["label_noise"].isin(mine.loc[mine["diverged"] > 0, "label_noise"])]
    tables, bench = hit[hit["source"] != "bench"], hit[hit["source"] == "bench"]
    long, short = _bench_parts(bench.sort_values("n_train"))
    rest = int(d.drop(hit.index)["diverged"].sum())
    detail = join_and([f"{_count(g)} in {LABELS.get(s, s)}"
                    for s, g in tables.groupby("source", sort=False)])  # fmt: skip
    in_tables = [f"{_count(tables)} of its table runs"] if len(tables) else []
    loss = runs["train_loss"]
    spread = loss.max() / max(loss.min(), 1e-12) if len(runs) else 1.0
    why = ("we don't know yet: the records keep the loss, tr K and the test accuracy once an "
           "epoch, not the penalty or its gradient" + (
               ", and the last records before the divergences share no common state (their "
               f"training loss spans a factor {spread:.0f})" if spread > 10 else ""))  # fmt: skip
    records = (f" The diverged runs stop after epoch {_span(runs['epoch'], 0)} of "
               f"{_span(runs['epochs'], 0)}, their last records showing a training loss of "
               f"{_span(loss, 2)} and a test accuracy of {_span(runs['test_acc'], 0, ' %')}."
               if len(runs) else "")  # fmt: skip
    others = "no other run diverged" if rest == 0 else f"{rest} other runs diverged"
    brief = join_and([f"{_count(tables)} in the tables"] * bool(in_tables) + [short] * bool(short))
    first = join_and([*(f"{c} ({detail})" for c in in_tables), *([long] if long else [])])
    return {**out, "div_method": method, "div_levels": levels, "div_why": why,
            "div_sentence": f"{method} diverged at {levels} noise in "
            f"{join_and([*in_tables, *([short] if short else [])])}.",
            "div_paragraph": f"{method} diverged at {levels} noise in {first}; {others}."
            f"{records} Why? {why[0].upper()}{why[1:]}.",
            "div_summary": f"{method} diverges at {levels} noise ({brief}); why, {why}.",
            "div_why_sentence": f"Why {method} diverges, {why}."}  # fmt: skip
