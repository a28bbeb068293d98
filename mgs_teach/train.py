"""Training: one step builder, the records, checkpoints, and the reference loop.

Every way the book trains a network is built from the same three pieces:

- :func:`make_step` builds the training step of one run: SGD (or the regulariser's
  optimiser) on the mean cross-entropy plus the regulariser's penalty, with the paper's slow
  exponential learning-rate decay. The step picks its own mini-batch from the run's epoch
  permutation, draws its dropout and probe keys from the run's key, and refuses to leave
  finite parameters: a run that diverges is frozen and flagged in its own state.
- :func:`make_record` builds what is recorded at ``Config.n_records`` evenly spaced steps:
  test loss and accuracy, and :math:`\\operatorname{tr} K` and :math:`\\log\\det K` on a
  fixed monitoring batch.
- :func:`save` and :func:`load` write and read checkpoints atomically.

:func:`train` is the reference loop: one run, one jitted step per Python iteration. The
batched engine (:mod:`mgs_teach.engine`) trains many runs as one program from the same
pieces, and its runs equal the runs of this loop. The strength and the learning rate
(:class:`Hyper`) enter the step as numbers, not as constants of the program.

::

    from mgs_teach import train
    from mgs_teach.penalties import regulariser

    run = train.train(make_model, data, regulariser("mgs_trace", 1e-3), train.Config(epochs=50))
    run.history.plot(x="epoch", y=["trace", "test_acc"], subplots=True)
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import pickle
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
from flax import nnx
from tqdm.auto import tqdm

from mgs_teach.kernel import float64, kernel_logdet, mgs_kernel
from mgs_teach.models import functional
from mgs_teach.penalties import LOSSES, Regulariser, cross_entropy

__all__ = [
    "RECORD_FIELDS",
    "Config",
    "Hyper",
    "Run",
    "State",
    "Step",
    "TrainingDiverged",
    "evaluate",
    "history",
    "load",
    "loss_of",
    "make_record",
    "make_step",
    "monitor_batch",
    "record_steps",
    "save",
    "train",
]

Data = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
MakeModel = Callable[..., nnx.Module]
LossFn = Callable[[jax.Array, jax.Array], jax.Array]

#: What every record holds, besides its step.
RECORD_FIELDS = ("train_loss", "test_loss", "test_acc", "trace", "logdet")


class TrainingDiverged(UserWarning):
    """The loss or the parameters stopped being finite, or a run was interrupted."""


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
    """A run's training step, from :func:`make_step`.

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


def _order_key(key: jax.Array, epoch: jax.Array) -> jax.Array:
    return jax.random.fold_in(jax.random.fold_in(key, 1), epoch)


def _step_keys(key: jax.Array, t: jax.Array) -> tuple[jax.Array, jax.Array]:
    k = jax.random.fold_in(jax.random.fold_in(key, 2), t)
    return jax.random.fold_in(k, 0), jax.random.fold_in(k, 1)  # dropout, penalty probes


