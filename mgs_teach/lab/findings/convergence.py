r"""What the regression chapter found in the paper's units: who converges, MGS's rank, and
whether the step-size limit :math:`\eta S < 2` explains it.

:func:`findings` reads the regression ``cpu`` plan's results (targets in pixels of a 96-pixel
image), judges every run by :func:`mgs_teach.lab.stability.run_verdicts`, and, from the
pilot's onset runs (a record at every step), whether the runs that diverged passed
:math:`\eta S = 2` first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from mgs_teach import paper
from mgs_teach.lab.findings import join_and, number, ordinal
from mgs_teach.lab.findings.regression import NAMES, NETWORK
from mgs_teach.lab.stability import RUN_KEYS, STABILITY_LIMIT, eta_sharpness, run_verdicts

__all__ = ["Cell", "ConvergenceFindings", "Onset", "cells", "findings", "onset_checks"]


class Cell(NamedTuple):
    """One method at one noise scale of one table: its runs' verdicts (MSE in px²)."""

    table: str
    noise: float
    method: str
    runs: int
    converged: int
    diverged: int
    learned: int  # runs whose final MSE beat the average face's
    final: float  # mean final MSE of the converged runs (NaN if none)
    sd: float
    lowest: float  # mean lowest MSE of the converged runs
    eta_s: float  # the largest eta S recorded in any of its runs


def cells(runs: pd.DataFrame, table: str, unit: float, baselines: Mapping[float, float]
          ) -> list[Cell]:  # fmt: skip
    """Every (noise, method) of one table's histories, judged run by run.

    ``baselines``: ``{noise: the mean-keypoint predictor's test MSE}`` (px²), the ceiling of
    :func:`mgs_teach.lab.stability.run_verdicts`.
    """
    out = []
    for noise, v in run_verdicts(runs, unit, baselines).groupby("target_noise"):
        for reg, r in v.groupby("regulariser", sort=False):
            ok = r[r["converged"]]
            out.append(Cell(table, float(noise), NAMES.get(reg, reg), len(r),
                            int(r["converged"].sum()), int(r["diverged"].sum()),
                            int(r["learned"].sum()),
                            float(ok["final"].mean()) if len(ok) else np.nan,
                            float(ok["final"].std(ddof=1)) if len(ok) > 1 else np.nan,
                            float(ok["lowest"].mean()) if len(ok) else np.nan,
                            float(r["eta_s_max"].max())))  # fmt: skip
    return out


def _rank(entry: list[Cell], method: str = "MGS") -> int:
    """1 + the methods that converged in more runs, or as many with a lower final MSE."""
    key = {c.method: (-c.converged, c.final if c.converged else np.inf) for c in entry}
    return 1 + sum(k < key[method] for k in key.values())


class Onset(NamedTuple):
    """One onset run (a record at every step): where eta S first passed 2, and divergence."""

    table: str
    method: str
    lr: float
    noise: float
    diverged: bool
    crossed_at: int  # the first step with eta S > 2, or -1
    eta_s_max: float


def onset_checks(onset: pd.DataFrame, n_outputs: int = 30) -> list[Onset]:
    """Each onset run's first step where the lower bound of :math:`\\eta S` passes 2, and
    whether it diverged.

    ``onset``: histories (``model, learning_rate, target_noise, regulariser, strength, seed,
    step, lr, lambda_max, batch_size, status``), one record per step.
    """
    out = []
    tables = {"lenet5": "table2", "fcn-6x300": "fcn_regression"}
    for key, g in onset.groupby(list(RUN_KEYS), sort=False):
        g = g.sort_values("step")
        eta_s = eta_sharpness(g["lr"], g["lambda_max"], int(g["batch_size"].iloc[0]), n_outputs)
        past = np.flatnonzero(eta_s > STABILITY_LIMIT)
        out.append(Onset(tables.get(key[0], key[0]), NAMES.get(key[3], key[3]), float(key[1]),
                         float(key[2]), bool(g["status"].iloc[-1] != "finished"),
                         int(g["step"].iloc[past[0]]) if len(past) else -1,
                         float(np.nanmax(eta_s))))  # fmt: skip
    return out


