"""What the regression chapter found: MGS's rank, the regime the runs trained in, the claim.

:func:`findings` reads a regression command's results beside the paper's Tables 2 and D.2
(:data:`mgs_teach.paper.REGRESSION_TABLES`): MGS's rank at every entry, whether any method
overfits, the tuner's choices, and Section 6.2's claim tested by one rule on both; errors in
squared pixels of a 96-pixel image."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from mgs_teach import paper
from mgs_teach.lab.aggregate import summarise
from mgs_teach.lab.findings import number, ordinal
from mgs_teach.lab.plans import TABLE_METHODS
from mgs_teach.lab.specs import FacesSpec

__all__ = ["LABEL", "NAMES", "NETWORK", "PAPER_SATISFACTORY", "RegressionFindings", "findings",
           "noise_floor", "our_table", "rank_entries", "satisfactory", "curve_checks",
           "tuning_choices"]  # fmt: skip

#: Regulariser -> the paper's column name (``"mgs_trace"`` -> ``"MGS"``).
NAMES = {r: m for m, r in TABLE_METHODS.items()}
#: The book's names of the paper's two regression tables, and their networks.
LABEL = {"table2": "Table 2", "fcn_regression": "Table D.2 (regression)"}
NETWORK = {"table2": "LeNet-5", "fcn_regression": "FCN 6 × 300"}
#: Section 6.2: "only Dropout and MGS were actually able to converge to a satisfactory
#: performance level. However, when results are compared for a FCN architecture [...]
#: Dropout falls into the same category as the other methods while MGS performance remains
#: high." The methods it calls satisfactory, per table.
PAPER_SATISFACTORY = {"table2": ("Dropout", "MGS"), "fcn_regression": ("MGS",)}


def our_table(runs: pd.DataFrame, unit: float = FacesSpec.PIXEL_MSE) -> pd.DataFrame:
    """One regression table the paper's way (px², ``unit`` px² per unit of the runs' MSE):
    one row per noise scale and method, ``target_noise, regulariser, method, final, sd,
    lowest, runs, diverged``."""
    table = summarise(runs, ["target_noise", "regulariser"], metric="test_loss", best="min")
    table[["final", "sd", "max"]] *= unit
    table = table.rename(columns={"max": "lowest"})
    return table.assign(method=table["regulariser"].map(NAMES))


class EntryRank(NamedTuple):
    """One entry (table, noise scale): its methods from the lowest final MSE up."""

    table: str
    noise: float
    methods: tuple[str, ...]
    finals: tuple[float, ...]

    def rank(self, method: str = "MGS") -> int:
        """1 + the number of methods with a strictly lower final MSE (ties share a rank)."""
        mine = self.finals[self.methods.index(method)]
        return 1 + sum(f < mine for f in self.finals)

    def others(self, method: str = "MGS") -> tuple[float, ...]:  # every other method's final
        return tuple(f for m, f in zip(self.methods, self.finals) if m != method)


def rank_entries(tables: Mapping[str, pd.DataFrame]) -> tuple[EntryRank, ...]:
    """Rank the methods at every entry of ``tables`` (``{name: frame}``, each frame with
    columns ``target_noise, method, final``) by their final MSE, lowest first."""
    out = []
    for name, table in tables.items():
        for noise, group in table.groupby("target_noise"):
            g = group.fillna({"final": np.inf}).sort_values("final", kind="stable")  # diverged last
            out.append(EntryRank(name, float(noise), tuple(g["method"]),
                                 tuple(float(f) for f in g["final"])))  # fmt: skip
    return tuple(out)


def satisfactory(table: pd.DataFrame, factor: float = 1.5) -> tuple[str, ...]:
    """The methods whose final MSE is within ``factor`` times the best method's at every noise
    scale of ``table`` (columns ``target_noise, method, final``), in the paper's order."""
    ok = {m: True for m in paper.METHODS}
    for _, group in table.groupby("target_noise"):
        g = group.set_index("method")["final"]
        for m in ok:
            ok[m] = ok[m] and bool(m in g and g[m] <= factor * g.min())
    return tuple(m for m, good in ok.items() if good)


