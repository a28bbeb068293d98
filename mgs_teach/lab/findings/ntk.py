"""What the NTK chapter found: Appendix B's kernel gradient descent, tested on its own runs.

The paper's Appendix B says that the MGS kernel "is indeed the same as the empirical Neural
Tangent Kernel", that "the NTK describes the evolution of the network function in function
space in a kernel gradient descent setting", and that its "large eigenvalues" correspond "to
learning directions with low complexity which is also where convergence is the fastest".
:func:`ntk_findings` reduces the chapter's measurements (how well kernel gradient descent
predicts networks of several widths, the residual energy left in bands of eigen-directions,
the roughness of the eigenvectors and the spectra after training with penalties) to which of
these held, and, for what did not, the computed diagnosis. The helpers above it do the
chapter's assembly (bands, the per-width table, the spectrum's summary).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from mgs_teach.lab.findings import join_and, number, percent, spearman

__all__ = ["SPEED_EDGES", "BandRun", "NTKFindings", "band_run", "last_within", "lazy_table",
           "ntk_findings", "ordered_until", "spectrum_summary", "speed_bands"]  # fmt: skip

#: Edges of the bands of modes by their speed eta * lambda_k, fastest first.
SPEED_EDGES = (np.inf, 0.1, 0.01, 0.001, -np.inf)


def _pct(value: float) -> str:  # a fraction as a percentage with two significant figures
    return f"{number(100 * value)} %"


def _widths(widths: Sequence[int]) -> str:  # "width 512", "widths 256 and 512"
    return f"width{'s' if len(widths) > 1 else ''} {join_and([str(w) for w in widths])}"


def speed_bands(speed: np.ndarray, edges: Sequence[float] = SPEED_EDGES
                ) -> tuple[list[str], list[np.ndarray]]:  # fmt: skip
    """Group modes by their speed ``eta * lambda_k`` into bands; empty bands are left out.

    Parameters
    ----------
    speed : numpy.ndarray, shape (n,)
        ``eta * lambda_k`` of every mode.
    edges : sequence of float
        Decreasing band edges, from ``inf`` to ``-inf``.

    Returns
    -------
    names : list of str
        ``"0.01 ≤ ηλ < 0.1 (5 modes)"`` and so on, fastest band first.
    bands : list of numpy.ndarray
        The indices of the modes of each band.
    """
    names, bands = [], []
    for hi, lo in zip(edges, edges[1:]):
        idx = np.flatnonzero((speed < hi) & (speed >= lo))
        if not len(idx):
            continue
        name = (f"ηλ ≥ {lo:g}" if not np.isfinite(hi) else f"ηλ < {hi:g}"
                if not np.isfinite(lo) else f"{lo:g} ≤ ηλ < {hi:g}")  # fmt: skip
        names.append(f"{name} ({len(idx)} modes)")
        bands.append(idx)
    return names, bands


def ordered_until(steps: Sequence[int], measured: np.ndarray, tol: float = 1e-6) -> int:
    """The last step up to which the bands keep the order of their speed.

    ``measured`` (shape (T, n_bands), fastest band first, the first row the start) holds the
    fraction of each band's energy left; the order holds at a record where no faster band
    keeps more of its energy than a slower one, to within ``tol``. Returns 0 if it breaks at
    the first step after the start.
    """
    last = 0
    for step, energy in zip(steps[1:], measured[1:]):
        if np.any(np.diff(energy) < -tol):
            break
        last = int(step)
    return last


class BandRun(NamedTuple):
    """One band run's verdicts: the bands' order, the slowest band, and tr K's growth."""

    name: str
    ordered_until: int  # the last step of the order of speed (ordered_until)
    last_step: int
    slowest_keeps_most: bool  # at the end, in the run
    trace_start: float
    trace_end: float

    @property
    def ordered_throughout(self) -> bool:
        return self.ordered_until >= self.last_step


def band_run(name: str, run: Mapping[str, Any], tol: float = 1e-6) -> BandRun:
    """A :class:`BandRun` from the chapter's record of one run: ``steps``, ``measured`` (T,
    n_bands), ``values`` (the initial kernel's eigenvalues) and ``trace_end``."""
    measured = np.asarray(run["measured"])
    return BandRun(name, ordered_until(run["steps"], measured, tol), int(run["steps"][-1]),
                   bool(np.argmax(measured[-1]) == measured.shape[1] - 1),
                   float(np.sum(run["values"])), float(run["trace_end"]))  # fmt: skip


