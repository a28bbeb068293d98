"""The engine's program: a group of runs' training as one pure, compiled function.

:func:`make_train` is built in the manner of PureJaxRL's ``make_train``: everything the
program needs is built before it is returned, and nothing global is read inside it. A
chunk of training is ``lax.scan`` over the record segments of the chunk, a ``fori_loop``
over the optimiser steps of each segment, and the records
(:func:`mgs_teach.records.make_record`) computed in the program at the end of every
segment. Its step is :func:`mgs_teach.train.make_step`. The driver around it is
:func:`mgs_teach.lab.engine.train_runs`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from mgs_teach.config import Config
from mgs_teach.penalties import Regulariser, loss_of
from mgs_teach.records import make_record
from mgs_teach.train import build, make_step

__all__ = ["Program", "make_train"]


class Program(NamedTuple):
    """A compiled program of :func:`make_train`.

    Attributes
    ----------
    builder : mgs_teach.config.Step
        The step builder (its ``schedule`` gives each record's learning rate).
    chunk : callable
        ``chunk(states, x_train, y_train, x_test, y_test, monitor, hypers, segments, t0)
        -> (states, records)``: one chunk of training of every run; ``segments`` holds the
        optimiser steps before each record of the chunk, and ``t0`` is its first step.
    init : callable
        ``init(params, keys) -> states`` of a stack of runs.
    """

    builder: Any
    chunk: Callable
    init: Callable


@functools.lru_cache(maxsize=32)
def make_train(make_model: Callable, reg: Regulariser, config: Config, n_train: int,
               shared_test: bool, batched: bool = True,
               loss: str = "cross_entropy") -> Program:  # fmt: skip
    """The compiled training program of a group of runs (cached: compile once; 32 kept).

    Called with :func:`mgs_teach.train.compile_key`'s regulariser and config. ``batched``:
    the step and the record are vmapped over the run axis. Otherwise the program is the
    plain step of one run (plain matrix products, no batched ones), and the run axis of
    length 1 that the caller passes is dropped inside it and added back to its outputs.
    """
    apply_fn, train_fn, _ = build(make_model, reg, 0)
    builder = make_step(apply_fn, train_fn, reg, config, n_train, loss_of(loss))
    record = make_record(apply_fn, config, loss_of(loss))
    if batched:
        step = jax.vmap(builder.step, in_axes=(0, 0, 0, None, 0))
        rec_fn = jax.vmap(record, in_axes=(0, None if shared_test else 0,
                                           None if shared_test else 0, 0))  # fmt: skip
    else:
        step, rec_fn = builder.step, record

    def loop(states, x_train, y_train, x_test, y_test, monitor, hypers, segments, t0):
        def segment(carry, length):
            states, t = carry

            def body(_, c):
                states, t, loss_sum = c
                states, loss = step(states, x_train, y_train, t, hypers)
                return states, t + 1, loss_sum + loss

            zero = jnp.zeros(states.diverged_at.shape, jnp.float32)
            states, t, loss_sum = jax.lax.fori_loop(0, length, body, (states, t, zero))
            rec = rec_fn(states.params, x_test, y_test, monitor)
            rec["train_loss"] = jnp.where(length > 0, loss_sum / jnp.maximum(length, 1), jnp.nan)
            rec["diverged_at"] = states.diverged_at
            return (states, t), rec

        (states, t), recs = jax.lax.scan(segment, (states, t0), segments)
        return states, recs

    def chunk(states, x_train, y_train, x_test, y_test, monitor, hypers, segments, t0):
        if batched:
            return loop(states, x_train, y_train, x_test, y_test, monitor, hypers, segments, t0)
        one = lambda tree: jax.tree.map(lambda a: a[0], tree)  # noqa: E731
        if not shared_test:
            x_test, y_test = x_test[0], y_test[0]
        states, recs = loop(one(states), x_train[0], y_train[0], x_test, y_test, monitor[0],
                            one(hypers), segments, t0)  # fmt: skip
        return jax.tree.map(lambda a: a[None], states), jax.tree.map(lambda a: a[:, None], recs)

    donate = () if jax.default_backend() == "cpu" else (0,)  # the CPU cannot reuse buffers
    return Program(builder, jax.jit(chunk, donate_argnums=donate), jax.jit(jax.vmap(builder.init)))
