r"""Every regulariser compared in the paper, each with one strength parameter.

The loss-term penalties are pure functions of a model ``apply_fn(params, x)``, a parameter
pytree ``params`` and a batch; all are differentiable with respect to ``params`` (that is
the point: training adds ``strength * penalty`` to the loss and differentiates the sum).

- ``none``: nothing (strength ignored).
- ``weight_decay``: adds strength times :math:`\tfrac12\sum\theta^2` (:func:`weight_decay`).
- ``dropout``: dropout between fully connected layers; strength is the rate.
- ``adam``: Adam instead of SGD; strength is Adam's learning rate as a fraction of the SGD
  schedule (Adam's steps are normalised, so it needs a much smaller rate, e.g. 0.01).
- ``cyclical_lr``: SGD with a triangular cyclical learning rate; strength is the amplitude
  (:func:`cyclical_schedule`).
- ``input_gradient``: strength times :math:`\frac1B\sum_i\|\nabla_{x_i}\ell_i\|^2`
  (:func:`input_gradient`).
- ``param_gradient``: strength times :math:`\|\nabla_\theta L\|^2` (:func:`param_gradient`).
- ``mgs_trace``: strength times :math:`\operatorname{tr} K` (:func:`mgs_trace_penalty`).
- ``mgs_logdet``: strength times :math:`\log\det(K + \epsilon I)` (:func:`mgs_logdet_penalty`).

Loss convention: ``loss_fn(logits, y) -> scalar``, the **mean** over the batch, e.g.
:func:`cross_entropy`. :class:`Regulariser` bundles a name and a strength so that a
training loop can treat all of them alike::

    reg = regulariser("mgs_trace", 1e-3)
    model = FCN(784, 10, dropout=reg.dropout_rate, rngs=nnx.Rngs(0))
    opt = reg.optimizer(0.1)
    loss = lambda p: loss_fn(apply_fn(p, x), y) + reg.penalty(apply_fn, p, x, y, loss_fn)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from mgs_teach.fast import structured_kernel
from mgs_teach.kernel import mgs_kernel

Params = Any
ApplyFn = Callable[[Params, jax.Array], jax.Array]
LossFn = Callable[[jax.Array, jax.Array], jax.Array]

__all__ = [
    "LOSS_TERMS",
    "NAMES",
    "Regulariser",
    "LOSSES",
    "cross_entropy",
    "cyclical_schedule",
    "input_gradient",
    "loss_gradient_bounds",
    "mgs_logdet_penalty",
    "mgs_trace_penalty",
    "mse",
    "param_gradient",
    "regulariser",
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
    from mgs_teach.kernel import mgs_trace

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


# ------------------------------------------------------------------------ schedules


def cyclical_schedule(base: float | optax.Schedule, ratio: float, period: int) -> optax.Schedule:
    r"""Triangular cyclical learning rate on top of a base schedule.

    .. math::
        \eta(t) = \eta_0(t)\,\bigl(1 + r\,\mathrm{tri}(t)\bigr), \qquad
        \mathrm{tri}(t) = 1 - \bigl|2\,\{t / T\} - 1\bigr|,

    with :math:`\{\cdot\}` the fractional part. ``tri`` rises linearly from 0 at
    :math:`t = 0` to 1 at :math:`t = T/2` and falls back to 0 at :math:`t = T`. So the rate
    cycles between :math:`\eta_0(t)` and :math:`(1 + r)\,\eta_0(t)`: the maximum-to-minimum
    ratio is :math:`1 + r`, and :math:`r = 0` is the plain base schedule.

    Parameters
    ----------
    base : float or callable
        Base learning rate :math:`\eta_0`, constant or an optax schedule ``step -> lr``.
    ratio : float
        Amplitude :math:`r \ge 0`.
    period : int
        Cycle length :math:`T` in steps.

    Returns
    -------
    callable
        ``schedule(step) -> learning rate``.
    """
    if (not isinstance(ratio, jax.Array) and ratio < 0) or period < 1:
        raise ValueError(f"need ratio >= 0 and period >= 1, got ratio={ratio}, period={period}")
    base_fn = base if callable(base) else optax.constant_schedule(base)

    def schedule(step: jax.Array) -> jax.Array:
        phase = jnp.mod(jnp.asarray(step, dtype=jnp.float32), period) / period
        tri = 1.0 - jnp.abs(2.0 * phase - 1.0)
        return base_fn(step) * (1.0 + jnp.asarray(ratio, jnp.float32) * tri)

    return schedule


# ---------------------------------------------------------------------- Regulariser

NAMES = (
    "none",
    "weight_decay",
    "dropout",
    "adam",
    "cyclical_lr",
    "input_gradient",
    "param_gradient",
    "mgs_trace",
    "mgs_logdet",
)
LOSS_TERMS = ("weight_decay", "input_gradient", "param_gradient", "mgs_trace", "mgs_logdet")


@dataclasses.dataclass(frozen=True)
class Regulariser:
    """A regulariser of the paper and its strength, usable by a loop without special cases.

    Attributes
    ----------
    name : str
        One of :data:`NAMES`.
    strength : float
        Multiplier of the penalty for the loss terms (:data:`LOSS_TERMS`), the dropout
        rate for ``"dropout"`` (in ``[0, 1)``), the amplitude ``r`` for ``"cyclical_lr"``
        (see :func:`cyclical_schedule`), Adam's learning rate as a fraction of the SGD
        schedule for ``"adam"`` (must be positive); ignored for ``"none"``.
    cycle_steps : int
        Cycle length of ``"cyclical_lr"``, in optimiser steps.
    jitter : float
        Diagonal shift of ``"mgs_logdet"`` (see :func:`mgs_logdet_penalty`).
    method : str
        How ``"mgs_trace"`` computes tr K: a ``method`` of :func:`mgs_teach.kernel.mgs_trace`
        (``"auto"``, ``"jacobian"``, ``"structured"`` or ``"hutchinson"``).
    probes : int
        Probes of the Hutchinson estimate (``method="hutchinson"``).

    Notes
    -----
    Everything but ``strength`` decides the *program* a training step compiles to; the
    strength enters only as a number. :meth:`penalty` and :meth:`optimizer` therefore take
    an optional ``strength`` that replaces the attribute, and that may be a traced array:
    one compiled step then serves a whole grid of strengths (see :mod:`mgs_teach.engine`).
    """

    name: str
    strength: float = 0.0
    cycle_steps: int = 1000
    jitter: float = 1e-3
    method: str = "auto"
    probes: int = 1

    def __post_init__(self) -> None:
        from mgs_teach.kernel import TRACE_METHODS

        if self.name not in NAMES:
            raise ValueError(f"unknown regulariser {self.name!r}; choose one of {', '.join(NAMES)}")
        if not self.strength >= 0:  # also rejects NaN
            raise ValueError(f"strength must be non-negative, got {self.strength}")
        if self.name == "adam" and not self.strength > 0:
            raise ValueError(
                "adam needs a positive strength: its learning rate as a fraction of the SGD "
                f"schedule (for example 0.01), got {self.strength}"
            )
        if self.name == "dropout" and not self.strength < 1:
            raise ValueError(f"a dropout rate must be below 1, got {self.strength}")
        if self.cycle_steps < 1:
            raise ValueError(f"cycle_steps must be positive, got {self.cycle_steps}")
        if not self.jitter > 0:
            raise ValueError(f"jitter must be positive, got {self.jitter}")
        if self.method not in TRACE_METHODS:
            raise ValueError(f"unknown trace method {self.method!r}; choose one of {TRACE_METHODS}")
        if self.probes < 1:
            raise ValueError(f"probes must be at least 1, got {self.probes}")

    @property
    def is_loss_term(self) -> bool:
        """Whether this regulariser adds a term to the loss."""
        return self.name in LOSS_TERMS

    @property
    def dropout_rate(self) -> float:
        """The dropout rate to build the model with: ``strength`` for ``"dropout"``, else 0."""
        return float(self.strength) if self.name == "dropout" else 0.0

    @property
    def needs_key(self) -> bool:
        """Whether :meth:`penalty` draws random numbers (the Hutchinson trace)."""
        return self.name == "mgs_trace" and self.method == "hutchinson"

    def penalty(
        self,
        apply_fn: ApplyFn,
        params: Params,
        x: jax.Array,
        y: jax.Array,
        loss_fn: LossFn,
        *,
        strength: float | jax.Array | None = None,
        key: jax.Array | None = None,
    ) -> jax.Array:
        """``strength * term`` to add to the mean batch loss; 0 for non-loss regularisers.

        Parameters
        ----------
        apply_fn, params, x, y, loss_fn
            As in :func:`input_gradient`.
        strength : float or scalar array, optional
            Replaces :attr:`strength` (may be traced).
        key : PRNG key, optional
            For the Hutchinson trace (:attr:`needs_key`).

        Returns
        -------
        scalar array
        """
        from mgs_teach.kernel import mgs_trace

        strength = self.strength if strength is None else strength
        if self.name == "weight_decay":
            term = weight_decay(params)
        elif self.name == "input_gradient":
            term = input_gradient(apply_fn, params, x, y, loss_fn)
        elif self.name == "param_gradient":
            term = param_gradient(apply_fn, params, x, y, loss_fn)
        elif self.name == "mgs_trace":
            term = mgs_trace(apply_fn, params, x, method=self.method, key=key, probes=self.probes)
        elif self.name == "mgs_logdet":
            term = mgs_logdet_penalty(apply_fn, params, x, jitter=self.jitter)
        else:
            return jnp.zeros((), dtype=jax.tree.leaves(params)[0].dtype)
        return jnp.asarray(strength, term.dtype) * term

    def optimizer(
        self,
        learning_rate_schedule: float | optax.Schedule,
        *,
        strength: float | jax.Array | None = None,
    ) -> optax.GradientTransformation:
        """The optimiser for this regulariser.

        ``optax.adam(strength * schedule)`` for ``"adam"``; ``optax.sgd`` with
        ``cyclical_schedule(schedule, strength, cycle_steps)`` for ``"cyclical_lr"``;
        ``optax.sgd(schedule)`` for everything else. Its state does not depend on the
        schedule or the strength, so both may close over traced per-run values.

        Parameters
        ----------
        learning_rate_schedule : float or callable
            Constant learning rate or optax schedule ``step -> lr``.
        strength : float or scalar array, optional
            Replaces :attr:`strength` (may be traced).
        """
        strength = self.strength if strength is None else strength
        base = learning_rate_schedule
        if not callable(base):
            base = optax.constant_schedule(base)
        if self.name == "adam":
            return optax.adam(lambda step: strength * base(step))
        if self.name == "cyclical_lr":
            return optax.sgd(cyclical_schedule(base, strength, self.cycle_steps))
        return optax.sgd(base)


def regulariser(name: str, strength: float = 0.0, **kwargs: Any) -> Regulariser:
    """Build a :class:`Regulariser`, with a clear ``ValueError`` for bad names or strengths.

    Extra keyword arguments (``cycle_steps``, ``jitter``) go to :class:`Regulariser`.
    """
    return Regulariser(name, float(strength), **kwargs)
