"""The batched engine: many runs of one shape trained as one compiled program.

The paper's experiments are grids of small runs: the same network trained for many seeds,
strengths and noise levels. Trained one step per Python call, a small network spends most
of its time in dispatch, not arithmetic. Here a group of runs that share their shapes is
one ``jax.jit`` program per *chunk* of training:

- ``lax.scan`` over the record segments of the chunk, a loop over the optimiser steps of
  each segment, and the records (:func:`mgs_teach.train.make_record`) computed in the
  program at the end of every segment;
- the runs side by side: ``vmap`` over a run axis (each run's seed gives its
  initialisation, data, batch order, dropout masks and monitoring batch; its strength and
  learning rate are data, :class:`mgs_teach.train.Hyper`, so one compilation serves a whole
  grid of them), or one run after another through the same compiled, unbatched program
  (``share="serial"``, the choice on a CPU, where the gain is the compiled loop itself and a
  run axis only makes every matrix product a slower batched one);
- the run axis sharded over all visible devices (``jax.sharding``).

The step is :func:`mgs_teach.train.make_step`, the same one the reference loop
:func:`mgs_teach.train.train` calls once per Python iteration, so a run trained here has
the same history as the same run trained alone there (a test checks this for every
regulariser). A run that diverges is frozen and flagged in its own state; the others go on.
Progress is saved at every chunk boundary, so a killed group resumes from its last chunk.

::

    jobs = [engine.Job(regulariser("mgs_trace", s), config, seed, data(seed))
            for s in (1e-5, 1e-4) for seed in range(4)]
    runs = engine.train_runs(make_model, jobs)          # 8 runs, one program
"""

from __future__ import annotations

import functools
import math
import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from tqdm.auto import tqdm

from mgs_teach.kernel import float64
from mgs_teach.penalties import Regulariser
from mgs_teach.train import (
    RECORD_FIELDS,
    Config,
    Hyper,
    Run,
    TrainingDiverged,
    _nothing,
    _restore,
    build,
    compile_key,
    fingerprint,
    history,
    load,
    loss_of,
    make_record,
    make_step,
    monitor_batch,
    program_key,
    record_steps,
    save,
)

__all__ = ["SHARES", "STOP", "Job", "segment_runner", "share_for", "train_runs"]

#: How the runs of a group share a compiled program.
SHARES = ("auto", "vmap", "serial")
#: Set it (from a signal handler, say) to stop training at the next chunk boundary, as a
#: ``KeyboardInterrupt`` there would. An exception raised by a signal handler lands wherever
#: the main thread is, in JAX's own code too, and the state it leaves there can crash Python
#: as it exits; the time limit of ``python -m mgs_teach.experiments`` sets this instead.
STOP = threading.Event()
#: Progress over runs, counted in fractions of a run (a chunk of a run is a fraction).
BAR_FORMAT = (
    "{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total} runs [{elapsed}<{remaining}{postfix}]"
)


class Job(NamedTuple):
    """One run for :func:`train_runs`.

    Attributes
    ----------
    reg : Regulariser
    config : Config
    seed : int
        Seeds the initialisation, the batch order, the dropout masks and probes, and the
        monitoring batch (the data are given).
    data : tuple
        ``(x_train, y_train, x_test, y_test)`` as NumPy arrays.
    """

    reg: Regulariser
    config: Config
    seed: int
    data: tuple


def share_for(params: Any, backend: str | None = None) -> str:
    """How runs of this model should share a program on ``backend`` (default: JAX's).

    ``"serial"`` on a CPU: each run through the same compiled, unbatched loop, one after
    another. On the 2-core CPUs this project was measured on, that is faster for the FCN
    6 x 300 and LeNet-5 (a run axis turns every matrix product into a slower batched one);
    for the small two-circles MLP the two were as fast on one machine, and vmap was faster
    once compiled on another, so ``python -m mgs_teach.bench training``, which measures
    both, is the judge on yours. ``"vmap"`` on accelerators, where a step of these small
    models costs about a kernel launch per operation, whatever the number of runs it
    carries.
    """
    backend = backend or jax.default_backend()
    return "serial" if backend == "cpu" else "vmap"


