r"""The MGS kernel as the empirical NTK: kernel gradient descent and its modes (Appendix B).

For the squared loss :math:`L = \tfrac12\|f - y\|^2` on a fixed training batch, one
full-batch gradient-descent step moves the outputs by :math:`-\eta K (f - y)` to first
order. If the kernel did not move, the residual :math:`r_t = f_t - y` would follow
*kernel gradient descent*,

.. math::

    r_{t+1} = (I - \eta K) r_t, \qquad
    r_t = \sum_k (1 - \eta\lambda_k)^t \langle u_k, r_0\rangle\, u_k,

with :math:`K = \sum_k \lambda_k u_k u_k^\top`: each eigen-direction (mode) of :math:`K`
decays on its own, the large eigenvalues first. This module trains a network by full-batch
gradient descent (:func:`fit_gd`), predicts the same run from its first kernel
(:func:`kernel_gd`), and splits residuals into modes (:func:`modes`, :func:`band_energy`).

Residuals and kernels are flattened sample-major, as everywhere in :mod:`mgs_teach.kernel`:
entry ``i * C + c`` is output ``c`` of sample ``i``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "Trajectory",
    "band_energy",
    "fit_gd",
    "kernel_drift",
    "kernel_gd",
    "modes",
    "roughness",
]


class Trajectory(NamedTuple):
    """A full-batch gradient-descent run, recorded at ``steps``.

    Attributes
    ----------
    steps : numpy.ndarray
        ``(T,)`` step numbers, the first one 0 (the initial network).
    outputs : numpy.ndarray
        ``(T, B, C)`` network outputs on the training batch at each recorded step.
    params : Any
        The parameters at each recorded step: every leaf has a leading axis of length ``T``.
    """

    steps: np.ndarray
    outputs: np.ndarray
    params: Any


def fit_gd(
    apply_fn: Callable[[Any, jax.Array], jax.Array],
    params: Any,
    x: jax.Array,
    y: jax.Array,
    *,
    eta: float,
    steps: int,
    n_records: int = 50,
    penalty: Callable[[Any], jax.Array] | None = None,
) -> Trajectory:
    r"""Full-batch gradient descent on :math:`\tfrac12\|f(x;\theta) - y\|^2` (+ a penalty).

    Parameters
    ----------
    apply_fn, params
        The model (see :mod:`mgs_teach.kernel`).
    x : array, shape (B, ...)
    y : array, shape (B, C)
        Targets of the raw outputs (for example one-hot labels, or :math:`\pm 1`).
    eta : float
        Learning rate.
    steps : int
        Gradient-descent steps in all; must be a multiple of ``n_records``.
    n_records : int
        Records after the initial one, evenly spaced.
    penalty : callable, optional
        ``penalty(params) -> scalar`` added to the loss (for example
        ``lambda p: lam * mgs_trace_penalty(apply_fn, p, x)``).

    Returns
    -------
    Trajectory
        ``n_records + 1`` records, the compiled loop being one ``lax.scan`` over records.
    """
    if steps <= 0 or n_records <= 0 or steps % n_records:
        raise ValueError(f"steps ({steps}) must be a positive multiple of n_records ({n_records})")
    y = jnp.asarray(y).reshape(len(x), -1)
    every = steps // n_records

    def objective(p: Any) -> jax.Array:
        loss = 0.5 * jnp.sum((apply_fn(p, x).reshape(y.shape) - y) ** 2)
        return loss if penalty is None else loss + penalty(p)

    def step(_: int, p: Any) -> Any:
        return jax.tree.map(lambda a, g: a - eta * g, p, jax.grad(objective)(p))

    @jax.jit
    def run(p: Any) -> Any:
        def record(q: Any, _: None) -> tuple[Any, Any]:
            q = jax.lax.fori_loop(0, every, step, q)
            return q, q

        return jax.lax.scan(record, p, None, length=n_records)[1]

    later = run(params)
    stacked = jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), params, later)
    outputs = jax.vmap(lambda p: apply_fn(p, x).reshape(y.shape))(stacked)
    return Trajectory(np.arange(n_records + 1) * every, np.asarray(outputs), stacked)


def modes(kernel: Any) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (largest first) and orthonormal eigenvectors (columns) of a kernel.

    Parameters
    ----------
    kernel : array, shape (n, n)
        Symmetric; it is symmetrised first, in float64.

    Returns
    -------
    eigenvalues : numpy.ndarray, shape (n,)
    eigenvectors : numpy.ndarray, shape (n, n)
        Column ``k`` belongs to ``eigenvalues[k]``.
    """
    k = np.asarray(kernel, dtype=np.float64)
    if k.ndim != 2 or k.shape[0] != k.shape[1]:
        raise ValueError(f"kernel must be a square matrix, got shape {k.shape}")
    values, vectors = np.linalg.eigh((k + k.T) / 2)
    return values[::-1], vectors[:, ::-1]


