r"""Adversarial inputs and the per-input MGS trace (the paper's Appendix C).

An attack perturbs an input :math:`x` within a small :math:`L_\infty` ball,
:math:`\|x' - x\|_\infty \le \epsilon`, pixels kept in :math:`[0, 1]`, to change the network's
answer. :func:`fgsm` takes one signed-gradient step; :func:`pgd` takes many projected ones and
can ascend any objective, so an attacker who also wants a small :math:`\operatorname{tr} K`
is one line more. :func:`input_trace` is the detector's score: the MGS trace of each input on
its own, :math:`\operatorname{tr} K(x) = \sum_c \|\nabla_\theta f_c(x)\|^2`;
:func:`fisher_trace` is Martin and Elster's, the trace of the Fisher information of the
predicted distribution, which weights the same kernel by the softmax's curvature.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

__all__ = ["cross_entropy_each", "fgsm", "fisher_trace", "input_trace", "pgd", "project"]


def cross_entropy_each(
    apply_fn: Callable[[Any, jax.Array], jax.Array], params: Any, x: jax.Array, y: jax.Array
) -> jax.Array:
    """Softmax cross-entropy of every input, shape ``(B,)`` (``y``: integer labels)."""
    return optax.softmax_cross_entropy_with_integer_labels(apply_fn(params, x), y)


def project(x: jax.Array, x0: jax.Array, eps: float) -> jax.Array:
    r"""The nearest point to ``x`` with :math:`\|x - x_0\|_\infty \le \epsilon` and pixels in
    :math:`[0, 1]` (both constraints act entry by entry, so clipping twice is exact, given that
    ``x0`` itself lies in :math:`[0, 1]`)."""
    return jnp.clip(jnp.clip(x, x0 - eps, x0 + eps), 0.0, 1.0)


def fgsm(
    apply_fn: Callable[[Any, jax.Array], jax.Array],
    params: Any,
    x: jax.Array,
    y: jax.Array,
    eps: float,
) -> jax.Array:
    r"""The fast gradient sign method: :math:`x + \epsilon\,\operatorname{sign}\nabla_x L`,
    clipped to :math:`[0, 1]`.

    Parameters
    ----------
    apply_fn, params
        The model (see :mod:`mgs_teach.kernel`).
    x : array, shape (B, ...)
        Inputs with pixels in ``[0, 1]``.
    y : array, shape (B,)
        True labels.
    eps : float
        The :math:`L_\infty` budget.

    Returns
    -------
    array, shape of ``x``
    """
    grad = jax.grad(lambda z: jnp.sum(cross_entropy_each(apply_fn, params, z, y)))(x)
    return project(x + eps * jnp.sign(grad), x, eps)


def pgd(
    objective: Callable[[jax.Array], jax.Array],
    x: jax.Array,
    eps: float,
    *,
    step_size: float,
    steps: int,
) -> jax.Array:
    r"""Projected gradient ascent on ``objective`` within the :math:`L_\infty` ball around ``x``.

    Each step moves by ``step_size`` along the sign of the gradient and projects back
    (:func:`project`), starting from ``x`` itself: with no random start this is the basic
    iterative method; Madry et al.'s PGD starts from a random point of the ball.

    Parameters
    ----------
    objective : callable
        ``objective(x') -> (B,)`` values to increase, one per input (for the usual attack,
        the cross-entropy of the true label; subtract a multiple of :func:`input_trace` for an
        attacker who also hides from the trace detector). Inputs do not interact.
    x : array, shape (B, ...)
    eps, step_size : float
    steps : int

    Returns
    -------
    array, shape of ``x``
    """
    grad = jax.grad(lambda z: jnp.sum(objective(z)))

    def step(_: int, z: jax.Array) -> jax.Array:
        return project(z + step_size * jnp.sign(grad(z)), x, eps)

    return jax.lax.fori_loop(0, steps, step, x)


def input_trace(
    apply_fn: Callable[[Any, jax.Array], jax.Array], params: Any, x: jax.Array
) -> jax.Array:
    r"""The MGS trace of every input on its own: :math:`\sum_c \|\nabla_\theta f_c(x_i)\|^2`.

    One per-input Jacobian at a time (``lax.map``), so the forward computation holds one
    input's ``C x P`` numbers at a time; differentiable with respect to ``x`` (an adaptive
    attack needs that), when the reverse pass keeps what each input needs.

    Parameters
    ----------
    apply_fn, params
    x : array, shape (B, ...)

    Returns
    -------
    array, shape (B,)
    """

    return jax.lax.map(lambda xi: jnp.sum(_class_grad_norms(apply_fn, params, xi)), x)


def fisher_trace(
    apply_fn: Callable[[Any, jax.Array], jax.Array], params: Any, x: jax.Array
) -> jax.Array:
    r"""The trace of the Fisher information of every input on its own.

    :math:`\operatorname{tr} F(x) = \sum_c p_c \|\nabla_\theta \log p_c(x)\|^2` with
    :math:`p = \operatorname{softmax} f(x)`: the score of Martin and Elster (2020). It equals
    :math:`\operatorname{tr}\big((\operatorname{diag} p - pp^\top) K(x)\big)`, the input's
    :math:`C \times C` MGS kernel weighted by the softmax's curvature.

    Parameters
    ----------
    apply_fn, params
    x : array, shape (B, ...)

    Returns
    -------
    array, shape (B,)
    """

    def log_probs(p: Any, x: jax.Array) -> jax.Array:
        return jax.nn.log_softmax(apply_fn(p, x))

    def one(xi: jax.Array) -> jax.Array:
        probs = jnp.exp(log_probs(params, xi[None])[0])
        return jnp.sum(probs * _class_grad_norms(log_probs, params, xi))

    return jax.lax.map(one, x)


def _class_grad_norms(
    apply_fn: Callable[[Any, jax.Array], jax.Array], params: Any, xi: jax.Array
) -> jax.Array:
    r""":math:`\|\nabla_\theta f_c(x)\|^2` for every output ``c`` of one input, shape ``(C,)``."""
    jac = jax.jacrev(lambda p: apply_fn(p, xi[None])[0])(params)  # leaves (C, *shape)
    return sum(
        jnp.sum(leaf.reshape(leaf.shape[0], -1) ** 2, axis=1) for leaf in jax.tree.leaves(jac)
    )
