r"""What a training step differentiates: the data losses and the penalty terms added to them.

Every function here is a pure, differentiable scalar of a model ``apply_fn(params, x)``, a
parameter pytree ``params`` and a batch. Training minimises a data loss plus ``strength``
times a penalty term; :class:`mgs_teach.penalties.Regulariser` says which term and how strong.

Loss convention: ``loss_fn(logits, y) -> scalar``, the **mean** over the batch, e.g.
:func:`cross_entropy`.

- :func:`weight_decay`: :math:`\tfrac12\sum\theta^2`.
- :func:`input_gradient`: :math:`\frac1B\sum_i\|\nabla_{x_i}\ell_i\|^2`.
- :func:`param_gradient`: :math:`\|\nabla_\theta L\|^2`, and :func:`loss_gradient_bounds`,
  its bounds through the MGS kernel.
- :func:`mgs_trace_penalty`: :math:`\operatorname{tr} K`.
- :func:`mgs_logdet_penalty`: :math:`\log\det(K + \epsilon I)`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from mgs_teach.fast import structured_kernel
from mgs_teach.kernel import mgs_kernel, mgs_trace

Params = Any
ApplyFn = Callable[[Params, jax.Array], jax.Array]
LossFn = Callable[[jax.Array, jax.Array], jax.Array]

__all__ = [
    "LOSSES",
    "cross_entropy",
    "input_gradient",
    "loss_gradient_bounds",
    "loss_of",
    "mgs_logdet_penalty",
    "mgs_trace_penalty",
    "mse",
    "param_gradient",
    "weight_decay",
]


def cross_entropy(logits: jax.Array, y: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy with integer labels.

    Parameters
    ----------
    logits : array, shape ``(B, C)``
    y : int array, shape ``(B,)``

    Returns
    -------
    scalar array
    """
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))


def mse(outputs: jax.Array, y: jax.Array) -> jax.Array:
    """Mean squared error over the batch and every output (the regression benchmark's loss).

    Parameters
    ----------
    outputs, y : arrays, shape ``(B, C)``

    Returns
    -------
    scalar array
    """
    return jnp.mean(jnp.square(outputs - y))


#: The losses a run can train with, by name.
LOSSES = {"cross_entropy": cross_entropy, "mse": mse}


def loss_of(name: str) -> LossFn:
    """The loss called ``name`` (:data:`LOSSES`), or a clear error.

    Parameters
    ----------
    name : str
        A key of :data:`LOSSES`.

    Returns
    -------
    callable
        ``loss_fn(outputs, y) -> scalar``.
    """
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {sorted(LOSSES)}")
    return LOSSES[name]


# ------------------------------------------------------------------------- penalties


def weight_decay(params: Params) -> jax.Array:
    r""":math:`\tfrac12 \sum \theta^2` over every leaf of ``params`` (its gradient is ``params``).

    Returns
    -------
    scalar array
    """
    return 0.5 * sum(jnp.sum(jnp.square(leaf)) for leaf in jax.tree.leaves(params))


def input_gradient(
    apply_fn: ApplyFn, params: Params, x: jax.Array, y: jax.Array, loss_fn: LossFn
) -> jax.Array:
    r"""Input-gradient penalty :math:`\frac1B \sum_i \|\nabla_{x_i} \ell(f(x_i), y_i)\|^2`.

    Each sample's loss is ``loss_fn`` on a batch of one, so the gradient with respect to
    :math:`x_i` does not carry the :math:`1/B` of the batch mean. Differentiating this with
    respect to ``params`` is double backpropagation.

    Parameters
    ----------
    apply_fn : callable
        ``apply_fn(params, x) -> (B, C)`` logits.
    params : pytree of arrays
    x : array, shape ``(B, ...)``
    y : array, shape ``(B, ...)``
        Targets, one per sample, as ``loss_fn`` expects them.
    loss_fn : callable
        ``loss_fn(logits, y) -> scalar``, the mean over the batch.

    Returns
    -------
    scalar array
    """

    def sample_loss(xi: jax.Array, yi: jax.Array) -> jax.Array:
        return loss_fn(apply_fn(params, xi[None]), yi[None])

    grads = jax.vmap(jax.grad(sample_loss))(x, y)  # (B, ...) like x
    return jnp.mean(jnp.sum(jnp.square(jnp.reshape(grads, (x.shape[0], -1))), axis=1))