@functools.lru_cache(maxsize=32)
def _program(make_model: Callable, reg: Regulariser, config: Config, n_train: int,
             shared_test: bool, batched: bool = True,
             loss: str = "cross_entropy") -> tuple:  # fmt: skip
    """The builder and the jitted chunk function of one program (cached: compile once).

    ``batched``: the step and the record are vmapped over the run axis. Otherwise the
    program is the plain step of one run (plain matrix products, no batched ones), and the
    run axis of length 1 that the caller passes is dropped inside it and added back to its
    outputs.
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
    return builder, jax.jit(chunk, donate_argnums=donate), jax.jit(jax.vmap(builder.init))


def _check_jobs(jobs: Sequence[Job]) -> tuple[Regulariser, Config, bool]:
    if not jobs:
        raise ValueError("train_runs needs at least one job")
    reg, config = program_key(jobs[0].reg, jobs[0].config)
    first = jobs[0].data
    for job in jobs:
        if program_key(job.reg, job.config) != (reg, config):
            raise ValueError(
                "the runs of one group must share everything but the strength and the learning "
                f"rate; got {job.reg} with {job.config} beside {jobs[0].reg} with {jobs[0].config}"
            )
        if len(job.data) != 4:
            raise ValueError("each job's data must be (x_train, y_train, x_test, y_test)")
        shapes = [np.shape(a) for a in job.data]
        if shapes != [np.shape(a) for a in first]:
            raise ValueError(f"the runs of one group must share data shapes: {shapes} vs "
                             f"{[np.shape(a) for a in first]}")  # fmt: skip
        if len(job.data[0]) != len(job.data[1]) or len(job.data[2]) != len(job.data[3]):
            raise ValueError("inputs and labels differ in length")
        if len(job.data[2]) == 0:
            raise ValueError("the test set is empty")
    shared = all(
        (j.data[2] is first[2] or np.array_equal(j.data[2], first[2]))
        and (j.data[3] is first[3] or np.array_equal(j.data[3], first[3]))
        for j in jobs
    )
    return reg, config, shared


def _mesh(devices: Sequence[Any] | None) -> Mesh | None:
    devices = list(jax.devices() if devices is None else devices)
    return Mesh(np.array(devices), ("runs",)) if len(devices) > 1 else None


class _Setup(NamedTuple):
    """What :func:`train_runs` and :func:`segment_runner` make of a group of jobs."""

    reg: Regulariser
    config: Config
    shared_test: bool
    params: list
    share: str  # "vmap" or "serial", never "auto"
    groups: list[list[int]]  # the jobs of each call of the program
    program: tuple  # (builder, chunk_fn, init_fn) of _program


def _setup(make_model: Callable, jobs: Sequence[Job], share: str, loss: str) -> _Setup:
    if share not in SHARES:
        raise ValueError(f"share must be one of {SHARES}, got {share!r}")
    reg, config, shared_test = _check_jobs(jobs)
    params = [build(make_model, j.reg, j.seed)[2] for j in jobs]
    share = share_for(params[0]) if share == "auto" else share
    program = _program(make_model, *compile_key(reg, config), len(jobs[0].data[0]),
                       shared_test, share == "vmap", loss)  # fmt: skip
    groups = [list(range(len(jobs)))] if share == "vmap" else [[i] for i in range(len(jobs))]
    return _Setup(reg, config, shared_test, params, share, groups, program)


def train_runs(
    make_model: Callable,
    jobs: Sequence[Job],
    *,
    share: str = "auto",
    devices: Sequence[Any] | None = None,
    checkpoint: str | Path | None = None,
    chunk_records: int | None = None,
    n_records: int | None = None,
    progress: bool | tqdm = True,
    loss: str = "cross_entropy",
) -> list[Run]:
    """Train a group of runs that share their shapes as one compiled program.

    Parameters
    ----------
    make_model : callable
        As in :func:`mgs_teach.train.train`. Hashable and comparable by value (a
        :class:`mgs_teach.experiments.ModelSpec`, or any function), so that a second call
        with the same shapes reuses the compiled program.
    jobs : sequence of Job
        The runs; they must share the regulariser's name and options, the config (but the
        learning rate) and the shapes of their data.
    share : {"auto", "vmap", "serial"}
        How the runs share the program (:func:`share_for` decides for ``"auto"``).
    devices : sequence of jax devices, optional
        Devices to shard the run axis over (all visible ones by default). Runs are padded to
        a multiple of their number; the padding is trained and thrown away.
    checkpoint : path, optional
        Where to save the group at every chunk boundary; a later call with the same jobs
        resumes from there, and the file is deleted when the group finishes.
    chunk_records : int, optional
        Records per chunk (a compiled call between checkpoints), 5 by default. The chunk's
        length is part of the compiled program; the run's length is not.
    n_records : int, optional
        Train only up to the ``n_records``-th record (a prefix of every run, as a test that
        re-trains stored results does).
    progress : bool or tqdm
        Show a progress bar over runs (fractional, updated every chunk), or update the given
        bar by the share of a run each chunk completes.
    loss : {"cross_entropy", "mse"}
        The training loss, as in :func:`mgs_teach.train.train`.

    Returns
    -------
    list of Run
        One per job, in order. A run that diverged has status ``"diverged"`` and its history
        stops before the divergence. On ``KeyboardInterrupt``, or once :data:`STOP` is set
        (looked at before every chunk), the finished chunks are kept in the checkpoint and
        every run is returned with status ``"interrupted"``.
    """
    reg, config, shared_test, params, share, groups, (builder, chunk_fn, init_fn) = _setup(
        make_model, jobs, share, loss)  # fmt: skip
    n_train = len(jobs[0].data[0])

    total = config.total_steps(n_train)
    steps = record_steps(total, config.n_records)
    steps = steps[: n_records or len(steps)]
    segments = np.diff(steps, prepend=0).astype(np.int32)
    if chunk_records is None:  # fixed, so that runs of other lengths share the program
        chunk_records = min(5, len(steps))
    n_chunks = math.ceil(len(segments) / chunk_records)
    padded = np.zeros(n_chunks * chunk_records, np.int32)
    padded[: len(segments)] = segments
    chunks = padded.reshape(n_chunks, chunk_records)

    mesh = _mesh(devices) if share == "vmap" else None
    wide = config.metrics_in_float64
    print_ = saved = None
    if checkpoint is not None:  # a checkpoint is only resumed by the same group of runs
        print_ = fingerprint(reg, config, share, n_records, chunk_records,
                             [(j.reg.strength, j.config.learning_rate, j.seed) for j in jobs],
                             *(a for j in jobs for a in j.data))  # fmt: skip
        saved = load(checkpoint, print_)
    done = saved["done"] if saved else {}  # group index -> (chunks done, states, records)

    own_bar = not isinstance(progress, tqdm)
    bar = tqdm(total=len(jobs), disable=not progress, leave=False, bar_format=BAR_FORMAT,
               desc=f"{reg.name} x{len(jobs)}") if own_bar else progress  # fmt: skip
    results: dict[int, tuple] = {}
    interrupted = False
    with float64() if wide else _nothing():
        try:
            for g, members in enumerate(groups):
                states, recs, start = _start(init_fn, params, jobs, members, done.get(g))
                bar.update(len(members) * start / n_chunks)
                arrays = _arrays(jobs, members, config, shared_test, mesh)
                if mesh is not None:
                    states = _shard(states, mesh, len(members))
                for c in range(start, n_chunks):
                    if STOP.is_set():
                        raise KeyboardInterrupt("engine.STOP is set")
                    t0 = jnp.int32(int(padded[: c * chunk_records].sum()))
                    states, out = chunk_fn(states, *arrays, jnp.asarray(chunks[c]), t0)
                    recs.append(jax.device_get(out))
                    bar.update(len(members) / n_chunks)
                    if checkpoint is not None:
                        done[g] = (c + 1, states, recs)
                        save(checkpoint, dict(fingerprint=print_, done=done))
                results[g] = (states, recs)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            if own_bar:
                bar.close()

    runs: list[Run | None] = [None] * len(jobs)
    for g, members in enumerate(groups):
        states, recs = results.get(g, (None, done.get(g, (0, None, []))[2]))
        for k, i in enumerate(members):
            runs[i] = _run_of(jobs[i], builder, recs, k, steps, states, interrupted)
    if interrupted:
        warnings.warn(f"{reg.name}: interrupted; finished chunks are kept"
                      + (f" in {checkpoint}" if checkpoint else ""), TrainingDiverged,
                      stacklevel=2)  # fmt: skip
    elif checkpoint is not None:
        Path(checkpoint).unlink(missing_ok=True)
    return runs  # type: ignore[return-value]


def segment_runner(make_model: Callable, jobs: Sequence[Job], *, share: str = "auto",
                   loss: str = "cross_entropy") -> Callable[[int], None]:  # fmt: skip
    """``run(steps)``: one segment of ``steps`` optimiser steps and its record, for every run
    of ``jobs``, through the program that :func:`train_runs` compiles for them and called
    as it calls it (each group waited for before the next). For timing the engine
    (:func:`mgs_teach.bench.training`): every call goes on from the states the last one
    left (an accelerator's program takes its input states over, as in training).
    """
    _, config, shared_test, params, _, groups, (_, chunk_fn, init_fn) = _setup(
        make_model, jobs, share, loss)  # fmt: skip
    wide = config.metrics_in_float64
    with float64() if wide else _nothing():
        prepared = [(_start(init_fn, params, jobs, g, None)[0],
                     _arrays(jobs, g, config, shared_test, None)) for g in groups]  # fmt: skip

    def run(steps: int) -> None:
        with float64() if wide else _nothing():
            for i, (states, arrays) in enumerate(prepared):
                states, out = chunk_fn(states, *arrays, jnp.asarray([steps], jnp.int32),
                                       jnp.int32(0))  # fmt: skip
                jax.block_until_ready((states, out))
                prepared[i] = (states, arrays)

    return run


def _start(init_fn: Callable, params: list, jobs: Sequence[Job], members: list[int],
           saved: tuple | None) -> tuple:  # fmt: skip
    """The group's states, records and first chunk: fresh, or from a checkpoint."""
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *(params[i] for i in members))
    keys = jnp.stack([jax.random.key(jobs[i].seed) for i in members])
    states = init_fn(stacked, keys)
    if saved is None:
        return states, [], 0
    n_done, saved_states, recs = saved
    n = len(members)  # a sharded group was saved with its padding: drop it, _shard pads again
    restored = jax.tree.map(lambda t, a: a[:n], states, _restore(states, saved_states))
    return restored, list(recs), n_done


