r"""Spectral facts behind the MGS metrics, in plain NumPy.

The chapter "Measuring gradient similarity" proves three statements about a matrix
:math:`\Theta` of shape ``(n, p)`` whose rows are model gradients:

* the Gram matrix :math:`K = \Theta\Theta^\top` and the scatter matrix
  :math:`S = \Theta^\top\Theta` share their non-zero eigenvalues (:func:`gram`,
  :func:`scatter`, :func:`eigenvalues`);
* the separation theorem bounds the singular values of :math:`PAQ` for orthogonal
  projections :math:`P, Q` (:func:`random_projection`, :func:`singular_values`,
  :func:`separation_bounds`);
* the spectra of the centred and uncentred matrices interlace (:func:`centring_matrix`,
  :func:`interlaces`).

Spectra are always returned largest first. Where a spectrum is asked for with a
``length`` longer than the matrix provides, it is padded with zeros: the convention
:math:`\sigma_k := 0` for :math:`k > \min(n, m)` used in the proofs.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "centring_matrix",
    "eigenvalues",
    "gram",
    "interlaces",
    "random_projection",
    "scatter",
    "separation_bounds",
    "singular_values",
]


def _matrix(a: ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(a, dtype=float)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D matrix, got shape {arr.shape}")
    return arr


def _pad(values: np.ndarray, length: int | None) -> np.ndarray:
    if length is None:
        return values
    if length < 0:
        raise ValueError(f"length must be >= 0, got {length}")
    out = np.zeros(length)
    k = min(length, values.size)
    out[:k] = values[:k]
    return out


def centring_matrix(n: int) -> np.ndarray:
    r"""The centring matrix :math:`H = I_n - \frac{1}{n}\mathbb{1}\mathbb{1}^\top`.

    :math:`H` is the orthogonal projection onto the vectors whose entries sum to zero, so it
    is symmetric, idempotent and of rank ``n - 1``. ``H @ theta`` subtracts the mean row.

    Parameters
    ----------
    n : int
        Size, at least 1.

    Returns
    -------
    ndarray, shape ``(n, n)``
    """
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    n = int(n)
    return np.eye(n) - np.full((n, n), 1.0 / n)


def gram(theta: ArrayLike) -> np.ndarray:
    r"""The Gram matrix :math:`K = \Theta\Theta^\top` of the rows of ``theta``.

    Parameters
    ----------
    theta : array_like, shape ``(n, p)``

    Returns
    -------
    ndarray, shape ``(n, n)``
    """
    theta = _matrix(theta, "theta")
    return theta @ theta.T


def scatter(theta: ArrayLike) -> np.ndarray:
    r"""The (uncentred) scatter matrix :math:`S = \Theta^\top\Theta`.

    Parameters
    ----------
    theta : array_like, shape ``(n, p)``

    Returns
    -------
    ndarray, shape ``(p, p)``
    """
    theta = _matrix(theta, "theta")
    return theta.T @ theta


def eigenvalues(sym: ArrayLike, length: int | None = None) -> np.ndarray:
    """Eigenvalues of a symmetric matrix, largest first.

    Parameters
    ----------
    sym : array_like, shape ``(n, n)``
        Symmetric (checked up to round-off).
    length : int, optional
        Return exactly this many values: truncated, or padded with zeros.

    Returns
    -------
    ndarray, shape ``(n,)`` or ``(length,)``
    """
    sym = _matrix(sym, "sym")
    if sym.shape[0] != sym.shape[1]:
        raise ValueError(f"sym must be square, got shape {sym.shape}")
    scale = max(float(np.max(np.abs(sym), initial=0.0)), 1e-300)
    if not np.allclose(sym, sym.T, rtol=0.0, atol=1e-10 * scale):
        raise ValueError("sym must be symmetric")
    return _pad(np.linalg.eigvalsh(sym)[::-1], length)


def singular_values(a: ArrayLike, length: int | None = None) -> np.ndarray:
    r"""Singular values of a matrix, largest first.

    Parameters
    ----------
    a : array_like, shape ``(n, m)``
    length : int, optional
        Return exactly this many values :math:`\sigma_1, \dots, \sigma_{\text{length}}`,
        with :math:`\sigma_k = 0` for :math:`k > \min(n, m)`.

    Returns
    -------
    ndarray, shape ``(min(n, m),)`` or ``(length,)``
    """
    a = _matrix(a, "a")
    if a.size == 0:
        return _pad(np.zeros(0), length)
    return _pad(np.linalg.svd(a, compute_uv=False), length)


def random_projection(n: int, rank: int, rng: np.random.Generator) -> np.ndarray:
    """A random orthogonal projection of ``R^n`` onto a subspace of dimension ``rank``.

    The subspace is spanned by the orthonormalised columns of a Gaussian matrix, so it is
    uniformly distributed. The result is symmetric, idempotent and has trace ``rank``.

    Parameters
    ----------
    n : int
        Dimension of the space, at least 1.
    rank : int
        Dimension of the range, ``0 <= rank <= n``.
    rng : numpy.random.Generator

    Returns
    -------
    ndarray, shape ``(n, n)``
    """
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if int(rank) != rank or not 0 <= rank <= n:
        raise ValueError(f"rank must be an integer in [0, {n}], got {rank!r}")
    n, rank = int(n), int(rank)
    if rank == 0:
        return np.zeros((n, n))
    basis, _ = np.linalg.qr(rng.standard_normal((n, rank)))
    return basis @ basis.T


def separation_bounds(a: ArrayLike, rank_p: int, rank_q: int) -> tuple[np.ndarray, np.ndarray]:
    r"""The bounds of the separation theorem on :math:`\sigma_j(PAQ)`.

    For an ``(n, m)`` matrix :math:`A` and orthogonal projections :math:`P` (``n x n``, rank
    :math:`r`) and :math:`Q` (``m x m``, rank :math:`s`),
    :math:`\sigma_{j + (n-r) + (m-s)}(A) \le \sigma_j(PAQ) \le \sigma_j(A)`.

    Parameters
    ----------
    a : array_like, shape ``(n, m)``
    rank_p : int
        Rank of the left projection, ``0 <= rank_p <= n``.
    rank_q : int
        Rank of the right projection, ``0 <= rank_q <= m``.

    Returns
    -------
    lower, upper : ndarray, shape ``(min(n, m),)``
        ``lower[j-1]`` and ``upper[j-1]`` bound :math:`\sigma_j(PAQ)` for
        :math:`j = 1, \dots, \min(n, m)`.
    """
    a = _matrix(a, "a")
    n, m = a.shape
    for name, rank, size in (("rank_p", rank_p, n), ("rank_q", rank_q, m)):
        if int(rank) != rank or not 0 <= rank <= size:
            raise ValueError(f"{name} must be an integer in [0, {size}], got {rank!r}")
    shift = (n - int(rank_p)) + (m - int(rank_q))
    k = min(n, m)
    sigma = singular_values(a, length=k + shift)
    return sigma[shift : shift + k], sigma[:k]


def interlaces(upper: ArrayLike, lower: ArrayLike, atol: float = 1e-10) -> bool:
    r"""Whether ``lower`` interlaces below ``upper``.

    True when :math:`u_1 \ge l_1 \ge u_2 \ge l_2 \ge \dots \ge u_k \ge l_k`, each
    inequality up to ``atol``: the merged sequence never goes up. The shorter sequence is
    padded with zeros (the convention for eigenvalues past the rank).

    Parameters
    ----------
    upper, lower : array_like, 1-D
        Spectra sorted largest first.
    atol : float
        Absolute slack allowed in every inequality (round-off), at least 0.

    Returns
    -------
    bool
    """
    u = np.asarray(upper, dtype=float)
    low = np.asarray(lower, dtype=float)
    if u.ndim != 1 or low.ndim != 1:
        raise ValueError(f"upper and lower must be 1-D, got shapes {u.shape} and {low.shape}")
    if atol < 0:
        raise ValueError(f"atol must be >= 0, got {atol}")
    for name, seq in (("upper", u), ("lower", low)):
        if np.any(np.diff(seq) > atol):
            raise ValueError(f"{name} must be sorted largest first")
    k = max(u.size, low.size)
    u, low = _pad(u, k), _pad(low, k)
    merged = np.empty(2 * k)
    merged[0::2], merged[1::2] = u, low
    return bool(np.all(np.diff(merged) <= atol))
