r"""The MGS kernel :math:`K = J J^\top` of a batch, and its metrics.

Every function takes a model as a pure function ``apply_fn(params, x)`` and a parameter
pytree ``params``. ``apply_fn`` maps a batch ``x`` of shape ``(B, ...)`` to raw outputs
(logits, before any softmax) of shape ``(B,)`` or ``(B, C)``; outputs with more trailing
axes are flattened to ``(B, C)``. :func:`mgs_teach.models.functional` turns a Flax NNX
module into such a pair.

Ordering
--------
:math:`J` has one row per (sample, output) pair, **sample-major**: row ``i * C + c`` is
the gradient of output ``c`` at sample ``i`` with respect to all parameters (every leaf
of ``params`` flattened and concatenated in ``jax.tree.leaves`` order). The kernel
``K[i * C + c, j * C + d]`` is therefore
:math:`\nabla_\theta f_c(x_i) \cdot \nabla_\theta f_d(x_j)`, and
``K.reshape(B, C, B, C)[i, :, j, :]`` is the :math:`C \times C` block
:math:`k(x_i, x_j)` of the paper (Appendix G).

Each sample's gradient is taken on its own (a batch of one), so a model whose output
for one sample depends on the other samples of the batch (batch norm in training mode)
is outside what this module computes.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Params = Any
ApplyFn = Callable[[Params, jax.Array], jax.Array]

__all__ = [
    "MGSPrecisionWarning",
    "float64",
    "kernel_logdet",
    "mgs_jacobian",
    "mgs_kernel",
    "mgs_logdet",
    "mgs_metrics",
    "mgs_spectrum",
    "mgs_trace",
    "per_example_jacobians",
]


class MGSPrecisionWarning(UserWarning):
    """The kernel is too ill-conditioned for its floating-point type to be trusted."""


def float64() -> Any:
    """Context manager inside which JAX computes in float64.

    Kernels of smooth models on low-dimensional inputs have spectra that span more orders of
    magnitude than float32 resolves; their log-determinant needs float64. Cast the inputs
    and parameters inside the block::

        with float64():
            p64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
            value = mgs_logdet(apply_fn, p64, jnp.asarray(x, jnp.float64))
    """
    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(True)
    from jax.experimental import enable_x64  # jax < 0.7

    return enable_x64()


# --------------------------------------------------------------------------- checks


def _is_traced(x: Any) -> bool:
    return isinstance(x, jax.core.Tracer)


def _check_params(params: Params) -> None:
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    if not leaves:
        raise ValueError("params has no leaves: the model has no parameters to differentiate")
    for path, leaf in leaves:
        name = jax.tree_util.keystr(path) or "<root>"
        if not isinstance(leaf, jax.Array | np.ndarray):
            raise TypeError(
                f"params{name} is a {type(leaf).__name__}, not an array; every leaf of params "
                "must be a JAX or NumPy floating-point array"
            )
        if not jnp.issubdtype(leaf.dtype, jnp.inexact):
            raise TypeError(
                f"params{name} has dtype {leaf.dtype}; gradients need floating-point parameters"
            )


def _check_batch(x: Any) -> jax.Array:
    if not _is_traced(x):
        x = jnp.asarray(x)
    if x.ndim == 0:
        raise ValueError("x is a scalar; pass a batch with the sample axis first, shape (B, ...)")
    if x.shape[0] == 0:
        raise ValueError(
            f"x is an empty batch (shape {tuple(x.shape)}); MGS needs at least one sample"
        )
    return x


def _outputs(apply_fn: ApplyFn, params: Params, x: jax.Array) -> jax.Array:
    """Evaluate the model once, with the checks that make errors readable."""
    _check_params(params)
    x = _check_batch(x)
    try:
        out = apply_fn(params, x)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"apply_fn(params, x) failed for x of shape {tuple(x.shape)} ({x.dtype}): {err}. "
            "Check that x has the input shape the model expects, with the batch axis first."
        ) from err
    out = jnp.asarray(out)
    if out.ndim == 0 or out.shape[0] != x.shape[0]:
        raise ValueError(
            f"apply_fn returned shape {tuple(out.shape)} for a batch of {x.shape[0]} samples; "
            "the first axis of the output must be the batch axis"
        )
    if not _is_traced(out):
        bad = ~jnp.isfinite(out)
        if bool(bad.any()):
            n_nan, n_inf = int(jnp.isnan(out).sum()), int(jnp.isinf(out).sum())
            raise FloatingPointError(
                f"apply_fn returned non-finite outputs ({n_nan} NaN, {n_inf} inf) for this "
                "batch; the model has diverged or the input holds NaN/inf, and its kernel would "
                "be meaningless"
            )
    return out


# ----------------------------------------------------------------------- Jacobians


def per_example_jacobians(apply_fn: ApplyFn, params: Params, x: jax.Array) -> Params:
    """Gradients of every output of every sample, one pytree leaf per parameter leaf.

    Parameters
    ----------
    apply_fn : callable
        ``apply_fn(params, x) -> (B,) or (B, C)`` raw outputs.
    params : pytree of arrays
    x : array, shape ``(B, ...)``

    Returns
    -------
    pytree like ``params``
        Each leaf of shape ``(B, C, *leaf.shape)``; ``C = 1`` for scalar outputs.
    """
    _outputs(apply_fn, params, x)

    def single(p: Params, xi: jax.Array) -> jax.Array:
        return jnp.reshape(apply_fn(p, xi[None]), (-1,))

    return jax.vmap(jax.jacrev(single), in_axes=(None, 0))(params, jnp.asarray(x))


def _rows(jacobians: Params) -> list[jax.Array]:
    """Each leaf of a per-example Jacobian pytree as a ``(B*C, p_leaf)`` block of J."""
    blocks = []
    for leaf in jax.tree.leaves(jacobians):
        b, c = leaf.shape[:2]
        blocks.append(jnp.reshape(leaf, (b * c, -1)))
    return blocks


def mgs_jacobian(apply_fn: ApplyFn, params: Params, x: jax.Array) -> jax.Array:
    """The stacked model-parameter gradient matrix :math:`J` (the paper's :math:`\\Theta`).

    Parameters
    ----------
    apply_fn, params, x
        As in :func:`per_example_jacobians`.

    Returns
    -------
    array, shape ``(B*C, P)``
        Row ``i*C + c`` is :math:`\\nabla_\\theta f_c(x_i)`; ``P`` is the number of parameters.
    """
    return jnp.concatenate(_rows(per_example_jacobians(apply_fn, params, x)), axis=1)


def mgs_kernel(
    apply_fn: ApplyFn, params: Params, x: jax.Array, x2: jax.Array | None = None
) -> jax.Array:
    """The MGS kernel (empirical NTK) of a batch, all outputs concatenated.

    Parameters
    ----------
    apply_fn : callable
        ``apply_fn(params, x) -> (B,) or (B, C)`` raw outputs.
    params : pytree of arrays
    x : array, shape ``(B, ...)``
    x2 : array, shape ``(B2, ...)``, optional
        A second batch. If given, return the cross-kernel between ``x`` and ``x2``, whose
        block ``[i, j]`` is :math:`k(x_i, x2_j)`, the paper's equation 2.

    Returns
    -------
    array, shape ``(B*C, B*C)`` or ``(B*C, B2*C)``
        :math:`K = J J^\\top` (or :math:`J(x) J(x_2)^\\top`), sample-major (see the module
        docstring).

    Raises
    ------
    ValueError
        Empty batch, input the model cannot take, or output without a batch axis.
    TypeError
        A leaf of ``params`` that is not a floating-point array.
    FloatingPointError
        The model's outputs on ``x`` (or ``x2``) are not finite.
    """
    rows = _rows(per_example_jacobians(apply_fn, params, x))
    cols = rows if x2 is None else _rows(per_example_jacobians(apply_fn, params, x2))
    return sum(jnp.matmul(a, b.T) for a, b in zip(rows, cols))


def mgs_trace(apply_fn: ApplyFn, params: Params, x: jax.Array) -> jax.Array:
    """:math:`\\operatorname{tr} K = \\|J\\|_F^2`, without forming the kernel.

    The diagonal of :math:`K` holds the squared norms of the rows of :math:`J`, so the trace
    is the sum of all squared per-example gradient entries. This needs the per-example
    Jacobians (``B*C*P`` numbers) but never the ``(B*C)^2`` kernel.

    Returns
    -------
    scalar array
    """
    jac = per_example_jacobians(apply_fn, params, x)
    return sum(jnp.sum(jnp.square(leaf)) for leaf in jax.tree.leaves(jac))


def _eigvalsh_desc(kernel: jax.Array) -> jax.Array:
    return jnp.linalg.eigvalsh(kernel)[::-1]


def mgs_spectrum(apply_fn: ApplyFn, params: Params, x: jax.Array) -> jax.Array:
    """Eigenvalues of the MGS kernel, largest first.

    Returns
    -------
    array, shape ``(B*C,)``
        Sorted in decreasing order. :math:`K` is positive semi-definite, so negative
        entries are round-off of size about ``eps * B*C * max(eigenvalue)``.
    """
    return _eigvalsh_desc(mgs_kernel(apply_fn, params, x))


def _default_rtol(n: int, dtype: Any) -> float:
    return float(n * jnp.finfo(dtype).eps)


def kernel_logdet(
    kernel: jax.Array, *, jitter: float | None = None, rtol: float | None = None
) -> jax.Array:
    """:math:`\\log\\det K` of a positive semi-definite kernel, honest about singularity.

    Pure and traceable: safe under ``jax.jit``.

    Parameters
    ----------
    kernel : array, shape ``(n, n)``
        Symmetric positive semi-definite.
    jitter : float, optional
        If given, return the *regularised* value :math:`\\log\\det(K + \\text{jitter}\\,I)`,
        which is finite for any ``jitter > 0``.
    rtol : float, optional
        An eigenvalue at or below ``rtol * max(eigenvalue)`` counts as zero. The default,
        ``n * eps`` of the kernel's dtype, is NumPy's ``matrix_rank`` rule: below it, round-off
        alone could have produced the eigenvalue.

    Returns
    -------
    scalar array
        The sum of the logs of the eigenvalues, or ``-inf`` when the kernel is singular to
        working precision. Never NaN for a finite kernel.
    """
    kernel = jnp.asarray(kernel)
    if kernel.ndim != 2 or kernel.shape[0] != kernel.shape[1]:
        raise ValueError(f"kernel must be a square matrix, got shape {tuple(kernel.shape)}")
    n = kernel.shape[0]
    if jitter is not None:
        if not jitter > 0:
            raise ValueError(f"jitter must be positive, got {jitter}")
        kernel = kernel + jitter * jnp.eye(n, dtype=kernel.dtype)
    eig = jnp.linalg.eigvalsh(kernel)
    tol = (_default_rtol(n, kernel.dtype) if rtol is None else rtol) * jnp.max(jnp.abs(eig))
    singular = jnp.min(eig) <= tol
    safe = jnp.where(singular, 1.0, eig)
    return jnp.where(singular, -jnp.inf, jnp.sum(jnp.log(safe)))


def _precision_report(eig: np.ndarray, dtype: Any, rtol: float | None) -> None:
    """Warn, outside of tracing, when the log-det cannot be trusted."""
    n = eig.size
    eps = float(jnp.finfo(dtype).eps)
    lmax, lmin = float(np.max(np.abs(eig))), float(np.min(eig))
    tol = (n * eps if rtol is None else rtol) * lmax
    if lmin <= tol:
        rank = int(np.sum(eig > tol))
        warnings.warn(
            f"the MGS kernel is singular to working precision (numerical rank {rank} of {n}), "
            "so log det K = -inf. Pass jitter=... for the regularised log det(K + jitter*I).",
            MGSPrecisionWarning,
            stacklevel=3,
        )
        return
    error = n * eps * lmax / lmin  # relative error bound of the smallest eigenvalue
    if error > 1e-2:
        hint = (
            " Enable float64 with jax.config.update('jax_enable_x64', True)."
            if jnp.dtype(dtype) == jnp.float32
            else ""
        )
        warnings.warn(
            f"log det K is limited by {jnp.dtype(dtype).name} precision: the condition number is "
            f"{lmax / lmin:.1e}, so the smallest eigenvalue may be off by about {error:.0%}.{hint}",
            MGSPrecisionWarning,
            stacklevel=3,
        )


def mgs_logdet(
    apply_fn: ApplyFn,
    params: Params,
    x: jax.Array,
    *,
    jitter: float | None = None,
    rtol: float | None = None,
) -> jax.Array:
    """:math:`\\log\\det K` of the MGS kernel of a batch.

    Parameters
    ----------
    apply_fn, params, x
        As in :func:`mgs_kernel`.
    jitter, rtol
        As in :func:`kernel_logdet`.

    Returns
    -------
    scalar array
        ``-inf`` when :math:`K` is singular (always the case when ``B*C > P``, since
        :math:`\\operatorname{rank} K \\le P`), else the log-determinant.

    Warns
    -----
    MGSPrecisionWarning
        When called outside ``jit`` and the kernel is singular, or so ill-conditioned that
        the smallest eigenvalues are not resolved in the working dtype (float32 by default;
        float64 when ``jax_enable_x64`` is on).
    """
    kernel = mgs_kernel(apply_fn, params, x)
    if jitter is None and not _is_traced(kernel):
        _precision_report(np.asarray(jnp.linalg.eigvalsh(kernel)), kernel.dtype, rtol)
    return kernel_logdet(kernel, jitter=jitter, rtol=rtol)


def mgs_metrics(apply_fn: ApplyFn, params: Params, x: jax.Array) -> dict[str, jax.Array]:
    """Trace and log-determinant of the MGS kernel from one kernel evaluation.

    Returns
    -------
    dict
        ``{"trace": tr K, "logdet": log det K}``; the log-det is ``-inf`` for a singular
        kernel (see :func:`kernel_logdet`). No warnings: meant for monitoring loops.
    """
    kernel = mgs_kernel(apply_fn, params, x)
    return {"trace": jnp.trace(kernel), "logdet": kernel_logdet(kernel)}
