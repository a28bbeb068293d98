"""What the fast-penalty chapter measured: what each trace method costs, against a plain step.

:func:`fast_penalty_findings` reads the chapter's own measurements (the benchmark's rows, the
cost of the Hutchinson probes, the scaling runs, the profile) and the committed
neural-tangents comparison (``results/bench/neural-tangents-cpu.json``), and says which
claims held: the paper's, in its Section 5, that the MGS penalties are "computationally more
burdensome than commonly used regularisers", and the speed targets the chapter sets itself.
Its :meth:`FastPenaltyFindings.texts` are glued into the chapter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mgs_teach.lab.findings import number

__all__ = ["NAMES", "TARGETS", "FastPenaltyFindings", "fast_penalty_findings", "nt_table"]

#: the chapter's targets: name -> (what is measured, the bound, "at most" or "at least")
TARGETS = {
    "fcn": ("the structured step of the FCN, in plain steps", 4.0, "at most"),
    "speedup": ("the naive step of the FCN over the structured one", 30.0, "at least"),
    "lenet5": ("the structured step of LeNet-5, in plain steps", 6.0, "at most"),
    "nt": ("neural-tangents' best step over the structured one (FCN)", 10.0, "at least"),
}


#: how the prose names the benchmark's models
NAMES = {"fcn": "FCN 6×300", "lenet5": "LeNet-5", "alexnet": "AlexNet"}
#: the profile's row of the per-class parameter gradients
JACREV = "per-class parameter gradients (jacrev)"


def _x(value: float) -> str:
    return f"{number(value)}×"


@dataclass(frozen=True)
class FastPenaltyFindings:
    """The chapter's measurements, reduced (see :func:`fast_penalty_findings`)."""

    ratio: Mapping[tuple[str, str], float]  # (model, method) -> seconds over the plain step
    agreement: float  # largest relative difference, structured against naive trace
    probe_cost: Mapping[int, float]  # probes k -> seconds of one Hutchinson penalty gradient
    exact_cost: float  # seconds of one structured penalty gradient
    naive_over_plain: tuple[float, float] | None = None  # (min, max) over the scaling sizes
    structured_over_plain: tuple[float, float] | None = None
    profile: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    nt: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # model -> best nt row
    nt_when: str = ""
    n_classes: int = 10

    def measured(self) -> dict[str, float]:
        """Each target's measured value (NaN where it was not measured)."""
        r = lambda model, method: self.ratio.get((model, method), float("nan"))  # noqa: E731
        return {
            "fcn": r("fcn", "structured"),
            "speedup": r("fcn", "naive") / r("fcn", "structured"),
            "lenet5": r("lenet5", "structured"),
            "nt": self.nt.get("fcn", {}).get("over_structured", float("nan")),
        }

    def target_met(self) -> dict[str, bool | None]:
        """Each target: met, missed, or ``None`` when not measured."""
        out: dict[str, bool | None] = {}
        for key, value in self.measured().items():
            _, bound, how = TARGETS[key]
            out[key] = (
                None
                if np.isnan(value)
                else (value <= bound if how == "at most" else value >= bound)
            )
        return out

    @property
    def crossover(self) -> int | None:
        """The fewest probes whose penalty gradient costs at least the exact one's."""
        slow = [k for k in sorted(self.probe_cost) if self.probe_cost[k] >= self.exact_cost]
        return slow[0] if slow else None

    @property
    def k1_cheapest(self) -> bool:
        """Whether one probe is the cheapest penalty on every benchmarked model."""
        models = {m for m, _ in self.ratio}
        return all(
            self.ratio[(m, "hutchinson_k1")]
            == min(v for (mm, meth), v in self.ratio.items() if mm == m and meth != "plain")
            for m in models
            if (m, "hutchinson_k1") in self.ratio
        )

    def claims(self) -> list[tuple[bool, str]]:
        """(held, sentence) for the paper's cost claim and each measured target."""
        fcn = self.ratio.get(("fcn", "structured"), float("nan"))
        out = [
            (
                fcn > 1,
                f"the exact trace penalty is more costly than a plain step (Section "
                f'5: "computationally more burdensome"): {_x(fcn)} on the FCN',
            )
        ]
        for key, met in self.target_met().items():
            if met is not None:
                what, bound, how = TARGETS[key]
                out.append((met, f"{what}: {_x(self.measured()[key])} (target {how} {_x(bound)})"))
        return out

    def diagnosis(self) -> str:
        """Why targets were missed, from the profile; or that none was."""
        missed = [k for k, met in self.target_met().items() if met is False]
        if not missed:
            return "nothing to explain: every target measured here was met"
        parts = []
        explained = [m for m in ("fcn", "lenet5") if m in missed and m in self.profile]
        for model in explained:
            p = self.profile[model]
            parts.append(
                f"in the {NAMES.get(model, model)} step the penalty is {p['share']:.0%} of "
                f"the time and the trace's gradient costs {number(p['grad_over_value'])}× its "
                f"value: the {self.n_classes} backward passes and their derivative "
                "dominate"
            )
        rest = [TARGETS[k][0] for k in missed if k not in explained]
        if rest:
            what = rest[0] if len(rest) == 1 else ", ".join(rest[:-1]) + " and " + rest[-1]
            parts.append(f"we do not know yet why {what} missed the target on this machine")
        return "; ".join(parts)

    def texts(self) -> dict[str, str]:
        """name -> text, for the chapter's glue (prefix ``fp_``)."""
        out = {f"ratio_{m}_{meth}": _x(v) for (m, meth), v in self.ratio.items()}
        out["agreement"] = f"{self.agreement:.0e}"
        m = self.measured()
        out["speedup"] = _x(m["speedup"])
        out["lenet_over_fcn"] = _x(m["lenet5"] / m["fcn"])
        out["lenet_verdict"] = (
            "more plain steps than the FCN's, as the profile predicts"
            if m["lenet5"] > m["fcn"]
            else "fewer plain steps than the FCN's, against the profile's prediction"
        )
        for key, met in self.target_met().items():
            out[f"target_{key}"] = {True: "met", False: "missed", None: "not measured"}[met]
        held = [s for ok, s in self.claims() if ok]
        failed = [s for ok, s in self.claims() if not ok]
        out["reproduced"] = "; ".join(held) if held else "none of the claims checked here"
        out["not_reproduced"] = "; ".join(failed) if failed else "nothing: every claim held"
        out["why_not"] = self.diagnosis()
        return {**out, **self._probe_texts(), **self._profile_texts(), **self._nt_texts()}

    def _probe_texts(self) -> dict[str, str]:
        k_max = max(self.probe_cost)
        over = {k: c / self.exact_cost for k, c in self.probe_cost.items()}
        cross = self.crossover
        out = {
            "probe_costs": ", ".join(f"k = {k}: {_x(v)}" for k, v in sorted(over.items())),
            "probe_crossover": f"k = {cross}" if cross else f"none of the k up to {k_max}",
            "probe_verdict": self._probe_verdict(),
            "k1_verdict": "the cheapest penalty on every model benchmarked"
            if self.k1_cheapest
            else "not the cheapest penalty on every model benchmarked",
            "kmax_verdict": (
                f"with {k_max} probes it costs {_x(over[k_max])} the exact trace, "
                + (
                    "so it has no advantage"
                    if over[k_max] >= 1
                    else "still less than the exact trace"
                )
            ),
        }
        if self.naive_over_plain is not None:
            low, high = self.naive_over_plain
            out["naive_range"] = f"{_x(low)} to {_x(high)}"
            out["naive_orders"] = str(int(np.floor(np.log10(low))))
        if self.structured_over_plain is not None:
            low, high = self.structured_over_plain
            out["structured_range"] = f"{_x(low)} to {_x(high)}"
        return out

    def _probe_verdict(self) -> str:
        """Where Hutchinson's penalty gradient stops being cheaper than the exact one."""
        cross, ks = self.crossover, sorted(self.probe_cost)
        if cross is None:
            return f"every number of probes tried, up to {ks[-1]}, costs less than the exact trace"
        if cross == ks[0]:
            return (
                f"even {ks[0]} probe{'s' * (ks[0] > 1)} cost at least as much as the exact "
                "trace on this small network"
            )
        return f"from k = {cross} probes on, Hutchinson costs at least as much as the exact trace"

    def _profile_texts(self) -> dict[str, str]:
        out = {}
        for model, p in self.profile.items():
            out[f"{model}_penalty_ms"] = number(p["extra_ms"])
            out[f"{model}_plain_ms"] = number(p["plain_ms"])
            out[f"{model}_share"] = f"{p['share']:.0%}"
            out[f"{model}_grad_over_value"] = _x(p["grad_over_value"])
            out[f"{model}_value_over_forward"] = _x(p["value_over_forward"])
            out[f"{model}_jacrev_over_value"] = _x(p["jacrev_over_value"])
        return out

    def _nt_texts(self) -> dict[str, str]:
        out = {"nt_when": self.nt_when} if self.nt else {}
        for model, row in self.nt.items():
            out[f"nt_{model}_best"] = row["method"]
            out[f"nt_{model}_over_structured"] = _x(row["over_structured"])
            out[f"nt_{model}_over_own_plain"] = _x(row["over_own_plain"])
            out[f"nt_{model}_structured_ratio"] = _x(row["structured_ratio"])
        return out


