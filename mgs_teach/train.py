"""Training: one step builder and the reference loop that reads it.

Every way the book trains a network is built from the same pieces:

- :func:`make_step` builds the training step of one run: the regulariser's optimiser (SGD
  for most) on the mean loss plus the regulariser's penalty, with the paper's slow
  exponential learning-rate decay. The step picks its own mini-batch from the run's epoch
  permutation, draws its dropout and probe keys from the run's key, and refuses to leave
  finite parameters: a run that diverges is frozen and flagged in its own state.
- :mod:`mgs_teach.records` measures the run at ``Config.n_records`` evenly spaced steps, and
  :mod:`mgs_teach.checkpoint` saves and resumes it.

:func:`train` is the reference loop: one run, one jitted step per Python iteration, short
enough to read in one go. The lab's engine (``mgs_teach.lab.engine``) trains many runs as
one compiled program from the same step, and its runs equal the runs of this loop. The
strength and the learning rate (:class:`~mgs_teach.config.Hyper`) enter the step as
numbers, not as constants of the program.

::

    from mgs_teach import train
    from mgs_teach.penalties import regulariser

    run = train.train(make_model, data, regulariser("mgs_trace", 1e-3), train.Config(epochs=50))
    run.history.plot(x="epoch", y=["trace", "test_acc"], subplots=True)
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from tqdm.auto import tqdm

from mgs_teach.checkpoint import fingerprint, load, restore, save
from mgs_teach.config import Config, Hyper, State, Step
from mgs_teach.kernel import float64
from mgs_teach.models import functional
from mgs_teach.penalties import Regulariser, cross_entropy, loss_of
from mgs_teach.records import (
    RECORD_FIELDS,
    Run,
    TrainingDiverged,
    history,
    make_record,
    monitor_batch,
    record_steps,
)

__all__ = [
    "advance",
    "build",
    "check_data",
    "compile_key",
    "compiled_step",
    "make_step",
    "program_key",
    "train",
]

Data = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
MakeModel = Callable[..., nnx.Module]
LossFn = Callable[[jax.Array, jax.Array], jax.Array]


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
        Carries the penalty, the optimiser and whether its strength is the dropout rate;
        its strength is the default of ``hyper``.
    config : Config
    n_train : int
        Training samples (the permutation's length).
    loss_fn : callable
        ``loss_fn(outputs, y) -> scalar``, the mean over the batch.

    Returns
    -------
    Step

    Notes
    -----
    The step keeps float32 parameters float32 even while float64 is enabled (the records
    need it): every constant it makes has the parameters' dtype.
    """
    spe, b, decay = config.steps_per_epoch(n_train), config.batch_size, config.lr_decay

    def base(hyper: Hyper) -> Callable[[jax.Array], jax.Array]:  # the paper's slow decay
        def schedule(t: jax.Array) -> jax.Array:
            epochs = jnp.asarray(t, jnp.float32) / jnp.float32(spe)
            return hyper.learning_rate * jnp.float32(decay) ** epochs

        return schedule

    def optimizer(hyper: Hyper) -> optax.GradientTransformation:
        return reg.optimizer(base(hyper), strength=hyper.strength)

    def schedule(t: jax.Array, hyper: Hyper) -> jax.Array:
        return reg.schedule(base(hyper), strength=hyper.strength)(t)

    def init(params: Any, key: jax.Array) -> State:
        hyper = Hyper(jnp.float32(reg.strength), jnp.float32(config.learning_rate))
        order = jax.random.permutation(_order_key(key, 0), n_train).astype(jnp.int32)
        return State(params, optimizer(hyper).init(params), order, key, jnp.int32(-1))

    def update(state: State, xb: jax.Array, yb: jax.Array, t: jax.Array,
               hyper: Hyper) -> tuple[State, jax.Array]:  # fmt: skip
        k_drop, k_probe = _step_keys(state.key, t)
        rate = hyper.strength if reg.trains_dropout else None

        def loss(p: Any) -> tuple[jax.Array, jax.Array]:
            data_loss = loss_fn(train_fn(p, xb, k_drop, rate), yb)
            penalty = reg.penalty(apply_fn, p, xb, yb, loss_fn, strength=hyper.strength,
                                  key=k_probe if reg.needs_key else None)  # fmt: skip
            return data_loss + penalty, data_loss

        (total, data_loss), grads = jax.value_and_grad(loss, has_aux=True)(state.params)
        updates, opt_state = optimizer(hyper).update(grads, state.opt_state, state.params)
        return _guarded(state, optax.apply_updates(state.params, updates), opt_state, total,
                        t), data_loss  # fmt: skip

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


