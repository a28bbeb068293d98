"""What the MNIST chapter found, from its loaded results and the paper's numbers.

:func:`mnist_findings` returns a :class:`MnistFindings`: MGS's rank and the winner at every
entry of Tables 1 and D.2, the Figure 3 stand-in's Spearman correlations, whether each
method's accuracy falls with the label noise on the test bench, and which runs diverged.
:meth:`MnistFindings.texts` are the chapter's glued phrases.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mgs_teach import paper
from mgs_teach.lab.aggregate import summarise
from mgs_teach.lab.findings import ordinal
from mgs_teach.lab.plans import TABLE_METHODS

__all__ = ["LABELS", "NAMES", "MnistFindings", "bench_verdicts", "divergence", "diverged_runs",
           "entries", "growth", "growth_correlations", "mnist_findings", "monotonicity",
           "penalty_cost", "rank_verdicts", "trace_check_ends"]  # fmt: skip

#: The paper's column name of each regulariser (``"param_gradient" -> "Loss grad."``).
NAMES = {r: m for m, r in TABLE_METHODS.items()}
#: The paper's name of each table.
LABELS = {"table1": "Table 1", "fcn_table": "Table D.2"}


def entries(runs: pd.DataFrame, by: Sequence[str] = ("label_noise", "regulariser")) -> pd.DataFrame:
    """Histories aggregated the paper's way (:func:`~mgs_teach.lab.aggregate.summarise`):
    one row per group, ``by``, ``final, sd, max`` in percent, ``runs, diverged, method``."""
    table = summarise(runs, list(by))
    table[["final", "sd", "max"]] *= 100
    return table.assign(method=table["regulariser"].map(NAMES))


def rank_verdicts(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """MGS's rank, the winner and the gaps at every entry of the tables.

    ``tables`` maps a name to rows ``label_noise, method, final, sd, max`` in percent, one
    per noise level and method (:func:`entries`, :func:`mgs_teach.paper.frame`); a NaN final
    (every run diverged) ranks last.

    Returns
    -------
    pandas.DataFrame
        One row per table and noise level: ``table, label_noise, mgs_rank, methods, best,
        best_final, mgs_final, mgs_sd, rival_sd`` (the sd of the best method other than MGS),
        ``mgs_margin`` (MGS minus the best other method), ``unreg_drop, mgs_drop`` (max minus
        final).
    """
    rows = []
    for name, table in tables.items():
        for p, group in table.groupby("label_noise"):
            g = group.sort_values("final", ascending=False, na_position="last").set_index("method")
            order, other = list(g.index), g.drop("MGS")
            drop = g["max"] - g["final"]
            rows.append(dict(table=name, label_noise=p, mgs_rank=order.index("MGS") + 1,
                             methods=len(order), best=order[0], best_final=g["final"].iloc[0],
                             mgs_final=g.loc["MGS", "final"], mgs_sd=g.loc["MGS", "sd"],
                             rival_sd=other["sd"].iloc[0],
                             mgs_margin=g.loc["MGS", "final"] - other["final"].max(),
                             unreg_drop=drop["Unregularised"], mgs_drop=drop["MGS"]))  # fmt: skip
    return pd.DataFrame(rows)


def growth(runs: pd.DataFrame) -> pd.Series:
    """Growth of tr K per ``(label_noise, regulariser)``: the log of the last over the first
    record of the run-averaged curve of the finished runs."""
    runs = runs[runs["status"] == "finished"]
    curves = runs.groupby(["label_noise", "regulariser", "step"])["trace"].mean().reset_index()
    by = curves.groupby(["label_noise", "regulariser"])["trace"]
    return by.agg(lambda a: float(np.log(a.iloc[-1] / a.iloc[0])))


def _spearman(a: pd.Series, b: pd.Series) -> float:
    ok = a.notna() & b.notna()
    return float(a[ok].rank().corr(b[ok].rank())) if ok.sum() > 2 else float("nan")


def growth_correlations(
    runs: Mapping[str, pd.DataFrame], tables: Mapping[str, pd.DataFrame]
) -> pd.DataFrame:
    """The Figure 3 stand-in: does slower growth of tr K go with higher final accuracy?

    ``runs`` maps a table's name to its histories (with ``trace``), ``tables`` to
    :func:`entries` of them.

    Returns
    -------
    pandas.DataFrame
        One row per table: ``rho`` (Spearman's correlation of growth and final over all
        entries), ``rho_noise`` (of growth and noise level), ``within`` (a dict: noise level
        -> the correlation over the methods at that level), ``slower`` of ``regularised``
        (regularised entries whose tr K grows slower than without regularisation).
    """
    rows = []
    for name, table in tables.items():
        t = table.set_index(["label_noise", "regulariser"]).assign(growth=growth(runs[name]))
        t = t.reset_index()
        within = {p: _spearman(g["growth"], g["final"]) for p, g in t.groupby("label_noise")}
        none = t[t["regulariser"] == "none"].set_index("label_noise")["growth"]
        reg = t[(t["regulariser"] != "none") & t["growth"].notna()]
        slower = int((reg["growth"].to_numpy() < none.loc[reg["label_noise"]].to_numpy()).sum())
        rows.append(dict(table=name, rho=_spearman(t["growth"], t["final"]),
                         rho_noise=_spearman(t["growth"], t["label_noise"]), within=within,
                         slower=slower, regularised=len(reg)))  # fmt: skip
    return pd.DataFrame(rows)


def bench_verdicts(table: pd.DataFrame) -> pd.DataFrame:
    """The test bench per noise level, from :func:`entries` by ``n_train, label_noise,
    regulariser``: ``mgs_best`` of ``scenarios`` (where MGS has the best final), MGS's mean
    margin over the best other method, and the unregularised network's mean max - final."""
    wide = table.pivot_table(index=["n_train", "label_noise"], columns="method", values="final",
                             dropna=False)  # fmt: skip
    unreg = table[table["method"] == "Unregularised"].set_index(["n_train", "label_noise"])
    frame = pd.DataFrame({"mgs_best": wide.idxmax(axis=1) == "MGS",
                          "mgs_margin": wide["MGS"] - wide.drop(columns="MGS").max(axis=1),
                          "unreg_drop": unreg["max"] - unreg["final"]})  # fmt: skip
    by = frame.groupby(level="label_noise")
    return pd.DataFrame({"mgs_best": by["mgs_best"].sum().astype(int), "scenarios": by.size(),
                         "mgs_margin": by["mgs_margin"].mean(),
                         "unreg_drop": by["unreg_drop"].mean()})  # fmt: skip


