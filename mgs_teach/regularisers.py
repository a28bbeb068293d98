r"""The registry: every regulariser of the paper, and what each one does.

A regulariser's behaviour is a :class:`Family`: the penalty term it adds to the loss, the
learning rate and optimiser it trains with, whether its strength is a dropout rate, and
what a step costs. :data:`REGULARISERS` maps each name to its family; it is the one place
where a name decides behaviour. A :class:`mgs_teach.penalties.Regulariser` takes its
family from here when it is built, and a training loop asks the value, never its name.

- ``none``: nothing (strength ignored).
- ``weight_decay``: adds strength times :math:`\tfrac12\sum\theta^2`
  (:func:`mgs_teach.losses.weight_decay`).
- ``dropout``: dropout between fully connected layers; strength is the rate.
- ``adam``: Adam instead of SGD; strength is Adam's learning rate as a fraction of the SGD
  schedule (Adam's steps are normalised, so it needs a much smaller rate, e.g. 0.01).
- ``cyclical_lr``: SGD with a triangular cyclical learning rate; strength is the amplitude
  (:func:`cyclical_schedule`).
- ``input_gradient``: strength times :math:`\frac1B\sum_i\|\nabla_{x_i}\ell_i\|^2`
  (:func:`mgs_teach.losses.input_gradient`).
- ``param_gradient``: strength times :math:`\|\nabla_\theta L\|^2`
  (:func:`mgs_teach.losses.param_gradient`).
- ``mgs_trace``: strength times :math:`\operatorname{tr} K`
  (:func:`mgs_teach.kernel.mgs_trace`, by the regulariser's ``method``).
- ``mgs_logdet``: strength times :math:`\log\det(K + \epsilon I)`
  (:func:`mgs_teach.losses.mgs_logdet_penalty`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Protocol

import jax
import jax.numpy as jnp
import optax

from mgs_teach.kernel import mgs_trace
from mgs_teach.losses import (
    ApplyFn,
    LossFn,
    Params,
    input_gradient,
    mgs_logdet_penalty,
    param_gradient,
    weight_decay,
)

__all__ = ["LOSS_TERMS", "NAMES", "REGULARISERS", "Family", "Options", "cyclical_schedule", "sgd"]


class Options(Protocol):
    """The data of a regulariser that its family reads.

    A :class:`mgs_teach.penalties.Regulariser` has these fields and more.
    """

    strength: float
    cycle_steps: int
    jitter: float
    method: str
    probes: int


Strength = float | jax.Array
#: ``term(reg, apply_fn, params, x, y, loss_fn, key) -> scalar``: a family's penalty term.
Term = Callable[..., jax.Array]
#: ``rate(reg, base, strength) -> schedule``: the learning rate a family trains with.
Rate = Callable[["Options", optax.Schedule, Strength], optax.Schedule]


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


# ------------------------------------------------------------- what each family does
# Module-level functions, so that every regulariser of a family shares the same ones.


def _weight_decay(reg: Options, apply_fn: ApplyFn, params: Params, x: jax.Array,
                  y: jax.Array, loss_fn: LossFn, key: jax.Array | None) -> jax.Array:  # fmt: skip
    return weight_decay(params)


def _input_gradient(reg: Options, apply_fn: ApplyFn, params: Params, x: jax.Array,
                    y: jax.Array, loss_fn: LossFn, key: jax.Array | None) -> jax.Array:  # fmt: skip
    return input_gradient(apply_fn, params, x, y, loss_fn)


def _param_gradient(reg: Options, apply_fn: ApplyFn, params: Params, x: jax.Array,
                    y: jax.Array, loss_fn: LossFn, key: jax.Array | None) -> jax.Array:  # fmt: skip
    return param_gradient(apply_fn, params, x, y, loss_fn)


def _mgs_trace(reg: Options, apply_fn: ApplyFn, params: Params, x: jax.Array,
               y: jax.Array, loss_fn: LossFn, key: jax.Array | None) -> jax.Array:  # fmt: skip
    return mgs_trace(apply_fn, params, x, method=reg.method, key=key, probes=reg.probes)


def _mgs_logdet(reg: Options, apply_fn: ApplyFn, params: Params, x: jax.Array,
                y: jax.Array, loss_fn: LossFn, key: jax.Array | None) -> jax.Array:  # fmt: skip
    return mgs_logdet_penalty(apply_fn, params, x, jitter=reg.jitter)


def _base_rate(reg: Options, base: optax.Schedule, strength: Strength) -> optax.Schedule:
    return base


def _adam_rate(reg: Options, base: optax.Schedule, strength: Strength) -> optax.Schedule:
    return lambda step: strength * base(step)


def _cyclical_rate(reg: Options, base: optax.Schedule, strength: Strength) -> optax.Schedule:
    return cyclical_schedule(base, strength, reg.cycle_steps)


def _positive_fraction(strength: float) -> None:
    if not strength > 0:
        raise ValueError(
            "adam needs a positive strength: its learning rate as a fraction of the SGD "
            f"schedule (for example 0.01), got {strength}"
        )


def _rate_below_one(strength: float) -> None:
    if not strength < 1:
        raise ValueError(f"a dropout rate must be below 1, got {strength}")


def _any_strength(strength: float) -> None:
    pass


def _no_key(reg: Options) -> bool:
    return False


def _no_kernel(reg: Options) -> None:
    return None


def _hutchinson(reg: Options) -> bool:
    return reg.method == "hutchinson"


def _own_method(reg: Options) -> str:
    return reg.method


def _structured(reg: Options) -> str:
    return "structured"


def sgd(schedule: optax.Schedule) -> optax.GradientTransformation:
    """Plain SGD on ``schedule`` (``optax.sgd``): the optimiser of most families."""
    return optax.sgd(schedule)


@dataclasses.dataclass(frozen=True)
class Family:
    """What every regulariser of one name does; its members differ only in their data.

    Attributes
    ----------
    term : callable or None
        ``term(reg, apply_fn, params, x, y, loss_fn, key) -> scalar``, the penalty the
        strength multiplies; ``None`` for a regulariser that adds nothing to the loss.
    rate : callable
        ``rate(reg, base, strength) -> schedule``: the learning rate it trains with.
    transform : callable
        ``transform(schedule) -> optax.GradientTransformation``: the optimiser.
    check : callable
        ``check(strength)`` raises ``ValueError`` for a strength the family cannot take.
    needs_key : callable
        ``needs_key(reg) -> bool``: whether the term draws random numbers.
    kernel : callable
        ``kernel(reg) -> str or None``: the trace method of the MGS kernel a step evaluates
        (``None``: none); the budget times a step by the measured rate of that method.
    trains_dropout : bool
        Whether the strength is the model's dropout rate.
    program_strength : float
        A valid strength that stands for every strength in a compiled program's identity.
    step_cost : float
        A step's cost relative to a plain step, or to one with ``kernel``'s trace (for the
        budget), measured on this project's 2-core CPU (FCN 6 x 300 and LeNet-5, batch 32;
        the larger of the two).
    """

    term: Term | None = None
    rate: Rate = _base_rate
    transform: Callable[[optax.Schedule], optax.GradientTransformation] = sgd
    check: Callable[[float], None] = _any_strength
    needs_key: Callable[[Options], bool] = _no_key
    kernel: Callable[[Options], str | None] = _no_kernel
    trains_dropout: bool = False
    program_strength: float = 0.0
    step_cost: float = 1.0


#: The registry: every regulariser's name and its :class:`Family`. The only place where a
#: name decides behaviour. The gradient penalties differentiate twice; the log-det forms
#: and factors the kernel; the trace's cost is measured by the benchmark.
REGULARISERS: dict[str, Family] = {
    "none": Family(),
    "weight_decay": Family(term=_weight_decay),
    "dropout": Family(check=_rate_below_one, trains_dropout=True, program_strength=0.5),
    "adam": Family(rate=_adam_rate, transform=optax.adam, check=_positive_fraction,
                   program_strength=0.5),
    "cyclical_lr": Family(rate=_cyclical_rate),
    "input_gradient": Family(term=_input_gradient, step_cost=2.6),
    "param_gradient": Family(term=_param_gradient, step_cost=2.6),
    "mgs_trace": Family(term=_mgs_trace, needs_key=_hutchinson, kernel=_own_method),
    "mgs_logdet": Family(term=_mgs_logdet, step_cost=1.5, kernel=_structured),
}  # fmt: skip
NAMES = tuple(REGULARISERS)
LOSS_TERMS = tuple(name for name, family in REGULARISERS.items() if family.term is not None)
