"""What a run is configured with and what it carries: :class:`Config`, :class:`Hyper`,
:class:`State`, and the :class:`Step` that :func:`mgs_teach.train.make_step` builds."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from mgs_teach.penalties import Regulariser

__all__ = ["Config", "Hyper", "State", "Step"]


@dataclasses.dataclass(frozen=True)
class Config:
    """How to train: the paper's defaults are SGD from 0.1, batch 32, slow exponential decay.

    Attributes
    ----------
    epochs : int
    batch_size : int
        Each epoch is ``n_train // batch_size`` steps over a fresh permutation; the remainder,
        a different random handful each epoch, waits for the next one.
    learning_rate : float
        Initial learning rate. Like a regulariser's strength it enters the step as a number
        (:class:`Hyper`), so runs that differ only in it share one compiled program.
    lr_decay : float
        Learning-rate factor per epoch (applied smoothly, step by step).
    n_records : int
        Number of evenly spaced records, the first at step 0 and the last at the end.
    monitor_size : int
        Training samples in the fixed batch on which tr K and log det K are measured.
    metrics_in_float64 : bool
        Measure tr K and log det K in float64 (the default; training stays in float32).
        Kernels of smooth models on low-dimensional data have eigenvalues below float32's
        resolution, where log det K would read -inf although the kernel is not singular.
    """

    epochs: int = 100
    batch_size: int = 32
    learning_rate: float = 0.1
    lr_decay: float = 0.99
    n_records: int = 100
    monitor_size: int = 32
    metrics_in_float64: bool = True

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "n_records", "monitor_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"Config.{name} must be at least 1, got {getattr(self, name)}")
        if not self.learning_rate > 0 or not 0 < self.lr_decay <= 1:
            raise ValueError(
                f"need learning_rate > 0 and 0 < lr_decay <= 1, got {self.learning_rate}, "
                f"{self.lr_decay}"
            )

    def steps_per_epoch(self, n_train: int) -> int:
        """Optimiser steps per epoch for ``n_train`` training samples."""
        if n_train < self.batch_size:
            raise ValueError(f"batch_size {self.batch_size} exceeds the {n_train} training samples")
        return n_train // self.batch_size

    def total_steps(self, n_train: int) -> int:
        """Optimiser steps of the whole run."""
        return self.epochs * self.steps_per_epoch(n_train)


class Hyper(NamedTuple):
    """The numbers of a run that are data, not program: one compiled step serves all values.

    Attributes
    ----------
    strength : scalar array
        The regulariser's strength (see :class:`mgs_teach.penalties.Regulariser`).
    learning_rate : scalar array
        The initial learning rate.
    """

    strength: jax.Array
    learning_rate: jax.Array

    @classmethod
    def of(cls, reg: Regulariser, config: Config) -> Hyper:
        """The hyperparameters of one run, as float32 scalars."""
        return cls(jnp.float32(reg.strength), jnp.float32(config.learning_rate))


class State(NamedTuple):
    """Everything a run carries from step to step (a pytree; batched, every leaf gets a run axis).

    Attributes
    ----------
    params, opt_state
        The model's parameters and the optimiser's state.
    order : int array, shape ``(n_train,)``
        This epoch's permutation of the training samples.
    key : PRNG key
        The run's key; each step folds in its index.
    diverged_at : int scalar
        The step at which the loss or the parameters stopped being finite, ``-1`` while they
        are. From then on the step leaves the state unchanged.
    """

    params: Any
    opt_state: Any
    order: jax.Array
    key: jax.Array
    diverged_at: jax.Array


@dataclasses.dataclass(frozen=True)
class Step:
    """A run's training step, from :func:`mgs_teach.train.make_step`.

    Attributes
    ----------
    init : callable
        ``init(params, key) -> State`` at step 0.
    step : callable
        ``step(state, x_train, y_train, t, hyper) -> (state, data_loss)``: optimiser step
        ``t`` on the mini-batch that the run's permutation gives. Pure; ``jit`` and ``vmap``
        it freely.
    update : callable
        ``update(state, xb, yb, t, hyper) -> (state, data_loss)``: the same on a given batch.
    schedule : callable
        ``schedule(t, hyper) -> learning rate`` of the regulariser's optimiser at step ``t``.
    steps_per_epoch : int
    """

    init: Callable[..., State]
    step: Callable[..., tuple[State, jax.Array]]
    update: Callable[..., tuple[State, jax.Array]]
    schedule: Callable[..., jax.Array]
    steps_per_epoch: int