def monotonicity(table: pd.DataFrame) -> pd.DataFrame:
    """Does each method's final accuracy fall as the label noise grows, at every size?

    ``table`` is :func:`entries` by ``n_train, label_noise, regulariser``.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``method``: ``rises``, one ``(n_train, levels, finals)`` per stretch of
        noise levels along which the final rises (levels whose runs all diverged skipped),
        and ``blank``, the ``(n_train, noise)`` whose runs all diverged.
    """
    rows = {}
    for method, m in table.groupby("method", sort=False):
        rises: list[tuple] = []
        na = m[m["final"].isna()]
        blank = [(int(n), p) for n, p in zip(na["n_train"], na["label_noise"])]
        for n, g in m[m["final"].notna()].groupby("n_train"):
            g = g.sort_values("label_noise")
            ps, fs, i = list(g["label_noise"]), list(g["final"]), 0
            while i < len(fs) - 1:
                j = i
                while j < len(fs) - 1 and fs[j + 1] > fs[j]:
                    j += 1
                if j > i:
                    rises.append((int(n), ps[i : j + 1], fs[i : j + 1]))
                i = j + 1
        rows[method] = dict(rises=rises, blank=blank)
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("method")


def divergence(tables: Mapping[str, pd.DataFrame], bench: pd.DataFrame | None) -> pd.DataFrame:
    """Every group of runs and how many diverged: ``source`` (a table's name or ``"bench"``),
    ``method, label_noise, n_train, diverged, total``."""
    frames = [t.assign(source=name, n_train=np.nan) for name, t in tables.items()]
    out = pd.concat(frames + ([bench.assign(source="bench")] if bench is not None else []))
    out = out.assign(total=out["runs"] + out["diverged"]).reset_index(drop=True)
    return out[["source", "method", "label_noise", "n_train", "diverged", "total"]]