@dataclass(frozen=True)
class ConvergenceFindings:
    """What :func:`findings` computed; :meth:`texts` says it, names to strings."""

    plan: str
    learning_rate: float
    cells: tuple[Cell, ...]
    onsets: tuple[Onset, ...]
    baselines: tuple[tuple[float, float], ...]

    def frame(self) -> pd.DataFrame:
        """The table beside the paper's: one row per table, noise and source, one column per
        method: "final ± sd (lowest), k/n" with k of n runs converged (ours), or
        "final ± sd (lowest)" (the paper's)."""
        rows = {}
        for c in self.cells:
            row = rows.setdefault((NETWORK[c.table], f"{c.noise:g}", "this book"), {})
            mse = f"{c.final:.1f}" + (f" ± {c.sd:.1f}" if c.sd == c.sd else "")
            mse = mse + f" ({c.lowest:.1f}), " if c.converged else ""
            row[c.method] = mse + f"{c.converged}/{c.runs}"
            theirs = paper.REGRESSION_TABLES[c.table].get(c.noise, {}).get(c.method)
            if theirs is not None:
                f, s, low = theirs
                rows.setdefault((NETWORK[c.table], f"{c.noise:g}", "paper"), {})[c.method] = (
                    f"{f:.1f} ± {s:.1f} ({low:.1f})")  # fmt: skip
        frame = pd.DataFrame.from_dict(rows, orient="index")[list(paper.METHODS)]
        frame.index.names = ["network", "noise", ""]
        return frame

    def entries(self) -> dict[tuple[str, float], list[Cell]]:
        """The cells grouped by (table, noise)."""
        out: dict[tuple[str, float], list[Cell]] = {}
        for c in self.cells:
            out.setdefault((c.table, c.noise), []).append(c)
        return out

    def texts(self) -> dict[str, str]:
        """Names -> the glued strings of the chapter."""
        return {"plan": self.plan, "lr": f"{self.learning_rate:g}",
                "baseline": join_and(sorted({f"{b:.1f}" for _, b in self.baselines})),
                **self._convergence_texts(), **self._stability_texts()}  # fmt: skip

    def _convergence_texts(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for table in dict.fromkeys(c.table for c in self.cells):
            mine = [c for c in self.cells if c.table == table]
            count = {
                m: (
                    sum(c.converged for c in mine if c.method == m),
                    sum(c.runs for c in mine if c.method == m),
                )
                for m in paper.METHODS
            }
            order = sorted(count, key=lambda m: -count[m][0])
            out[f"converge_{table}"] = join_and(f"{m} {k} of {n}" for m, (k, n) in
                                               ((m, count[m]) for m in order))  # fmt: skip
            mgs = [c for c in mine if c.method == "MGS"]
            out[f"mgs_learned_{table}"] = (f"{sum(c.learned for c in mgs)} of "
                                           f"{sum(c.runs for c in mgs)}")  # fmt: skip
            noisy = [c for c in mine if c.method == "Unregularised" and c.noise > 0]
            out[f"unreg_{table}"] = (f"{sum(c.converged for c in noisy)} of "
                                     f"{sum(c.runs for c in noisy)}")  # fmt: skip
        ranks = [_rank(e) for e in self.entries().values()]
        k = len(ranks)
        first = [m for e in self.entries().values() for m in paper.METHODS
                 if any(c.method == m for c in e) and _rank(e, m) == 1]  # fmt: skip
        out["first_methods"] = join_and(
            f"{m} at {first.count(m)} of {k} entries"
            for m in sorted(set(first), key=first.count, reverse=True)
        )
        out["mgs_rank"] = ", ".join(f"{ordinal(r)} at {ranks.count(r)} of {k} entries"
                                    for r in sorted(set(ranks)))  # fmt: skip
        out["mgs_first"] = f"{ranks.count(1)} of {k}"
        out.update(self._regime_texts())
        return out

    def _regime_texts(self) -> dict[str, str]:
        """The issue's test of the paper's regime: under target noise the unregularised network
        fails to converge, or its final MSE is at least 20 % above its lowest or above the
        best method's."""
        failing, total = [], 0
        for (table, noise), entry in self.entries().items():
            unreg = next((c for c in entry if c.method == "Unregularised"), None)
            if noise == 0 or unreg is None:
                continue
            total += 1
            best = min((c.final for c in entry if c.converged), default=np.inf)
            if (unreg.converged < unreg.runs or unreg.final >= 1.2 * unreg.lowest
                    or unreg.final > best):  # fmt: skip
                failing.append(f"{NETWORK[table]} at noise {noise:g}")
        held = len(failing) == total > 0
        return {"regime": "holds" if held else "does not hold",
                "regime_entries": f"{len(failing)} of {total}",
                "regime_where": join_and(failing) if failing else "no entry"}  # fmt: skip

    def _stability_texts(self) -> dict[str, str]:
        div = [o for o in self.onsets if o.diverged]
        crossed = [o for o in div if o.crossed_at >= 0]
        calm = [o for o in self.onsets if not o.diverged]
        calm_past = [o for o in calm if o.crossed_at >= 0]
        conv = [c.eta_s for c in self.cells if c.converged == c.runs and c.eta_s == c.eta_s]
        holds = bool(div) and len(crossed) == len(div)
        return {
            "onset_runs": f"{len(self.onsets)}", "onset_diverged": f"{len(div)}",
            "onset_crossed": f"{len(crossed)} of {len(div)}",
            "onset_step": f"{int(np.median([o.crossed_at for o in crossed]))}" if crossed
            else "n/a",
            "onset_calm_past": f"{len(calm_past)} of {len(calm)}",
            "converged_eta_s": number(max(conv)) if conv else "n/a",
            "stability": "holds" if holds and not calm_past else
            "holds for the runs that diverged, but some runs passed the limit and did not "
            "diverge" if holds else "does not hold",
        }  # fmt: skip


def findings(results: Mapping[str, Any], onset: pd.DataFrame | None,
             baselines: Mapping[float, float]) -> ConvergenceFindings:  # fmt: skip
    """The findings of the regression ``cpu`` plan's results.

    Parameters
    ----------
    results : mapping
        As :func:`mgs_teach.lab.summaries.load_mnist_results` returns it.
    onset : pandas.DataFrame or None
        The pilot's onset histories (:func:`mgs_teach.lab.pilots.load_pilot`).
    baselines : mapping
        ``{noise: mean-keypoint test MSE}`` (px²), :func:`mgs_teach.lab.stability.baselines`.
    """
    plan = results["plan"]
    found = [c for t in plan.tables for c in cells(results[t.name], t.name, plan.mse_unit,
                                                   baselines)]  # fmt: skip
    return ConvergenceFindings(
        plan=plan.name, learning_rate=plan.learning_rate, cells=tuple(found),
        onsets=tuple(onset_checks(onset)) if onset is not None else (),
        baselines=tuple(sorted((float(k), float(v)) for k, v in baselines.items())))  # fmt: skip