def _arrays(jobs: Sequence[Job], members: list[int], config: Config, shared_test: bool,
            mesh: Mesh | None) -> tuple:  # fmt: skip
    """The group's data as device arrays: per-run training sets, test set, monitors, hypers."""
    x_tr = np.stack([np.asarray(jobs[i].data[0]) for i in members])
    y_tr = np.stack([np.asarray(jobs[i].data[1]) for i in members])
    if shared_test:
        x_te, y_te = (np.asarray(a) for a in jobs[members[0]].data[2:])
    else:
        x_te = np.stack([np.asarray(jobs[i].data[2]) for i in members])
        y_te = np.stack([np.asarray(jobs[i].data[3]) for i in members])
    monitor = np.stack([monitor_batch(jobs[i].data[0], config.monitor_size, jobs[i].seed)
                        for i in members])  # fmt: skip
    hypers = Hyper(
        jnp.asarray([jobs[i].reg.strength for i in members], jnp.float32),
        jnp.asarray([jobs[i].config.learning_rate for i in members], jnp.float32),
    )
    if mesh is None:
        out = [jnp.asarray(a) for a in (x_tr, y_tr, x_te, y_te, monitor)]
        return (*out, hypers)
    n = len(members)
    put = lambda a: _shard(jnp.asarray(a), mesh, n)  # noqa: E731
    replicated = NamedSharding(mesh, PartitionSpec())
    x_te_d = jax.device_put(jnp.asarray(x_te), replicated) if shared_test else put(x_te)
    y_te_d = jax.device_put(jnp.asarray(y_te), replicated) if shared_test else put(y_te)
    return put(x_tr), put(y_tr), x_te_d, y_te_d, put(monitor), _shard(hypers, mesh, n)


