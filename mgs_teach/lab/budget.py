"""A plan's cost: its wall time from measured rates, and the least time its arithmetic allows.

:func:`budget` counts every grid of a plan (and its tuning) in optimiser steps, divides them
by the training benchmark's measured rates (``python -m mgs_teach.lab bench training``), and
multiplies them by XLA's count of one step's arithmetic (:func:`step_flops`);
``python -m mgs_teach.lab budget`` prints it (:func:`print_budget`).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from mgs_teach.lab import bench_training
from mgs_teach.lab.experiment import Experiment
from mgs_teach.lab.tuner import tuning_grid
from mgs_teach.train import compile_key

__all__ = ["budget", "print_budget", "step_flops"]


@functools.lru_cache(maxsize=64)
def _flops(e: Experiment) -> float:
    return bench_training.step_flops(e.model, e.data.load(0), e.regulariser, e.config, e.data.loss)


def step_flops(e: Experiment) -> float:
    """Floating-point operations of one training step of one run of ``e``.

    XLA's count of the lowered step (:func:`mgs_teach.lab.bench_training.step_flops`), on a
    few samples of ``e``'s data (a step's arithmetic does not depend on the size of the
    training set, its noise or its strengths). Counted once per program.
    """
    reg, config = compile_key(e.regulariser, e.config)
    n = max(e.config.batch_size, 20)
    small = dataclasses.replace(e.data.program_part(), n_train=n, n_val=0, n_test=2)
    if small.task == "mnist":
        small = dataclasses.replace(small, source="offline")  # the same shapes, no download
    return _flops(Experiment(e.model, small, reg, config))


def _trace_method(method: str) -> str:
    return "structured" if method == "auto" else method


#: The training benchmark's names of the plans' networks.
_NAMES = {"fcn-6x300": "fcn", "lenet5": "lenet5", "alexnet": "alexnet"}


def _measured(rates: Sequence[dict]) -> dict[tuple[str, str, str], list[tuple[int, float]]]:
    """``{(network, penalty, trace method): [(runs, steps per second per run)]}`` of the
    benchmark's batched rows."""
    measured: dict[tuple[str, str, str], list[tuple[int, float]]] = {}
    for r in rates:
        if r["engine"] == "batched":
            method = "-"
            if r["penalty"] == "mgs_trace":
                own = bench_training.TRAINING_MODELS.get(r["model"], (None,) * 5)[4]
                method = _trace_method(r.get("trace_method") or own or "auto")
            measured.setdefault((r["model"], r["penalty"], method), []).append(
                (r["runs"], r["steps_per_s_per_run"]))  # fmt: skip
    return measured


def _parts(plan: Any) -> list[tuple[str, list[Experiment], int]]:
    """``(part, experiments, runs per experiment)`` of the tuning, every grid and the test
    bench of a plan."""
    parts: list[tuple[str, list[Experiment], int]] = []
    for base, candidates, options in plan.tuning_bases().values():
        parts.append(("tuning", tuning_grid(base, candidates, plan.tuning.n_val, options),
                      plan.tuning.runs))  # fmt: skip
    parts += [(name, grid, plan.runs_of(name)) for name, grid in plan.grids({}).items()]
    own = plan.own + (("testbench",) if plan.testbench is not None else ())
    parts += [(name, plan.part(name, {}), plan.runs_of(name)) for name in own]
    return parts


