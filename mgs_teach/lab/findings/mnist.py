"""What the MNIST chapter found, from its loaded results and the paper's numbers.

:func:`mnist_findings` returns a :class:`MnistFindings`: MGS's rank and the winner at every
entry of Tables 1 and D.2, the Figure 3 stand-in's Spearman correlations, whether each
method's accuracy falls with the label noise on the test bench, and which runs diverged.
:meth:`MnistFindings.texts` are the chapter's glued phrases, made by
:mod:`~mgs_teach.lab.findings.mnist_texts`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mgs_teach import paper
from mgs_teach.lab.aggregate import summarise
from mgs_teach.lab.findings import spearman
from mgs_teach.lab.findings.mnist_texts import (
    LABELS,
    NAMES,
    bench_texts,
    cost_texts,
    divergence_texts,
    figure3_texts,
    run_texts,
    table_texts,
    trace_texts,
)

__all__ = ["LABELS", "NAMES", "MnistFindings", "bench_verdicts", "divergence", "diverged_runs",
           "entries", "growth", "growth_correlations", "mnist_findings", "monotonicity",
           "penalty_cost", "rank_verdicts", "trace_check_ends"]  # fmt: skip


def entries(runs: pd.DataFrame, by: Sequence[str] = ("label_noise", "regulariser")) -> pd.DataFrame:
    """Histories aggregated the paper's way (:func:`~mgs_teach.lab.aggregate.summarise`):
    one row per group, ``by``, ``final, sd, max`` in percent, ``runs, diverged, method``."""
    table = summarise(runs, list(by))
    table[["final", "sd", "max"]] *= 100
    return table.assign(method=table["regulariser"].map(NAMES))


def rank_verdicts(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """MGS's rank, the winner and the gaps at every entry of the tables.

    ``tables`` maps a name to rows ``label_noise, method, final, sd, max`` in percent, one
    per noise level and method (:func:`entries`, :func:`mgs_teach.paper.frame`). MGS's rank
    is 1 + the number of methods with a strictly higher final (ties share a rank); a NaN
    final (every run diverged) ranks after every finite one.

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
            g = group.sort_values("final", ascending=False, na_position="last", kind="stable")
            g = g.set_index("method")
            order, other, mine = list(g.index), g.drop("MGS"), g.loc["MGS", "final"]
            drop, finals = g["max"] - g["final"], g["final"]
            rank = 1 + int((finals > mine).sum() if mine == mine else finals.notna().sum())
            rows.append(dict(table=name, label_noise=p, mgs_rank=rank,
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
        (regularised entries whose tr K grows slower than without regularisation, at the noise
        levels where some unregularised run finished).
    """
    rows = []
    for name, table in tables.items():
        t = table.set_index(["label_noise", "regulariser"]).assign(growth=growth(runs[name]))
        t = t.reset_index()
        within = {p: spearman(g["growth"], g["final"]) for p, g in t.groupby("label_noise")}
        none = t[t["regulariser"] == "none"].set_index("label_noise")["growth"].dropna()
        reg = t[(t["regulariser"] != "none") & t["growth"].notna()]
        reg = reg[reg["label_noise"].isin(none.index)]  # levels without a finished "none" out
        slower = int((reg["growth"].to_numpy() < none.loc[reg["label_noise"]].to_numpy()).sum())
        rows.append(dict(table=name, rho=spearman(t["growth"], t["final"]),
                         rho_noise=spearman(t["growth"], t["label_noise"]), within=within,
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
    training benchmark's plain steps per second over its penalised ones (only where it has
    both rows)."""
    cols = ["engine", "runs", "penalty", "steps_per_s_per_run"]
    frame = pd.DataFrame([r for r in rows if r["model"] == model], columns=cols)
    wide = frame.pivot_table(index=["engine", "runs"], columns="penalty",
                             values="steps_per_s_per_run")  # fmt: skip
    wide = wide.reindex(columns=["none", "mgs_trace"])
    cost = (wide["none"] / wide["mgs_trace"]).dropna()  # engines without both rows: out
    return cost.rename("cost in plain steps").to_frame()


@dataclasses.dataclass(frozen=True)
class MnistFindings:
    """What the chapter found: small tables, each named after the function that makes it
    (``verdicts`` and ``paper_verdicts``: :func:`rank_verdicts` of the book's tables and
    the paper's; ``correlations``: :func:`growth_correlations`; ``bench``: :func:`bench_verdicts`,
    ``monotone``: :func:`monotonicity`, ``None`` without a test bench; ``diverged``:
    :func:`diverged_runs`; ``trace_ends``, ``cost``: optional; ``epochs``, ``tb_epochs``: the
    epochs the tables' and the bench's runs were planned for)."""

    verdicts: pd.DataFrame
    paper_verdicts: pd.DataFrame
    correlations: pd.DataFrame
    bench: pd.DataFrame | None
    monotone: pd.DataFrame | None
    divergence: pd.DataFrame
    diverged: pd.DataFrame
    trace_ends: pd.DataFrame | None = None
    cost: pd.DataFrame | None = None
    epochs: tuple[int, ...] = ()
    tb_epochs: tuple[int, ...] = ()

    def texts(self) -> dict[str, str]:
        """Name -> glued phrase (numbers, ranks, verdicts), for ``glue_all``: the same names
        whatever was run (:mod:`~mgs_teach.lab.findings.mnist_texts`)."""
        runs = run_texts(self.divergence, self.epochs, self.tb_epochs)
        return {**table_texts(self.verdicts, self.paper_verdicts, runs["runs"]),
                **figure3_texts(self.correlations), **bench_texts(self.bench, self.monotone),
                **divergence_texts(self.divergence, self.diverged), **runs,
                **trace_texts(self.trace_ends), **cost_texts(self.cost)}  # fmt: skip


def mnist_findings(
    results: Mapping[str, Any],
    bench: Mapping[str, Any] | None = None,
    cost_rows: Sequence[Mapping[str, Any]] | None = None,
) -> MnistFindings:
    """The chapter's findings from ``results`` (as :func:`mgs_teach.lab.summaries.
    load_mnist_results` returns: each table's histories under its name, ``"table1"``,
    ``"fcn_table"``, and optionally ``"trace_check"``), ``bench`` (as :func:`~mgs_teach.lab.
    summaries.load_part_results` returns) and ``cost_rows`` (the training benchmark's
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
        epochs=tuple(sorted({int(e) for h in histories for e in h["epochs"].unique()})),
        tb_epochs=tuple(sorted({int(e) for e in bench["testbench"]["epochs"].unique()}))
        if bench else (),
    )  # fmt: skip
