"""One training loop for every regulariser of the paper, with MGS metrics recorded on the way.

::

    from mgs_teach import train
    from mgs_teach.penalties import regulariser

    run = train.train(make_model, data, regulariser("mgs_trace", 1e-3), train.Config(epochs=50))
    run.history.plot(x="epoch", y=["trace", "test_acc"], subplots=True)

``make_model(dropout, rngs)`` builds a fresh Flax NNX model (the loop needs to choose the
dropout rate); ``data`` is ``(x_train, y_train, x_test, y_test)``. The loop is plain SGD on
the mean cross-entropy plus the regulariser's penalty, with the paper's slow exponential
learning-rate decay, unless the regulariser swaps the optimiser (Adam, cyclical rate).

Every ``Config.n_records`` evenly spaced steps it records the train loss, test loss and
accuracy, and :math:`\\operatorname{tr} K` and :math:`\\log\\det K` on a fixed monitoring batch.
The history is a tidy :class:`pandas.DataFrame`, one row per record.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import pickle
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
from flax import nnx
from tqdm.auto import tqdm

from mgs_teach.kernel import float64, mgs_metrics
from mgs_teach.models import functional
from mgs_teach.penalties import Regulariser, cross_entropy

__all__ = ["Config", "Run", "TrainingDiverged", "evaluate", "train", "tune"]

Data = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
MakeModel = Callable[..., nnx.Module]


class TrainingDiverged(UserWarning):
    """The loss or the parameters stopped being finite."""


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
        Initial learning rate.
    lr_decay : float
        Learning-rate factor per epoch (applied smoothly, step by step).
    n_records : int
        Number of evenly spaced records, the first at step 0 and the last at the end.
    monitor_size : int
        Training samples in the fixed batch on which tr K and log det K are measured.
    metrics_in_float64 : bool
        Measure tr K and log det K in float64 (the default). Kernels of smooth models on
        low-dimensional data have eigenvalues below float32's resolution, where log det K
        would read -inf although the kernel is not singular.
    seed : int
        Seeds the model, the batch order and the dropout masks.
    """

    epochs: int = 100
    batch_size: int = 32
    learning_rate: float = 0.1
    lr_decay: float = 0.99
    n_records: int = 100
    monitor_size: int = 32
    seed: int = 0
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


@dataclasses.dataclass
class Run:
    """What :func:`train` returns.

    Attributes
    ----------
    history : pandas.DataFrame
        One row per record: ``step, epoch, lr, train_loss, test_loss, test_acc, trace,
        logdet, singular`` and the constant columns ``regulariser, strength, seed``.
        ``logdet`` is ``-inf`` where the monitoring kernel was singular (``singular`` True).
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


# --------------------------------------------------------------------------- helpers


def _check_data(data: Data, config: Config) -> tuple[jax.Array, ...]:
    if len(data) != 4:
        raise ValueError("data must be (x_train, y_train, x_test, y_test)")
    x_tr, y_tr, x_te, y_te = (np.asarray(a) for a in data)
    for name, x, y in (("train", x_tr, y_tr), ("test", x_te, y_te)):
        if len(x) != len(y):
            raise ValueError(f"{name} inputs and labels differ in length: {len(x)} vs {len(y)}")
        if len(x) == 0:
            raise ValueError(f"the {name} set is empty")
    if len(x_tr) < config.batch_size:
        raise ValueError(f"batch_size {config.batch_size} exceeds the {len(x_tr)} training samples")
    return tuple(jnp.asarray(a) for a in (x_tr, y_tr, x_te, y_te))


def evaluate(
    apply_fn: Callable[[Any, jax.Array], jax.Array],
    params: Any,
    x: jax.Array,
    y: jax.Array,
    chunk: int = 2048,
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``apply_fn`` on ``(x, y)``, in chunks.

    Returns
    -------
    loss, accuracy : float
    """
    loss, correct = 0.0, 0
    for start in range(0, len(x), chunk):
        logits = apply_fn(params, x[start : start + chunk])
        yb = y[start : start + chunk]
        loss += float(cross_entropy(logits, yb)) * len(yb)
        correct += int(jnp.sum(jnp.argmax(logits, axis=-1) == yb))
    return loss / len(x), correct / len(x)


def _fingerprint(reg: Regulariser, config: Config, data: Sequence[jax.Array], params: Any) -> str:
    """Identify a run, so that a checkpoint is only resumed by the same run."""
    h = hashlib.sha256(repr((reg, config)).encode())
    for a in data:
        h.update(np.ascontiguousarray(np.asarray(a)).tobytes())
    h.update(repr(jax.tree.map(lambda a: (a.shape, str(a.dtype)), params)).encode())
    return h.hexdigest()


