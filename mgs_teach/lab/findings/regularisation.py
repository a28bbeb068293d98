"""What the regularisation chapter found: the MGS metrics against test accuracy on two circles.

:func:`regularisation_findings` reads the chapter's own runs (one row per regulariser and
seed) and answers the paper's claims of its Section 4 and Figure 2 for them: whether a
smaller final MGS metric goes with a higher test accuracy across the regularisers (a
negative Spearman correlation, the paper's sign, beyond two chance levels of zero; a smaller
one is inconclusive), whether the regularisers end with a smaller ``tr K`` than no
regularisation (by more than two standard errors of the difference of the means), whether
the trace penalty beats no regularisation (seed by seed, paired on the seed's label),
and which runs memorise the flipped labels (a final training loss below the entropy of the
label noise). Its :meth:`RegularisationFindings.texts` are glued into the chapter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mgs_teach.lab.findings import number, spearman

__all__ = [
    "METRICS",
    "OPTIMISER_BASED",
    "RegularisationFindings",
    "final_table",
    "noise_entropy",
    "regularisation_findings",
]

#: column of the per-seed table -> how the prose names it
METRICS = {"final tr K": "tr K", "final log det K": "log det K"}
#: methods that change the optimiser's dynamics rather than the loss
OPTIMISER_BASED = ("adam", "cyclical_lr")


def noise_entropy(label_noise: float) -> float:
    """Cross-entropy (nats) of a model that knows the two classes and none of the flips: the
    entropy of the label noise. A training loss below it can only come from memorising."""
    p = label_noise
    return float(-(p * np.log(p) + (1 - p) * np.log(1 - p))) if 0 < p < 1 else 0.0


def _names(names: tuple[str, ...], baseline: str = "none") -> str:
    """``"a, b"``, ``"no method"`` when empty; the baseline reads ``"none (unregularised)"``."""
    shown = [f"{n} (unregularised)" if n == baseline else n for n in names]
    return ", ".join(shown) if shown else "no method"


def _end(names: tuple[str, ...] | list[str]) -> str:
    return "ends" if len(names) == 1 else "end"


def _mean_se(values: pd.Series) -> tuple[float, float]:
    n = len(values)
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0


def _pairs(values: pd.Series, penalty: str, baseline: str) -> pd.DataFrame:
    """The penalty's and the baseline's values on the seeds both ran, aligned on the seed
    label (an inner join): columns ``penalty`` and ``baseline``, one row per shared seed."""
    return pd.concat(
        [values.loc[penalty], values.loc[baseline]],
        axis=1,
        join="inner",
        keys=["penalty", "baseline"],
    )


@dataclass(frozen=True)
class RegularisationFindings:
    """The chapter's findings (see :func:`regularisation_findings` for the fields' meaning)."""

    n_seeds: int  # distinct seeds in the table
    rho: Mapping[str, float]  # metric label -> Spearman correlation with test accuracy
    lower_trace: tuple[str, ...]  # lower final tr K than the baseline by > 2 SE of the difference
    higher_trace: tuple[str, ...]  # higher mean final tr K than the baseline
    better_and_lower: tuple[str, ...]
    worse: tuple[str, ...]
    noise_floor: float
    memorising_seeds: Mapping[str, int]  # regulariser -> seeds ending below the noise floor
    train_loss: Mapping[str, float]  # regulariser -> mean final training loss
    test_acc: Mapping[str, float]
    trace: Mapping[str, tuple[float, float]]  # regulariser -> (mean, standard error) of tr K
    penalty_wins: int  # seeds, of those run by both, where the penalty's accuracy is higher
    n_paired: int  # seeds run by both the penalty and the baseline
    n_runs: Mapping[str, int]  # regulariser -> its number of seeds
    baseline_peak: float
    baseline: str = "none"
    penalty: str = "mgs_trace"
    tanh: Mapping[str, float] | None = None  # n_runs, train_loss, below_floor, peak, end

    @property
    def n_regularisers(self) -> int:
        return len(self.train_loss)

    @property
    def chance(self) -> float:
        """Standard deviation of Spearman's rho under independence, about 1/sqrt(n - 1)."""
        return 1 / np.sqrt(self.n_regularisers - 1)

    def sign_held(self, label: str) -> bool:
        """The paper's negative sign, beyond two chance levels of zero."""
        return bool(self.rho[label] < -2 * self.chance)

    @property
    def memorising(self) -> tuple[str, ...]:
        """Regularisers whose mean final training loss is below the noise floor."""
        return tuple(n for n, v in self.train_loss.items() if v < self.noise_floor)

    @property
    def penalty_helps(self) -> bool:
        b, p = self.baseline, self.penalty
        return self.trace[p][0] < self.trace[b][0] and self.test_acc[p] > self.test_acc[b]

    def sign_phrase(self, label: str) -> str:
        """``"-0.87, the paper's negative sign"`` or ``"+0.40, the opposite of ..."``."""
        rho = self.rho[label]
        if not np.isfinite(rho):
            return "undefined (a constant column)"
        if rho < 0:
            side = "the paper's negative sign"
        else:
            side = (
                "not the paper's negative sign" if rho == 0 else "the opposite of the paper's sign"
            )
        size = "beyond" if abs(rho) > 2 * self.chance else "within"
        return f"{rho:+.2f}, {side}, {size} two chance levels of zero"

    def side(self, name: str) -> str:
        """Where ``name``'s mean final training loss ends against the noise floor
        (``"below the noise floor (...)"`` or ``"above ..."``), with the count of its seeds
        that end below it: those memorise."""
        k = self.memorising_seeds[name]
        where = "below" if self.train_loss[name] < self.noise_floor else "above"
        return f"{where} the noise floor ({k} of {self.n_runs[name]} seeds end below it)"

    def memorising_text(self) -> str:
        """The regularisers whose runs memorise on average, or that all or none do."""
        if len(self.memorising) == self.n_regularisers:
            return f"all {self.n_regularisers} regularisers, no regularisation included"
        return _names(self.memorising, self.baseline)

    def claims(self) -> list[tuple[bool, str]]:
        """The paper's claims checked here: (held, the sentence that says so)."""
        others = self.n_regularisers - 1
        out = [
            (
                self.sign_held(lab),
                f"Spearman correlation of the final {lab} with test accuracy "
                f"across the {self.n_regularisers} regularisers: {self.sign_phrase(lab)}",
            )
            for lab in self.rho
        ]
        n_lower = len(self.lower_trace)
        out.append(
            (
                n_lower == others,
                f"{n_lower} of {others} regularisers end with a lower "
                "final tr K than no regularisation, by more than two standard errors of the "
                "difference",
            )
        )
        b, p = self.baseline, self.penalty
        out.append(
            (
                self.penalty_helps,
                f"the trace penalty ends with tr K "
                f"{number(self.trace[p][0])} against {number(self.trace[b][0])} and test "
                f"accuracy {self.test_acc[p]:.3f} against {self.test_acc[b]:.3f}, the higher "
                f"in {self.penalty_wins} of {self.n_paired} seeds",
            )
        )
        return out

    def diagnosis(self) -> str:
        """The computed reasons for the claims that failed, or that none did."""
        reasons = []
        for lab, rho in self.rho.items():
            if not np.isfinite(rho):
                reasons.append(f"the {lab} correlation is undefined (a constant column)")
            elif not self.sign_held(lab):
                reasons.append(
                    f"the {lab} correlation is {rho:+.2f}, "
                    + (
                        f"within two chance levels (±{2 * self.chance:.2f}) of zero, so "
                        f"inconclusive: {self.n_regularisers} methods cannot settle its sign"
                        if abs(rho) <= 2 * self.chance
                        else "beyond chance, the ordering of over-strong regularisation"
                    )
                )
        between = [
            n
            for n in self.train_loss
            if n != self.baseline and n not in self.lower_trace and n not in self.higher_trace
        ]
        if between:
            reasons.append(
                f"{_names(tuple(between))} {_end(between)} with a lower tr K than no "
                "regularisation, but by no more than two standard errors of the difference"
            )
        if self.higher_trace:
            opt = [n for n in self.higher_trace if n in OPTIMISER_BASED]
            reasons.append(
                f"{_names(self.higher_trace)} {_end(self.higher_trace)} with a higher tr K "
                f"than no regularisation ({len(opt)} of {len(self.higher_trace)} change the "
                "optimiser, not the loss)"
            )
        if not self.penalty_helps:
            p = self.penalty
            reasons.append(
                f"the trace-penalised runs end with a training loss of {self.train_loss[p]:.3f}, "
                f"{self.side(p)}: "
                + (
                    "they still memorise the flips, only more slowly"
                    if self.train_loss[p] < self.noise_floor
                    else "they do not memorise, and we do not know yet why they do not win"
                )
            )
        return "; ".join(reasons) if reasons else "nothing to explain: every claim checked held"

    def texts(self) -> dict[str, str]:
        """name -> text, for the chapter's glue (prefix ``rg_``)."""
        b, p = self.baseline, self.penalty
        held = [s for ok, s in self.claims() if ok]
        failed = [s for ok, s in self.claims() if not ok]
        out = {
            "n_regularisers": str(self.n_regularisers),
            "n_seeds": str(self.n_seeds),
            "chance": f"{self.chance:.2f}",
            "rho_trace": f"{self.rho['tr K']:+.2f}",
            "sign_trace": self.sign_phrase("tr K"),
            "lower_trace": _names(self.lower_trace),
            "higher_trace": _names(self.higher_trace),
            "better_and_lower": _names(self.better_and_lower),
            "worse": _names(self.worse),
            "noise_floor": f"{self.noise_floor:.3f}",
            "memorising": self.memorising_text(),
            "baseline_side": self.side(b),
            "penalty_side": self.side(p),
            "baseline_train_loss": f"{self.train_loss[b]:.3f}",
            "penalty_train_loss": f"{self.train_loss[p]:.3f}",
            "baseline_trace": f"{number(self.trace[b][0])} ± {number(self.trace[b][1])}",
            "penalty_trace": f"{number(self.trace[p][0])} ± {number(self.trace[p][1])}",
            "baseline_acc": f"{self.test_acc[b]:.3f}",
            "baseline_peak": f"{self.baseline_peak:.3f}",
            "penalty_acc": f"{self.test_acc[p]:.3f}",
            "penalty_wins": f"{self.penalty_wins} of {self.n_paired}",
            "penalty_verdict": (
                "lower tr K and higher test accuracy with the trace penalty: the "
                "paper's claim holds here"
            )
            if self.penalty_helps
            else (
                "the paper's claim does not hold here: the trace penalty ends "
                "with "
                + ("a lower" if self.trace[p][0] < self.trace[b][0] else "a higher")
                + " tr K and "
                + ("a higher" if self.test_acc[p] > self.test_acc[b] else "a lower")
                + " test accuracy"
            ),
            "reproduced": "; ".join(held) if held else "none of the claims checked here",
            "not_reproduced": "; ".join(failed) if failed else "nothing: every claim checked held",
            "why_not": self.diagnosis(),
        }
        if "log det K" in self.rho:
            out["rho_logdet"] = f"{self.rho['log det K']:+.2f}"
            out["sign_logdet"] = self.sign_phrase("log det K")
        return {**out, **self._tanh_texts()}

    def _tanh_texts(self) -> dict[str, str]:
        if self.tanh is None:
            return {}
        t, floor = self.tanh, self.noise_floor
        memorises = t["train_loss"] < floor
        return {
            "tanh_runs": str(int(t["n_runs"])),
            "tanh_train_loss": f"{t['train_loss']:.3f}",
            "tanh_peak": f"{t['peak']:.3f}",
            "tanh_end": f"{t['end']:.3f}",
            "relu_train_loss": f"{self.train_loss[self.baseline]:.3f}",
            "tanh_verdict": (
                f"below the noise floor {floor:.3f}: it memorises the flips too, "
                f"in {int(t['below_floor'])} of {int(t['n_runs'])} runs"
            )
            if memorises
            else (
                f"above the noise floor {floor:.3f} ({int(t['below_floor'])} of "
                f"{int(t['n_runs'])} runs below it): it does not memorise the flips within this "
                "budget, and a regulariser then has nothing to prevent"
            ),
        }