def _paper_frame(tables: Mapping[str, Any], name: str) -> pd.DataFrame:
    return pd.DataFrame([dict(target_noise=p, method=m, final=f, sd=s, lowest=x)
                         for p, row in tables[name].items()
                         for m, (f, s, x) in row.items()])  # fmt: skip


# ------------------------------------------------------------- the training regime


class Curve(NamedTuple):
    """One method's run-averaged test MSE at one noise scale (px²)."""

    table: str
    method: str
    noise: float
    final: float  # the paper's final: the last 5 records of each run, averaged
    lowest: float  # the lowest point of the run-averaged curve
    last: float  # its last point
    rise: float  # last / lowest - 1
    overfits: bool  # rise > tolerance


def curve_checks(runs: pd.DataFrame, table: str = "", tolerance: float = 0.05,
                 unit: float = FacesSpec.PIXEL_MSE) -> list[Curve]:  # fmt: skip
    """Whether each method's test MSE rises after its lowest point (finished runs only).

    ``runs``: histories (``regulariser, target_noise, seed, step, test_loss, status``, the
    MSE, ``unit`` px² per unit). A method overfits where the last point of its
    run-averaged curve lies more than ``tolerance`` (relative) above the curve's lowest.
    """
    out = []
    ok = runs[runs["status"] == "finished"]
    stats = summarise(ok, ["regulariser", "target_noise"], metric="test_loss", best="min")
    for row in stats.itertuples():
        g = ok[(ok["regulariser"] == row.regulariser) & (ok["target_noise"] == row.target_noise)]
        curve = g.groupby("step")["test_loss"].mean().sort_index() * unit
        rise = float(curve.iloc[-1] / curve.min() - 1)
        out.append(Curve(table, NAMES.get(row.regulariser, row.regulariser),
                         float(row.target_noise), float(row.final) * unit,
                         float(curve.min()), float(curve.iloc[-1]), rise,
                         rise > tolerance))  # fmt: skip
    return out


class FloorCheck(NamedTuple):
    """One method's final training loss against the noise floor (scaled targets)."""

    table: str
    method: str
    noise: float
    train_loss: float  # the last record's mean mini-batch loss, averaged over runs
    floor: float  # (noise / 48) ** 2
    tolerance: float  # two standard errors of the noise's sample variance
    below: bool  # train_loss < floor - tolerance: the network fits the noise


def noise_floor(runs: pd.DataFrame, noise: float, table: str = "", n_outputs: int = 30,
                unit: float = FacesSpec.PIXEL_MSE) -> list[FloorCheck]:  # fmt: skip
    """Each method's final training loss at ``noise`` (pixels of a 96-pixel image) against
    the noise floor, from histories with ``regulariser, target_noise, seed, step, train_loss,
    n_train, status``.

    Exact keypoints have the training MSE noise² / ``unit`` ((noise / 48)² on targets scaled
    to [-1, 1], noise² in pixels); below
    it, a network reproduces part of the noise. The noise's sample variance over ``n_train *
    n_outputs`` coordinates and the runs has a standard error of ``floor * sqrt(2 / n)``; a
    loss counts as below the floor when it is more than two of these below.
    """
    ok = runs[(runs["status"] == "finished") & (runs["target_noise"] == noise)]
    floor = noise**2 / unit
    out = []
    for reg, g in ok.groupby("regulariser", sort=False):
        last = g.sort_values("step").groupby("seed")["train_loss"].last()
        n = int(g["n_train"].iloc[0]) * n_outputs * len(last)
        tol = 2 * floor * float(np.sqrt(2 / n))
        loss = float(last.mean())
        out.append(FloorCheck(table, NAMES.get(reg, reg), noise, loss, floor, tol,
                              loss < floor - tol))  # fmt: skip
    return out


class Choice(NamedTuple):
    """The strength the tuner chose for one method on one network."""

    model: str
    method: str
    strength: float
    candidates: tuple[float, ...]
    rising: bool  # the validation MSE grows with every larger candidate

    @property
    def smallest(self) -> bool:  # whether the chosen strength is the smallest candidate
        return len(self.candidates) > 1 and self.strength == min(self.candidates)