def spectrum_summary(values: np.ndarray) -> dict[str, float]:
    """``tr K``, ``λ_1``, ``λ_10``, ``λ_25``, ``λ_1 / tr K`` and the effective rank
    ``(Σλ)² / Σλ²`` of a spectrum (shape (n,), n ≥ 25, largest first)."""
    values = np.asarray(values, dtype=np.float64)
    total = float(values.sum())
    return {"tr K": total, "λ_1": values[0], "λ_10": values[9], "λ_25": values[24],
            "λ_1 / tr K": values[0] / total,
            "effective rank": total**2 / float(np.sum(values**2))}  # fmt: skip


def lazy_table(lazy: pd.DataFrame) -> pd.DataFrame:
    """Mean error and drift over seeds at the first record and the last, by width.

    ``lazy``: one row per record, ``width, seed, step, error, drift``. Returns a frame indexed
    by width with columns ``(quantity, step)``.
    """
    ends = lazy[lazy.step.isin([lazy.step.min(), lazy.step.max()])]
    return ends.groupby(["width", "step"])[["error", "drift"]].mean().unstack("step")


def last_within(lazy: pd.DataFrame, threshold: float = 0.1) -> pd.Series:
    """Each width's last step through which the mean error (over seeds) stays below
    ``threshold``: the step before its first record at or above it.

    ``lazy``: one row per record, ``width, seed, step, error``. Returns a series indexed by
    width: the last step if no record reaches ``threshold``, 0 if the first one does. A curve
    that rises above ``threshold`` and falls back below it ends at the step before the rise.
    """
    mean = lazy.groupby(["width", "step"]).error.mean()  # sorted by width, then step

    def held(curve: pd.Series) -> int:
        steps = curve.index.get_level_values("step")
        above = np.flatnonzero(~(curve.to_numpy() < threshold))  # a NaN error breaks it too
        return int(steps[-1]) if not len(above) else int(steps[above[0] - 1]) if above[0] else 0

    return pd.Series({int(w): held(c) for w, c in mean.groupby(level="width")}, dtype=int)


