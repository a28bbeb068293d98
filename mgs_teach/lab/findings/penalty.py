"""What the MGS penalty chapter's runs show, computed, for its prose.

The chapter makes three kinds of statements about its own runs: that Appendix A.4's chain
``‖∇θ L‖² = gᵀKg ≤ λmax(K)‖g‖² ≤ tr K ‖g‖²`` holds during an unpenalised run and that its
gap widens; that the output gradient and ``‖∇θ L‖²`` vanish while ``tr K`` grows and the
network memorises its flipped labels; and what the trace penalty does to the two-circles
network of the explorer, from no penalty to one so strong that the network collapses to a
constant. :func:`penalty_findings` reduces the runs to those statements, each chosen by the
numbers, with the numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mgs_teach.lab.findings import number, percent

__all__ = ["QUANTITIES", "PenaltyFindings", "chain_factors", "chain_holds", "penalty_findings"]

#: How the prose names the chain's columns.
QUANTITIES = {"train_loss": "train loss", "output_grad_sq": "‖∇f L‖²",
              "param_grad_sq": "‖∇θ L‖²", "trace": "tr K"}  # fmt: skip


def chain_holds(chain: pd.DataFrame, rtol: float = 1e-8) -> pd.Series:
    """Whether Appendix A.4's chain holds at each record of ``chain`` (columns
    ``param_grad_sq, quadratic, lambda_bound, trace_bound``): the equality to ``rtol`` and
    each inequality to a relative ``1e-10``."""
    return (np.isclose(chain.param_grad_sq, chain.quadratic, rtol=rtol)
            & (chain.quadratic <= chain.lambda_bound * (1 + 1e-10))
            & (chain.lambda_bound <= chain.trace_bound * (1 + 1e-10)))  # fmt: skip


def chain_factors(chain: pd.DataFrame) -> pd.DataFrame:
    """Each quantity of :data:`QUANTITIES` at the first and the last record of ``chain``,
    and their ratio (index: the prose's names; columns ``first, last, factor``)."""
    first, last = chain.iloc[0], chain.iloc[-1]
    rows = {name: {"first": first[c], "last": last[c], "factor": last[c] / first[c]}
            for c, name in QUANTITIES.items()}  # fmt: skip
    return pd.DataFrame(rows).T


def _x(value: float) -> str:  # a factor to two significant figures: ×0.047, ×12, ×110,000
    return f"×{number(float(f'{value:.2g}'))}"


@dataclass(frozen=True)
class PenaltyFindings:
    """The chapter's runs, reduced (see :func:`penalty_findings`)."""

    chain: pd.DataFrame  # one row per record: step, train_loss, the bounds' terms
    flipped: Mapping[str, int]  # "labels", "fitted at start", "fitted at end"
    grid: pd.DataFrame  # one row per (noise, strength) of the explorer's grid
    floor: float  # tr K of a constant network on the monitoring batch

    def factors(self) -> pd.DataFrame:
        """:func:`chain_factors` of the run."""
        return chain_factors(self.chain)

    @property
    def gap(self) -> tuple[float, float]:
        """tr K ‖g‖² / ‖∇θ L‖², the loosest bound's gap, at the first and the last record."""
        ratio = self.chain.trace_bound / self.chain.param_grad_sq
        return float(ratio.iloc[0]), float(ratio.iloc[-1])

    def texts(self) -> dict[str, str]:
        """Name -> text for the chapter's prose (glued with the prefix ``pen_``)."""
        return {**self._chain_texts(), **self._grid_texts()}

    def _chain_texts(self) -> dict[str, str]:
        holds, n = int(chain_holds(self.chain).sum()), len(self.chain)
        first, last = self.gap
        f = self.factors()["factor"]
        fl = self.flipped
        end = fl["fitted at end"]
        memorised = end > fl["fitted at start"] and 2 * end > fl["labels"]  # most, and more
        return {
            "chain_holds": f"at every one of the {n} records" if holds == n
            else f"at only {holds} of the {n} records",
            "gap": f"from {_x(first)} at the first record to {_x(last)} at the last",
            "gap_verdict": "widens" if last > first else "does not widen",
            "loss_factor": _x(f["train loss"]),
            "output_factor": _x(f["‖∇f L‖²"]),
            "param_factor": _x(f["‖∇θ L‖²"]),
            "trace_factor": _x(f["tr K"]),
            "trace_verdict": "grows" if f["tr K"] > 1 else "does not grow",
            "flipped": f"{fl['fitted at end']} of its {fl['labels']} flipped training labels "
            f"at the last record, against {fl['fitted at start']} at the start",
            "memorise_verdict": "while the network memorises the flipped labels" if memorised
            else "although the network does not memorise the flipped labels",
        }  # fmt: skip

    def _grid_texts(self) -> dict[str, str]:
        g = self.grid.sort_values(["noise", "strength"])
        rows = [r for _, r in g.groupby("noise")]
        lowers = all(np.all(np.diff(r["tr K"]) < 0) for r in rows)
        softer = all(r["confidence"].iloc[1] < r["confidence"].iloc[0] for r in rows)
        noisy = rows[-1]
        acc0, acc1 = noisy["test accuracy"].iloc[0], noisy["test accuracy"].iloc[1]
        strong = g[g.strength == g.strength.max()]
        constant = bool((strong["spread"] < 0.01).all())
        at_floor = bool((abs(strong["tr K"] / self.floor - 1) < 0.05).all())
        guess = bool((abs(strong["test accuracy"] - strong["majority"]) <= 0.02 + 1e-12).all())
        conf = [f"{r['confidence'].iloc[0]:.2f} to {r['confidence'].iloc[1]:.2f} at noise "
                f"{r.noise.iloc[0]:g}" for r in rows]  # fmt: skip
        return {
            "grid_trace": "lowers tr K" if lowers else "does not lower tr K in every row",
            "grid_trace_values": "; ".join(
                " → ".join(number(v, 3) for v in r["tr K"]) + f" at noise {r.noise.iloc[0]:g}"
                for r in rows),
            "grid_soft": "softens the prediction" if softer
            else "does not soften the prediction in every row",
            "grid_confidence": " and from ".join(conf),
            "grid_moderate": ("raises" if acc1 > acc0 else "does not raise")
            + f" the test accuracy, from {percent(acc0)} to {percent(acc1)}",
            "grid_noise": f"{noisy.noise.iloc[0]:g}",
            "grid_strong": f"{g.strength.max():g}",
            "grid_collapse": "collapses to a constant" if constant
            else "does not collapse to a constant",
            "grid_spread": number(float(strong["spread"].max()), 1),
            "grid_floor": f"{number(self.floor)}",
            "grid_strong_trace": " and ".join(number(v, 3) for v in strong["tr K"]),
            "grid_floor_verdict": "is the floor" if at_floor else "stays above the floor",
            "grid_strong_acc": " and ".join(percent(v) for v in strong["test accuracy"]),
            "grid_guess": "that of guessing one class" if guess
            else "not that of guessing one class",
            "grid_majority": percent(float(strong["majority"].max())),
        }  # fmt: skip


def penalty_findings(chain: pd.DataFrame, flipped: Mapping[str, int], grid: pd.DataFrame,
                     floor: float) -> PenaltyFindings:  # fmt: skip
    """The chapter's findings from its runs.

    Parameters
    ----------
    chain : pandas.DataFrame
        One row per record of the unpenalised run, first to last: ``step, train_loss`` and
        the terms of :func:`mgs_teach.penalties.loss_gradient_bounds` (``param_grad_sq,
        quadratic, lambda_bound, trace_bound, trace, output_grad_sq``).
    flipped : mapping
        ``"labels"``: how many training labels were flipped; ``"fitted at start"`` and
        ``"fitted at end"``: how many of them the network predicts (as flipped) at the first
        and the last record.
    grid : pandas.DataFrame
        One row per explorer setting: ``noise, strength, tr K, test accuracy, confidence``
        (mean largest class probability on the test points), ``spread`` (standard deviation
        of the predicted probability over them) and ``majority`` (the test set's largest
        class share). Each noise level needs at least two strengths, the smallest 0.
    floor : float
        tr K of a network whose output depends on its output biases only.
    """
    return PenaltyFindings(chain, {k: int(v) for k, v in flipped.items()}, grid, float(floor))
