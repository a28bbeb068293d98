"""Self-checks for the chapter \"Making the MGS penalty fast\".

Every check is data for :func:`mgs_teach.checks._common.check`: fixed cases, the expected
answers computed here, and hints for the usual mistakes. The hints never contain the
expected numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mgs_teach.checks._common import Case, check

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
    sizes = [(32, 10, 300, 300), (1, 1, 1, 1), (4, 3, 5, 7), (16, 2, 784, 128), (8, 1, 3, 2)]
    cases = [Case((b, c, i, o), (2 * b * c * i * o, b * c * (o + 1) + b * i))
             for b, c, i, o in sizes]  # fmt: skip

    def counts(got):
        naive, structured = (_count(v) for v in got)
        return naive, structured

    outer = "per (sample, output) the naive way forms an n_out x n_in outer product"
    return check(
        "dense-layer multiplications", fn, cases,
        compare=lambda got, case: counts(got) == case.expected,
        symptoms=[
            (lambda got, *_: None in counts(got),
             "return a pair of whole numbers: (naive, structured)."),
            (lambda got, b, c, i, o: counts(got)[0] == b * c * i * o,
             outer + " and then squares each of its entries: that is a multiplication too."),
            (lambda got, b, c, i, o: counts(got)[0] != 2 * b * c * i * o,
             outer + ", then squares and sums its entries; count both steps."),
            (lambda got, b, c, i, o: counts(got)[1] == b * c * (o + i + 1),
             "||a_i||^2 is the same for every output c: compute it once per sample."),
            (lambda got, b, c, i, o: counts(got)[1] == b * c * o + b * i,
             "multiplying ||delta_ic||^2 by ||a_i||^2 costs one more, per (i, c)."),
        ],
        hint="count the squared norms of the delta_ic, those of the a_i (shared by all "
             "outputs) and the products of the two.",
    )  # fmt: skip


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

    def first_layer(w1, b1, w2, b2, x):
        z = x @ w1.T + b1
        return float(np.sum(((w2[None] * (z[:, None] > 0)) ** 2).sum(-1)
                            * (np.sum(x**2, 1)[:, None] + 1)))  # fmt: skip

    def no_bias(w1, b1, w2, b2, x):
        z = x @ w1.T + b1
        a = np.maximum(z, 0.0)
        first = np.sum(((w2[None] * (z[:, None] > 0)) ** 2).sum(-1) * np.sum(x**2, 1)[:, None])
        return float(first) + w2.shape[0] * float(np.sum(a**2))

    not_a_number = "return a single finite number, tr K, not an array."
    return check(
        "two-layer trace", fn,
        [Case(args, _two_layer_reference(*args)) for args in _two_layer_cases()],
        shape_hint=not_a_number,
        symptoms=[(lambda got, *_: _scalar(got) is None, not_a_number)],
        diagnoses=[
            (lambda *a: _two_layer_reference(*a) - first_layer(*a),
             "the first layer's parameters count too: back-propagate delta through W2."),
            (no_bias, "each bias adds ||delta||^2 times 1: use ||a||^2 + 1, not ||a||^2."),
        ],
        hint="per layer, sum ||delta_ic||^2 (||a_i||^2 + 1) over samples and classes; "
             "the first layer's delta is W2[c] masked by where the ReLU is active.",
        rtol=1e-6, atol=0.0,
    )  # fmt: skip


# ---------------------------------------------------------------- Hutchinson variance


def hutchinson_variance(fn: Callable[[np.ndarray, int], Any]) -> bool:
    """Check ``fn(blocks, k) -> variance`` of the class-only Hutchinson estimate.

    ``blocks`` has shape ``(B, C, C)``: the symmetric positive semi-definite diagonal block
    ``k(x_i, x_i)`` of each sample. ``k`` is the number of Rademacher probes; the estimate is
    the mean over probes of :math:`\\sum_i v_i^\\top k(x_i, x_i) v_i`.
    """
    rng = np.random.default_rng(32)
    cases = []
    for b, c, k in [(3, 4, 1), (2, 3, 4), (5, 2, 16)]:
        g = rng.standard_normal((b, c, c + 2))
        blocks = np.einsum("bci,bdi->bcd", g, g)
        cases.append(Case((blocks, k), _variance(blocks, k)))
    not_a_number = "return a single finite number, the variance."
    pairs = "each unordered pair c != d appears twice in v^T k v; count its factor again."
    return check(
        "Hutchinson variance", fn, cases,
        shape_hint=not_a_number,
        symptoms=[(lambda got, *_: _scalar(got) is None, not_a_number)],
        diagnoses=[
            (lambda blocks, k: 2.0 / k * float(np.sum(blocks**2)),
             "the diagonal entries do not vary: v_c^2 = 1 for a Rademacher probe."),
            (lambda blocks, k: k * _variance(blocks, k) if k > 1 else None,
             "averaging k independent probes divides the variance by k."),
            (lambda blocks, k: _variance(blocks, k) / 2, pairs),
            (lambda blocks, k: 2 * _variance(blocks, k), pairs),
        ],
        hint="write v^T k v = sum_c k_cc + sum_{c != d} v_c v_d k_cd and use independence.",
        rtol=1e-6, atol=0.0,
    )  # fmt: skip


def _variance(blocks: np.ndarray, k: int) -> float:
    off = blocks - np.einsum("bc,cd->bcd", np.einsum("bcc->bc", blocks), np.eye(blocks.shape[1]))
    return 2.0 / k * float(np.sum(off**2))


# ------------------------------------------------------------------ patch-Gram crossover


def gram_crossover(fn: Callable[[int, int, int], Any]) -> bool:
    """Check ``fn(n_pos, n_in, n_out) -> True`` iff the patch-Gram form is cheaper.

    Cost model (multiply-adds per sample and class): direct ``n_pos * n_in * n_out`` for
    :math:`\\Delta^\\top P`; Gram ``n_pos**2 * (n_in + n_out)`` for the two Gram matrices
    (the inner product of the Grams is ignored).
    """
    sizes = [(784, 25, 6), (100, 150, 16), (1, 300, 300), (16, 400, 120), (25, 150, 16),
             (4, 64, 64), (49, 9, 32), (36, 576, 64), (1024, 27, 64), (8, 32, 32)]  # fmt: skip
    cases = [Case((p, i, o), p**2 * (i + o) < p * i * o) for p, i, o in sizes]
    return check(
        "patch-Gram crossover", fn, cases,
        compare=lambda got, case: isinstance(got, bool | np.bool_) and got == case.expected,
        symptoms=[(lambda got, *_: not isinstance(got, bool | np.bool_), "return True or False.")],
        hint="compare the two multiply-add counts for these sizes; one of them grows "
             "with the square of the number of positions.",
    )  # fmt: skip
