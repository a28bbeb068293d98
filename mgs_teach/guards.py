"""Guards of the kernel and the fast trace: input checks, sample independence, precision.

:mod:`mgs_teach.kernel` and :mod:`mgs_teach.fast` both take a model as
``apply_fn(params, x)`` with a batch ``x`` of shape ``(B, ...)``, and both need the same
guards: errors that say what is wrong with ``params``, ``x`` or the outputs
(:func:`checked_outputs`), whether the model treats the samples of a batch independently
(:func:`batch_dependence`), a warning when a kernel's float type cannot resolve its
log-determinant (:func:`precision_report`), and a memory of facts that depend on shapes only
(:func:`remember`), so that a jitted step asks once.
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Params = Any
ApplyFn = Callable[[Params, jax.Array], jax.Array]

__all__ = [
    "MGSPrecisionWarning",
    "batch_dependence",
    "check_batch",
    "check_params",
    "checked_outputs",
    "is_traced",
    "precision_report",
    "remember",
]


class MGSPrecisionWarning(UserWarning):
    """The kernel is too ill-conditioned for its floating-point type to be trusted."""


def is_traced(x: Any) -> bool:
    """Whether ``x`` is a JAX tracer (inside ``jit``, ``grad`` or ``vmap``), not a value."""
    return isinstance(x, jax.core.Tracer)


def check_params(params: Params) -> None:
    """Raise unless every leaf of ``params`` is a floating-point array, and there is one.

    Parameters
    ----------
    params : pytree of arrays
        The model's parameters; any leaf shapes.

    Raises
    ------
    ValueError
        ``params`` has no leaves.
    TypeError
        A leaf that is not a JAX or NumPy array, or whose dtype is not floating-point.
    """
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


def check_batch(x: Any) -> jax.Array:
    """``x`` as a JAX array, checked to be a batch of at least one sample.

    Parameters
    ----------
    x : array-like, shape ``(B, ...)``
        A tracer is returned as it is.

    Returns
    -------
    array, shape ``(B, ...)``

    Raises
    ------
    ValueError
        ``x`` is a scalar or an empty batch (``B = 0``).
    """
    if not is_traced(x):
        x = jnp.asarray(x)
    if x.ndim == 0:
        raise ValueError("x is a scalar; pass a batch with the sample axis first, shape (B, ...)")
    if x.shape[0] == 0:
        raise ValueError(
            f"x is an empty batch (shape {tuple(x.shape)}); MGS needs at least one sample"
        )
    return x


def checked_outputs(apply_fn: ApplyFn, params: Params, x: jax.Array) -> jax.Array:
    """Evaluate the model once, with the checks that make errors readable.

    Parameters
    ----------
    apply_fn : callable
        ``apply_fn(params, x) -> (B,) or (B, C, ...)`` raw outputs.
    params : pytree of arrays
    x : array, shape ``(B, ...)``

    Returns
    -------
    array, shape ``(B, ...)``
        ``apply_fn(params, x)``.

    Raises
    ------
    ValueError
        Bad ``params`` or ``x`` (:func:`check_params`, :func:`check_batch`), an input the
        model cannot take, or an output without the batch axis first.
    TypeError
        A leaf of ``params`` that is not a floating-point array.
    FloatingPointError
        Outside tracing, outputs that are not finite.
    """
    check_params(params)
    x = check_batch(x)
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
    if not is_traced(out):
        bad = ~jnp.isfinite(out)
        if bool(bad.any()):
            n_nan, n_inf = int(jnp.isnan(out).sum()), int(jnp.isinf(out).sum())
            raise FloatingPointError(
                f"apply_fn returned non-finite outputs ({n_nan} NaN, {n_inf} inf) for this "
                "batch; the model has diverged or the input holds NaN/inf, and its kernel would "
                "be meaningless"
            )
    return out


def batch_dependence(apply_fn: ApplyFn, params: Params, x: jax.Array) -> str | None:
    """Whether the model's output for one sample depends on the other samples of the batch.

    Runs the model twice on random parameters and inputs of the shapes of ``params`` and
    ``x`` (never on their values, so it works while they are traced): the two batches share
    their first and last samples and differ, by a lot, everywhere else. An independent model
    gives the same outputs for the shared samples, up to round-off. Runs eagerly, also inside
    ``jax.jit`` (at trace time), and remembers its answer per function and shape.

    Parameters
    ----------
    apply_fn : callable
        ``apply_fn(params, x) -> (B,) or (B, C, ...)`` raw outputs.
    params : pytree of arrays
        Only its leaves' shapes and dtypes are used.
    x : array, shape ``(B, ...)``
        Only its shape and dtype are used; with ``B < 3`` the answer is ``None``.

    Returns
    -------
    str or None
        A sentence saying how the samples are mixed, or ``None`` if they are independent.
    """
    return remember(
        apply_fn, params, x, "batch_dependence", lambda: _batch_dependence(apply_fn, params, x)
    )


def _batch_dependence(apply_fn: ApplyFn, params: Params, x: jax.Array) -> str | None:
    answer = None
    b = x.shape[0]
    if b >= 3:
        rng = np.random.default_rng(0)

        def draw(shape: tuple, dtype: Any, scale: float = 1.0) -> np.ndarray:
            if jnp.issubdtype(dtype, jnp.integer):
                return rng.integers(0, 2, size=shape).astype(dtype)
            return (scale * rng.standard_normal(shape)).astype(dtype)

        with jax.ensure_compile_time_eval():
            p = jax.tree.map(lambda a: draw(np.shape(a), a.dtype, 0.5), params)
            x1 = draw(x.shape, x.dtype)
            x2 = x1.copy()
            x2[1:-1] = draw((b - 2, *x.shape[1:]), x.dtype, 5.0)
            y1, y2 = (np.asarray(apply_fn(p, jnp.asarray(v))) for v in (x1, x2))
        shared = [0, b - 1]
        scale = max(1.0, float(np.nanmax(np.abs(y1[shared]))))
        if not np.allclose(y1[shared], y2[shared], rtol=1e-5, atol=1e-5 * scale, equal_nan=True):
            answer = (
                "the model's output for one sample depends on the other samples of the batch "
                "(batch statistics, or an operation across the batch axis), so there is no "
                "per-sample MGS kernel"
            )
    return answer


_MEMO: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def remember(apply_fn: ApplyFn, params: Params, x: jax.Array, what: str,
             compute: Callable[[], Any]) -> Any:  # fmt: skip
    """``compute()``, remembered per model function, parameter shapes, input shape and ``what``.

    For facts about a model that depend on shapes only (its structure, whether it mixes
    samples), so that a jitted step or an eager loop asks once, not at every call.

    Parameters
    ----------
    apply_fn : callable
        The model function; the memory lives as long as it does (a function that cannot be
        weakly referenced is asked every time).
    params : pytree of arrays
        Only its leaves' shapes and dtypes enter the key.
    x : array, shape ``(B, ...)``
        Only its shape and dtype enter the key.
    what : str
        Which fact.
    compute : callable
        ``compute() -> answer``, called the first time only.

    Returns
    -------
    Any
        The answer of ``compute()``.
    """
    shapes = jax.tree.map(lambda a: (tuple(np.shape(a)), str(a.dtype)), params)
    key = (what, repr(shapes), tuple(x.shape), str(x.dtype))
    try:
        memo = _MEMO.setdefault(apply_fn, {})
    except TypeError:  # a function that cannot be weakly referenced: no memory
        return compute()
    if key not in memo:
        memo[key] = compute()
    return memo[key]


def precision_report(eig: np.ndarray, dtype: Any, rtol: float | None) -> None:
    """Warn, outside of tracing, when the log-det cannot be trusted.

    Meant to be called by the public function whose caller should see the warning
    (``stacklevel=3``), as :func:`mgs_teach.kernel.mgs_logdet` does.

    Parameters
    ----------
    eig : ndarray, shape ``(n,)``
        The eigenvalues of the kernel, any order.
    dtype : dtype
        The kernel's floating-point type.
    rtol : float or None
        As in :func:`mgs_teach.kernel.kernel_logdet`; ``None`` is ``n * eps``.

    Warns
    -----
    MGSPrecisionWarning
        When the kernel is singular to working precision, or when the smallest eigenvalue
        may be off by more than 1% in ``dtype``.
    """
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
