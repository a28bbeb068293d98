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

Independent samples
-------------------
Every function here assumes that the model treats the samples of a batch independently:
its output for sample :math:`i` depends on :math:`x_i` alone. Then the kernel of the batch
is made of per-sample gradients, and each sample's gradient can be taken on its own (a
batch of one). A model that mixes samples (batch statistics, as batch norm in training
mode, or subtracting the batch mean) has no per-sample kernel: the same sample would have
another gradient in another batch. :func:`batch_dependence` detects such a model, and the
kernel functions then raise a ``ValueError`` instead of returning the kernel of a
different function.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mgs_teach import fast
from mgs_teach.guards import (
    MGSPrecisionWarning,
    batch_dependence,
    check_batch,
    check_params,
    checked_outputs,
    is_traced,
    precision_report,
)
from mgs_teach.guards import remember as remember

Params = Any
ApplyFn = Callable[[Params, jax.Array], jax.Array]

__all__ = [
    "MGSPrecisionWarning",
    "TRACE_METHODS",
    "batch_dependence",
    "float64",
    "kernel_logdet",
    "mgs_jacobian",
    "mgs_kernel",
    "mgs_logdet",
    "mgs_metrics",
    "mgs_spectrum",
    "mgs_trace",
    "per_example_jacobians",
    "trace_method",
]


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

    Raises
    ------
    ValueError
        When the model mixes the samples of a batch (:func:`batch_dependence`).
    """
    checked_outputs(apply_fn, params, x)
    mixing = batch_dependence(apply_fn, params, jnp.asarray(x) if not is_traced(x) else x)
    if mixing is not None:
        raise ValueError(f"per-example gradients are not defined: {mixing}")

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
    apply_fn: ApplyFn,
    params: Params,
    x: jax.Array,
    x2: jax.Array | None = None,
    *,
    method: str = "jacobian",
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
    method : {"jacobian", "structured", "auto"}
        ``"jacobian"``: from per-example Jacobians (any model with independent samples).
        ``"structured"``: from the layer structure (:func:`mgs_teach.fast.structured_kernel`),
        without per-example Jacobians of dense layers; raises when the model does not meet
        its hypotheses. ``"auto"``: structured where it applies, else Jacobian. A
        cross-kernel (``x2``) is always computed from Jacobians.

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
    if method not in ("jacobian", "structured", "auto"):
        raise ValueError(
            f"unknown kernel method {method!r}; use 'jacobian', 'structured' or 'auto'"
        )
    if x2 is None and method != "jacobian":
        if method == "structured" or trace_method(apply_fn, params, x) == "structured":
            return fast.structured_kernel(apply_fn, params, x)
    rows = _rows(per_example_jacobians(apply_fn, params, x))
    cols = rows if x2 is None else _rows(per_example_jacobians(apply_fn, params, x2))
    return sum(jnp.matmul(a, b.T) for a, b in zip(rows, cols))


#: The ways :func:`mgs_trace` can compute the trace.
TRACE_METHODS = ("auto", "jacobian", "structured", "hutchinson")


def mgs_trace(
    apply_fn: ApplyFn,
    params: Params,
    x: jax.Array,
    *,
    method: str = "auto",
    key: jax.Array | None = None,
    probes: int = 1,
) -> jax.Array:
    """:math:`\\operatorname{tr} K = \\|J\\|_F^2`, without forming the kernel.

    The diagonal of :math:`K` holds the squared norms of the rows of :math:`J`, so the trace
    is the sum of all squared per-example gradient entries. The same number (or, for
    ``"hutchinson"``, an unbiased estimate of it) can be computed in several ways, as
    neural-tangents' ``empirical_ntk_fn(..., implementation=...)`` offers several:

    ``"jacobian"``
        From the per-example Jacobians (``B*C*P`` numbers, never the ``(B*C)^2`` kernel).
        Valid for any model whose samples are independent in the forward pass.
    ``"structured"``
        Exact, from the layer structure (:mod:`mgs_teach.fast`): ``C`` batched backward
        passes, no per-example Jacobian. Raises ``ValueError`` with the reason when the
        model does not meet its hypotheses (:func:`mgs_teach.fast.structure_report`).
    ``"auto"``
        ``"structured"`` when the model meets its hypotheses, else ``"jacobian"``. The
        choice depends only on the model and the input shape, never on earlier calls;
        :func:`trace_method` says which one a call takes.
    ``"hutchinson"``
        Unbiased estimate from ``probes`` Rademacher probes drawn from ``key``
        (:func:`mgs_teach.fast.hutchinson_trace`).

    Parameters
    ----------
    apply_fn, params, x
        As in :func:`mgs_kernel`.
    method : str
        One of :data:`TRACE_METHODS`.
    key : PRNG key, optional
        Needed by ``"hutchinson"`` only.
    probes : int
        Number of Hutchinson probes.

    Returns
    -------
    scalar array
    """
    if method not in TRACE_METHODS:
        raise ValueError(f"unknown trace method {method!r}; choose one of {TRACE_METHODS}")
    check_params(params)
    x = check_batch(x)
    if method == "hutchinson":
        if key is None:
            raise ValueError("method='hutchinson' needs a PRNG key: pass key=jax.random.key(...)")
        return fast.hutchinson_trace(apply_fn, params, x, key, probes)
    if method == "auto":
        method = trace_method(apply_fn, params, x)
    if method == "structured":
        return fast.structured_trace(apply_fn, params, x)
    jac = per_example_jacobians(apply_fn, params, x)
    return sum(jnp.sum(jnp.square(leaf)) for leaf in jax.tree.leaves(jac))


def trace_method(apply_fn: ApplyFn, params: Params, x: jax.Array) -> str:
    """The exact method :func:`mgs_trace` takes with ``method="auto"``.

    Returns
    -------
    str
        ``"structured"`` or ``"jacobian"``.
    """
    return "structured" if fast.structure_report(apply_fn, params, x) is None else "jacobian"


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
    if jitter is None and not is_traced(kernel):
        precision_report(np.asarray(jnp.linalg.eigvalsh(kernel)), kernel.dtype, rtol)
    return kernel_logdet(kernel, jitter=jitter, rtol=rtol)


def mgs_metrics(
    apply_fn: ApplyFn, params: Params, x: jax.Array, *, method: str = "auto"
) -> dict[str, jax.Array]:
    """Trace and log-determinant of the MGS kernel from one kernel evaluation.

    ``method`` is passed to :func:`mgs_kernel` (the structured kernel where it applies).

    Returns
    -------
    dict
        ``{"trace": tr K, "logdet": log det K}``; the log-det is ``-inf`` for a singular
        kernel (see :func:`kernel_logdet`). No warnings: meant for monitoring loops.
    """
    kernel = mgs_kernel(apply_fn, params, x, method=method)
    return {"trace": jnp.trace(kernel), "logdet": kernel_logdet(kernel)}