@dataclass(frozen=True)
class NTKFindings:
    """The chapter's findings (see :func:`ntk_findings` for what each field holds)."""

    linear_gap: float
    early_step: int
    last_step: int
    early_error: Mapping[int, float]  # width -> mean error at the first record
    late_error: Mapping[int, float]  # width -> mean error at the last step
    within: Mapping[int, int]  # width -> last step through which it stays below threshold
    drift_rho: float
    n_records: int
    bands: tuple[BandRun, ...]
    roughness_rho: float
    n_vectors: int
    spectrum: pd.DataFrame  # index (method, strength), columns of spectrum_summary
    threshold: float = 0.1

    # ------------------------------------------------------------ the verdicts
    @property
    def early_falls(self) -> bool:
        """The error after the first record falls with every increase of the width."""
        return bool(np.all(np.diff([self.early_error[w] for w in sorted(self.early_error)]) < 0))

    @property
    def start_described(self) -> bool:
        """Kernel GD predicts the widest network's start within ``threshold``."""
        return self.early_error[max(self.early_error)] < self.threshold

    @property
    def whole_run(self) -> tuple[int, ...]:
        """The widths whose mean error is still below ``threshold`` at the last step."""
        return tuple(w for w, e in sorted(self.late_error.items()) if e < self.threshold)

    @property
    def smooth_top(self) -> bool:
        """Roughness grows down the spectrum (Spearman above 0.5: about the 5 % level for
        16 eigenvectors)."""
        return self.roughness_rho > 0.5

    def ratios(self, method: str) -> pd.Series:
        """The strongest setting of ``method`` over the unregularised run, per column."""
        return self.spectrum.loc[method].iloc[-1] / self.spectrum.loc[("none", 0.0)]

    def texts(self) -> dict[str, str]:
        """Name -> text for the chapter's prose (glued with the prefix ``ntk_``)."""
        return {**self._lazy_texts(), **self._band_texts(), **self._spectrum_texts(),
                **self._box_texts()}  # fmt: skip

    def _lazy_texts(self) -> dict[str, str]:
        widths = sorted(self.early_error)
        lo, hi, n = widths[0], widths[-1], self.last_step
        below, cut = self.whole_run, percent(self.threshold, 0)
        grows = [w for w in widths if self.late_error[w] > self.early_error[w]]
        within = [self.within[w] for w in widths]
        never = [w for w in widths if self.within[w] == 0]
        spans = ([f"at no record for {_widths(never)}"] if never else []) + [
            f"through step {self.within[w]} at width {w}" for w in widths if w not in never
        ]
        if not grows:
            late_grows = "does not grow from the first record to the last at any width"
        else:
            where = "every width" if len(grows) == len(widths) else _widths(grows)
            late_grows = f"grows from the first record to the last at {where}"
        if below:
            late = f"below {cut} at {_widths(below)}"
            whole = f"It describes a whole run of {n} steps only at {_widths(below)}"
        else:
            late = f"above {cut} at every width"
            whole = f"At these widths it does not describe a whole run of {n} steps"
        return {
            "linear_gap": f"{self.linear_gap:.1e}",
            "threshold": cut,
            "early_step": str(self.early_step),
            "last_step": str(n),
            "early_range": f"{_pct(self.early_error[lo])} at width {lo} to "
            f"{_pct(self.early_error[hi])} at width {hi}",
            "early_trend": "falls with every increase of the width" if self.early_falls
            else "does not fall steadily with the width",
            "late_grows": late_grows,
            "late_verdict": late,
            "whole_run": whole,
            "late_best": _pct(min(self.late_error.values())),
            "within": join_and(spans),
            "within_trend": "the wider the network, the longer it lasts"
            if np.all(np.diff(within) >= 0) and within[-1] > within[0]
            else "it does not last longer in every wider network",
            "drift_rho": f"{self.drift_rho:.2f}",
            "n_records": str(self.n_records),
        }  # fmt: skip

    def _band_texts(self) -> dict[str, str]:
        def order(b: BandRun) -> str:
            return (f"through all {b.last_step} steps" if b.ordered_throughout
                    else f"through step {b.ordered_until} of {b.last_step}")  # fmt: skip

        keeps = [b.name for b in self.bands if b.slowest_keeps_most]
        grew = [b.name for b in self.bands if b.trace_end > b.trace_start]
        return {
            "bands_order": join_and([f"{order(b)} on {b.name}" for b in self.bands]),
            "slowest_verdict": "in every run" if len(keeps) == len(self.bands)
            else f"only on {join_and(keeps)}" if keeps else "in none of the runs",
            "trace_growth": join_and([f"from {number(b.trace_start, 3)} to "
                                  f"{number(b.trace_end, 3)} on {b.name}" for b in self.bands]),
            "trace_verdict": "grows during training" if len(grew) == len(self.bands)
            else "does not grow in every run",
            "roughness_rho": f"{self.roughness_rho:.2f}",
            "n_vectors": str(self.n_vectors),
            "roughness_order": "a strict order" if self.roughness_rho >= 1
            else "a trend, not a strict order",
            "roughness_verdict": "grows down the spectrum" if self.smooth_top
            else "does not grow clearly down the spectrum",
        }  # fmt: skip

    def _spectrum_texts(self) -> dict[str, str]:
        out = {"top_share": percent(self.spectrum.loc[("none", 0.0), "λ_1 / tr K"], 0)}
        for key, method in (("mgs", "MGS trace"), ("wd", "weight decay")):
            r, strong = self.ratios(method), self.spectrum.loc[method]
            out[f"{key}_strength"] = f"{strong.index[-1]:g}"
            out[f"{key}_ratios"] = ", ".join(f"{k} ×{r[k]:.2f}" for k in ("λ_1", "λ_10", "λ_25"))
            out[f"{key}_rank"] = (f"from {self.spectrum.loc[('none', 0.0), 'effective rank']:.2f}"
                                  f" to {strong['effective rank'].iloc[-1]:.2f}")  # fmt: skip
        mgs, wd = self.ratios("MGS trace"), self.ratios("weight decay")
        out["mgs_top"] = ("cuts λ_1 by a larger factor than λ_10" if mgs["λ_1"] < mgs["λ_10"]
                          else "does not cut λ_1 by more than λ_10")  # fmt: skip
        out["mgs_tail"] = ("leaves the tail almost as it was (λ_25 within 10 %)"
                           if abs(mgs["λ_25"] - 1) < 0.1 else "moves the tail too")  # fmt: skip
        even = abs(wd["λ_1"] - wd["λ_10"]) < abs(mgs["λ_1"] - mgs["λ_10"])
        tail = wd["λ_25"] < min(wd["λ_1"], wd["λ_10"])
        out["wd_shape"] = (("shrinks λ_1 and λ_10 by more similar factors than the trace "
                            "penalty does" if even else "shrinks λ_1 and λ_10 as unevenly as "
                            "the trace penalty does")
                           + (", and the tail (λ_25) by more" if tail else
                              ", and the tail (λ_25) by no more"))  # fmt: skip
        return out

    def _box_texts(self) -> dict[str, str]:
        t = {**self._lazy_texts(), **self._band_texts()}
        held, failed = [], []
        start = (f"after {t['early_step']} steps its error {t['early_trend']}, from "
                 f"{t['early_range']}")  # fmt: skip
        (held if self.start_described and self.early_falls else failed).append(
            f"kernel gradient descent predicts the start of training: {start}"
        )
        keeps = all(b.slowest_keeps_most for b in self.bands)
        (held if keeps else failed).append(
            f"the directions of large eigenvalue are learnt first: the bands of eigen-directions "
            f"keep the order of their speed {t['bands_order']}, and at the end the slowest band "
            f"keeps the largest share of its energy {t['slowest_verdict']}"
        )
        (held if self.smooth_top else failed).append(
            f"they are the smooth directions: roughness {t['roughness_verdict']} (Spearman "
            f"{t['roughness_rho']} over the top {t['n_vectors']} eigenvectors)"
        )
        if not self.whole_run:
            failed.append(f"kernel gradient descent over a whole run: after {self.last_step} "
                          f"steps its mean error is {t['late_verdict']} ({t['late_best']} "
                          f"at best)")  # fmt: skip
        broken = [b for b in self.bands if not b.ordered_throughout]
        if broken:
            failed.append(
                "the order of the bands up to the last step: it breaks after step "
                + join_and([f"{b.ordered_until} on {b.name}" for b in broken])
            )
        moves = self.drift_rho > 0.5 and any(b.trace_end > b.trace_start for b in self.bands)
        why = (
            f"the kernel moves. The prediction error is ranked like the kernel's drift "
            f"(Spearman {t['drift_rho']} over {t['n_records']} records), and tr K grows "
            f"{t['trace_growth']}. Kernel gradient descent assumes a kernel that stands "
            f"still, which the NTK theory reaches only as the width grows without bound"
            if moves
            else "we don't know yet: the kernel's drift does not explain it"
        )
        return {"reproduced": "; ".join(held) if held else "none of the three",
                "not_reproduced": "; ".join(failed) if failed else "nothing at these sizes",
                "why_not": why if failed else "nothing to explain"}  # fmt: skip


