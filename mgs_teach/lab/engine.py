"""The batched engine's driver: many runs of one shape trained as one compiled program.

The paper's experiments are grids of small runs: the same network trained for many seeds,
strengths and noise levels. Trained one step per Python call, a small network spends most
of its time in dispatch, not arithmetic. Here a group of runs that share their shapes is one
program per *chunk* of training (:func:`mgs_teach.lab.program.make_train`), with the runs
side by side: ``vmap`` over a run axis (each run's seed gives its initialisation, data,
batch order, dropout masks and monitoring batch; its strength and learning rate are data,
:class:`mgs_teach.config.Hyper`, so one compilation serves a whole grid of them), sharded
over all visible devices, or one run after another through the same compiled, unbatched
program (``share="serial"``, the choice on a CPU). Its step is
:func:`mgs_teach.train.make_step`, so a run trained here has the same history as the same
run trained by the reference loop :func:`mgs_teach.train.train` (a test checks this for
every regulariser). A run that diverges is frozen and flagged in its own state.

:func:`train_runs` is the one driver: chunks, checkpoints (at every chunk boundary, so a
killed group resumes from its last chunk), progress, and stopping (a ``stop()`` callback
asked before every chunk; no global state).

::

    jobs = [engine.Job(regulariser("mgs_trace", s), config, seed, data(seed))
            for s in (1e-5, 1e-4) for seed in range(4)]
    runs = engine.train_runs(make_model, jobs)          # 8 runs, one program
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from tqdm.auto import tqdm

from mgs_teach.checkpoint import fingerprint, load, restore, save
from mgs_teach.config import Config, Hyper
from mgs_teach.kernel import float64
from mgs_teach.lab.jobs import Job, check_jobs, group_arrays, mesh_of, shard
from mgs_teach.lab.program import Program, make_train
from mgs_teach.penalties import Regulariser
from mgs_teach.records import (
    RECORD_FIELDS,
    Run,
    TrainingDiverged,
    history,
    record_steps,
)
from mgs_teach.train import build, compile_key

__all__ = ["BAR_FORMAT", "SHARES", "Job", "Program", "make_train", "segment_runner", "share_for",
           "train_runs"]  # fmt: skip

#: How the runs of a group share a compiled program.
SHARES = ("auto", "vmap", "serial")
#: Progress over runs, counted in fractions of a run (a chunk of a run is a fraction).
BAR_FORMAT = (
    "{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total} runs [{elapsed}<{remaining}{postfix}]"
)


def share_for(params: Any, backend: str | None = None) -> str:
    """How runs of this model should share a program on ``backend`` (default: JAX's).

    ``"serial"`` on a CPU: each run through the same compiled, unbatched loop, one after
    another. On the 2-core CPUs this project was measured on, that is faster for the FCN
    6 x 300 and LeNet-5 (a run axis turns every matrix product into a slower batched one);
    for the small two-circles MLP the two were as fast on one machine, and vmap was faster
    once compiled on another, so ``python -m mgs_teach.lab bench training``, which measures
    both, is the judge on yours. ``"vmap"`` on accelerators, where a step of these small
    models costs about a kernel launch per operation, whatever the number of runs it
    carries.
    """
    backend = backend or jax.default_backend()
    return "serial" if backend == "cpu" else "vmap"


class _Setup(NamedTuple):
    """What :func:`train_runs` and :func:`segment_runner` make of a group of jobs."""

    reg: Regulariser
    config: Config
    shared_test: bool
    params: list
    share: str  # "vmap" or "serial", never "auto"
    groups: list[list[int]]  # the jobs of each call of the program
    program: Program


def _setup(make_model: Callable, jobs: Sequence[Job], share: str, loss: str) -> _Setup:
    if share not in SHARES:
        raise ValueError(f"share must be one of {SHARES}, got {share!r}")
    reg, config, shared_test = check_jobs(jobs)
    params = [build(make_model, j.reg, j.seed)[2] for j in jobs]
    share = share_for(params[0]) if share == "auto" else share
    program = make_train(make_model, *compile_key(reg, config), len(jobs[0].data[0]),
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
    stop: Callable[[], bool] | None = None,
) -> list[Run]:
    """Train a group of runs that share their shapes as one compiled program.

    Parameters
    ----------
    make_model : callable
        As in :func:`mgs_teach.train.train`. Hashable and comparable by value (a
        :class:`mgs_teach.lab.specs.ModelSpec`, or any function), so that a second call
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
    stop : callable, optional
        ``stop() -> bool``, asked before every chunk: ``True`` stops training there, as a
        ``KeyboardInterrupt`` would (a deadline, say: ``lambda: time.monotonic() > end``).

    Returns
    -------
    list of Run
        One per job, in order. A run that diverged has status ``"diverged"`` and its history
        stops before the divergence. On ``KeyboardInterrupt``, or once ``stop()`` is true,
        the finished chunks are kept in the checkpoint (if any), and every run is returned
        with status ``"interrupted"`` and the records of the chunks it finished.
    """
    setup = _setup(make_model, jobs, share, loss)
    plan = _chunks(setup.config, len(jobs[0].data[0]), n_records, chunk_records)
    run_id = saved = None
    if checkpoint is not None:  # a checkpoint is only resumed by the same group of runs
        run_id = fingerprint(setup.reg, setup.config, setup.share, n_records, plan.per_chunk,
                             [(j.reg.strength, j.config.learning_rate, j.seed) for j in jobs],
                             *(a for j in jobs for a in j.data))  # fmt: skip
        saved = load(checkpoint, run_id)
    done = saved["done"] if saved else {}  # group index -> (chunks done, states, records)
    own_bar = not isinstance(progress, tqdm)
    bar = tqdm(total=len(jobs), disable=not progress, leave=False, bar_format=BAR_FORMAT,
               desc=f"{setup.reg.name} x{len(jobs)}") if own_bar else progress  # fmt: skip
    mesh = mesh_of(devices) if setup.share == "vmap" else None
    results: dict[int, tuple] = {}
    interrupted = False
    with float64() if setup.config.metrics_in_float64 else contextlib.nullcontext():
        try:
            for g, members in enumerate(setup.groups):
                if not _train_group(setup, jobs, g, members, plan, done, mesh, bar, stop,
                                    (checkpoint, run_id)):  # fmt: skip
                    interrupted = True
                    break
                results[g] = done[g][1:]
        except KeyboardInterrupt:
            interrupted = True
        finally:
            if own_bar:
                bar.close()
    return _finish(setup, jobs, plan.steps, results, done, interrupted, checkpoint)


class _Chunks(NamedTuple):
    """How a run's records are cut into chunks of one compiled call each."""

    steps: np.ndarray  # the step of every record
    padded: np.ndarray  # optimiser steps before each record, padded to whole chunks
    chunks: np.ndarray  # the same, one row per chunk
    per_chunk: int


def _chunks(config: Config, n_train: int, n_records: int | None,
            chunk_records: int | None) -> _Chunks:  # fmt: skip
    steps = record_steps(config.total_steps(n_train), config.n_records)
    steps = steps[: n_records or len(steps)]
    segments = np.diff(steps, prepend=0).astype(np.int32)
    if chunk_records is None:  # fixed, so that runs of other lengths share the program
        chunk_records = min(5, len(steps))
    n_chunks = math.ceil(len(segments) / chunk_records)
    padded = np.zeros(n_chunks * chunk_records, np.int32)
    padded[: len(segments)] = segments
    return _Chunks(steps, padded, padded.reshape(n_chunks, chunk_records), chunk_records)


def _train_group(setup: _Setup, jobs: Sequence[Job], g: int, members: list[int], plan: _Chunks,
                 done: dict, mesh: Mesh | None, bar: Any, stop: Callable[[], bool] | None,
                 saving: tuple) -> bool:  # fmt: skip
    """Train one call-group of runs chunk by chunk into ``done[g]``; ``False`` if stopped."""
    builder, chunk_fn, init_fn = setup.program
    n_chunks = len(plan.chunks)
    states, recs, start = _start(init_fn, setup.params, jobs, members, done.get(g))
    bar.update(len(members) * start / n_chunks)
    arrays = group_arrays(jobs, members, setup.config, setup.shared_test, mesh)
    if mesh is not None:
        states = shard(states, mesh, len(members))
    for c in range(start, n_chunks):
        if stop is not None and stop():
            return False
        t0 = jnp.int32(int(plan.padded[: c * plan.per_chunk].sum()))
        states, out = chunk_fn(states, *arrays, jnp.asarray(plan.chunks[c]), t0)
        recs.append(jax.device_get(out))
        bar.update(len(members) / n_chunks)
        done[g] = (c + 1, states, recs)
        checkpoint, run_id = saving
        if checkpoint is not None:
            save(checkpoint, dict(fingerprint=run_id, done=done))
    done[g] = (n_chunks, states, recs)
    return True


def _finish(setup: _Setup, jobs: Sequence[Job], steps: np.ndarray, results: dict, done: dict,
            interrupted: bool, checkpoint: str | Path | None) -> list[Run]:  # fmt: skip
    """Every job's :class:`Run`, in order; the checkpoint kept if interrupted, else deleted."""
    runs: list[Run | None] = [None] * len(jobs)
    for g, members in enumerate(setup.groups):
        states, recs = results.get(g, (None, done.get(g, (0, None, []))[2]))
        for k, i in enumerate(members):
            runs[i] = _run_of(jobs[i], setup.program.builder, recs, k, steps, states,
                              interrupted)  # fmt: skip
    if interrupted:
        warnings.warn(f"{setup.reg.name}: interrupted; finished chunks are kept"
                      + (f" in {checkpoint}" if checkpoint else ""), TrainingDiverged,
                      stacklevel=3)  # fmt: skip
    elif checkpoint is not None:
        Path(checkpoint).unlink(missing_ok=True)
    return runs  # type: ignore[return-value]


def segment_runner(make_model: Callable, jobs: Sequence[Job], *, share: str = "auto",
                   loss: str = "cross_entropy") -> Callable[[int], None]:  # fmt: skip
    """``run(steps)``: one segment of ``steps`` optimiser steps and its record, for every run
    of ``jobs``, through the program that :func:`train_runs` compiles for them and called
    as it calls it (each group waited for before the next). For timing the engine
    (:func:`mgs_teach.lab.bench_training.training`): every call goes on from the states the
    last one left (an accelerator's program takes its input states over, as in training).
    """
    _, config, shared_test, params, _, groups, (_, chunk_fn, init_fn) = _setup(
        make_model, jobs, share, loss)  # fmt: skip
    wide = config.metrics_in_float64
    with float64() if wide else contextlib.nullcontext():
        prepared = [(_start(init_fn, params, jobs, g, None)[0],
                     group_arrays(jobs, g, config, shared_test, None)) for g in groups]  # fmt: skip

    def run(steps: int) -> None:
        with float64() if wide else contextlib.nullcontext():
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
    restored = jax.tree.map(lambda t, a: a[:n], states, restore(states, saved_states))
    return restored, list(recs), n_done


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
