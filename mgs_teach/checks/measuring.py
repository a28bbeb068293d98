"""Self-checks for the chapter \"Measuring gradient similarity\".

Every check calls the student's function on a few fixed test cases, compares with a
reference computed here, prints a verdict with a hint, and returns ``True`` or ``False``.
The hints never contain the expected numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mgs_teach.checks._common import _call, _close, _report, _shape

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
    what = "scatter spectrum"
    for theta in cases:
        expected = np.linalg.eigvalsh(theta.T @ theta)[::-1]
        got = _call(fn, theta.copy())
        shape = _shape(got)
        if shape != expected.shape:
            return _report(
                False,
                f"for theta of shape {theta.shape} return a 1-D array with one eigenvalue per "
                f"column of theta (got shape {shape}). S is p x p, so pad the non-zero "
                "eigenvalues of the n x n Gram matrix with zeros.",
                what=what,
            )
        if not _close(got, expected, rtol=1e-4, atol=1e-5 * expected[0]):
            return _report(
                False,
                f"wrong values for theta of shape {theta.shape}. The non-zero eigenvalues of "
                "S = theta.T @ theta are those of K = theta @ theta.T; the other p - rank ones "
                "are zero. Sort largest first.",
                what=what,
            )
    return _report(True, "", what=what)


# ------------------------------------------------------------------- singular batch


def _smallest_singular_batch(p: int, c: int) -> int:
    return p // c + 1


def singular_batch(fn: Callable[[int, int], Any]) -> bool:
    """Check ``fn(p, C) -> smallest batch size B at which the MGS kernel must be singular``."""
    cases = [(114, 2), (690_010, 10), (50, 1), (7, 3), (12, 4), (1, 5)]
    what = "singular batch size"
    for p, c in cases:
        got = _call(fn, p, c)
        expected = _smallest_singular_batch(p, c)
        try:
            ok = got is not None and not isinstance(got, bool) and int(got) == got == expected
        except (TypeError, ValueError, OverflowError):
            ok = False
        if not ok:
            return _report(
                False,
                "K is (B*C) x (B*C) and rank K <= min(B*C, p). The kernel is singular for "
                "every model exactly when B*C > p; find the smallest such integer B. "
                "Check the case where p is a multiple of C.",
                what=what,
            )
    return _report(True, "", what=what)


# ------------------------------------------------------------------- centred kernel


def centred_kernel(fn: Callable[[np.ndarray], Any]) -> bool:
    """Check ``fn(K) -> H @ K @ H``, the doubly centred kernel."""
    rng = np.random.default_rng(12)
    cases = [_random_psd(5, 3, rng), _random_psd(8, 8, rng, scale=100.0), np.ones((3, 3))]
    cases.append(_random_psd(1, 1, rng))
    what = "centred kernel"
    for k in cases:
        n = k.shape[0]
        h = np.eye(n) - np.full((n, n), 1.0 / n)
        expected = h @ k @ h
        got = _call(fn, k.copy())
        if not _close(got, expected, rtol=1e-6, atol=1e-8 * max(1.0, float(np.abs(k).max()))):
            return _report(
                False,
                f"for an {n} x {n} kernel the answer must be an {n} x {n} matrix equal to "
                "H K H. Expand (I - 11^T/n) K (I - 11^T/n): every entry loses its row mean "
                "and its column mean and gains back the mean of all entries.",
                what=what,
            )
    return _report(True, "", what=what)


# -------------------------------------------------------------- per-output centring


def per_output_centring(fn: Callable[[np.ndarray, int], Any]) -> bool:
    """Check ``fn(theta, n_outputs) -> (H_B ⊗ I_C) @ theta``, each output centred on its own.

    ``theta`` has shape ``(B*C, p)`` with sample-major rows (row ``i*C + c`` is output ``c``
    of sample ``i``) and ``C = n_outputs``. The cases have a non-zero mean gradient per
    output, and include ``C = 1`` and ``B = 1``.
    """
    rng = np.random.default_rng(14)
    cases = [(4, 2, 5), (3, 3, 7), (6, 1, 4), (2, 4, 3), (1, 3, 2)]
    what = "per-output centring"
    for b, c, p in cases:
        theta = rng.standard_normal((b * c, p)) + np.tile(3.0 * rng.standard_normal((c, p)), (b, 1))
        expected = np.kron(np.eye(b) - np.full((b, b), 1.0 / b), np.eye(c)) @ theta
        got = _call(fn, theta.copy(), c)
        shape = _shape(got)
        if shape != theta.shape:
            return _report(
                False,
                f"for theta of shape {theta.shape} return the centred gradients, an array of "
                f"the same shape (got shape {shape}).",
                what=what,
            )
        if _close(got, expected, rtol=1e-5, atol=1e-6):  # float32 answers pass too
            continue
        if _close(got, theta - theta.mean(axis=0), rtol=1e-5, atol=1e-6):
            hint = (
                "this subtracts one mean from all B*C rows, mixing the outputs; every output "
                "c needs the mean of its own B rows."
            )
        elif _close(got, np.kron(np.eye(c), np.eye(b) - np.full((b, b), 1.0 / b)) @ theta,
                    rtol=1e-5, atol=1e-6):  # fmt: skip
            hint = (
                "the rows are sample-major: the C rows of sample i come together, so the "
                "rows of output c are c, C + c, 2C + c, ..."
            )
        else:
            hint = (
                "view theta as (B, C, p) and subtract, for every output c, the mean over "
                "the B samples; then return to the (B*C, p) layout."
            )
        return _report(False, hint, what=what)
    return _report(True, "", what=what)


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
    what = "spectral means"
    for name, k in cases.items():
        am, gm = _means(k)
        got = _call(fn, k.copy())
        try:
            got_am, got_gm = got
            ok_shape = np.ndim(got_am) == 0 and np.ndim(got_gm) == 0
        except (TypeError, ValueError):
            ok_shape = False
        if not ok_shape:
            return _report(False, "return a pair of two numbers: (AM, GM).", what=what)
        if not _close(got_am, am, rtol=1e-4, atol=0.0):
            return _report(
                False,
                f"the arithmetic mean is wrong for {name}. It needs only the diagonal of K.",
                what=what,
            )
        if not _close(got_gm, gm, rtol=1e-4, atol=1e-8 * am):
            return _report(
                False,
                f"the geometric mean is wrong for {name}. Never form det K itself: take "
                "exp(log det K / n) with the log-det computed as a sum of logs "
                "(mgs_teach.kernel_logdet or numpy.linalg.slogdet), and return 0 when K is "
                "singular.",
                what=what,
            )
    return _report(True, "", what=what)
