"""Self-checks for the chapter \"Measuring gradient similarity\".

Every check is data for :func:`mgs_teach.checks._common.check`: fixed cases, the expected
answers computed here, and hints for the usual mistakes. The hints never contain the
expected numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mgs_teach.checks._common import Case, _close, _number, _shape, check

__all__ = [
    "centred_kernel",
    "per_output_centring",
    "scatter_spectrum",
    "singular_batch",
    "spectral_means",
]


def _random_psd(n: int, rank: int, rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
    g = rng.standard_normal((n, rank))
    return scale * (g @ g.T)


def _spectrum_psd(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A symmetric matrix with the given eigenvalues and a random eigenbasis."""
    q, _ = np.linalg.qr(rng.standard_normal((values.size, values.size)))
    k = (q * values) @ q.T
    return (k + k.T) / 2


# ----------------------------------------------------------------- scatter spectrum


def scatter_spectrum(fn: Callable[[np.ndarray], Any]) -> bool:
    """Check ``fn(theta) -> eigenvalues of theta.T @ theta``, all ``p`` of them, largest first.

    ``theta`` has shape ``(n, p)``; the cases cover ``n < p``, ``n > p``, ``n == p`` and a
    rank-deficient ``theta``.
    """
    rng = np.random.default_rng(11)
    low_rank = rng.standard_normal((9, 2)) @ rng.standard_normal((2, 6))
    cases = [
        rng.standard_normal((4, 12)),
        rng.standard_normal((12, 4)),
        rng.standard_normal((6, 6)),
        low_rank,
    ]
    return check(
        "scatter spectrum", fn,
        [Case((t,), e := np.linalg.eigvalsh(t.T @ t)[::-1], rtol=1e-4, atol=1e-5 * e[0])
         for t in cases],
        shape_hint=lambda case, got: (
            f"for theta of shape {case.args[0].shape} return a 1-D array with one eigenvalue "
            f"per column of theta (got shape {_shape(got)}). S is p x p, so pad the non-zero "
            "eigenvalues of the n x n Gram matrix with zeros."),
        hint=lambda case, got: (
            f"wrong values for theta of shape {case.args[0].shape}. The non-zero eigenvalues "
            "of S = theta.T @ theta are those of K = theta @ theta.T; the other p - rank ones "
            "are zero. Sort largest first."),
    )  # fmt: skip


# ------------------------------------------------------------------- singular batch


def _smallest_singular_batch(p: int, c: int) -> int:
    return p // c + 1


def singular_batch(fn: Callable[[int, int], Any]) -> bool:
    """Check ``fn(p, C) -> smallest batch size B at which the MGS kernel must be singular``."""
    cases = [(114, 2), (690_010, 10), (50, 1), (7, 3), (12, 4), (1, 5)]
    return check(
        "singular batch size", fn, [Case((p, c), _smallest_singular_batch(p, c)) for p, c in cases],
        compare=lambda got, case: _number(got) is not None and int(got) == got == case.expected,
        hint="K is (B*C) x (B*C) and rank K <= min(B*C, p). The kernel is singular for every "
             "model exactly when B*C > p; find the smallest such integer B. Check the case "
             "where p is a multiple of C.",
    )  # fmt: skip


# ------------------------------------------------------------------- centred kernel


def centred_kernel(fn: Callable[[np.ndarray], Any]) -> bool:
    """Check ``fn(K) -> H @ K @ H``, the doubly centred kernel."""
    rng = np.random.default_rng(12)
    cases = [_random_psd(5, 3, rng), _random_psd(8, 8, rng, scale=100.0), np.ones((3, 3))]
    cases.append(_random_psd(1, 1, rng))

    def centred(k):
        h = np.eye(len(k)) - np.full(k.shape, 1.0 / len(k))
        return h @ k @ h

    return check(
        "centred kernel", fn,
        [Case((k,), centred(k), rtol=1e-6, atol=1e-8 * max(1.0, float(np.abs(k).max())))
         for k in cases],
        hint=lambda case, got: (
            f"for an {len(case.args[0])} x {len(case.args[0])} kernel the answer must be an "
            f"{len(case.args[0])} x {len(case.args[0])} matrix equal to H K H. Expand "
            "(I - 11^T/n) K (I - 11^T/n): every entry loses its row mean and its column mean "
            "and gains back the mean of all entries."),
    )  # fmt: skip


# -------------------------------------------------------------- per-output centring