def diverged_runs(histories: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """The last record of every diverged run: ``model, n_train, label_noise, regulariser,
    seed, epochs`` (planned), ``epoch, train_loss, test_acc`` (in percent) ``, trace``."""
    rows = []
    for runs in histories:
        bad = runs[runs["status"] != "finished"]
        for _, run in bad.groupby([c for c in ("key", "seed") if c in bad], sort=False):
            rows.append(run.sort_values("step").iloc[-1])
    cols = ["model", "n_train", "label_noise", "regulariser", "seed", "epochs", "epoch",
            "train_loss", "test_acc", "trace"]  # fmt: skip
    out = pd.DataFrame(rows, columns=cols).reset_index(drop=True)
    return out.assign(test_acc=100 * out["test_acc"])


def trace_check_ends(check: pd.DataFrame, last: int = 3) -> pd.DataFrame:
    """The exact penalty against its Hutchinson estimate: per penalty, the mean of the last
    ``last`` records of ``trace`` (tr K) and ``test_acc`` (in percent)."""
    name = np.where(check["method"] == "hutchinson", "Hutchinson, 1 probe", "exact tr K")
    ends = check.assign(penalty=name).groupby("penalty")[["trace", "test_acc"]]
    ends = ends.agg(lambda a: a.tail(last).mean())
    return ends.assign(test_acc=100 * ends["test_acc"])


def penalty_cost(rows: Sequence[Mapping[str, Any]], model: str = "lenet5") -> pd.DataFrame:
    """An MGS-penalised step's cost in plain steps, per engine and number of runs: the
    training benchmark's plain steps per second over its penalised ones."""
    frame = pd.DataFrame([r for r in rows if r["model"] == model])
    wide = frame.pivot_table(index=["engine", "runs"], columns="penalty",
                             values="steps_per_s_per_run")  # fmt: skip
    return (wide["none"] / wide["mgs_trace"]).rename("cost in plain steps").to_frame()


@dataclasses.dataclass(frozen=True)
class MnistFindings:
    """What the chapter found: small tables, each named after the function that makes it
    (``verdicts`` and ``paper_verdicts``: :func:`rank_verdicts` of the book's tables and
    the paper's; ``correlations``: :func:`growth_correlations`; ``bench``: :func:`bench_verdicts`,
    ``monotone``: :func:`monotonicity`, ``None`` without a test bench; ``diverged``:
    :func:`diverged_runs`; ``trace_ends``, ``cost``: optional)."""

    verdicts: pd.DataFrame
    paper_verdicts: pd.DataFrame
    correlations: pd.DataFrame
    bench: pd.DataFrame | None
    monotone: pd.DataFrame | None
    divergence: pd.DataFrame
    diverged: pd.DataFrame
    trace_ends: pd.DataFrame | None = None
    cost: pd.DataFrame | None = None

    def texts(self) -> dict[str, str]:
        """Name -> glued phrase (numbers, ranks, verdicts), for ``glue_all``."""
        out = {**_table_texts(self.verdicts, self.paper_verdicts),
               **_figure3_texts(self.correlations), **_divergence_texts(self)}  # fmt: skip
        if self.bench is not None and self.monotone is not None:
            out.update(_bench_texts(self.bench, self.monotone))
        if self.trace_ends is not None:
            tr, acc = self.trace_ends.iloc[:, 0], self.trace_ends.iloc[:, 1]
            out.update(trace_acc_gap=f"{acc.max() - acc.min():.1f}",
                       trace_ratio=f"{tr.max() / tr.min():.2f}")  # fmt: skip
        if self.cost is not None:
            c = self.cost["cost in plain steps"]
            out.update(cost_sequential=_span(c["sequential"]), cost_batched=_span(c["batched"]))
        return out


def mnist_findings(
    results: Mapping[str, Any],
    bench: Mapping[str, Any] | None = None,
    cost_rows: Sequence[Mapping[str, Any]] | None = None,
) -> MnistFindings:
    """The chapter's findings from ``results`` (as :func:`mgs_teach.lab.summaries.
    load_mnist_results` returns: each table's histories under its name, ``"table1"``,
    ``"fcn_table"``, and optionally ``"trace_check"``), ``bench`` (as :func:`~mgs_teach.lab.
    summaries.load_testbench_results` returns) and ``cost_rows`` (the training benchmark's
    rows, ``results/bench/training-cpu.json``)."""
    names = [n for n in LABELS if n in results]
    tables = {n: entries(results[n]) for n in names}
    tb = entries(bench["testbench"], ("n_train", "label_noise", "regulariser")) if bench else None
    check, histories = results.get("trace_check"), [results[n] for n in names]
    return MnistFindings(
        verdicts=rank_verdicts(tables),
        paper_verdicts=rank_verdicts({n: paper.frame(n) for n in names}),
        correlations=growth_correlations({n: results[n] for n in names}, tables),
        bench=bench_verdicts(tb) if tb is not None else None,
        monotone=monotonicity(tb) if tb is not None else None,
        divergence=divergence(tables, tb),
        diverged=diverged_runs(histories + ([bench["testbench"]] if bench else [])),
        trace_ends=trace_check_ends(check) if check is not None else None,
        cost=penalty_cost(cost_rows) if cost_rows else None,
    )  # fmt: skip


def _pct(p: float) -> str:
    return f"{p:.0%}".replace("%", " %")


def _join(items: Sequence[str]) -> str:
    items = list(items)
    return " and ".join([", ".join(items[:-1]), items[-1]]) if len(items) > 1 else "".join(items)


def _levels(ps: Sequence[float]) -> str:
    """``[0.3, 0.6, 0.8]`` -> ``"30, 60 and 80 %"``."""
    return _join([f"{100 * p:.0f}" for p in ps]) + " %"


def _span(values: Any, digits: int = 1, unit: str = "") -> str:
    lo, hi = (f"{float(f(values)):.{digits}f}" for f in (np.nanmin, np.nanmax))
    return f"{lo}{unit}" if lo == hi else f"{lo} to {hi}{unit}"


def _signed(x: float, digits: int = 2) -> str:
    return f"{x:+.{digits}f}".replace("-", "−")


def _table_texts(v: pd.DataFrame, pv: pd.DataFrame) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, t in v.groupby("table", sort=False):
        n = int(t["methods"].iloc[0])
        out[f"{name}_ranks"] = _join([f"{ordinal(r)} of {n} at {_levels(g['label_noise'])}"
                                      for r, g in t.groupby("mgs_rank", sort=False)])  # fmt: skip
        lost, won = t[t["mgs_rank"] > 1], t[t["mgs_rank"] == 1]
        winners = [f"{w} at {_levels(g['label_noise'])}" for w, g in lost.groupby("best")]
        out[f"{name}_winners"] = _join(winners) or "none"
        out[f"{name}_behind"] = _span(-lost["mgs_margin"], 2, " points") if len(lost) else "0"
        out[f"{name}_lead"] = _span(won["mgs_margin"], 2, " points") if len(won) else "0"
    best, pbest, pnot = v[v["mgs_rank"] == 1], pv[pv["mgs_rank"] == 1], pv[pv["mgs_rank"] > 1]
    where = [("every noise level" if len(g) == (v["table"] == n).sum()
              else _levels(g["label_noise"])) + f" of {LABELS.get(n, n)}"
             for n, g in best.groupby("table", sort=False)]  # fmt: skip
    close = int((v["mgs_margin"].abs() < v[["mgs_sd", "rival_sd"]].max(axis=1)).sum())
    at60, p60 = v[v["label_noise"] == 0.6], pv[pv["label_noise"] == 0.6]
    noisy, pnoisy = v[v["label_noise"] > 0], pv[pv["label_noise"] > 0]
    return {**out, "entries": str(len(v)), "mgs_best": f"{len(best)} of {len(v)}",
            "mgs_best_where": _join(where) or "no entry", "close": f"{close} of {len(v)}",
            "unreg_drop_60": _join([f"{d:.1f} points ({LABELS.get(n, n)})"
                                    for n, d in zip(at60["table"], at60["unreg_drop"])]),
            "paper_unreg_drop_60": _join([f"{d:.1f}" for d in p60["unreg_drop"]]),
            "unreg_drop_span": _span(noisy["unreg_drop"], 1, " points"),
            "paper_unreg_drop_span": _span(pnoisy["unreg_drop"], 1, " points"),
            "lead": _span(best["mgs_margin"], 2, " points") if len(best) else "none",
            "mgs_drop_max": f"{v['mgs_drop'].max():.1f}",
            "paper_mgs_drop_max": f"{pv['mgs_drop'].max():.1f}",
            "paper_mgs_best": f"{len(pbest)} of {len(pv)}",
            "paper_lead": _span(pbest["mgs_margin"], 1, " points") if len(pbest) else "none",
            "paper_exceptions": _join([
                f"at {_pct(r.label_noise)} of {LABELS.get(r.table, r.table)}, where {r.best} "
                f"has {r.best_final:.1f} and MGS {r.mgs_final:.1f}" for r in pnot.itertuples()])
            or "nowhere"}  # fmt: skip


def _figure3_texts(c: pd.DataFrame) -> dict[str, str]:
    label = lambda r: LABELS.get(r.table, r.table)
    signs = {float(np.sign(r)) for r in c["rho"]}
    within = [x for w in c["within"] for x in w.values() if not np.isnan(x)]
    return {**{f"{r.table}_rho": _signed(r.rho) for r in c.itertuples()},
            "rho_sign": "positive in both tables, against the paper's negative sign"
            if signs == {1.0} else "negative in both tables, the paper's sign"
            if signs == {-1.0} else "of mixed sign, where the paper's is negative",
            "rho_noise": _join([f"{_signed(r.rho_noise)} ({label(r)})" for r in c.itertuples()]),
            "within_negative": f"{sum(x < 0 for x in within)} of {len(within)}",
            "within_mean": _join([f"{_signed(np.nanmean(list(r.within.values())))} ({label(r)})"
                                  for r in c.itertuples()]),
            "slower": _join([f"{r.slower} of {r.regularised} ({label(r)})"
                             for r in c.itertuples()])}  # fmt: skip


def _bench_texts(b: pd.DataFrame, m: pd.DataFrame) -> dict[str, str]:
    falling = [k for k, r in m.iterrows() if not r.rises and not r.blank]
    others = []
    for method, r in m.drop(index=falling).iterrows():
        parts = [f"{method}'s final rises with the noise " + "; ".join(
            f"at {n:,} samples from {100 * ps[0]:.0f} to {100 * ps[-1]:.0f} % noise "
            f"({' → '.join(f'{a:.1f}' for a in fs)} %)" for n, ps, fs in r.rises)]  # fmt: skip
        parts = parts if r.rises else []
        if r.blank:
            parts.append("every run diverged at " + _join([f"{n:,} samples, {_pct(p)}"
                                                          for n, p in r.blank]))  # fmt: skip
        others.append("; ".join(parts))
    return dict(
        tb_mgs_best=f"{int(b['mgs_best'].sum())} of {int(b['scenarios'].sum())}",
        tb_margin_low=f"{_signed(b['mgs_margin'].iloc[0], 1)} points at {_pct(b.index[0])}",
        tb_margin_high=f"{_signed(b['mgs_margin'].iloc[-1], 1)} at {_pct(b.index[-1])}",
        tb_unreg_drop_low=f"{b['unreg_drop'].iloc[0]:.1f}",
        tb_unreg_drop_high=f"{b['unreg_drop'].iloc[-1]:.1f}",
        tb_falling=_join(falling) or "no method",
        tb_panels="in the panels of " + (_join(falling) or "none") if others else "in every panel",
        tb_not_falling=". ".join(others) or "none",
    )  # fmt: skip


def _count(frame: pd.DataFrame) -> str:
    return f"{int(frame['diverged'].sum())} of {int(frame['total'].sum())}"


def _divergence_texts(f: MnistFindings) -> dict[str, str]:
    p = pd.concat([paper.frame(n).assign(table=n) for n in paper.TABLES]).reset_index()
    w = p.loc[p["sd"].idxmax()]
    out = {"paper_max_sd": f"{w['method']}'s {w['final']:.1f} ± {w['sd']:.1f} at "
           f"{_pct(w['label_noise'])} of {LABELS[w['table']]}"}  # fmt: skip
    d, runs = f.divergence, f.diverged
    if not d["diverged"].any():
        return {**out, "div_method": "no method", "div_why": "no run diverged"}
    method = d.groupby("method")["diverged"].sum().idxmax()
    mine = d[d["method"] == method]
    levels = sorted(mine.loc[mine["diverged"] > 0, "label_noise"].unique())
    hit = mine[mine["label_noise"].isin(levels)]
    tables = hit[hit["source"] != "bench"]
    bench = hit[hit["source"] == "bench"].sort_values("n_train")
    rest = int(d.drop(hit.index)["diverged"].sum())
    if len(bench):
        start = bench.loc[bench["diverged"] > 0, "n_train"].min()
        sizes = [f"{_count(g)} at {int(n):,} samples" for n, g in bench.groupby("n_train")]
        after = _count(bench[bench["n_train"] >= start])
        out.update(div_bench=_count(bench), div_bench_sizes=_join(sizes),
                   div_bench_from=f"{after} at {int(start):,} samples and more")  # fmt: skip
    loss = runs["train_loss"]
    spread = loss.max() / max(loss.min(), 1e-12)
    return {**out, "div_method": method, "div_levels": _levels(levels),
            "div_tables": _count(tables),
            "div_tables_detail": _join([f"{_count(g)} in {LABELS.get(s, s)}"
                                        for s, g in tables.groupby("source", sort=False)]),
            "div_others": "no other run diverged" if rest == 0 else f"{rest} other runs diverged",
            "div_when": f"after epoch {_span(runs['epoch'], 0)} of {_span(runs['epochs'], 0)}",
            "div_last_loss": _span(loss, 2), "div_last_acc": _span(runs["test_acc"], 0, " %"),
            "div_why": "we don't know yet: the records keep the loss, tr K and the test accuracy "
            "once an epoch, not the penalty or its gradient" + (
                ", and the last records before the divergences share no common state (their "
                f"training loss spans a factor {spread:.0f})" if spread > 10 else "")}  # fmt: skip