def make_step(
    apply_fn: Callable[..., jax.Array],
    train_fn: Callable[..., jax.Array],
    reg: Regulariser,
    config: Config,
    n_train: int,
    loss_fn: LossFn = cross_entropy,
) -> Step:
    """Build the training step of one run.

    Parameters
    ----------
    apply_fn : callable
        ``apply_fn(params, x)``: the model in evaluation mode (what the penalties see).
    train_fn : callable
        ``train_fn(params, x, key, rate)``: the model in training mode, dropout masks from
        ``key`` at rate ``rate`` (``functional(module, train=True)``).
    reg : Regulariser
        Its name and options fix the program; its strength is the default of ``hyper``.
    config : Config
    n_train : int
        Training samples (the permutation's length).
    loss_fn : callable
        ``loss_fn(logits, y) -> scalar``, the mean over the batch.

    Returns
    -------
    Step

    Notes
    -----
    The step keeps float32 parameters float32 even while float64 is enabled (the records
    need it): every constant it makes has the parameters' dtype.
    """
    spe = config.steps_per_epoch(n_train)
    b = config.batch_size
    decay = config.lr_decay

    def base(hyper: Hyper) -> Callable[[jax.Array], jax.Array]:
        def schedule(t: jax.Array) -> jax.Array:
            epochs = jnp.asarray(t, jnp.float32) / jnp.float32(spe)
            return hyper.learning_rate * jnp.float32(decay) ** epochs

        return schedule

    def optimizer(hyper: Hyper) -> optax.GradientTransformation:
        return reg.optimizer(base(hyper), strength=hyper.strength)

    def schedule(t: jax.Array, hyper: Hyper) -> jax.Array:
        lr = base(hyper)
        if reg.name == "adam":
            return hyper.strength * lr(t)
        if reg.name == "cyclical_lr":
            from mgs_teach.penalties import cyclical_schedule

            return cyclical_schedule(lr, hyper.strength, reg.cycle_steps)(t)
        return lr(t)

    def init(params: Any, key: jax.Array) -> State:
        hyper = Hyper(jnp.float32(reg.strength), jnp.float32(config.learning_rate))
        order = jax.random.permutation(_order_key(key, 0), n_train).astype(jnp.int32)
        return State(params, optimizer(hyper).init(params), order, key, jnp.int32(-1))

    def update(state: State, xb: jax.Array, yb: jax.Array, t: jax.Array,
               hyper: Hyper) -> tuple[State, jax.Array]:  # fmt: skip
        k_drop, k_probe = _step_keys(state.key, t)
        rate = hyper.strength if reg.name == "dropout" else None

        def loss(p: Any) -> tuple[jax.Array, jax.Array]:
            data_loss = loss_fn(train_fn(p, xb, k_drop, rate), yb)
            penalty = reg.penalty(apply_fn, p, xb, yb, loss_fn, strength=hyper.strength,
                                  key=k_probe if reg.needs_key else None)  # fmt: skip
            return data_loss + penalty, data_loss

        (total, data_loss), grads = jax.value_and_grad(loss, has_aux=True)(state.params)
        updates, opt_state = optimizer(hyper).update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        finite = jnp.isfinite(total) & _all_finite(params)
        ok = finite & (state.diverged_at < 0)
        keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(ok, n, o), new, old)  # noqa: E731
        diverged_at = jnp.where((state.diverged_at < 0) & ~finite, jnp.int32(t), state.diverged_at)
        new = State(keep(params, state.params), keep(opt_state, state.opt_state), state.order,
                    state.key, diverged_at)  # fmt: skip
        return new, data_loss

    def step(state: State, x_train: jax.Array, y_train: jax.Array, t: jax.Array,
             hyper: Hyper) -> tuple[State, jax.Array]:  # fmt: skip
        epoch, i = t // spe, t % spe
        order = jax.lax.cond(
            i == 0,
            lambda: jax.random.permutation(_order_key(state.key, epoch), n_train).astype(jnp.int32),
            lambda: state.order,
        )
        idx = jax.lax.dynamic_slice(order, (i * b,), (b,))
        return update(state._replace(order=order), x_train[idx], y_train[idx], t, hyper)

    return Step(init, step, update, schedule, spe)


def _all_finite(tree: Any) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree)]))


# ------------------------------------------------------------------------- records


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
    config: Config,
    loss_fn: LossFn = cross_entropy,
) -> Callable[..., dict[str, jax.Array]]:
    """Build the record of one run: ``record(params, x_test, y_test, x_monitor) -> dict``.

    The dict holds ``test_loss``, ``test_acc``, and ``trace`` and ``logdet`` of the MGS
    kernel of the monitoring batch ``x_monitor`` (evaluation mode, the structured kernel
    where the model allows it), computed in float64 if ``config.metrics_in_float64``, which
    needs float64 enabled while it is traced (:func:`mgs_teach.kernel.float64`).
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
                    logdet=kernel_logdet(kernel))  # fmt: skip

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
        logdet, singular``. ``train_loss`` is the mean mini-batch loss (without the
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


# ---------------------------------------------------------------------- checkpoints


def save(path: str | Path, state: dict) -> None:
    """Write a checkpoint atomically: a crash mid-write never leaves a truncated file.

    JAX arrays anywhere in ``state`` are stored as NumPy arrays (PRNG keys as their data).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        pickle.dump(jax.tree.map(_to_numpy, state), f)
    os.replace(tmp, path)


def load(path: str | Path, fingerprint: str) -> dict | None:
    """Read a checkpoint written by :func:`save`, or ``None`` if there is none.

    Raises
    ------
    ValueError
        If the checkpoint's ``fingerprint`` differs: it belongs to another run.
    """
    path = Path(path)
    if not path.exists():
        return None
    with open(path, "rb") as f:
        saved = pickle.load(f)
    if saved.get("fingerprint") != fingerprint:
        raise ValueError(
            f"checkpoint {path} belongs to a different run (other model, data, regulariser "
            "or config); delete it or pass another path"
        )
    return saved


def _to_numpy(leaf: Any) -> Any:
    if isinstance(leaf, jax.Array):
        if jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            return np.asarray(jax.random.key_data(leaf))
        return np.asarray(leaf)
    return leaf