def budget(plan: Any, rates: Sequence[dict] = (), *, peak: float | None = None,
           flops: bool = True) -> pd.DataFrame:  # fmt: skip
    """A plan's wall time estimated from the training benchmark's measured rates, and the
    least time its arithmetic allows.

    Every grid (and the tuning) is counted in optimiser steps per network and regulariser;
    each count is divided by the measured steps per second per run of the batched engine
    for that network (``none`` and ``mgs_trace`` are measured): a regulariser whose step
    evaluates the MGS kernel (its family's ``kernel``) takes the rate of that trace method,
    the others the plain rate, each divided by its ``step_cost``; at the largest measured
    number of runs not above the group's. Records and compilation are not included. The
    benchmark times networks on MNIST's 28 x 28 digits, so the regression plans' faces have
    no measured rate.

    Each count is also multiplied by the arithmetic of one step (:func:`step_flops`), and
    divided by ``peak``: the time that no way of running the plan can beat on a device that
    computes at most ``peak`` floating-point operations per second.

    Parameters
    ----------
    plan : mgs_teach.lab.plan.MNISTPlan
        An MNIST plan or a regression plan.
    rates : sequence of dict
        Rows of ``python -m mgs_teach.lab bench training --json`` (rows without a
        ``trace_method`` timed each network's own, as
        :data:`mgs_teach.lab.bench_training.TRAINING_MODELS` says).
    peak : float, optional
        The device's floating-point operations per second. Default: the largest
        ``peak_flops_per_s`` of ``rates`` (the matrix-product rate measured with them).
    flops : bool
        ``False``: leave out the arithmetic (it lowers every program once, seconds each).

    Returns
    -------
    pandas.DataFrame
        One row per part (``tuning``, a grid or ``testbench``) and network: ``runs``,
        ``run_steps`` and ``seconds`` (NaN where a network's rate was not measured); with
        ``flops``, also ``flops`` and ``floor_s`` (NaN without a peak).
    """
    measured = _measured(rates)
    if peak is None:
        peaks = [r["peak_flops_per_s"] for r in rates if r.get("peak_flops_per_s")]
        peak = max(peaks) if peaks else float("nan")

    def rate(e: Experiment, group: int) -> float:
        reg = e.regulariser
        if e.data.task != "mnist":
            return float("nan")
        method = reg.family.kernel(reg)
        key = ("none", "-") if method is None else ("mgs_trace", _trace_method(method))
        options = sorted(measured.get((_NAMES.get(e.model.name, e.model.name), *key), []))
        if not options:
            return float("nan")
        fit = [v for n, v in options if n <= group] or [options[0][1]]
        return fit[-1] / reg.step_cost

    parts = _parts(plan)
    rows = []
    for part, grid, seeds in parts:
        groups: dict[tuple, list[Experiment]] = {}
        for e in grid:
            groups.setdefault(e.program, []).append(e)
        for members in groups.values():
            e = members[0]
            n = len(members) * seeds
            steps = n * e.config.total_steps(e.data.n_train)
            row = dict(part=part, model=e.model.name, runs=n, run_steps=steps,
                       seconds=steps / rate(e, n))  # fmt: skip
            if flops:
                row["flops"] = steps * step_flops(e)
                row["floor_s"] = row["flops"] / peak
            rows.append(row)
    table = pd.DataFrame(rows)
    columns = ["runs", "run_steps", "seconds"] + (["flops", "floor_s"] if flops else [])
    # a part with one group of unknown rate has an unknown time (NaN), not a smaller one
    return (table.groupby(["part", "model"], sort=False)[columns]
            .agg(lambda v: v.sum(skipna=False)).reset_index())  # fmt: skip


def print_budget(table: pd.DataFrame, name: str) -> None:
    """Print :func:`budget`'s table and its totals: the estimated minutes of training, the
    arithmetic, and the floor it sets at the peak used."""
    shown = table.assign(flops=table["flops"] / 1e15).rename(columns={"flops": "PFLOP"})
    print(shown.to_string(index=False, na_rep="-", float_format=lambda v: f"{v:,.1f}"
                          if abs(v) < 100 else f"{v:,.0f}"))  # fmt: skip
    known = table[np.isfinite(table["seconds"])]
    missing = table[~np.isfinite(table["seconds"])]
    if len(known):
        print(f"{name}: about {known['seconds'].sum() / 60:,.1f} minutes of training at the "
              "measured rates (records and compilation not included)"
              + (", besides the parts marked '-'" if len(missing) else ""))  # fmt: skip
    if len(missing):
        parts = ", ".join(f"{r.part} ({r.model})" for r in missing.itertuples())
        parts = "any part" if len(missing) == len(table) else parts
        print(f"no measured rate for {parts}: the training benchmark times the networks on "
              "28 x 28 digits, with the trace method given by --trace-method")  # fmt: skip
    floor = table["floor_s"].sum(skipna=False)
    if np.isfinite(floor):
        flops = table["flops"].sum()
        peak = flops / floor
        print(f"arithmetic: {flops / 1e15:,.1f} PFLOP (XLA's count); at {peak / 1e12:,.1f} "
              f"TFLOP/s no engine trains it in under {floor / 60:,.1f} minutes")  # fmt: skip
        if len(known) and not len(missing):
            share = known["flops"].sum() / known["seconds"].sum() / peak
            print(f"the estimate computes at {share:.0%} of that rate")
