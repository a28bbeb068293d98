"""Running a plan: tune each network, then train every grid, resumably.

:func:`run_mnist` trains an MNIST plan (or a regression plan) into ``out/``;
:func:`run_part` trains a grid with a command of its own (the test bench, Figures 3 and 4 or
a long table) with the strengths the plan's tuning chose. Both
train: reading stored results back is :mod:`mgs_teach.lab.summaries`' job.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from mgs_teach.checkpoint import write_atomic
from mgs_teach.lab.grid import run_grid
from mgs_teach.lab.store import Store
from mgs_teach.lab.tuner import plan_tuning, tune, tuning_order

__all__ = ["run_mnist", "run_part", "tuned_strengths"]


def run_mnist(
    plan: Any,
    out: str | Path,
    *,
    shard: tuple[int, int] | None = None,
    progress: bool = True,
    stop: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """Tune, then run every grid of an MNIST plan, resumably under ``out``.

    Each network is tuned just before the first grid that trains it, in the order of
    :meth:`mgs_teach.lab.plan.MNISTPlan.grids` (the tables first), so that a time limit
    leaves whole tables rather than only tuning runs. Tuning runs go to ``out/tuning/``, the
    grids' runs to ``out/runs/``, the strengths chosen so far to ``out/best_strengths.json``.

    Parameters
    ----------
    plan : mgs_teach.lab.plan.MNISTPlan
    out : path
    shard : (i, n), optional
        Train only the i-th of n parts of the tuning and of the grids. The grids need every
        tuning run: a shard that finds another shard's tuning runs missing stops after its
        own tuning share, with a ``RuntimeError`` (run the tuning shards first, then the
        grid shards).
    progress : bool
    stop : callable, optional
        ``stop() -> bool``, asked before every chunk of training (a deadline).

    Returns
    -------
    dict
        ``best`` (tuned strengths per network), ``tuning`` (the tuning table, with a
        ``model`` column), and one run frame per grid of
        :meth:`mgs_teach.lab.plan.MNISTPlan.grids`.
    """
    out = Path(out)
    tuning_store, seeds, tuning = Store(out / "tuning"), range(plan.tuning.runs), plan_tuning(plan)
    if shard is not None:  # every tuning share first: the grids need all of them
        for _, grid in tuning.values():
            run_grid(grid, seeds, tuning_store, shard=shard, progress=progress, stop=stop)
        missing = [m for _, grid in tuning.values() for m in tuning_store.missing(grid, seeds)]
        if missing:
            raise RuntimeError(
                f"shard {shard[0]}/{shard[1]}: its tuning share is done, but "
                f"{len(missing)} tuning runs of other shards are missing; "
                "run every shard's tuning, then the shards again for the grids"
            )
    best: dict[str, dict[str, float]] = {}
    tables = []

    def tuned(network: str) -> None:
        if network in best or network not in tuning:
            return
        base, candidates, options = plan.tuning_bases()[network]
        best[network], table = tune(base, candidates, seeds, tuning_store, n_val=plan.tuning.n_val,
                                    options=options, progress=progress, stop=stop)  # fmt: skip
        tables.append(table.assign(model=network))
        if shard is None:  # so far: a later command reads only complete networks
            write_atomic(out / "best_strengths.json", json.dumps(best, indent=1))

    results: dict[str, Any] = {"best": best}
    for name, structure in plan.grids({}).items():
        for network in dict.fromkeys(e.model.name for e in structure):
            tuned(network)
        results[name] = run_grid(plan.grids(best)[name], range(plan.runs_of(name)), out / "runs",
                                 shard=shard, progress=progress, stop=stop)  # fmt: skip
    for network in tuning_order(plan):  # networks without a grid of their own (none so far)
        tuned(network)
    results["tuning"] = pd.concat(tables, ignore_index=True) if tables else None
    return results


def tuned_strengths(plan: Any, tuned: str | Path, part: str = "testbench") -> dict[str, Any]:
    """The strengths in ``tuned/best_strengths.json``, or a ``FileNotFoundError`` that says
    how to make them; also when the tuning of the network that ``part`` trains did not
    finish. ``part`` is ``"testbench"`` or a name in the plan's ``own``; a plan without that
    part is a ``ValueError``, raised before the file is read (a plan without a test bench
    checks no network)."""
    network = None
    if part != "testbench" or plan.testbench is not None:
        network = plan.part(part, {})[0].model.name
    path = Path(tuned) / "best_strengths.json"
    again = f"run `python -m mgs_teach.lab mnist --plan {plan.name} --out {tuned}`"
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: the test bench and every part with a command of its own keep "
            f"the strengths tuned for the tables; {again} first"
        )
    best = json.loads(path.read_text())
    tuned_here = network in plan.tuning_bases() and plan.tuning_bases()[network][1]
    if network is not None and network not in best and tuned_here:
        raise FileNotFoundError(
            f"{path} has no strengths for {network} yet (its tuning did not finish): {again} "
            "again to finish it"
        )
    return best


def run_part(
    plan: Any,
    name: str,
    out: str | Path,
    tuned: str | Path,
    *,
    shard: tuple[int, int] | None = None,
    progress: bool = True,
    stop: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """Train a grid with a command of its own with the strengths the plan's tuning chose:
    the test bench (Appendix F) or one of :attr:`~mgs_teach.lab.plan.MNISTPlan.own`.

    The paper tunes once and keeps the strengths for the whole test bench; so does this:
    they are read from ``tuned/best_strengths.json``, written by
    ``python -m mgs_teach.lab mnist`` for the same plan. Runs go to ``out/runs/``.

    Parameters
    ----------
    plan : mgs_teach.lab.plan.MNISTPlan
    name : str
        ``"testbench"`` or a name in the plan's ``own`` (:meth:`MNISTPlan.part`).
    out : path
    tuned : path
        The results folder of the plan's MNIST command (its tuned strengths).
    shard, progress, stop
        As in :func:`run_mnist`.

    Returns
    -------
    dict
        ``best`` (the strengths used) and ``name``: every run's history.

    Raises
    ------
    FileNotFoundError
        If ``tuned/best_strengths.json`` is missing.
    ValueError
        If the plan has no such part.
    """
    best = tuned_strengths(plan, tuned, name)  # a wrong name fails before the file is read
    runs = run_grid(plan.part(name, best), range(plan.runs_of(name)), Path(out) / "runs",
                    shard=shard, progress=progress, stop=stop)  # fmt: skip
    return {"best": best, name: runs}