def tuning_choices(tuning: pd.DataFrame) -> list[Choice]:
    """The tuner's choices from its table (``model, regulariser, strength, val_loss, best``)."""
    out = []
    for (model, reg), g in tuning.groupby(["model", "regulariser"], sort=False):
        g = g.sort_values("strength")
        rising = bool(np.all(np.diff(g["val_loss"].to_numpy()) > 0))
        out.append(Choice(model, NAMES.get(reg, reg), float(g.loc[g["best"], "strength"].iloc[0]),
                          tuple(float(s) for s in g["strength"]), rising))  # fmt: skip
    return out


# ------------------------------------------------------------------- the findings


def _ratio(values: Any) -> float:  # the median sd / final of the entries given
    return float(np.median(values["sd"] / values["final"]))


class Claim(NamedTuple):
    """Section 6.2's claim on one table, tested by :func:`satisfactory` on both tables."""

    table: str
    paper_says: tuple[str, ...]
    paper_rule: tuple[str, ...]  # the rule on the paper's numbers
    ours: tuple[str, ...]  # the rule on the book's
    worst_paper: float  # the largest worst / best ratio of an entry
    worst_ours: float
    spread_paper: float  # median sd / final of the methods other than MGS
    spread_ours: float


def _claim(name: str, ours: pd.DataFrame, theirs: pd.DataFrame, factor: float) -> Claim:
    def worst(t: pd.DataFrame) -> float:
        return float(t.groupby("target_noise")["final"].agg(lambda f: f.max() / f.min()).max())

    return Claim(name, PAPER_SATISFACTORY.get(name, ()), satisfactory(theirs, factor),
                 satisfactory(ours, factor), worst(theirs), worst(ours),
                 _ratio(theirs[theirs["method"] != "MGS"]),
                 _ratio(ours[ours["method"] != "MGS"].dropna(subset=["sd"])))  # fmt: skip


def _methods(names: tuple[str, ...]) -> str:
    if len(names) == len(paper.METHODS):
        return "all five methods"
    if not names:
        return "no method"
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _span(values: Any, digits: int = 1) -> str:
    lo, hi = float(np.min(values)), float(np.max(values))
    return f"{lo:.{digits}f}" if f"{lo:.{digits}f}" == f"{hi:.{digits}f}" else (
        f"{lo:.{digits}f}–{hi:.{digits}f}")  # fmt: skip