def per_output_centring(fn: Callable[[np.ndarray, int], Any]) -> bool:
    """Check ``fn(theta, n_outputs) -> (H_B ⊗ I_C) @ theta``, each output centred on its own.

    ``theta`` has shape ``(B*C, p)`` with sample-major rows (row ``i*C + c`` is output ``c``
    of sample ``i``) and ``C = n_outputs``. The cases have a non-zero mean gradient per
    output, and include ``C = 1`` and ``B = 1``.
    """
    rng = np.random.default_rng(14)
    cases = [(4, 2, 5), (3, 3, 7), (6, 1, 4), (2, 4, 3), (1, 3, 2)]
    thetas = []
    for b, c, p in cases:
        theta = rng.standard_normal((b * c, p)) + np.tile(3.0 * rng.standard_normal((c, p)), (b, 1))
        thetas.append(Case((theta, c), _centre_outputs(theta, c)))

    def output_major(theta, c):
        b = len(theta) // c
        return np.kron(np.eye(c), np.eye(b) - np.full((b, b), 1.0 / b)) @ theta

    return check(
        "per-output centring", fn, thetas,
        shape_hint=lambda case, got: (
            f"for theta of shape {case.args[0].shape} return the centred gradients, an array "
            f"of the same shape (got shape {_shape(got)})."),
        diagnoses=[
            (lambda theta, c: theta - theta.mean(axis=0),
             "this subtracts one mean from all B*C rows, mixing the outputs; every output "
             "c needs the mean of its own B rows."),
            (output_major,
             "the rows are sample-major: the C rows of sample i come together, so the "
             "rows of output c are c, C + c, 2C + c, ..."),
        ],
        hint="view theta as (B, C, p) and subtract, for every output c, the mean over "
             "the B samples; then return to the (B*C, p) layout.",
        rtol=1e-5, atol=1e-6,  # float32 answers pass too
    )  # fmt: skip


def _centre_outputs(theta: np.ndarray, c: int) -> np.ndarray:
    b = len(theta) // c
    return np.kron(np.eye(b) - np.full((b, b), 1.0 / b), np.eye(c)) @ theta


# ------------------------------------------------------------------- spectral means


def _means(k: np.ndarray) -> tuple[float, float]:
    n = k.shape[0]
    sign, logdet = np.linalg.slogdet(k)
    gm = float(np.exp(logdet / n)) if sign > 0 else 0.0
    return float(np.trace(k) / n), gm


def spectral_means(fn: Callable[[np.ndarray], Any]) -> bool:
    """Check ``fn(K) -> (arithmetic mean, geometric mean)`` of the eigenvalues of ``K``.

    The cases include a kernel whose determinant overflows float64, one whose determinant
    underflows to zero, and an exactly singular one (geometric mean 0).
    """
    rng = np.random.default_rng(13)
    n = 12
    singular = np.zeros((n, n))
    singular[:4, :4] = _random_psd(4, 4, rng)
    cases = {
        "a well-conditioned kernel": _spectrum_psd(rng.uniform(1.0, 10.0, n), rng),
        "a kernel whose determinant overflows float64": _spectrum_psd(
            rng.uniform(1.0, 10.0, n) * 1e30, rng
        ),
        "a kernel whose determinant underflows to 0": _spectrum_psd(
            rng.uniform(1.0, 10.0, n) * 1e-30, rng
        ),
        "a singular kernel": singular,
    }

    def pair(got):
        am, gm = got
        return (am, gm) if np.ndim(am) == 0 and np.ndim(gm) == 0 else None

    def compare(got, case):
        am, gm = case.expected
        g_am, g_gm = pair(got)
        return _close(g_am, am, rtol=1e-4, atol=0.0) and _close(g_gm, gm, rtol=1e-4, atol=1e-8 * am)

    def not_a_pair(got, k):
        try:
            return pair(got) is None
        except (TypeError, ValueError):
            return True

    return check(
        "spectral means", fn, [Case((k,), _means(k), label=name) for name, k in cases.items()],
        compare=compare,
        symptoms=[
            (not_a_pair, "return a pair of two numbers: (AM, GM)."),
            (lambda got, k: not _close(pair(got)[0], _means(k)[0], rtol=1e-4, atol=0.0),
             lambda case, got: f"the arithmetic mean is wrong for {case.label}. It needs only "
                               "the diagonal of K."),
        ],
        hint=lambda case, got: (
            f"the geometric mean is wrong for {case.label}. Never form det K itself: take "
            "exp(log det K / n) with the log-det computed as a sum of logs "
            "(mgs_teach.kernel_logdet or numpy.linalg.slogdet), and return 0 when K is "
            "singular."),
    )  # fmt: skip