def ntk_findings(
    linear_gap: float,
    lazy: pd.DataFrame,
    band_runs: Mapping[str, Mapping[str, Any]],
    roughness: np.ndarray,
    spectrum: pd.DataFrame,
    threshold: float = 0.1,
) -> NTKFindings:
    """The chapter's findings from its own measurements.

    Parameters
    ----------
    linear_gap : float
        Largest gap between a linear model's residuals and kernel gradient descent.
    lazy : pandas.DataFrame
        One row per record of the width sweep: ``width, seed, step, error, drift``.
    band_runs : mapping
        Run name (``"two circles"``) -> ``steps`` (T,), ``measured`` (T, n_bands, fastest
        first), ``values`` (n,) and ``trace_end``.
    roughness : numpy.ndarray, shape (m,)
        Roughness of the top ``m`` eigenvectors, in the order of their eigenvalues.
    spectrum : pandas.DataFrame
        Index ``(method, strength)`` with ``("none", 0.0)``, ``"weight decay"`` and ``"MGS
        trace"`` (strongest last); the columns of :func:`spectrum_summary`.
    threshold : float
        The relative error below which kernel gradient descent describes a run.
    """
    ends = lazy_table(lazy)
    first, last = int(lazy.step.min()), int(lazy.step.max())
    return NTKFindings(
        linear_gap=float(linear_gap), early_step=first, last_step=last,
        early_error={int(w): float(e) for w, e in ends[("error", first)].items()},
        late_error={int(w): float(e) for w, e in ends[("error", last)].items()},
        within={int(w): int(s) for w, s in last_within(lazy, threshold).items()},
        drift_rho=spearman(lazy.drift, lazy.error), n_records=len(lazy),
        bands=tuple(band_run(name, run) for name, run in band_runs.items()),
        roughness_rho=spearman(np.arange(len(roughness)), roughness),
        n_vectors=len(roughness), spectrum=spectrum, threshold=threshold,
    )  # fmt: skip
