"""Self-checks for the chapter \"Watching regularisation through MGS\".

Every check is data for :func:`mgs_teach.checks._common.check`: fixed cases, the expected
answers computed here, and hints for the usual mistakes. The hints never contain the
expected numbers, and a malformed answer is a wrong answer, not a crash.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from mgs_teach.checks._common import Case, _close, _number, check

__all__ = ["kernel_scaling_exponent", "rank_correlation", "trace_growth", "weight_decay_grad"]


# --------------------------------------------------------------------- trace growth


def _growth(frame: pd.DataFrame) -> float:
    first, last = frame.iloc[0], frame.iloc[-1]
    return float(
        (np.log(last["trace"]) - np.log(first["trace"])) / (last["epoch"] - first["epoch"])
    )


def trace_growth(fn: Callable[[pd.DataFrame], Any]) -> bool:
    """Check ``fn(history) -> growth rate of log tr K per epoch``, first to last record.

    ``history`` is one run's tidy history (columns ``epoch`` and ``trace`` among others),
    sorted by step. The rate is ``(ln trK_last - ln trK_first) / (epoch_last - epoch_first)``.
    """
    rng = np.random.default_rng(3)
    cases = []
    for n, t0, rate, start in ((5, 100.0, 0.02, 0.0), (9, 2000.0, -0.01, 0.0), (4, 7.0, 0.3, 2.0)):
        epoch = start + np.sort(rng.uniform(0, 50, n))
        epoch[0] = start
        trace = t0 * np.exp(rate * (epoch - start)) * np.exp(rng.normal(0, 0.05, n))
        trace[0], trace[-1] = t0, t0 * np.exp(rate * (epoch[-1] - start))
        cases.append(
            pd.DataFrame(
                {
                    "step": np.arange(n) * 10,
                    "epoch": epoch,
                    "trace": trace,
                    "test_acc": rng.uniform(0.5, 1, n),
                }
            )  # fmt: skip
        )
    return check(
        "growth rate of tr K", fn, [Case((frame,), _growth(frame)) for frame in cases],
        compare=_number_close(rtol=1e-3, atol=1e-6),
        symptoms=[(lambda got, *_: _number(got) is None,
                   "return one number (a float), the rate per epoch."),
                  (lambda got, *_: _close(_number(got), 0.0),
                   "the rate is not zero: compare the first and the last record.")],
        hint="use the logarithm of tr K (growth is multiplicative), take the difference "
             "between the LAST and the FIRST record, and divide by the epochs between them "
             "(not the number of records or steps).",
    )  # fmt: skip


def _number_close(rtol: float = 1e-4, atol: float = 1e-6) -> Callable[[Any, Case], bool]:
    """A comparison for answers that must be one number (anything ``float()`` accepts)."""

    def compare(got: Any, case: Case) -> bool:
        value = _number(got)
        return value is not None and _close(value, case.expected, rtol=rtol, atol=atol)

    return compare


# ---------------------------------------------------------------- weight decay grad


def weight_decay_grad(fn: Callable[[Any, float], Any]) -> bool:
    """Check ``fn(params, strength) -> gradient of strength * 0.5 * sum(theta**2)``.

    ``params`` is a nested dict of NumPy arrays; the answer must have the same structure.
    """
    rng = np.random.default_rng(5)
    params = {
        "layers": {
            "0": {"kernel": rng.standard_normal((2, 3)), "bias": rng.standard_normal(3)},
            "1": {"kernel": rng.standard_normal((3, 2)), "bias": rng.standard_normal(2)},
        }
    }
    names = [(i, n) for i in ("0", "1") for n in ("kernel", "bias")]

    def leaves(tree):
        return [tree["layers"][i][n] for i, n in names]

    def compare(got, case):
        params, strength = case.args
        return all(_close(g, strength * p) for g, p in zip(leaves(got), leaves(params)))

    def not_a_tree(got, *_):
        try:
            leaves(got)
        except (TypeError, KeyError, IndexError, AttributeError):
            return True
        return False

    return check(
        "weight-decay gradient", fn, [Case((params, s), None) for s in (1e-2, 0.5)],
        compare=compare,
        symptoms=[(not_a_tree,
                   "return a pytree with the same structure as params (try jax.tree.map).")],
        hint="differentiate 0.5 * theta**2 for one parameter, then multiply by the strength; "
             "every leaf, biases included, gets the same rule.",
    )  # fmt: skip


# ------------------------------------------------------------ kernel scaling exponent


def kernel_scaling_exponent(fn: Callable[[int], Any]) -> bool:
    """Check ``fn(depth) -> p`` such that tr K scales by ``c**p`` when every weight matrix of
    a bias-free ReLU network with ``depth`` weight matrices is multiplied by ``c > 0``."""
    return check(
        "scaling exponent of tr K", fn, [Case((d,), 2 * (d - 1)) for d in (1, 2, 3, 6)],
        compare=_number_close(),
        symptoms=[(lambda got, *_: _number(got) is None, "return one number for each depth."),
                  (lambda got, depth: _close(_number(got), 2 * depth),
                   "close: but differentiating with respect to a layer removes its factor c.")],
        hint="f scales like c**depth; a gradient with respect to one layer's weights "
             "loses that layer's factor c. K is a product of two gradients.",
    )  # fmt: skip


# ---------------------------------------------------------------- rank correlation


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra = pd.Series(a).rank().to_numpy()
    rb = pd.Series(b).rank().to_numpy()
    return float(np.corrcoef(ra, rb)[0, 1])


def rank_correlation(fn: Callable[[Any, Any], Any]) -> bool:
    """Check ``fn(a, b) -> Spearman rank correlation`` of two equally long 1-D arrays
    (ties get their average rank)."""
    rng = np.random.default_rng(9)
    x = rng.uniform(0, 10, 9)
    cases = [
        (x, np.exp(x)),  # monotone, not linear: +1
        (x, -(x**3)),  # -1
        (x, rng.uniform(0, 1, 9)),
        (np.array([3.0, 1.0, 2.0, 2.0, 5.0]), np.array([0.1, 0.4, 0.2, 0.3, 0.9])),  # a tie
    ]
    return check(
        "Spearman rank correlation", fn, [Case((a, b), _spearman(a, b)) for a, b in cases],
        compare=_number_close(),
        symptoms=[(lambda got, *_: _number(got) is None, "return one number between -1 and 1."),
                  (lambda got, a, b: _close(_number(got), float(np.corrcoef(a, b)[0, 1])),
                   "that is the Pearson correlation of the values; correlate their ranks.")],
        hint="replace each array by its ranks (ties share their average rank), then take "
             "the Pearson correlation of the two rank vectors.",
    )  # fmt: skip