@dataclass(frozen=True)
class RegressionFindings:
    """What :func:`findings` computed; :meth:`texts` says it, names to strings."""

    plan: str
    ranks: tuple[EntryRank, ...]
    curves: tuple[Curve, ...]
    floors: tuple[FloorCheck, ...]
    choices: tuple[Choice, ...]
    claims: tuple[Claim, ...]
    runs: int
    diverged: int
    paper_finals: tuple[tuple[str, str, float, float, float], ...]  # table, method, noise, ...

    def ranks_frame(self) -> pd.DataFrame:
        """One row per entry: MGS's rank, the best method, and MGS's MSE against the others."""
        return pd.DataFrame([{
            "table": LABEL.get(e.table, e.table), "noise": f"{e.noise:g}",
            "MGS rank": f"{ordinal(e.rank())} of {len(e.methods)}", "best method": e.methods[0],
            "best final MSE": e.finals[0], "MGS final MSE": e.finals[e.methods.index("MGS")],
            "MGS / best other": e.finals[e.methods.index("MGS")] / min(e.others())}
            for e in self.ranks])  # fmt: skip

    def claims_frame(self) -> pd.DataFrame:
        """Section 6.2's claim beside the 1.5x rule on the paper's numbers and on the book's."""
        return pd.DataFrame([{
            "table": LABEL.get(c.table, c.table), "the paper calls satisfactory":
            _methods(c.paper_says), "1.5 × rule, paper's numbers": _methods(c.paper_rule),
            "1.5 × rule, this book": _methods(c.ours), "worst / best, paper": c.worst_paper,
            "worst / best, this book": c.worst_ours, "sd / final, paper": c.spread_paper,
            "sd / final, this book": c.spread_ours}
            for c in self.claims]).set_index("table")  # fmt: skip

    def texts(self) -> dict[str, str]:
        """Names -> the glued strings of the chapter (see the chapter for each one's use)."""
        return {"plan": self.plan, **self._rank_texts(), **self._regime_texts(),
                **self._claim_texts()}  # fmt: skip

    def _rank_texts(self) -> dict[str, str]:
        k, ranks = len(self.ranks), [e.rank() for e in self.ranks]
        n = len(self.ranks[0].methods) if self.ranks else 0
        entries = "entry" if k == 1 else "entries"
        rank = ", ".join(f"{ordinal(r)} of {n} at {ranks.count(r)} of {k} {entries}"
                         for r in sorted(set(ranks)))  # fmt: skip
        best = [e.methods[0] for e in self.ranks]
        out = {"mgs_rank": rank, "mgs_best": f"{ranks.count(1)} of {k}",
               "best_methods": ", ".join(
                   f"{m} at {best.count(m)} {'entry' if best.count(m) == 1 else 'entries'}"
                   for m in sorted(set(best), key=lambda m: -best.count(m))),
               "mgs_gap": _span([e.finals[e.methods.index("MGS")] / min(e.others())
                                 for e in self.ranks], 2)}  # fmt: skip
        top = max(e.noise for e in self.ranks)
        out["top_noise"] = f"{top:g}"
        for e in self.ranks:
            if e.noise == top:
                mgs = e.finals[e.methods.index("MGS")]
                out[f"{e.table}_top"] = f"MGS {mgs:.1f} against {_span(e.others())}"
        return out

    def _regime_texts(self) -> dict[str, str]:
        top = max(f.noise for f in self.floors)
        floors = [f for f in self.floors if f.noise == top]
        bad = [f"{c.method} ({NETWORK.get(c.table, c.table)}, noise {c.noise:g})"
               for c in self.curves if c.overfits]  # fmt: skip
        rise = max(c.rise for c in self.curves)
        below = [f"{f.method} ({NETWORK.get(f.table, f.table)})" for f in floors if f.below]
        unreg = [c for c in self.curves if c.method == "Unregularised" and c.noise == top]
        p_unreg = [p for p in self.paper_finals if p[1] == "Unregularised" and p[2] == top]
        mgs = [c for c in self.choices if c.method == "MGS"]
        smallest = [m for m in paper.METHODS
                    if any(c.method == m for c in self.choices)
                    and all(c.smallest for c in self.choices if c.method == m)]  # fmt: skip
        return {
            "overfit": (f"no method overfits: each of the {len(self.curves)} run-averaged "
                        "test-MSE curves ends at its lowest point" if rise == 0 else
                        "no method overfits: each run-averaged test-MSE curve ends within "
                        f"{100 * rise:.1f} % of its lowest point" if not bad else
                        f"{_methods(tuple(bad))} overfit: the test MSE rises after its "
                        "lowest point"),
            "unreg_final_lowest": " and ".join(
                f"{c.final:.2f} against {c.lowest:.2f} ({NETWORK.get(c.table, c.table)})"
                for c in unreg),
            "paper_unreg_final_lowest": " and ".join(
                f"{p[3]:.1f} against {p[4]:.1f} ({NETWORK.get(p[0], p[0])})" for p in p_unreg),
            "floor": f"({top:g}/48)² = {floors[0].floor:.3f}" if floors else "n/a",
            "train_loss": _span([f.train_loss for f in floors], 3),
            "floor_verdict": "above the floor: no method fits the noise"
            if all(f.train_loss >= f.floor for f in floors) else "within the noise's sampling "
            "error of the floor: no method fits the noise" if not below else
            f"below the floor for {_methods(tuple(below))}: they fit the noise",
            "diverged": f"{self.diverged} of {self.runs}",
            "smallest": _methods(tuple(smallest)),
            "mgs_strength": " and ".join(sorted({f"{c.strength:g}" for c in mgs})) or "n/a",
            "mgs_rising": ("its validation MSE grows with every larger candidate on "
                           f"{'both networks' if len(mgs) == 2 else 'every network'}")
            if mgs and all(c.rising for c in mgs) else "its validation MSE does not grow "
            "with every larger candidate",
        }  # fmt: skip

    def _claim_texts(self) -> dict[str, str]:
        cs = self.claims
        per = lambda field: ", ".join(  # noqa: E731
            f"{_methods(getattr(c, field))} on {NETWORK.get(c.table, c.table)}"
            for c in cs)  # fmt: skip
        held = all(c.ours == c.paper_says for c in cs)
        converged = [p for p in self.paper_finals if p[1] in PAPER_SATISFACTORY.get(p[0], ())]
        calm = not (self.diverged or any(c.overfits for c in self.curves)
                    or any(f.below for f in self.floors))  # fmt: skip
        return {
            "claim_paper": per("paper_says"), "claim_paper_rule": per("paper_rule"),
            "claim_ours": per("ours"), "claim": "holds" if held else "does not hold",
            "rule_recovers": "recovers exactly the methods the paper names"
            if all(c.paper_rule == c.paper_says for c in cs) else
            "does not recover the methods the paper names",
            "rule_here": "separates no method from the others here" if all(
                len(c.ours) == len(paper.METHODS) for c in cs) else "separates them here too",
            "worst_paper": number(max(c.worst_paper for c in cs)),
            "worst_ours": f"{max(c.worst_ours for c in cs):.2f}",
            "spread_paper": _span([c.spread_paper for c in cs], 2),
            "spread_ours": _span([c.spread_ours for c in cs], 3),
            "level_ours": _span([f for e in self.ranks for f in e.finals]),
            "level_paper": _span([p[3] for p in converged]),
            "diagnosis": "In this stand-in no method overfits or diverges, so the regime of "
            "the paper's claim, runs that fail to converge, is absent" if calm else
            "Some runs here overfit or diverge, and why the ranking differs from the paper's "
            "is not known yet",
        }  # fmt: skip