def _guarded(state: State, params: Any, opt_state: Any, total: jax.Array, t: jax.Array) -> State:
    """The new state, or the old one (flagged) if the loss or the parameters are not finite."""
    finite = jnp.isfinite(total) & _all_finite(params)
    ok = finite & (state.diverged_at < 0)
    keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(ok, n, o), new, old)  # noqa: E731
    diverged_at = jnp.where((state.diverged_at < 0) & ~finite, jnp.int32(t), state.diverged_at)
    return State(keep(params, state.params), keep(opt_state, state.opt_state), state.order,
                 state.key, diverged_at)  # fmt: skip


def _all_finite(tree: Any) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree)]))


# ------------------------------------------------------------------ programs and models


def build(make_model: MakeModel, reg: Regulariser, seed: int) -> tuple[Callable, Callable, Any]:
    """``(apply_fn, train_fn, params)`` of a fresh model for one run.

    ``make_model(dropout=rate, rngs=nnx.Rngs(seed))``; a model for a regulariser whose
    strength is the dropout rate is built with dropout layers, whose rate the step then sets
    from the run's strength.
    """
    model = make_model(dropout=reg.dropout_rate or (0.5 if reg.trains_dropout else 0.0),
                       rngs=nnx.Rngs(seed))  # fmt: skip
    train_fn, params = functional(model, train=True)
    apply_fn, _ = functional(model)
    return apply_fn, train_fn, params


def program_key(reg: Regulariser, config: Config) -> tuple[Regulariser, Config]:
    """The regulariser and config with their data-valued fields fixed: a program's identity.

    Two runs whose keys are equal compile to the same step: they differ at most in their
    strength and learning rate, which :class:`~mgs_teach.config.Hyper` passes as numbers.
    """
    return reg.program(), dataclasses.replace(config, learning_rate=1.0)


def compile_key(reg: Regulariser, config: Config) -> tuple[Regulariser, Config]:
    """:func:`program_key` with the run's length fixed too: what a compiled step depends on.

    The number of epochs and of records only decide how often the compiled step is called
    and when the records are made, never what the step computes.
    """
    reg, config = program_key(reg, config)
    return reg, dataclasses.replace(config, epochs=1, n_records=1)


@functools.lru_cache(maxsize=32)
def compiled_step(make_model: MakeModel, reg: Regulariser, config: Config, n_train: int,
                  loss: str = "cross_entropy") -> tuple[Step, Callable, Callable]:  # fmt: skip
    """The step builder and the jitted step and record of one program, compiled once.

    Called with :func:`compile_key`'s regulariser and config; at most 32 programs are kept.

    Returns
    -------
    builder : Step
    step : callable
        ``jax.jit(builder.step)``.
    record : callable
        The jitted record of :func:`mgs_teach.records.make_record`.
    """
    apply_fn, train_fn, _ = build(make_model, reg, 0)
    builder = make_step(apply_fn, train_fn, reg, config, n_train, loss_of(loss))
    return builder, jax.jit(builder.step), jax.jit(make_record(apply_fn, config, loss_of(loss)))


# ---------------------------------------------------------------- the reference loop


def check_data(data: Data, config: Config) -> tuple[np.ndarray, ...]:
    """``data`` as four NumPy arrays, or a clear ``ValueError`` for mismatched or empty sets."""
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


def advance(step: Callable, state: State, data: tuple[jax.Array, jax.Array], hyper: Hyper,
            t: int, target: int) -> tuple[State, list[jax.Array]]:  # fmt: skip
    """The reference loop's inner loop: call the jitted ``step`` for steps ``t, ..., target - 1``
    on the training ``data`` ``(x, y)``; return the state and the mini-batch losses."""
    losses = []
    for i in range(t, target):
        state, data_loss = step(state, *data, jnp.int32(i), hyper)
        losses.append(data_loss)
    return state, losses