def _nt_best(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per model, the fastest neural-tangents row, over the same run's structured step and
    over the plain step of neural-tangents' own environment."""
    table = pd.DataFrame([r for r in rows if "seconds_per_step" in r])
    out: dict[str, dict[str, Any]] = {}
    if table.empty:
        return out
    for model, group in table.groupby("model", sort=False):
        nt = group[group["method"].str.startswith("nt_")]
        structured = group[group["method"] == "structured"]["seconds_per_step"]
        own_plain = group[group["method"].str.contains("nt env")]["seconds_per_step"]
        if nt.empty or structured.empty:
            continue
        best = nt.loc[nt["seconds_per_step"].idxmin()]
        seconds = float(best["seconds_per_step"])
        out[str(model)] = {
            "method": str(best["method"]),
            "over_structured": seconds / float(structured.iloc[0]),
            "over_own_plain": seconds / float(own_plain.iloc[0]) if len(own_plain) else np.nan,
            "structured_ratio": float(
                group[group["method"] == "structured"]["ratio_to_plain"].iloc[0]
            ),
        }
    return out


def fast_penalty_findings(
    bench_rows: Sequence[Mapping[str, Any]],
    *,
    agreement: float,
    probe_cost: Mapping[int, float],
    exact_cost: float,
    scaling: pd.DataFrame | None = None,
    profile: pd.DataFrame | None = None,
    nt_rows: Sequence[Mapping[str, Any]] = (),
    nt_when: str = "",
    n_classes: int = 10,
) -> FastPenaltyFindings:
    """The findings of the chapter's measurements.

    Parameters
    ----------
    bench_rows : sequence of dict
        The benchmark's rows (:func:`mgs_teach.lab.bench.benchmark`): ``model``, ``method``
        and ``ratio_to_plain``.
    agreement : float
        The largest relative difference between the structured and the naive trace.
    probe_cost : mapping
        Probes ``k`` -> seconds of one Hutchinson penalty gradient; ``exact_cost`` the
        structured one's, on the same model and batch.
    scaling : DataFrame, optional
        ``method``, ``width``, ``batch``, ``seconds``: the naive step is compared with the
        plain one at every size where both ran.
    profile : DataFrame, optional
        Milliseconds, one column per model, with the rows ``whole plain step``,
        ``whole structured step``, ``structured trace, value`` and ``structured trace,
        gradient``.
    nt_rows : sequence of dict
        The committed neural-tangents benchmark's rows (same fields as ``bench_rows``,
        neural-tangents methods ``nt_*`` and its own plain step, ``plain (... nt env)``);
        ``nt_when`` says where and when they were measured.

    Returns
    -------
    FastPenaltyFindings
    """
    ratio = {(r["model"], r["method"]): float(r["ratio_to_plain"]) for r in bench_rows}
    over_plain = {}
    if scaling is not None:
        wide = scaling.pivot_table(index=["width", "batch"], columns="method", values="seconds")
        for method in ("naive", "structured"):
            if method in wide:
                over = (wide[method] / wide["plain"]).dropna()
                over_plain[method] = (float(over.min()), float(over.max()))
    prof = {}
    if profile is not None:
        for model in profile:
            p = profile[model]
            extra = p["whole structured step"] - p["whole plain step"]
            prof[str(model)] = {
                "extra_ms": float(extra),
                "plain_ms": float(p["whole plain step"]),
                "share": float(extra / p["whole structured step"]),
                "grad_over_value": float(
                    p["structured trace, gradient"] / p["structured trace, value"]
                ),
                "value_over_forward": float(p["structured trace, value"] / p["forward pass"]),
                "jacrev_over_value": float(p[JACREV] / p["structured trace, value"]),
            }
    return FastPenaltyFindings(
        ratio=ratio,
        agreement=float(agreement),
        probe_cost=dict(probe_cost),
        exact_cost=float(exact_cost),
        naive_over_plain=over_plain.get("naive"),
        structured_over_plain=over_plain.get("structured"),
        profile=prof,
        nt=_nt_best(nt_rows),
        nt_when=nt_when,
        n_classes=n_classes,
    )


def nt_table(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The committed neural-tangents benchmark as a table: milliseconds per step and the ratio
    to each environment's plain step, one row per method, one column group per model."""
    table = pd.DataFrame([r for r in rows if "seconds_per_step" in r])
    table["method"] = table["method"].str.replace(
        r"plain \(jax (.*), nt env\)", r"plain (neural-tangents env, jax \1)", regex=True
    )
    table["ms per step"] = 1e3 * table["seconds_per_step"]
    own = table["method"].str.startswith(("nt_", "plain (neural"))
    plain = table[own & table["method"].str.startswith("plain")].set_index("model")["ms per step"]
    table["× its environment's plain step"] = np.where(
        own, table["ms per step"] / table["model"].map(plain), table["ratio_to_plain"]
    )
    return table.pivot(
        index="method", columns="model", values=["ms per step", "× its environment's plain step"]
    ).reindex(list(dict.fromkeys(table["method"])))
