"""Self-checks for the chapter \"Making the MGS penalty fast\".

Every check calls the student's function on a few fixed test cases, compares with a
reference computed here, prints a verdict with a hint, and returns ``True`` or ``False``.
The hints never contain the expected numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mgs_teach.checks._common import _call, _close, _report

__all__ = ["dense_multiplications", "gram_crossover", "hutchinson_variance", "two_layer_trace"]


def _scalar(value: Any) -> float | None:
    """``value`` as a float if it is a single finite number, else ``None``."""
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return None
    if arr.shape != () or not np.isfinite(arr):
        return None
    return float(arr)


# ------------------------------------------------------------ dense multiplications


def _count(value: Any) -> int | None:
    """``value`` as an int if it is a whole number (not a bool), else ``None``."""
    if isinstance(value, bool | np.bool_):
        return None
    number = _scalar(value)
    return int(number) if number is not None and number == int(number) else None


def dense_multiplications(fn: Callable[[int, int, int, int], Any]) -> bool:
    """Check ``fn(B, C, n_in, n_out) -> (naive, structured)`` multiplication counts.

    The counts are for one dense layer's weight share of ``tr K``, with every ``delta_ic``
    (``n_out`` entries) and ``a_i`` (``n_in`` entries) known: naive, form each gradient
    ``delta_ic a_i^T`` and sum its squared entries; structured, ``||delta_ic||^2 ||a_i||^2``
    with ``||a_i||^2`` computed once per sample. Every product of two numbers, squares
    included, is one multiplication; additions are free.
    """
    what = "dense-layer multiplications"
    cases = [(32, 10, 300, 300), (1, 1, 1, 1), (4, 3, 5, 7), (16, 2, 784, 128), (8, 1, 3, 2)]
    for b, c, n_in, n_out in cases:
        got = _call(fn, b, c, n_in, n_out)
        try:
            naive, structured = (_count(v) for v in got)
        except (TypeError, ValueError):
            naive = structured = None
        if naive is None or structured is None:
            return _report(False, "return a pair of whole numbers: (naive, structured).",
                           what=what)  # fmt: skip
        if naive != 2 * b * c * n_in * n_out:
            hint = "per (sample, output) the naive way forms an n_out x n_in outer product"
            if naive == b * c * n_in * n_out:
                hint += " and then squares each of its entries: that is a multiplication too."
            else:
                hint += ", then squares and sums its entries; count both steps."
            return _report(False, hint, what=what)
        if structured != b * c * (n_out + 1) + b * n_in:
            if structured == b * c * (n_out + n_in + 1):
                hint = "||a_i||^2 is the same for every output c: compute it once per sample."
            elif structured == b * c * n_out + b * n_in:
                hint = "multiplying ||delta_ic||^2 by ||a_i||^2 costs one more, per (i, c)."
            else:
                hint = (
                    "count the squared norms of the delta_ic, those of the a_i (shared by all "
                    "outputs) and the products of the two."
                )
            return _report(False, hint, what=what)
    return _report(True, "", what=what)


# ------------------------------------------------------------------ two-layer trace


def _two_layer_reference(w1, b1, w2, b2, x) -> float:
    """tr K from explicit per-(sample, class) gradient vectors (a different route)."""
    total = 0.0
    for xi in x:
        z = w1 @ xi + b1
        a = np.maximum(z, 0.0)
        mask = (z > 0).astype(float)
        for c in range(w2.shape[0]):
            g_w2 = np.zeros_like(w2)
            g_w2[c] = a
            g_b2 = np.eye(w2.shape[0])[c]
            back = w2[c] * mask
            g_w1 = np.outer(back, xi)
            g = np.concatenate([g_w1.ravel(), back, g_w2.ravel(), g_b2])
            total += float(g @ g)
    return total


def _two_layer_cases() -> list[tuple]:
    rng = np.random.default_rng(31)
    cases = []
    for b, d, h, c in [(4, 3, 5, 2), (1, 2, 3, 1), (6, 4, 7, 3)]:
        w1, b1 = rng.standard_normal((h, d)), 0.5 * rng.standard_normal(h)
        w2, b2 = rng.standard_normal((c, h)), rng.standard_normal(c)
        cases.append((w1, b1, w2, b2, rng.standard_normal((b, d))))
    return cases


def two_layer_trace(fn: Callable[..., Any]) -> bool:
    """Check ``fn(W1, b1, W2, b2, x) -> tr K`` for ``f(x) = W2 relu(W1 x + b1) + b2``.

    ``W1`` is ``(h, d)``, ``b1`` ``(h,)``, ``W2`` ``(C, h)``, ``b2`` ``(C,)`` and ``x`` is
    ``(B, d)``. ``tr K`` sums over all parameters, samples and outputs.
    """
    what = "two-layer trace"
    for w1, b1, w2, b2, x in _two_layer_cases():
        expected = _two_layer_reference(w1, b1, w2, b2, x)
        got = _scalar(_call(fn, w1.copy(), b1.copy(), w2.copy(), b2.copy(), x.copy()))
        if got is None:
            return _report(False, "return a single finite number, tr K, not an array.",
                           what=what)  # fmt: skip
        if _close(got, expected, rtol=1e-6):
            continue
        z = x @ w1.T + b1
        a = np.maximum(z, 0.0)
        c = w2.shape[0]
        first = float(np.sum(((w2[None] * (z[:, None] > 0)) ** 2).sum(-1)
                             * (np.sum(x**2, 1)[:, None] + 1)))  # fmt: skip
        no_bias = float(np.sum(((w2[None] * (z[:, None] > 0)) ** 2).sum(-1)
                               * np.sum(x**2, 1)[:, None])) + c * float(np.sum(a**2))  # fmt: skip
        if _close(got, expected - first, rtol=1e-6):
            hint = "the first layer's parameters count too: back-propagate delta through W2."
        elif _close(got, no_bias, rtol=1e-6):
            hint = "each bias adds ||delta||^2 times 1: use ||a||^2 + 1, not ||a||^2."
        else:
            hint = (
                "per layer, sum ||delta_ic||^2 (||a_i||^2 + 1) over samples and classes; "
                "the first layer's delta is W2[c] masked by where the ReLU is active."
            )
        return _report(False, hint, what=what)
    return _report(True, "", what=what)


# ---------------------------------------------------------------- Hutchinson variance


def hutchinson_variance(fn: Callable[[np.ndarray, int], Any]) -> bool:
    """Check ``fn(blocks, k) -> variance`` of the class-only Hutchinson estimate.

    ``blocks`` has shape ``(B, C, C)``: the symmetric positive semi-definite diagonal block
    ``k(x_i, x_i)`` of each sample. ``k`` is the number of Rademacher probes; the estimate is
    the mean over probes of :math:`\\sum_i v_i^\\top k(x_i, x_i) v_i`.
    """
    rng = np.random.default_rng(32)
    what = "Hutchinson variance"
    cases = []
    for b, c, k in [(3, 4, 1), (2, 3, 4), (5, 2, 16)]:
        g = rng.standard_normal((b, c, c + 2))
        cases.append((np.einsum("bci,bdi->bcd", g, g), k))
    for blocks, k in cases:
        off = blocks - np.einsum(
            "bc,cd->bcd", np.einsum("bcc->bc", blocks), np.eye(blocks.shape[1])
        )
        expected = 2.0 / k * float(np.sum(off**2))
        got = _scalar(_call(fn, blocks.copy(), k))
        if got is None:
            return _report(False, "return a single finite number, the variance.", what=what)
        if _close(got, expected, rtol=1e-6):
            continue
        if _close(got, 2.0 / k * float(np.sum(blocks**2)), rtol=1e-6):
            hint = "the diagonal entries do not vary: v_c^2 = 1 for a Rademacher probe."
        elif k > 1 and _close(got, k * expected, rtol=1e-6):
            hint = "averaging k independent probes divides the variance by k."
        elif _close(got, expected / 2, rtol=1e-6) or _close(got, 2 * expected, rtol=1e-6):
            hint = "each unordered pair c != d appears twice in v^T k v; count its factor again."
        else:
            hint = "write v^T k v = sum_c k_cc + sum_{c != d} v_c v_d k_cd and use independence."
        return _report(False, hint, what=what)
    return _report(True, "", what=what)


# ------------------------------------------------------------------ patch-Gram crossover


def gram_crossover(fn: Callable[[int, int, int], Any]) -> bool:
    """Check ``fn(n_pos, n_in, n_out) -> True`` iff the patch-Gram form is cheaper.

    Cost model (multiply-adds per sample and class): direct ``n_pos * n_in * n_out`` for
    :math:`\\Delta^\\top P`; Gram ``n_pos**2 * (n_in + n_out)`` for the two Gram matrices
    (the inner product of the Grams is ignored).
    """
    what = "patch-Gram crossover"
    cases = [(784, 25, 6), (100, 150, 16), (1, 300, 300), (16, 400, 120), (25, 150, 16),
             (4, 64, 64), (49, 9, 32), (36, 576, 64), (1024, 27, 64), (8, 32, 32)]  # fmt: skip
    for n_pos, n_in, n_out in cases:
        gram = n_pos**2 * (n_in + n_out)
        direct = n_pos * n_in * n_out
        answer = _call(fn, n_pos, n_in, n_out)
        if not isinstance(answer, bool | np.bool_):
            return _report(False, "return True or False.", what=what)
        if bool(answer) != (gram < direct):
            return _report(
                False,
                "compare the two multiply-add counts for these sizes; one of them grows "
                "with the square of the number of positions.",
                what=what,
            )
    return _report(True, "", what=what)