def fingerprint(*parts: Any) -> str:
    """A stable hash of reprs and arrays: a checkpoint is only resumed by the same run."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray | jax.Array):
            h.update(np.ascontiguousarray(np.asarray(part)).tobytes())
        else:
            h.update(repr(part).encode())
    return h.hexdigest()


# ---------------------------------------------------------------- the reference loop


@dataclasses.dataclass
class Run:
    """What :func:`train` (and the engine, per run) returns.

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


def _check_data(data: Data, config: Config) -> tuple[np.ndarray, ...]:
    if len(data) != 4:
        raise ValueError("data must be (x_train, y_train, x_test, y_test)")
    arrays = tuple(np.asarray(a) for a in data)
    x_tr, y_tr, x_te, y_te = arrays
    for name, x, y in (("train", x_tr, y_tr), ("test", x_te, y_te)):
        if len(x) != len(y):
            raise ValueError(f"{name} inputs and labels differ in length: {len(x)} vs {len(y)}")
        if len(x) == 0:
            raise ValueError(f"the {name} set is empty")
    config.steps_per_epoch(len(x_tr))  # checks the batch size
    return arrays


def program_key(reg: Regulariser, config: Config) -> tuple[Regulariser, Config]:
    """The regulariser and config with their data-valued fields fixed: a program's identity.

    Two runs whose keys are equal compile to the same step: they differ at most in their
    strength and learning rate, which :class:`Hyper` passes as numbers.
    """
    canonical = 0.5 if reg.name in ("dropout", "adam") else 0.0
    return dataclasses.replace(reg, strength=canonical), dataclasses.replace(
        config, learning_rate=1.0
    )


def compile_key(reg: Regulariser, config: Config) -> tuple[Regulariser, Config]:
    """:func:`program_key` with the run's length fixed too: what a compiled step depends on.

    The number of epochs and of records only decide how often the compiled step is called
    and when the records are made, never what the step computes.
    """
    reg, config = program_key(reg, config)
    return reg, dataclasses.replace(config, epochs=1, n_records=1)


@functools.lru_cache(maxsize=32)
def _compiled(make_model: MakeModel, reg: Regulariser, config: Config, n_train: int,
              loss: str = "cross_entropy") -> tuple:  # fmt: skip
    """The step builder and the jitted step and record of one program, compiled once."""
    apply_fn, train_fn, _ = build(make_model, reg, 0)
    builder = make_step(apply_fn, train_fn, reg, config, n_train, loss_of(loss))
    return builder, jax.jit(builder.step), jax.jit(make_record(apply_fn, config, loss_of(loss)))


