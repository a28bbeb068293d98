"""The grid runner: every experiment times every seed, trained resumably into a store.

:func:`run_grid` groups the runs that share a program, trains each group with the engine
(:func:`mgs_teach.lab.engine.train_runs`), and writes each finished run to the
:class:`~mgs_teach.lab.store.Store` atomically: a killed grid resumes without losing or
repeating a finished run, and an unfinished group resumes from its last chunk.
``shard=(i, n)`` runs the i-th of n disjoint parts of a grid, whose results merge by copying
the folders together.

::

    runs = run_grid(grid, seeds=range(10), out="results/table1")
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from mgs_teach.lab import engine
from mgs_teach.lab.experiment import Experiment
from mgs_teach.lab.store import Store, with_fields

__all__ = ["Deadline", "run_grid", "shard_of"]


class Deadline(Exception):
    """A command's ``stop()`` said stop (its time ran out); what finished is kept, and the
    same command resumes."""


def shard_of(runs: Sequence[tuple[Experiment, int]], shard: tuple[int, int] | None) -> list:
    """The ``i``-th of ``n`` disjoint parts of a list of runs (``shard=(i, n)``, ``0 <= i < n``).

    Runs are ordered by program, then dealt out in turn, so that every part holds about
    ``1/n`` of every program's runs and about ``1/n`` of the work.
    """
    if shard is None:
        return list(runs)
    i, n = shard
    if not 0 <= i < n:
        raise ValueError(f"a shard is (i, n) with 0 <= i < n, got {shard}")
    ordered = sorted(runs, key=lambda r: (repr(r[0].program), r[0].key, r[1]))
    return ordered[i::n]


def run_grid(
    experiments: Sequence[Experiment],
    seeds: Iterable[int],
    out: str | Path | Store,
    *,
    shard: tuple[int, int] | None = None,
    share: str = "auto",
    max_group: int = 64,
    progress: bool = True,
    n_records: int | None = None,
    params: dict | None = None,
    stop: Callable[[], bool] | None = None,
) -> pd.DataFrame:
    """Train every experiment for every seed, resumably, and return all histories.

    Runs already in the store are read back, not trained again. The rest are grouped by
    :attr:`Experiment.program` (at most ``max_group`` runs a group) and each group trains as
    one program of the engine, checkpointed in the store at every chunk.

    Parameters
    ----------
    experiments : sequence of Experiment
    seeds : iterable of int
    out : path or Store
        The results store.
    shard : (i, n), optional
        Train only the i-th of n disjoint parts of the grid (:func:`shard_of`).
    share, max_group
        Passed to :func:`mgs_teach.lab.engine.train_runs` (``max_group`` bounds memory).
    progress : bool
        One progress bar over the runs, with an estimate of the time left.
    n_records : int, optional
        Train only a prefix of every run (its first ``n_records`` records), into memory:
        nothing is read from or written to the store.
    params : dict, optional
        If given, filled with ``{(experiment.key, seed): final parameters}`` of the runs this
        call trains (runs read back from the store have no parameters stored).
    stop : callable, optional
        ``stop() -> bool``, asked before every chunk (a deadline).

    Returns
    -------
    pandas.DataFrame
        Every run's history with the experiment's fields (:meth:`Experiment.fields`), ``key``,
        ``seed`` and ``status``. Runs that diverged are kept (their ``status`` says so).

    Raises
    ------
    Deadline
        If ``stop()`` stopped it; every finished run is stored and the next call resumes.
    KeyboardInterrupt
        If interrupted; the same.
    """
    store = out if isinstance(out, Store) else Store(out)
    runs = shard_of([(e, s) for e in dict.fromkeys(experiments) for s in seeds], shard)
    todo = [r for r in runs if n_records is not None or not store.has(*r)]
    groups: dict[tuple, list] = {}
    for run in todo:
        groups.setdefault(run[0].program, []).append(run)
    batches = [members[i : i + max_group] for members in groups.values()
               for i in range(0, len(members), max_group)]  # fmt: skip
    frames: dict = {}
    bar = tqdm(total=len(todo), disable=not progress, bar_format=engine.BAR_FORMAT, desc="grid")
    try:
        for members in batches:
            _train_batch(members, store, bar, frames, params, share=share, n_records=n_records,
                         stop=stop)  # fmt: skip
    finally:
        bar.close()
    rows = [frames[e.key, s] if (e.key, s) in frames else store.read(e, s) for e, s in runs]
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def _train_batch(members: list, store: Store, bar: tqdm, frames: dict, params: dict | None, *,
                 share: str, n_records: int | None,
                 stop: Callable[[], bool] | None) -> None:  # fmt: skip
    """Train one group of runs of one program; store each finished run (or keep it in
    ``frames`` for a prefix)."""
    first = members[0][0]
    bar.set_postfix_str(f"{first.model.name}, {first.regulariser.name}, {len(members)} runs")
    jobs = [engine.Job(e.regulariser, e.config, s, e.data.load(s)) for e, s in members]
    tag = hashlib.sha1(repr(sorted((e.key, s) for e, s in members)).encode()).hexdigest()
    ckpt = None if n_records is not None else store.checkpoint(tag[:16])
    results = engine.train_runs(first.model, jobs, share=share, checkpoint=ckpt, progress=bar,
                                n_records=n_records, loss=first.data.loss,
                                stop=stop)  # fmt: skip
    if any(r.status == "interrupted" for r in results):
        if stop is not None and stop():
            raise Deadline("time limit reached")
        raise KeyboardInterrupt("grid interrupted; run the same command again to resume")
    for (e, s), r in zip(members, results):
        if params is not None:
            params[e.key, s] = r.params
        frame = r.history.assign(status=r.status)
        if n_records is not None:
            frames[e.key, s] = with_fields(frame, e, s)
        else:
            store.write(e, s, frame)
