r"""The regulariser as a value: a name, one strength and a few options, and what it does.

A :class:`Regulariser` carries its data (the fields that :func:`repr` shows and results
are stored under) and its :class:`~mgs_teach.regularisers.Family`, taken by name from the
registry :data:`~mgs_teach.regularisers.REGULARISERS` when it is built: the penalty term,
the learning rate and optimiser, whether the strength is a dropout rate, and what a step
costs. Its methods are the same for every regulariser, so a loop needs no special cases::

    reg = regulariser("mgs_trace", 1e-3)
    model = FCN(784, 10, dropout=reg.dropout_rate, rngs=nnx.Rngs(0))
    opt = reg.optimizer(0.1)
    loss = lambda p: loss_fn(apply_fn(p, x), y) + reg.penalty(apply_fn, p, x, y, loss_fn)

The losses and penalty terms (:mod:`mgs_teach.losses`) and the registry
(:mod:`mgs_teach.regularisers`) are importable from here too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import optax

from mgs_teach.kernel import TRACE_METHODS
from mgs_teach.losses import *  # noqa: F403  (re-exported: every public name)
from mgs_teach.losses import ApplyFn, LossFn, Params
from mgs_teach.regularisers import *  # noqa: F403  (re-exported: every public name)
from mgs_teach.regularisers import NAMES, REGULARISERS, Family, Strength

__all__ = ["Regulariser", "regulariser"]


@dataclasses.dataclass(frozen=True)
class Regulariser:
    """A regulariser of the paper and its strength, usable by a loop without special cases.

    Attributes
    ----------
    name : str
        One of :data:`~mgs_teach.regularisers.NAMES`.
    strength : float
        Multiplier of the penalty for the loss terms
        (:data:`~mgs_teach.regularisers.LOSS_TERMS`), the dropout rate for ``"dropout"``
        (in ``[0, 1)``), the amplitude ``r`` for ``"cyclical_lr"`` (see
        :func:`~mgs_teach.regularisers.cyclical_schedule`), Adam's learning rate as a
        fraction of the SGD schedule for ``"adam"`` (must be positive); ignored for
        ``"none"``.
    cycle_steps : int
        Cycle length of ``"cyclical_lr"``, in optimiser steps.
    jitter : float
        Diagonal shift of ``"mgs_logdet"`` (see :func:`~mgs_teach.losses.mgs_logdet_penalty`).
    method : str
        How ``"mgs_trace"`` computes tr K: a ``method`` of :func:`mgs_teach.kernel.mgs_trace`
        (``"auto"``, ``"jacobian"``, ``"structured"`` or ``"hutchinson"``).
    probes : int
        Probes of the Hutchinson estimate (``method="hutchinson"``).
    family : Family
        What it does, from :data:`~mgs_teach.regularisers.REGULARISERS` by ``name`` when
        it is built. Not a data field: it takes no part in equality, hashing, ``repr``,
        :func:`dataclasses.fields` or :func:`dataclasses.replace`.

    Notes
    -----
    Everything but ``strength`` decides the *program* a training step compiles to; the
    strength enters only as a number. :meth:`penalty`, :meth:`schedule` and
    :meth:`optimizer` therefore take an optional ``strength`` that replaces the attribute,
    and that may be a traced array: one compiled step then serves a whole grid of strengths
    (see :mod:`mgs_teach.lab.engine`).
    """

    name: str
    strength: float = 0.0
    cycle_steps: int = 1000
    jitter: float = 1e-3
    method: str = "auto"
    probes: int = 1
    family: ClassVar[Family]  # set on each value by __post_init__

    def __post_init__(self) -> None:
        family = REGULARISERS.get(self.name) if isinstance(self.name, str) else None
        if family is None:
            raise ValueError(f"unknown regulariser {self.name!r}; choose one of {', '.join(NAMES)}")
        if not self.strength >= 0:  # also rejects NaN
            raise ValueError(f"strength must be non-negative, got {self.strength}")
        family.check(self.strength)
        if self.cycle_steps < 1:
            raise ValueError(f"cycle_steps must be positive, got {self.cycle_steps}")
        if not self.jitter > 0:
            raise ValueError(f"jitter must be positive, got {self.jitter}")
        if self.method not in TRACE_METHODS:
            raise ValueError(f"unknown trace method {self.method!r}; choose one of {TRACE_METHODS}")
        if self.probes < 1:
            raise ValueError(f"probes must be at least 1, got {self.probes}")
        object.__setattr__(self, "family", family)

    def __reduce__(self) -> tuple[type[Regulariser], tuple[Any, ...]]:
        # pickle and copy rebuild from the data fields, so the family comes from the registry
        return type(self), tuple(getattr(self, f.name) for f in dataclasses.fields(self))

    @property
    def is_loss_term(self) -> bool:
        """Whether this regulariser adds a term to the loss."""
        return self.family.term is not None

    @property
    def trains_dropout(self) -> bool:
        """Whether the strength is the model's dropout rate."""
        return self.family.trains_dropout

    @property
    def dropout_rate(self) -> float:
        """The dropout rate to build the model with: ``strength`` for ``"dropout"``, else 0."""
        return float(self.strength) if self.family.trains_dropout else 0.0

    @property
    def needs_key(self) -> bool:
        """Whether :meth:`penalty` draws random numbers (the Hutchinson trace)."""
        return self.family.needs_key(self)

    @property
    def step_cost(self) -> float:
        """A step's cost relative to a plain step, for the budget (1 where not measured)."""
        return self.family.step_cost

    def program(self) -> Regulariser:
        """The same regulariser with a fixed valid strength: the compiled program's identity.

        Two regularisers with equal programs compile to the same step: they differ at most
        in their strength, which the step takes as a number.
        """
        return dataclasses.replace(self, strength=self.family.program_strength)

    def penalty(
        self,
        apply_fn: ApplyFn,
        params: Params,
        x: jax.Array,
        y: jax.Array,
        loss_fn: LossFn,
        *,
        strength: Strength | None = None,
        key: jax.Array | None = None,
    ) -> jax.Array:
        """``strength * term`` to add to the mean batch loss; 0 for non-loss regularisers.

        Parameters
        ----------
        apply_fn, params, x, y, loss_fn
            As in :func:`~mgs_teach.losses.input_gradient`.
        strength : float or scalar array, optional
            Replaces :attr:`strength` (may be traced).
        key : PRNG key, optional
            For the Hutchinson trace (:attr:`needs_key`).

        Returns
        -------
        scalar array
        """
        strength = self.strength if strength is None else strength
        if self.family.term is None:
            return jnp.zeros((), dtype=jax.tree.leaves(params)[0].dtype)
        term = self.family.term(self, apply_fn, params, x, y, loss_fn, key)
        return jnp.asarray(strength, term.dtype) * term

    def schedule(
        self, base: float | optax.Schedule, *, strength: Strength | None = None
    ) -> optax.Schedule:
        """The learning rate the optimiser applies at each step, on top of ``base``.

        ``strength * base(t)`` for ``"adam"``; ``cyclical_schedule(base, strength,
        cycle_steps)`` for ``"cyclical_lr"``; ``base`` itself for everything else.

        Parameters
        ----------
        base : float or callable
            Constant learning rate or optax schedule ``step -> lr``.
        strength : float or scalar array, optional
            Replaces :attr:`strength` (may be traced).

        Returns
        -------
        callable
            ``schedule(step) -> learning rate``.
        """
        strength = self.strength if strength is None else strength
        base = base if callable(base) else optax.constant_schedule(base)
        return self.family.rate(self, base, strength)

    def optimizer(
        self,
        learning_rate_schedule: float | optax.Schedule,
        *,
        strength: Strength | None = None,
    ) -> optax.GradientTransformation:
        """The optimiser for this regulariser, stepping at :meth:`schedule`.

        ``optax.adam`` for ``"adam"``, ``optax.sgd`` for everything else. Its state does not
        depend on the schedule or the strength, so both may close over traced per-run values.

        Parameters
        ----------
        learning_rate_schedule : float or callable
            Constant learning rate or optax schedule ``step -> lr``.
        strength : float or scalar array, optional
            Replaces :attr:`strength` (may be traced).

        Returns
        -------
        optax.GradientTransformation
        """
        return self.family.transform(self.schedule(learning_rate_schedule, strength=strength))

    def to_json(self) -> dict[str, Any]:
        """The name and every data field as plain JSON values, in a fixed order.

        Returns
        -------
        dict
            ``name``, ``strength``, ``cycle_steps``, ``jitter``, ``method`` and ``probes``.
        """
        return {"name": str(self.name), "strength": float(self.strength),
                "cycle_steps": int(self.cycle_steps), "jitter": float(self.jitter),
                "method": str(self.method), "probes": int(self.probes)}  # fmt: skip

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Regulariser:
        """The regulariser :meth:`to_json` wrote, built through :func:`regulariser`.

        Parameters
        ----------
        d : mapping
            ``name`` and any of the other data fields.

        Returns
        -------
        Regulariser
        """
        if "name" not in d:
            raise ValueError(f"a regulariser needs a name, got the fields {sorted(d)}")
        options = {k: v for k, v in d.items() if k != "name"}
        return regulariser(d["name"], **options)


#: The options :func:`regulariser` accepts: every data field but the name and the strength.
_OPTIONS = tuple(
    f.name for f in dataclasses.fields(Regulariser) if f.name not in ("name", "strength")
)


def regulariser(name: str, strength: float = 0.0, **options: Any) -> Regulariser:
    """Build a :class:`Regulariser`, with a clear ``ValueError`` for bad names or strengths.

    Parameters
    ----------
    name : str
        One of :data:`~mgs_teach.regularisers.NAMES`.
    strength : float
        See :class:`Regulariser`.
    **options
        ``cycle_steps``, ``jitter``, ``method`` or ``probes`` (see :class:`Regulariser`).

    Returns
    -------
    Regulariser
    """
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise ValueError(f"unknown regulariser option(s) {', '.join(unknown)}; "
                         f"choose from {', '.join(_OPTIONS)}")  # fmt: skip
    return Regulariser(name, float(strength), **options)
