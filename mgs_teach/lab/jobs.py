"""A group of runs for the engine: its jobs, checked, and their data as device arrays.

The run axis is sharded over the visible devices when there are several (``jax.sharding``);
the runs are padded to a multiple of their number, and the padding is trained and thrown
away.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from mgs_teach.config import Config, Hyper
from mgs_teach.penalties import Regulariser
from mgs_teach.records import monitor_batch
from mgs_teach.train import program_key

__all__ = ["Job", "check_jobs", "group_arrays", "mesh_of", "shard"]


class Job(NamedTuple):
    """One run for :func:`mgs_teach.lab.engine.train_runs`.

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


def check_jobs(jobs: Sequence[Job]) -> tuple[Regulariser, Config, bool]:
    """The group's program key and whether its runs share one test set; ``ValueError`` if
    the runs cannot share a program."""
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


def mesh_of(devices: Sequence[Any] | None) -> Mesh | None:
    """A one-axis mesh (``"runs"``) over ``devices`` (all by default), or ``None`` for one."""
    devices = list(jax.devices() if devices is None else devices)
    return Mesh(np.array(devices), ("runs",)) if len(devices) > 1 else None


def group_arrays(jobs: Sequence[Job], members: list[int], config: Config, shared_test: bool,
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
    put = lambda a: shard(jnp.asarray(a), mesh, n)  # noqa: E731
    replicated = NamedSharding(mesh, PartitionSpec())
    x_te_d = jax.device_put(jnp.asarray(x_te), replicated) if shared_test else put(x_te)
    y_te_d = jax.device_put(jnp.asarray(y_te), replicated) if shared_test else put(y_te)
    return put(x_tr), put(y_tr), x_te_d, y_te_d, put(monitor), shard(hypers, mesh, n)


def shard(tree: Any, mesh: Mesh, n: int) -> Any:
    """Pad the run axis to a multiple of the mesh size (repeating the last run) and shard it."""
    size = mesh.devices.size
    pad = (-n) % size
    sharding = NamedSharding(mesh, PartitionSpec("runs"))

    def one(a: jax.Array) -> jax.Array:
        if pad:
            a = jnp.concatenate([a, jnp.repeat(a[-1:], pad, axis=0)])
        return jax.device_put(a, sharding)

    return jax.tree.map(one, tree)
