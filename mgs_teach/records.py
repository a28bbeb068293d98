"""Records: what a run measures as it trains, and the tidy table of one run.

:func:`make_record` builds what is recorded at ``Config.n_records`` evenly spaced steps
(:func:`record_steps`): test loss and accuracy, and :math:`\\operatorname{tr} K` and
:math:`\\log\\det K` on a fixed monitoring batch (:func:`monitor_batch`). :func:`history`
turns a run's records into one table, cut where the run diverged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from mgs_teach.kernel import kernel_logdet, mgs_kernel
from mgs_teach.penalties import cross_entropy

__all__ = [
    "RECORD_FIELDS",
    "Run",
    "TrainingDiverged",
    "evaluate",
    "history",
    "make_record",
    "monitor_batch",
    "record_steps",
]

LossFn = Callable[[jax.Array, jax.Array], jax.Array]


class TrainingDiverged(UserWarning):
    """The loss or the parameters stopped being finite, or a run was interrupted."""


#: What every record holds, besides its step.
RECORD_FIELDS = ("train_loss", "test_loss", "test_acc", "trace", "logdet", "lambda_max")


def evaluate(
    apply_fn: Callable[[Any, jax.Array], jax.Array],
    params: Any,
    x: jax.Array,
    y: jax.Array,
    loss_fn: LossFn = cross_entropy,
    chunk: int = 512,
) -> tuple[jax.Array, jax.Array]:
    """Mean loss and accuracy of ``apply_fn`` on ``(x, y)``, in chunks of ``chunk`` samples.

    Pure and traceable (a ``lax.map`` over chunks, the last one padded and masked), so it
    runs inside a compiled training program.

    Returns
    -------
    loss, accuracy : scalar arrays
        The accuracy is NaN for real-valued targets (a regression has none).
    """
    n = x.shape[0]
    size = min(chunk, n)
    n_chunks = -(-n // size)
    pad = n_chunks * size - n
    xs = jnp.reshape(
        jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1)), (n_chunks, size, *x.shape[1:])
    )
    ys = jnp.reshape(
        jnp.pad(y, [(0, pad)] + [(0, 0)] * (y.ndim - 1)), (n_chunks, size, *y.shape[1:])
    )
    mask = jnp.reshape(jnp.arange(n_chunks * size) < n, (n_chunks, size))

    def one(args: tuple) -> tuple[jax.Array, jax.Array]:
        xb, yb, m = args
        logits = apply_fn(params, xb)
        losses = jax.vmap(lambda lg, t: loss_fn(lg[None], t[None]))(logits, yb)
        if not classes:
            return jnp.sum(jnp.where(m, losses, 0.0)), jnp.zeros((), losses.dtype)
        correct = jnp.argmax(logits, axis=-1) == yb
        return jnp.sum(jnp.where(m, losses, 0.0)), jnp.sum(jnp.where(m, correct, False))

    classes = jnp.issubdtype(y.dtype, jnp.integer)
    losses, correct = jax.lax.map(one, (xs, ys, mask))
    accuracy = jnp.sum(correct) / n if classes else jnp.full((), jnp.nan, losses.dtype)
    return jnp.sum(losses) / n, accuracy


def make_record(
    apply_fn: Callable[[Any, jax.Array], jax.Array],
    config: Any,
    loss_fn: LossFn = cross_entropy,
) -> Callable[..., dict[str, jax.Array]]:
    """Build the record of one run: ``record(params, x_test, y_test, x_monitor) -> dict``.

    The dict holds ``test_loss``, ``test_acc``, and ``trace``, ``logdet`` and ``lambda_max``
    (largest eigenvalue) of the MGS kernel of the monitoring batch ``x_monitor`` (evaluation
    mode, the structured kernel where the model allows it), computed in float64 if
    ``config.metrics_in_float64``, which needs float64 enabled while it is traced
    (:func:`mgs_teach.kernel.float64`).
    """
    wide = config.metrics_in_float64

    def record(params: Any, x_test: jax.Array, y_test: jax.Array,
               x_monitor: jax.Array) -> dict[str, jax.Array]:  # fmt: skip
        test_loss, test_acc = evaluate(apply_fn, params, x_test, y_test, loss_fn)
        p, xm = params, x_monitor
        if wide:
            p, xm = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), (params, x_monitor))
        kernel = mgs_kernel(apply_fn, p, xm, method="auto")
        return dict(test_loss=test_loss, test_acc=test_acc, trace=jnp.trace(kernel),
                    logdet=kernel_logdet(kernel),
                    lambda_max=jnp.linalg.eigvalsh(kernel)[-1])  # fmt: skip

    return record


def record_steps(total: int, n_records: int) -> np.ndarray:
    """The steps at which a run of ``total`` steps records: ``n_records`` evenly spaced ones.

    The first is step 0 and the last is ``total``; fewer when ``total + 1 < n_records``.
    """
    return np.unique(np.round(np.linspace(0, total, min(n_records, total + 1))).astype(int))


def monitor_batch(x_train: np.ndarray, size: int, seed: int) -> np.ndarray:
    """The fixed monitoring batch of a run: ``size`` training inputs chosen by ``seed``."""
    return np.asarray(x_train)[np.random.default_rng(seed).permutation(len(x_train))[:size]]


def history(
    records: dict[str, np.ndarray],
    steps: np.ndarray,
    lrs: np.ndarray,
    steps_per_epoch: int,
    diverged_at: int,
) -> tuple[pd.DataFrame, str, str]:
    """One run's records as a tidy table, cut at divergence.

    Parameters
    ----------
    records : dict of arrays, shape ``(n,)``
        :data:`RECORD_FIELDS`, one value per record.
    steps, lrs : arrays, shape ``(n,)``
        The step and the learning rate of each record.
    steps_per_epoch : int
    diverged_at : int
        The step at which the run diverged, or ``-1``.

    Returns
    -------
    history : pandas.DataFrame
        One row per record: ``step, epoch, lr, train_loss, test_loss, test_acc, trace,
        logdet, lambda_max, singular``. ``train_loss`` is the mean mini-batch loss (without the
        penalty) over the steps since the previous record, NaN at step 0. ``logdet`` is
        ``-inf`` where the monitoring kernel was singular (``singular`` True).
    status : str
        ``"finished"`` or ``"diverged"``.
    message : str
    """
    frame = pd.DataFrame({"step": steps, "epoch": steps / steps_per_epoch, "lr": lrs})
    for name in RECORD_FIELDS:
        frame[name] = np.asarray(records[name], dtype=float)
    frame["singular"] = frame["logdet"] == -np.inf
    status, message = "finished", f"trained {int(steps[-1]) if len(steps) else 0} steps"
    if diverged_at >= 0:
        frame = frame[frame["step"] <= diverged_at].reset_index(drop=True)
        status = "diverged"
        message = (
            f"training diverged at step {diverged_at}: the loss or the parameters became NaN or "
            "inf. The history stops at the last record before; try a smaller learning rate or "
            "strength."
        )
    n_singular = int(frame["singular"].sum())
    if n_singular:
        message += (
            f"; the monitoring kernel was singular at {n_singular} of {len(frame)} records "
            "(log det = -inf, gaps in its curve)"
        )
    return frame, status, message


@dataclasses.dataclass
class Run:
    """What :func:`mgs_teach.train.train` (and the engine, per run) returns.

    Attributes
    ----------
    history : pandas.DataFrame
        As :func:`history` makes it, with the constant columns ``regulariser, strength,
        seed`` added.
    params : dict
        Final parameters (the last finite ones if training diverged).
    status : str
        ``"finished"``, ``"diverged"`` or ``"interrupted"``.
    message : str
        What happened, in a sentence.
    """

    history: pd.DataFrame
    params: Any
    status: str
    message: str
