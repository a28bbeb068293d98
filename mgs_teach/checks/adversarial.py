"""Self-checks for the chapter \\"Spotting adversarial inputs with MGS\\".

Every check is data for :func:`mgs_teach.checks._common.check`: fixed cases, the expected
answers computed here, and hints for the usual mistakes. The hints never contain the
expected numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mgs_teach.checks._common import Case, _close, _number, check

__all__ = ["auc", "fgsm_step", "linf_projection", "tpr_at_fpr"]


def fgsm_step(fn: Callable[..., Any]) -> bool:
    """Check ``fn(x, grad, eps) -> x'``: one FGSM step, ``x + eps * sign(grad)`` clipped to
    ``[0, 1]``; every array has the shape of ``x``."""
    rng = np.random.default_rng(51)
    cases = []
    for shape, eps in (((4, 6), 0.1), ((2, 3, 3), 0.3), ((5,), 0.05)):
        x = rng.uniform(0, 1, shape)
        x.flat[:2] = (0.0, 1.0)  # pixels already at the limits
        grad = rng.standard_normal(shape)
        cases.append(Case((x, grad, eps), np.clip(x + eps * np.sign(grad), 0, 1)))
    return check(
        "FGSM step", fn, cases,
        shape_hint="return the perturbed input, an array with the shape of x.",
        diagnoses=[
            (lambda x, g, eps: x + eps * np.sign(g),
             "pixels must stay in [0, 1]: clip after the step."),
            (lambda x, g, eps: np.clip(x - eps * np.sign(g), 0, 1),
             "the attack increases the loss: step along the gradient, not against it."),
            (lambda x, g, eps: np.clip(x + eps * g, 0, 1),
             "FGSM moves every pixel by exactly eps: use the sign of the gradient."),
        ],
        hint="move every pixel by eps in the direction of the sign of its gradient, then keep "
             "it in [0, 1].",
    )  # fmt: skip


def linf_projection(fn: Callable[..., Any]) -> bool:
    """Check ``fn(x, x0, eps) -> the nearest x'`` with ``|x' - x0| <= eps`` entry by entry and
    pixels in ``[0, 1]``."""
    rng = np.random.default_rng(52)
    cases = []
    for shape, eps in (((3, 4), 0.1), ((6,), 0.25), ((2, 2, 2), 0.05)):
        x0 = rng.uniform(0, 1, shape)
        x = x0 + rng.uniform(-3 * eps, 3 * eps, shape)
        x.flat[0] = -0.5  # outside [0, 1] too
        cases.append(Case((x, x0, eps), np.clip(np.clip(x, x0 - eps, x0 + eps), 0, 1)))

    def l2_ball(x, x0, eps):
        d = x - x0
        return np.clip(x0 + d * min(1.0, eps / np.linalg.norm(d)), 0, 1)

    return check(
        "L-infinity projection", fn, cases,
        shape_hint="return an array with the shape of x.",
        diagnoses=[
            (lambda x, x0, eps: np.clip(x, x0 - eps, x0 + eps),
             "the pixels must also stay in [0, 1]."),
            (l2_ball, "that is the projection onto an L2 ball; the L-infinity ball is a box, "
                      "so each entry is clipped on its own."),
        ],
        hint="clip each entry to [x0 - eps, x0 + eps], then to [0, 1]; both are boxes, so the "
             "result is the nearest point of their intersection.",
    )  # fmt: skip


def _auc(neg: np.ndarray, pos: np.ndarray, tie: float = 0.5) -> float:
    diff = pos[:, None] - neg[None, :]
    return float(np.mean((diff > 0) + tie * (diff == 0)))


def auc(fn: Callable[[np.ndarray, np.ndarray], Any]) -> bool:
    """Check ``fn(scores_negative, scores_positive) -> AUC``, the probability that a random
    positive scores above a random negative, ties counting one half. Cases include ties and
    arrays of different lengths."""
    rng = np.random.default_rng(53)
    inputs = [(rng.normal(0, 1, 30), rng.normal(1, 1, 20)),
              (np.array([0.1, 0.4, 0.4, 0.9]), np.array([0.4, 0.8, 0.9])),
              (rng.normal(0, 1, 7), rng.normal(-1, 1, 11))]  # fmt: skip
    return check(
        "AUC", fn, [Case((n, p), _auc(n, p)) for n, p in inputs],
        compare=lambda got, case: _close(_number(got), case.expected, rtol=1e-9, atol=1e-9),
        symptoms=[
            (lambda got, n, p: _number(got) is None, "return one number between 0 and 1."),
            (lambda got, n, p: _close(_number(got), 1 - _auc(n, p)),
             "that is the AUC of the opposite score: positives should score high."),
            (lambda got, n, p: _close(_number(got), _auc(n, p, tie=0.0))
             or _close(_number(got), _auc(n, p, tie=1.0)), "a tie counts one half."),
        ],
        hint="compare every positive with every negative: the AUC is the fraction of pairs "
             "the positive wins (the Mann-Whitney statistic divided by the number of pairs).",
    )  # fmt: skip


def _tpr(neg: np.ndarray, pos: np.ndarray, fpr: float, strict: bool = True) -> float:
    k = int(np.floor(fpr * len(neg) + 1e-9))  # + 1e-9: 0.29 * 100 is 28.999999999999996
    threshold = np.sort(neg)[::-1][k]  # the first negative that must not be flagged
    return float(np.mean(pos > threshold if strict else pos >= threshold))


def _quantile_rate(neg: np.ndarray, pos: np.ndarray, fpr: float) -> float:
    """The usual mistake: the threshold at the interpolated (1 - fpr) quantile."""
    return float(np.mean(pos > np.quantile(neg, 1 - fpr)))


def tpr_at_fpr(fn: Callable[..., Any]) -> bool:
    """Check ``fn(scores_negative, scores_positive, fpr) -> detection rate``.

    The detector flags every score strictly above a threshold; the threshold is the lowest for
    which at most a fraction ``fpr`` of the negatives are flagged (``fpr < 1``). The answer is
    the fraction of positives flagged.
    """
    rng = np.random.default_rng(54)
    cases = []
    for n_neg, n_pos, fpr in ((200, 50, 0.05), (40, 40, 0.1), (10, 3, 0.0), (100, 30, 0.29)):
        neg, pos = rng.normal(0, 1, n_neg), rng.normal(1.5, 1, n_pos)
        cases.append(Case((neg, pos, fpr), _tpr(neg, pos, fpr)))
    # a positive tied with the threshold negative, and one between it and the 0.75 quantile
    tied_neg, tied_pos = np.arange(10.0), np.array([6.9, 7.0, 7.5, 9.5])
    cases.append(Case((tied_neg, tied_pos, 0.25), _tpr(tied_neg, tied_pos, 0.25)))
    return check(
        "detection rate at a false-alarm rate", fn, cases,
        compare=lambda got, case: _close(_number(got), case.expected, rtol=1e-9, atol=1e-9),
        symptoms=[
            (lambda got, *_: _number(got) is None, "return one number between 0 and 1."),
            (lambda got, n, p, fpr: _close(_number(got), _tpr(n, p, fpr, strict=False)),
             "flag scores strictly above the threshold: a positive equal to it is not flagged."),
            (lambda got, n, p, fpr: _close(_number(got), _quantile_rate(n, p, fpr)),
             "np.quantile interpolates between scores; the threshold must be one of the "
             "negatives' scores, the one in position floor(fpr * n) from the top."),
            (lambda got, n, p, fpr: _close(_number(got), float(np.mean(p > np.quantile(p, fpr)))),
             "the threshold comes from the negatives (the false alarms), not the positives."),
        ],
        hint="sort the negatives from high to low: with the threshold at the negative in "
             "position floor(fpr * n), at most fpr * n negatives lie strictly above it.",
    )  # fmt: skip