def kernel_gd(kernel: Any, residual: Any, eta: float, steps: Sequence[int]) -> np.ndarray:
    r"""Residuals of kernel gradient descent, :math:`(I - \eta K)^t r_0`, at each ``t``.

    Parameters
    ----------
    kernel : array, shape (n, n)
    residual : array, shape (n,) or (B, C)
        The initial residual :math:`r_0 = f_0 - y` (flattened sample-major).
    eta : float
    steps : sequence of int

    Returns
    -------
    numpy.ndarray, shape (len(steps), n)
    """
    values, vectors = modes(kernel)
    r0 = np.asarray(residual, dtype=np.float64).reshape(-1)
    if r0.shape[0] != values.shape[0]:
        raise ValueError(f"residual has {r0.shape[0]} entries, the kernel {values.shape[0]} rows")
    coeffs = vectors.T @ r0
    t = np.asarray(steps, dtype=np.float64)[:, None]
    return (np.power(1.0 - eta * values[None, :], t) * coeffs) @ vectors.T


def band_energy(vectors: np.ndarray, residuals: Any, bands: Sequence[slice]) -> np.ndarray:
    """Fraction of each band's initial residual energy left at each record.

    Parameters
    ----------
    vectors : numpy.ndarray, shape (n, n)
        Eigenvectors from :func:`modes`.
    residuals : array, shape (T, n) or (T, B, C)
        Residuals at each record, the first one the initial residual.
    bands : sequence of slice
        Groups of modes, for example ``[slice(0, 1), slice(1, 5), slice(5, None)]``.

    Returns
    -------
    numpy.ndarray, shape (T, len(bands))
        ``||P_band r_t||^2 / ||P_band r_0||^2``.

    Raises
    ------
    ValueError
        If the residuals do not have ``n`` values per record, a band holds no mode, or the
        initial residual has no energy in a band beyond round-off (its fraction would be
        0 / 0).
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    r = np.asarray(residuals, dtype=np.float64).reshape(len(residuals), -1)
    if r.shape[1] != vectors.shape[0]:
        raise ValueError(f"residuals have {r.shape[1]} values per record, the vectors "
                         f"{vectors.shape[0]}")  # fmt: skip
    coeffs = r @ vectors
    modes = np.arange(vectors.shape[1])
    for i, band in enumerate(bands):
        if modes[band].size == 0:
            raise ValueError(f"band {i} ({band}) holds none of the {modes.size} modes")
    energy = np.stack([np.sum(coeffs[:, band] ** 2, axis=1) for band in bands], axis=1)
    # no energy: none beyond float64 round-off of the whole initial residual's
    empty = np.flatnonzero(energy[0] <= 1e-28 * np.sum(coeffs[0] ** 2))
    if empty.size:
        raise ValueError(f"the initial residual has no energy in band(s) {empty.tolist()}: "
                         "the fraction left is undefined there")  # fmt: skip
    return energy / energy[:1]


def kernel_drift(k0: Any, kt: Any) -> float:
    r"""Relative change of a kernel, :math:`\|K_t - K_0\|_F / \|K_0\|_F`."""
    k0, kt = np.asarray(k0, dtype=np.float64), np.asarray(kt, dtype=np.float64)
    if k0.shape != kt.shape:
        raise ValueError(f"kernels of different shapes: {k0.shape} and {kt.shape}")
    return float(np.linalg.norm(kt - k0) / np.linalg.norm(k0))


def roughness(vectors: np.ndarray, x: Any, neighbours: int = 8) -> np.ndarray:
    r"""How much each vector, read as a function on the inputs, changes between neighbours.

    For a vector :math:`u` over the ``B`` samples (one value per sample; with ``C`` outputs
    per sample, the ``C`` values count together), the graph Dirichlet energy
    :math:`\sum_i \sum_{j \in N(i)} \|u_i - u_j\|^2 / \sum_i \|u_i\|^2` over the ``neighbours``
    nearest inputs :math:`N(i)` of each sample: small for a smooth (low-frequency) function,
    large for one that oscillates from sample to sample.

    Parameters
    ----------
    vectors : numpy.ndarray, shape (B * C, m)
        ``m`` vectors as columns, sample-major.
    x : array, shape (B, ...)
    neighbours : int

    Returns
    -------
    numpy.ndarray, shape (m,)
    """
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    b = len(x)
    if not 0 < neighbours < b:
        raise ValueError(f"neighbours must be between 1 and B - 1 = {b - 1}, got {neighbours}")
    v = np.asarray(vectors, dtype=np.float64)
    if v.shape[0] % b:
        raise ValueError(f"vectors have {v.shape[0]} rows, not a multiple of B = {b}")
    u = v.reshape(b, v.shape[0] // b, -1)  # (B, C, m)
    dist = np.sum((x[:, None] - x[None]) ** 2, axis=-1)
    np.fill_diagonal(dist, np.inf)
    near = np.argsort(dist, axis=1)[:, :neighbours]  # (B, k)
    diff = u[:, None] - u[near]  # (B, k, C, m)
    return np.sum(diff**2, axis=(0, 1, 2)) / np.sum(u**2, axis=(0, 1))