def _save(path: Path, state: dict) -> None:
    """Write atomically: a crash mid-write never leaves a truncated checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    arrays = {k: jax.tree.map(np.asarray, state[k]) for k in ("params", "opt_state")}
    with os.fdopen(fd, "wb") as f:
        pickle.dump({**state, **arrays}, f)
    os.replace(tmp, path)


def _record_steps(total: int, n_records: int) -> list[int]:
    return sorted(set(np.round(np.linspace(0, total, min(n_records, total + 1))).astype(int)))


# ------------------------------------------------------------------------------ train


def train(
    make_model: MakeModel,
    data: Data,
    reg: Regulariser,
    config: Config = Config(),
    *,
    checkpoint: str | Path | None = None,
    progress: bool = True,
) -> Run:
    """Train a fresh model with one regulariser and record the MGS metrics.

    Parameters
    ----------
    make_model : callable
        ``make_model(dropout=rate, rngs=nnx.Rngs(seed))`` returns a new NNX model whose
        ``__call__(x, *, rngs=None)`` takes a dropout key (all of :mod:`mgs_teach.models` do).
    data : tuple
        ``(x_train, y_train, x_test, y_test)``; labels are integer classes.
    reg : Regulariser
        From :func:`mgs_teach.penalties.regulariser`.
    config : Config
    checkpoint : path, optional
        If given, the run's state and records are written there (atomically) at every record,
        and a later call with the same arguments resumes from it instead of starting over.
    progress : bool
        Show a progress bar.

    Returns
    -------
    Run
        Never raises on divergence or interruption: ``Run.status`` says what happened, the
        records made so far are kept, and a :class:`TrainingDiverged` warning is issued.
    """
    x_tr, y_tr, x_te, y_te = arrays = _check_data(data, config)
    model = make_model(dropout=reg.dropout_rate, rngs=nnx.Rngs(config.seed))
    train_fn, params = functional(model, train=True)
    apply_fn, _ = functional(model)

    steps_per_epoch = len(x_tr) // config.batch_size
    total = config.epochs * steps_per_epoch
    schedule = optax.exponential_decay(config.learning_rate, steps_per_epoch, config.lr_decay)
    opt = reg.optimizer(schedule)
    opt_state = opt.init(params)
    key = jax.random.key(config.seed)
    monitor = x_tr[np.random.default_rng(config.seed).permutation(len(x_tr))[: config.monitor_size]]

    def loss_fn(p: Any, xb: jax.Array, yb: jax.Array, k: jax.Array) -> tuple[jax.Array, jax.Array]:
        data_loss = cross_entropy(train_fn(p, xb, k), yb)
        return data_loss + reg.penalty(apply_fn, p, xb, yb, cross_entropy), data_loss

    @jax.jit
    def step(p: Any, s: Any, xb: jax.Array, yb: jax.Array, k: jax.Array) -> tuple:
        (value, _), grads = jax.value_and_grad(loss_fn, has_aux=True)(p, xb, yb, k)
        updates, s = opt.update(grads, s, p)
        return optax.apply_updates(p, updates), s, jnp.isfinite(value)

    jit_metrics = jax.jit(lambda p, x: mgs_metrics(apply_fn, p, x))

    def metrics(p: Any) -> dict:
        if not config.metrics_in_float64:
            return jit_metrics(p, monitor)
        with float64():
            cast = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), (p, monitor))
            return jax.device_get(jit_metrics(*cast))

    # ---- resume
    fingerprint = _fingerprint(reg, config, arrays, params)
    path = Path(checkpoint) if checkpoint is not None else None
    start, records = 0, []
    if path is not None and path.exists():
        with open(path, "rb") as f:
            saved = pickle.load(f)
        if saved["fingerprint"] != fingerprint:
            raise ValueError(
                f"checkpoint {path} belongs to a different run (other model, data, regulariser "
                "or config); delete it or pass another path"
            )
        start, records = saved["step"], saved["records"]
        params = jax.tree.map(jnp.asarray, saved["params"])
        opt_state = jax.tree.map(jnp.asarray, saved["opt_state"])

    def record(t: int, p: Any) -> dict:
        train_loss, _ = evaluate(apply_fn, p, x_tr, y_tr)
        test_loss, test_acc = evaluate(apply_fn, p, x_te, y_te)
        m = metrics(p)
        logdet = float(m["logdet"])
        return dict(
            step=t, epoch=t / steps_per_epoch, lr=float(schedule(t)), train_loss=train_loss,
            test_loss=test_loss, test_acc=test_acc, trace=float(m["trace"]), logdet=logdet,
            singular=logdet == -np.inf,
        )  # fmt: skip

    if not records:
        records.append(record(0, params))
    targets = [t for t in _record_steps(total, config.n_records) if t > start]
    status, message = "finished", f"trained {total} steps ({config.epochs} epochs)"
    bar = tqdm(total=total, initial=start, disable=not progress, leave=False, desc=reg.name)
    t = start
    try:
        for target in targets:
            last_good, finite = params, jnp.array(True)
            while t < target:
                epoch, i = divmod(t, steps_per_epoch)
                if i == 0 or t == start:
                    order = np.random.default_rng([config.seed, epoch]).permutation(len(x_tr))
                batch = order[i * config.batch_size : (i + 1) * config.batch_size]
                params, opt_state, ok = step(
                    params, opt_state, x_tr[batch], y_tr[batch], jax.random.fold_in(key, t)
                )
                finite = finite & ok
                t += 1
            bar.update(target - bar.n)
            leaves_ok = all(bool(jnp.all(jnp.isfinite(a))) for a in jax.tree.leaves(params))
            if not (bool(finite) and leaves_ok):
                status = "diverged"
                message = (
                    f"training diverged between steps {records[-1]['step'] if records else 0} "
                    f"and {target}: the loss or the parameters became NaN or inf. The history "
                    "stops at the last finite record; try a smaller learning rate or strength."
                )
                params = last_good
                warnings.warn(f"{reg.name}: {message}", TrainingDiverged, stacklevel=2)
                break
            records.append(record(target, params))
            bar.set_postfix(
                loss=f"{records[-1]['train_loss']:.3f}", acc=f"{records[-1]['test_acc']:.2f}"
            )
            if path is not None:
                _save(path, dict(fingerprint=fingerprint, step=t, records=records,
                                 params=params, opt_state=opt_state))  # fmt: skip
    except KeyboardInterrupt:
        status = "interrupted"
        message = f"interrupted at step {t} of {total}; {len(records)} records kept"
        if path is not None:
            message += f" and resumable from {path}"
        warnings.warn(f"{reg.name}: {message}", TrainingDiverged, stacklevel=2)
    finally:
        bar.close()

    history = pd.DataFrame.from_records(records)
    history["regulariser"], history["strength"], history["seed"] = (
        reg.name,
        reg.strength,
        config.seed,
    )
    n_singular = int(history["singular"].sum()) if len(history) else 0
    if n_singular:
        message += (
            f"; the monitoring kernel was singular at {n_singular} of {len(history)} records "
            "(log det = -inf, gaps in its curve)"
        )
    return Run(history=history, params=params, status=status, message=message)


# ------------------------------------------------------------------------------- tune


def tune(
    make_model: MakeModel,
    data: tuple[np.ndarray, np.ndarray],
    name: str,
    strengths: Sequence[float],
    config: Config = Config(),
    *,
    seeds: Sequence[int] = (0,),
    val_fraction: float = 0.25,
    last: int = 5,
    progress: bool = True,
    **reg_kwargs: Any,
) -> pd.DataFrame:
    """Choose a regulariser's strength on held-out training data, never on the test set.

    The training data are split once (seeded) into a training and a validation part. Each
    strength is trained on the first and scored on the second by its *final* accuracy (the
    mean of the last ``last`` records), averaged over ``seeds``; ties go to the lower final
    validation loss. The same rule serves every method.

    Why accuracy and not loss: the validation labels carry the same label noise as the
    training labels (nobody has clean labels to tune on). Under symmetric noise, accuracy
    on noisy labels still ranks models as their clean accuracy does, but cross-entropy
    punishes every confident prediction that contradicts a flipped label, so it would favour
    a model that has learnt nothing and hedges everywhere.

    Parameters
    ----------
    make_model : callable
        As in :func:`train`.
    data : tuple
        ``(x_train, y_train)`` only: the test set plays no part.
    name : str
        Regulariser name (see :data:`mgs_teach.penalties.NAMES`).
    strengths : sequence of float
        Candidates.
    config : Config
    seeds : sequence of int
    val_fraction : float
        Share of the training data held out for validation.
    last : int
        Records averaged into the final score.
    **reg_kwargs
        Passed to :func:`mgs_teach.penalties.regulariser` (``cycle_steps``, ``jitter``).

    Returns
    -------
    pandas.DataFrame
        One row per strength: ``regulariser, strength, val_acc, val_loss, best`` (one
        ``best`` is True). A strength whose runs diverged scores accuracy 0 and loss ``inf``.
    """
    from mgs_teach.penalties import regulariser  # local: penalties imports nothing from here

    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}")
    if len(strengths) == 0:
        raise ValueError("give at least one strength to try")
    x, y = (np.asarray(a) for a in data)
    perm = np.random.default_rng(12345).permutation(len(x))
    n_val = max(1, int(round(val_fraction * len(x))))
    val, tr = perm[:n_val], perm[n_val:]
    split = (x[tr], y[tr], x[val], y[val])
    rows = []
    for s in tqdm(strengths, desc=f"tuning {name}", disable=not progress, leave=False):
        accs, losses = [], []
        for seed in seeds:
            run = train(
                make_model, split, regulariser(name, s, **reg_kwargs),
                dataclasses.replace(config, seed=seed), progress=False,
            )  # fmt: skip
            tail = run.history.tail(last)
            ok = run.status == "finished" and len(tail) and np.isfinite(tail["test_loss"]).all()
            accs.append(float(tail["test_acc"].mean()) if ok else 0.0)
            losses.append(float(tail["test_loss"].mean()) if ok else math.inf)
        rows.append(dict(regulariser=name, strength=s, val_acc=float(np.mean(accs)),
                         val_loss=float(np.mean(losses))))  # fmt: skip
    table = pd.DataFrame(rows)
    best = table.sort_values(["val_acc", "val_loss"], ascending=[False, True]).index[0]
    table["best"] = table.index == best
    return table