def regularisation_findings(
    per_seed: pd.DataFrame,
    peak: pd.Series,
    label_noise: float,
    *,
    tanh: pd.DataFrame | None = None,
    baseline: str = "none",
    penalty: str = "mgs_trace",
) -> RegularisationFindings:
    """The findings of the chapter's runs.

    Parameters
    ----------
    per_seed : DataFrame
        One row per (regulariser, seed) (a two-level index), with the columns
        ``final tr K``, ``final log det K`` (optional), ``train loss`` and ``test acc``.
    peak : Series
        The highest test accuracy during each run, indexed like ``per_seed``.
    label_noise : float
        The share of flipped training labels; its entropy is the noise floor.
    tanh : DataFrame, optional
        One row per run of the unregularised tanh network: ``train loss``, ``test acc``
        and ``peak test acc``.
    baseline, penalty : str
        The unregularised runs' name and the trace penalty's.

    Returns
    -------
    RegularisationFindings
    """
    final = per_seed.groupby(level=0, sort=False).mean()
    rho = {
        lab: spearman(final[col], final["test acc"]) for col, lab in METRICS.items() if col in final
    }
    trace = {n: _mean_se(per_seed.loc[n, "final tr K"]) for n in final.index}
    b_mean, b_se = trace[baseline]
    others = [n for n in final.index if n != baseline]
    acc = final["test acc"]
    floor = noise_entropy(label_noise)
    pair = _pairs(per_seed["test acc"], penalty, baseline)
    tanh_summary = None
    if tanh is not None:
        tanh_summary = {
            "n_runs": len(tanh),
            "train_loss": float(tanh["train loss"].mean()),
            "below_floor": int((tanh["train loss"] < floor).sum()),
            "peak": float(tanh["peak test acc"].mean()),
            "end": float(tanh["test acc"].mean()),
        }
    return RegularisationFindings(
        n_seeds=int(per_seed.index.get_level_values(1).nunique()),
        rho=rho,
        lower_trace=tuple(
            n for n in others if b_mean - trace[n][0] > 2 * np.hypot(trace[n][1], b_se)
        ),
        higher_trace=tuple(n for n in others if trace[n][0] > b_mean),
        better_and_lower=tuple(
            n for n in others if trace[n][0] < b_mean and acc[n] > acc[baseline]
        ),
        worse=tuple(n for n in others if acc[n] < acc[baseline]),
        noise_floor=floor,
        memorising_seeds={
            n: int((per_seed.loc[n, "train loss"] < floor).sum()) for n in final.index
        },
        train_loss=final["train loss"].to_dict(),
        test_acc=acc.to_dict(),
        trace=trace,
        penalty_wins=int((pair["penalty"] > pair["baseline"]).sum()),
        n_paired=len(pair),
        n_runs={n: int(len(per_seed.loc[n])) for n in final.index},
        baseline_peak=float(peak.loc[baseline].mean()),
        baseline=baseline,
        penalty=penalty,
        tanh=tanh_summary,
    )


def final_table(per_seed: pd.DataFrame, strength: Mapping[str, float]) -> pd.DataFrame:
    """Mean ± standard deviation over seeds of every column, per regulariser, sorted by the
    final ``tr K``; ``strength`` gives each regulariser's tuned strength (a column)."""
    final = per_seed.groupby(level=0, sort=False).mean().sort_values("final tr K")
    spread = per_seed.groupby(level=0, sort=False).std()
    table = pd.DataFrame(
        {
            col: [f"{final.loc[r, col]:.3g} ± {spread.loc[r, col]:.2g}" for r in final.index]
            for col in final.columns
        }
    )
    table.insert(0, "regulariser", final.index)
    table.insert(1, "strength", [f"{strength[r]:.3g}" for r in final.index])
    return table