def _shard(tree: Any, mesh: Mesh, n: int) -> Any:
    """Pad the run axis to a multiple of the mesh size (repeating the last run) and shard it."""
    size = mesh.devices.size
    pad = (-n) % size
    sharding = NamedSharding(mesh, PartitionSpec("runs"))

    def one(a: jax.Array) -> jax.Array:
        if pad:
            a = jnp.concatenate([a, jnp.repeat(a[-1:], pad, axis=0)])
        return jax.device_put(a, sharding)

    return jax.tree.map(one, tree)


def _run_of(job: Job, builder: Any, recs: list, k: int, steps: np.ndarray, states: Any,
            interrupted: bool) -> Run:  # fmt: skip
    """Run ``k`` of a group as a :class:`Run`: its records, cut to the real segments."""
    n = sum(len(r["trace"]) for r in recs)
    fields = {name: np.concatenate([r[name][:, k] for r in recs])[: len(steps)] if recs
              else np.zeros(0) for name in (*RECORD_FIELDS, "diverged_at")}  # fmt: skip
    kept = steps[: min(n, len(steps))]
    hyper = Hyper.of(job.reg, job.config)
    lrs = np.asarray(jax.vmap(lambda t: builder.schedule(t, hyper))(jnp.asarray(kept)))
    diverged = fields["diverged_at"]
    diverged_at = int(diverged[-1]) if len(diverged) else -1
    frame, status, message = history(fields, kept, lrs, builder.steps_per_epoch, diverged_at)
    if interrupted and len(kept) < len(steps):
        status, message = "interrupted", f"interrupted after {len(kept)} of {len(steps)} records"
    params = None if states is None else jax.device_get(jax.tree.map(lambda a: a[k], states.params))
    frame = frame.assign(regulariser=job.reg.name, strength=job.reg.strength, seed=job.seed)
    return Run(frame, params, status, message)