def train(make_model: MakeModel, data: Data, reg: Regulariser, config: Config = Config(), *,
          seed: int = 0, checkpoint: str | Path | None = None, progress: bool = True,
          loss: str = "cross_entropy") -> Run:  # fmt: skip
    """Train one fresh model with one regulariser and record the MGS metrics, step by step.

    The reference loop: a Python loop that calls the jitted step of :func:`make_step` once
    per optimiser step and :func:`~mgs_teach.records.make_record` at every record. The
    batched engine (``mgs_teach.lab.engine.train_runs``) gives the same histories, faster.

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
        records made so far are kept, and a :class:`~mgs_teach.records.TrainingDiverged`
        warning is issued.
    """
    x_tr, y_tr, x_te, y_te = check_data(data, config)
    builder, step, record = compiled_step(make_model, *compile_key(reg, config), len(x_tr), loss)
    params, hyper = build(make_model, reg, seed)[2], Hyper.of(reg, config)
    steps = record_steps(config.total_steps(len(x_tr)), config.n_records)
    monitor = monitor_batch(x_tr, config.monitor_size, seed)
    with float64() if config.metrics_in_float64 else contextlib.nullcontext():
        x_tr, y_tr, x_te, y_te, monitor = map(jnp.asarray, (x_tr, y_tr, x_te, y_te, monitor))
        shapes = jax.tree.map(lambda a: (a.shape, str(a.dtype)), params)
        run_id = fingerprint(reg, config, seed, x_tr, y_tr, x_te, y_te, shapes)
        t, records, state = _resume(checkpoint, run_id, builder.init(params, jax.random.key(seed)))
        bar = tqdm(total=int(steps[-1]), initial=t, disable=not progress, leave=False,
                   desc=reg.name)  # fmt: skip
        try:
            for target in steps[len(records) :]:
                state, losses = advance(step, state, (x_tr, y_tr), hyper, t, target)
                t = target
                bar.update(t - bar.n)
                records.append(_record_row(record(state.params, x_te, y_te, monitor), losses, t))
                bar.set_postfix(acc=f"{records[-1]['test_acc']:.2f}")
                if int(state.diverged_at) >= 0:
                    break
                if checkpoint is not None:
                    save(checkpoint, dict(fingerprint=run_id, t=t, records=records, state=state))
            stopped = None
        except KeyboardInterrupt:
            stopped = f"interrupted at step {t} of {int(steps[-1])}; {len(records)} records kept"
            stopped += f" and resumable from {checkpoint}" if checkpoint is not None else ""
        finally:
            bar.close()
    return _finish(records, builder, hyper, state, reg, seed, stopped)


def _resume(path: str | Path | None, run_id: str, state: State) -> tuple[int, list, State]:
    """``(t, records, state)``: from the checkpoint at ``path`` if it holds this run, else fresh."""
    saved = load(path, run_id) if path is not None else None
    if saved is None:
        return 0, [], state
    return saved["t"], saved["records"], restore(state, saved["state"])


def _record_row(row: dict, losses: list, t: int) -> dict:
    """One record as floats: the step, the record's values and the mean mini-batch loss."""
    row = jax.device_get(row)
    row["train_loss"] = float(np.mean(jax.device_get(losses))) if losses else np.nan
    return {"step": int(t), **{k: float(v) for k, v in row.items()}}


def _finish(records: list[dict], builder: Step, hyper: Hyper, state: State, reg: Regulariser,
            seed: int, stopped: str | None) -> Run:  # fmt: skip
    """The reference loop's :class:`~mgs_teach.records.Run`, warning if it diverged or was
    interrupted."""
    steps = np.array([r["step"] for r in records], dtype=int)
    lrs = np.asarray(jax.vmap(lambda t: builder.schedule(t, hyper))(jnp.asarray(steps)))
    fields = {name: np.array([r[name] for r in records], dtype=float) for name in RECORD_FIELDS}
    frame, status, message = history(fields, steps, lrs, builder.steps_per_epoch,
                                     int(state.diverged_at))  # fmt: skip
    if stopped is not None:
        status, message = "interrupted", stopped
    if status != "finished":
        warnings.warn(f"{reg.name}: {message}", TrainingDiverged, stacklevel=3)
    frame = frame.assign(regulariser=reg.name, strength=reg.strength, seed=seed)
    return Run(frame, jax.device_get(state.params), status, message)