def loss_of(name: str) -> LossFn:
    """The loss called ``name`` (:data:`mgs_teach.penalties.LOSSES`), or a clear error."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {sorted(LOSSES)}")
    return LOSSES[name]


def build(make_model: MakeModel, reg: Regulariser, seed: int) -> tuple[Callable, Callable, Any]:
    """``(apply_fn, train_fn, params)`` of a fresh model for one run.

    ``make_model(dropout=rate, rngs=nnx.Rngs(seed))``; a model for ``"dropout"`` is built
    with dropout layers, whose rate the step then sets from the run's strength.
    """
    model = make_model(dropout=reg.dropout_rate or (0.5 if reg.name == "dropout" else 0.0),
                       rngs=nnx.Rngs(seed))  # fmt: skip
    train_fn, params = functional(model, train=True)
    apply_fn, _ = functional(model)
    return apply_fn, train_fn, params


def train(
    make_model: MakeModel,
    data: Data,
    reg: Regulariser,
    config: Config = Config(),
    *,
    seed: int = 0,
    checkpoint: str | Path | None = None,
    progress: bool = True,
    loss: str = "cross_entropy",
) -> Run:
    """Train one fresh model with one regulariser and record the MGS metrics, step by step.

    The reference loop: a Python loop that calls the jitted step of :func:`make_step` once
    per optimiser step and :func:`make_record` at every record. The batched engine
    (:func:`mgs_teach.engine.train_runs`) gives the same histories, much faster.

    Parameters
    ----------
    make_model : callable
        ``make_model(dropout=rate, rngs=nnx.Rngs(seed))`` returns a new NNX model whose
        ``__call__(x, *, rngs=None, dropout_rate=None)`` takes a dropout key and rate (all
        of :mod:`mgs_teach.models` do).
    data : tuple
        ``(x_train, y_train, x_test, y_test)``; labels are integer classes (or real-valued
        targets, with ``loss="mse"``).
    reg : Regulariser
        From :func:`mgs_teach.penalties.regulariser`.
    config : Config
    seed : int
        Seeds the initialisation, the batch order, the dropout masks and probes, and the
        choice of the monitoring batch.
    checkpoint : path, optional
        If given, the run's state and records are written there (atomically) at every record,
        and a later call with the same arguments resumes from it instead of starting over.
    progress : bool
        Show a progress bar.
    loss : {"cross_entropy", "mse"}
        The training loss (:data:`mgs_teach.penalties.LOSSES`); with ``"mse"`` the targets
        are real-valued, shape ``(n, C)``, and the records' ``test_acc`` is NaN.

    Returns
    -------
    Run
        Never raises on divergence or interruption: ``Run.status`` says what happened, the
        records made so far are kept, and a :class:`TrainingDiverged` warning is issued.
    """
    x_tr, y_tr, x_te, y_te = _check_data(data, config)
    params = build(make_model, reg, seed)[2]
    n_train = len(x_tr)
    builder, step, record = _compiled(make_model, *compile_key(reg, config), n_train, loss)
    total = config.total_steps(n_train)
    steps = record_steps(total, config.n_records)
    hyper = Hyper.of(reg, config)
    monitor = monitor_batch(x_tr, config.monitor_size, seed)

    with float64() if config.metrics_in_float64 else _nothing():
        x_tr, y_tr, x_te, y_te, monitor = map(jnp.asarray, (x_tr, y_tr, x_te, y_te, monitor))
        state = builder.init(params, jax.random.key(seed))
        records: list[dict] = []
        path = Path(checkpoint) if checkpoint is not None else None
        print_ = fingerprint(reg, config, seed, x_tr, y_tr, x_te, y_te,
                             jax.tree.map(lambda a: (a.shape, str(a.dtype)), params))  # fmt: skip
        saved = load(path, print_) if path is not None else None
        t, losses = 0, []
        if saved is not None:
            t, records = saved["t"], saved["records"]
            state = _restore(state, saved["state"])

        status, message = "finished", ""
        bar = tqdm(total=total, initial=t, disable=not progress, leave=False, desc=reg.name)
        try:
            for target in steps[len(records) :]:
                while t < target:
                    state, loss = step(state, x_tr, y_tr, jnp.int32(t), hyper)
                    losses.append(loss)
                    t += 1
                bar.update(t - bar.n)
                row = jax.device_get(record(state.params, x_te, y_te, monitor))
                row["train_loss"] = float(np.mean(jax.device_get(losses))) if losses else np.nan
                losses = []
                records.append({"step": int(target), **{k: float(v) for k, v in row.items()}})
                bar.set_postfix(acc=f"{records[-1]['test_acc']:.2f}")
                if int(state.diverged_at) >= 0:
                    break
                if path is not None:
                    save(path, dict(fingerprint=print_, t=t, records=records, state=state))
        except KeyboardInterrupt:
            status = "interrupted"
            message = f"interrupted at step {t} of {total}; {len(records)} records kept"
            if path is not None:
                message += f" and resumable from {path}"
        finally:
            bar.close()

    frame, finished, message2 = _assemble(records, builder, hyper, int(state.diverged_at))
    if status == "interrupted":
        warnings.warn(f"{reg.name}: {message}", TrainingDiverged, stacklevel=2)
    else:
        status, message = finished, message2
        if status == "diverged":
            warnings.warn(f"{reg.name}: {message}", TrainingDiverged, stacklevel=2)
    frame = frame.assign(regulariser=reg.name, strength=reg.strength, seed=seed)
    return Run(frame, jax.device_get(state.params), status, message)


def _assemble(records: list[dict], builder: Step, hyper: Hyper,
              diverged_at: int) -> tuple[pd.DataFrame, str, str]:  # fmt: skip
    """The table of :func:`history` from a list of record dicts."""
    steps = np.array([r["step"] for r in records], dtype=int)
    lrs = np.asarray(jax.vmap(lambda t: builder.schedule(t, hyper))(jnp.asarray(steps)))
    fields = {name: np.array([r[name] for r in records], dtype=float) for name in RECORD_FIELDS}
    return history(fields, steps, lrs, builder.steps_per_epoch, diverged_at)


def _restore(template: Any, saved: Any) -> Any:
    """Arrays of a checkpoint back into the structure (and PRNG key types) of ``template``."""

    def back(t: Any, s: Any) -> Any:
        if isinstance(t, jax.Array) and jnp.issubdtype(t.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(jnp.asarray(s))
        return jnp.asarray(s, dtype=t.dtype)

    return jax.tree.map(back, template, saved)


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


def seeds_of(seeds: Sequence[int] | int) -> list[int]:
    """``range(seeds)`` for an int, the list itself otherwise."""
    return list(range(seeds)) if isinstance(seeds, int) else list(seeds)