def param_gradient(
    apply_fn: ApplyFn, params: Params, x: jax.Array, y: jax.Array, loss_fn: LossFn
) -> jax.Array:
    r"""Loss-parameter gradient penalty :math:`\|\nabla_\theta L\|^2`, ``L`` the mean batch loss.

    By the chain rule this equals :math:`\nabla_f L^\top K \nabla_f L` (Appendix A.4), so it
    couples to the MGS kernel only through :math:`\nabla_f L`, which vanishes at a minimum.

    Parameters
    ----------
    apply_fn, params, x, y, loss_fn
        As in :func:`input_gradient`.

    Returns
    -------
    scalar array
    """
    grads = jax.grad(lambda p: loss_fn(apply_fn(p, x), y))(params)
    return sum(jnp.sum(jnp.square(g)) for g in jax.tree.leaves(grads))


def loss_gradient_bounds(
    apply_fn: ApplyFn, params: Params, x: jax.Array, y: jax.Array, loss_fn: LossFn
) -> dict[str, jax.Array]:
    r"""The chain of Appendix A.4 on one batch, every term as a scalar.

    .. math::
        \|\nabla_\theta L\|^2 = \nabla_f L^\top K \nabla_f L
        \le \lambda_{\max}(K)\,\|\nabla_f L\|^2 \le \operatorname{tr} K\,\|\nabla_f L\|^2,

    with :math:`\nabla_f L` the gradient of the mean batch loss with respect to the
    ``(B, C)`` outputs, flattened sample-major like the rows of :math:`K`. Forms the full
    ``(B*C)^2`` kernel, so keep the batch small; use float64 for tight comparisons.

    Parameters
    ----------
    apply_fn, params, x, y, loss_fn
        As in :func:`input_gradient`.

    Returns
    -------
    dict
        ``param_grad_sq`` (:math:`\|\nabla_\theta L\|^2`), ``quadratic``
        (:math:`\nabla_f L^\top K \nabla_f L`), ``lambda_bound``
        (:math:`\lambda_{\max}\|\nabla_f L\|^2`), ``trace_bound``
        (:math:`\operatorname{tr} K\,\|\nabla_f L\|^2`), and the factors ``trace``,
        ``lambda_max`` and ``output_grad_sq`` (:math:`\|\nabla_f L\|^2`).
    """
    grad_f = jnp.reshape(jax.grad(lambda f: loss_fn(f, y))(apply_fn(params, x)), (-1,))
    kernel = mgs_kernel(apply_fn, params, x)
    trace, lam = jnp.trace(kernel), jnp.linalg.eigvalsh(kernel)[-1]
    gf2 = jnp.sum(jnp.square(grad_f))
    return dict(
        param_grad_sq=param_gradient(apply_fn, params, x, y, loss_fn),
        quadratic=grad_f @ kernel @ grad_f, lambda_bound=lam * gf2, trace_bound=trace * gf2,
        trace=trace, lambda_max=lam, output_grad_sq=gf2,
    )  # fmt: skip


def mgs_trace_penalty(apply_fn: ApplyFn, params: Params, x: jax.Array) -> jax.Array:
    r"""MGS trace penalty :math:`g_1(K) = \operatorname{tr} K = \|J\|_F^2` of the batch ``x``.

    :func:`mgs_teach.kernel.mgs_trace` with ``method="auto"``: exact, from the layer
    structure where the model allows it. Returns a scalar array.
    """
    return mgs_trace(apply_fn, params, x)


def mgs_logdet_penalty(
    apply_fn: ApplyFn, params: Params, x: jax.Array, *, jitter: float = 1e-3
) -> jax.Array:
    r"""MGS log-det penalty :math:`g_2(K) = \log\det(K + \text{jitter}\, I)`, via Cholesky.

    Jitter
    ------
    :math:`K` is only positive *semi*-definite; it is singular whenever ``B*C`` exceeds the
    number of parameters, or when two samples have parallel model gradients, and then
    :math:`\log\det K = -\infty` with an infinite gradient. Adding ``jitter * I`` bounds
    every eigenvalue below by ``jitter``, so the value is finite, the Cholesky factor
    exists and the gradient, :math:`(K + \text{jitter}\,I)^{-1}` contracted with
    :math:`\partial K`, is bounded by ``1 / jitter``. Directions with eigenvalues far below
    ``jitter`` stop being penalised. Choose ``jitter`` small relative to the typical
    eigenvalue but well above round-off (``eps * tr K``).

    Parameters
    ----------
    apply_fn, params, x
        As in :func:`mgs_teach.kernel.mgs_kernel`.
    jitter : float
        Positive diagonal shift.

    Returns
    -------
    scalar array
    """
    if not jitter > 0:
        raise ValueError(f"jitter must be positive, got {jitter}")
    kernel = structured_kernel(apply_fn, params, x)
    n = kernel.shape[0]
    chol = jnp.linalg.cholesky(kernel + jitter * jnp.eye(n, dtype=kernel.dtype))
    return 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol)))