def findings(results: Mapping[str, Any], paper_tables: Mapping[str, Any] | None = None,
             factor: float = 1.5, tolerance: float = 0.05) -> RegressionFindings:  # fmt: skip
    """The findings of a regression command's results beside the paper's tables.

    Parameters
    ----------
    results : mapping
        As :func:`mgs_teach.lab.summaries.load_mnist_results` returns it: ``plan``, ``tuning``
        and one frame of histories per table of the plan.
    paper_tables : mapping, optional
        ``{table: {noise: {method: (final, sd, lowest)}}}``; the paper's
        (:data:`mgs_teach.paper.REGRESSION_TABLES`) by default.
    factor : float
        :func:`satisfactory`'s factor.
    tolerance : float
        :func:`curve_checks`' tolerance.
    """
    paper_tables = paper.REGRESSION_TABLES if paper_tables is None else paper_tables
    names, unit = [t.name for t in results["plan"].tables], results["plan"].mse_unit
    ours = {n: our_table(results[n], unit) for n in names}
    theirs = {n: _paper_frame(paper_tables, n) for n in names}
    top = max(float(results[n]["target_noise"].max()) for n in names)
    runs = {n: results[n].groupby(["key", "seed"])["status"].first() for n in names}
    return RegressionFindings(
        plan=results["plan"].name, ranks=rank_entries(ours),
        curves=tuple(c for n in names for c in curve_checks(results[n], n, tolerance, unit)),
        floors=tuple(f for n in names for f in noise_floor(results[n], top, n, unit=unit)),
        choices=tuple(tuning_choices(results["tuning"])) if results.get("tuning") is not None
        else (), claims=tuple(_claim(n, ours[n], theirs[n], factor) for n in names),
        runs=sum(len(r) for r in runs.values()),
        diverged=sum(int((r != "finished").sum()) for r in runs.values()),
        paper_finals=tuple((n, r.method, r.target_noise, r.final, r.lowest)
                           for n in names for r in theirs[n].itertuples()))  # fmt: skip
