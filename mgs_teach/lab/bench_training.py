"""The training benchmark: what the batched engine gains over the sequential loop.

``python -m mgs_teach.lab bench training --json FILE`` trains, in one process, the
two-circles MLP, the FCN 6 x 300 and LeNet-5, plain and MGS-trace-penalised, as
``R = 1, 8, 32`` runs: with the sequential loop (:func:`mgs_teach.train.train`, one jitted
step per Python call, the runs one after another) and with the batched engine
(:func:`mgs_teach.lab.engine.train_runs`, sharing the program as the engine would on this
backend; ``--shares vmap serial`` times both ways). Every row is timed after a first,
compiling call of the same program. It prints the ratios; each JSON row has ``model``,
``penalty``, ``runs``, ``engine`` (``sequential`` or ``batched``), ``share``,
``steps_per_s_per_run`` (every run's optimiser steps counted: R runs of S steps in T seconds
make ``R * S / T``) and ``seconds``.

It also holds the timer of both benchmarks, :func:`median_seconds` (the penalty benchmark,
:mod:`mgs_teach.lab.bench`, uses it too), and XLA's count of a step's arithmetic,
:func:`step_flops`, from which :mod:`mgs_teach.lab.budget` bounds a plan's time.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mgs_teach.checkpoint import write_atomic
from mgs_teach.config import Config, Hyper
from mgs_teach.kernel import float64
from mgs_teach.lab import engine
from mgs_teach.lab.provenance import provenance
from mgs_teach.lab.specs import DataSpec, ModelSpec
from mgs_teach.penalties import Regulariser, regulariser
from mgs_teach.train import advance, build, compile_key, compiled_step

__all__ = [
    "DEFAULT_TRAINING_MODELS",
    "PENALTIES",
    "TRAINING_MODELS",
    "ceilings",
    "main",
    "matmul_peak",
    "median_seconds",
    "ratios",
    "step_flops",
    "training",
]

#: The training benchmark's models: ``name -> (model, data, config, steps, trace method)``.
#: ``steps`` is how many optimiser steps each timing trains per run. LeNet-5's MGS penalty
#: uses the Hutchinson trace, as the ``cpu`` plan does.
TRAINING_MODELS = {
    "two_circles_mlp": (ModelSpec("fcn", d_in=2, d_out=2, depth=3, width=128),
                        DataSpec("two_circles", 100, label_noise=0.3, noise="other", n_test=1000),
                        Config(batch_size=20, epochs=100), 500, "auto"),
    "fcn": (ModelSpec("fcn"), DataSpec("mnist", 640, label_noise=0.6), Config(epochs=10), 100,
            "auto"),
    "lenet5": (ModelSpec("lenet5"), DataSpec("mnist", 640, label_noise=0.6), Config(epochs=10),
               40, "hutchinson"),
    "alexnet": (ModelSpec("alexnet"), DataSpec("mnist", 640, label_noise=0.6),
                Config(epochs=10), 20, "auto"),
}  # fmt: skip
#: The models the training benchmark times by default (AlexNet only when asked: a GPU's).
DEFAULT_TRAINING_MODELS = ["two_circles_mlp", "fcn", "lenet5"]
PENALTIES = {"none": regulariser("none"), "mgs_trace": regulariser("mgs_trace", 1e-5)}
#: How the command is written in provenance records and help texts.
COMMAND = ["python", "-m", "mgs_teach.lab", "bench", "training"]


def median_seconds(fn: Callable[[], Any], repeats: int, budget: float | None = 10.0) -> float:
    """Median wall time of ``fn()`` over up to ``repeats`` timed runs, after compile and warm-up.

    The first call compiles. A step that is fast enough then gets an untimed warm-up run, and
    as many of the ``repeats`` as fit in ``budget`` seconds (at least one). A step whose first
    call alone took longer than ``budget`` is timed once more, without a warm-up: the median of
    a few multi-second steps is as precise as that of many short ones, and a warm-up guards
    against start-up costs that are negligible at that length. ``budget=None`` always runs
    the warm-up and all ``repeats``.

    Parameters
    ----------
    fn : callable
        ``fn()`` runs the step once and returns what it computed (waited for).
    repeats : int
        The most timed runs.
    budget : float, optional
        Seconds of timed runs, or ``None`` for all ``repeats``.

    Returns
    -------
    float
        The median seconds of one call.
    """
    start = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - start
    slow = budget is not None and first > budget
    warm = 0.0
    if not slow:
        start = time.perf_counter()
        jax.block_until_ready(fn())
        warm = time.perf_counter() - start
    runs = 1 if slow else repeats if budget is None else max(1, min(repeats, int(budget // warm)))
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _sequential(spec: ModelSpec, data: tuple, reg: Regulariser, config: Config) -> Callable:
    """``run(steps)``: the reference loop's steps, :func:`mgs_teach.train.advance` (one jitted
    step per Python call, its mini-batch loss kept), without its records."""
    builder, step, _ = compiled_step(spec, *compile_key(reg, config), len(data[0]))
    x, y = jnp.asarray(data[0]), jnp.asarray(data[1])
    hyper = Hyper.of(reg, config)
    state = builder.init(build(spec, reg, 0)[2], jax.random.key(0))

    def run(steps: int) -> None:
        nonlocal state
        with float64():
            state, losses = advance(step, state, (x, y), hyper, 0, steps)
            jax.block_until_ready((state, losses))

    return run


def step_flops(spec: ModelSpec, data: tuple, reg: Regulariser, config: Config,
               loss: str = "cross_entropy") -> float:  # fmt: skip
    """Floating-point operations of one training step of one run, by XLA's cost analysis of
    the lowered step (the arithmetic that no way of running it can avoid).

    Parameters
    ----------
    spec : ModelSpec
    data : tuple
        ``(x_train, y_train, ...)``, ``x_train`` of shape ``(n, ...)`` and ``y_train`` of
        shape ``(n,)`` or ``(n, C)``: only its shapes and dtypes matter.
    reg : Regulariser
    config : Config
    loss : str
        The task's loss (:attr:`mgs_teach.lab.specs.DataSpec.loss`).

    Returns
    -------
    float
        XLA's count, NaN where the backend gives none.
    """
    builder, _, _ = compiled_step(spec, *compile_key(reg, config), len(data[0]), loss)
    state = builder.init(build(spec, reg, 0)[2], jax.random.key(0))
    args = (state, jnp.asarray(data[0]), jnp.asarray(data[1]), jnp.int32(1),
            Hyper.of(reg, config))  # fmt: skip
    cost = jax.jit(builder.step).lower(*args).cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return float((cost or {}).get("flops", float("nan")))


def matmul_peak(n: int = 1024, repeats: int = 10) -> float:
    """Floating-point operations per second of an ``n x n`` float32 matrix product here: the
    arithmetic rate that large, dense work reaches on this device (median of ``repeats``)."""
    a = jnp.ones((n, n), jnp.float32)
    product = jax.jit(lambda a: a @ a)
    seconds = median_seconds(lambda: product(a), repeats, budget=None)
    return 2 * n**3 / seconds


def _rate(run: Callable[[int], None], steps: int, runs: int, budget: float = 1.5) -> float:
    """Run-steps per second of ``run``: the time of ``run(steps)`` less that of ``run(0)``
    (the engine's ``run(0)`` is its record alone), each by :func:`median_seconds` (at most
    three timings, half of ``budget`` each)."""
    base = median_seconds(lambda: run(0), 3, budget / 2)
    return runs * steps / max(median_seconds(lambda: run(steps), 3, budget / 2) - base, 1e-6)


def training(
    models: list[str] | None = None,
    penalties: list[str] | None = None,
    runs: list[int] | None = None,
    *,
    shares: list[str] | None = None,
    steps: float = 1.0,
    trace_method: str | None = None,
    progress: bool = True,
    on_rows: Callable[[list[dict]], None] | None = None,
) -> list[dict]:
    """Steps per second per run of the sequential loop and of the batched engine.

    For every model and penalty: the sequential loop trains one run (its rate per run does
    not depend on how many runs there are, since it trains them one after another), and the
    engine trains ``R`` runs at once for each ``R`` in ``runs``, once per way of sharing
    the program (``shares``). Each rate is the median of up to three timings
    of the same number of steps (as many as fit in 1.5 seconds), after a first call that
    compiles; the records, set-up and compilation, the same for both, are left out.

    Parameters
    ----------
    models, penalties, runs
        Subsets of :data:`TRAINING_MODELS`, :data:`PENALTIES` and the run counts
        (default ``[1, 8, 32]``).
    shares : list of str, optional
        Ways of sharing a program to time: ``"vmap"``, ``"serial"`` or both. Default: the one
        the engine picks on this backend (:func:`mgs_teach.lab.engine.share_for`), which keeps
        the default run within five minutes on a 2-core CPU; ``["vmap", "serial"]`` compares
        them.
    steps : float
        Multiplies the steps of every timing (steadier rates, longer benchmark).
    trace_method : str, optional
        How the MGS penalty computes tr K for every model (``"auto"``: exactly, as the
        ``paper`` plan trains it). Default: each model's own in :data:`TRAINING_MODELS`
        (LeNet-5's one-probe estimate, as the ``cpu`` plan trains it).
    progress : bool
        Print every rate as it is measured.
    on_rows : callable, optional
        Called with the rows so far after every model and penalty (to save them as they
        come, so that a benchmark cut off keeps what it measured).

    Returns
    -------
    list of dict
        Rows as in the module docstring, with the ``trace_method`` of the MGS penalty;
        ``seconds`` is the time of one timed call,
        ``flops_per_step`` the arithmetic of one step of one run (:func:`step_flops`) and
        ``peak_flops_per_s`` this device's large matrix-product rate (:func:`matmul_peak`).
        Together they bound what any engine can gain: see :func:`ceilings`.
    """
    models = models or DEFAULT_TRAINING_MODELS
    penalties = penalties or list(PENALTIES)
    runs = runs or [1, 8, 32]
    rows, device = [], jax.devices()[0].platform
    peak = matmul_peak()
    for name in models:
        spec, data_spec, config, n_steps, method = TRAINING_MODELS[name]
        method = trace_method or method
        n_steps = max(1, round(n_steps * steps))
        data = [data_spec.load(seed) for seed in range(max(runs))]
        for penalty in penalties:
            reg = PENALTIES[penalty]
            if penalty == "mgs_trace":
                reg = dataclasses.replace(reg, method=method)
            seq = _rate(_sequential(spec, data[0], reg, config), n_steps, 1)
            base = dict(model=name, penalty=penalty, device=device, trace_method=method,
                        flops_per_step=step_flops(spec, data[0], reg, config),
                        peak_flops_per_s=peak)  # fmt: skip
            for r in runs:
                rows.append(dict(base, runs=r, engine="sequential", share="-",
                                 seconds=r * n_steps / seq, steps_per_s_per_run=seq))  # fmt: skip
            for share in shares or [engine.share_for(None)]:
                for r in runs:
                    jobs = [engine.Job(reg, config, k, data[k]) for k in range(r)]
                    rate = _rate(engine.segment_runner(spec, jobs, share=share), n_steps, r)
                    seconds = r * n_steps / rate
                    rows.append(dict(base, runs=r, engine="batched", share=share,
                                     seconds=seconds, steps_per_s_per_run=rate))  # fmt: skip
                    if progress:
                        print(f"  {name:16s} {penalty:10s} R={r:<3d} {share:7s} {rate:9.0f} "
                              f"steps/s per run (sequential {seq:.0f})", flush=True)  # fmt: skip
            if on_rows is not None:
                on_rows(rows)
    return rows


def ratios(rows: list[dict]) -> list[dict]:
    """Engine over sequential loop, per model, penalty, runs and share."""
    seq = {(r["model"], r["penalty"], r["runs"]): r["steps_per_s_per_run"]
           for r in rows if r["engine"] == "sequential"}  # fmt: skip
    return [dict(model=r["model"], penalty=r["penalty"], runs=r["runs"], share=r["share"],
                 ratio=r["steps_per_s_per_run"] / seq[r["model"], r["penalty"], r["runs"]])
            for r in rows if r["engine"] == "batched"]  # fmt: skip


def ceilings(rows: list[dict]) -> list[dict]:
    """How far the sequential loop is from this device's arithmetic rate, per model and penalty.

    ``gflops_per_s`` is the rate at which the sequential loop does a step's arithmetic;
    ``share_of_peak`` that rate over the device's large matrix-product rate; and ``ceiling``
    the reciprocal: the most any engine could gain over the sequential loop if it ran every
    step at that rate. Small networks' matrix products run below it, so the true bound is
    lower still.
    """
    out = []
    for r in rows:
        if r["engine"] == "sequential" and r["runs"] == min(
            q["runs"] for q in rows if q["engine"] == "sequential"
        ):
            rate = r["steps_per_s_per_run"] * r["flops_per_step"]
            out.append(dict(model=r["model"], penalty=r["penalty"],
                            mflops_per_step=r["flops_per_step"] / 1e6, gflops_per_s=rate / 1e9,
                            share_of_peak=rate / r["peak_flops_per_s"],
                            ceiling=r["peak_flops_per_s"] / rate))  # fmt: skip
    return out


# ------------------------------------------------------------------------------ CLI


def _parser() -> argparse.ArgumentParser:
    """The command line's options (the same flags as ever)."""
    parser = argparse.ArgumentParser(prog=" ".join(COMMAND),
                                     description=training.__doc__.split("\n")[0])  # fmt: skip
    parser.add_argument("--models", nargs="+", default=DEFAULT_TRAINING_MODELS,
                        choices=list(TRAINING_MODELS))  # fmt: skip
    parser.add_argument("--penalties", nargs="+", default=list(PENALTIES), choices=list(PENALTIES))
    parser.add_argument("--runs", nargs="+", type=int, default=[1, 8, 32])
    parser.add_argument("--shares", nargs="+", default=None, choices=["vmap", "serial"])
    parser.add_argument(
        "--steps",
        type=float,
        default=1.0,
        help="multiply the steps of every timing (steadier rates)",
    )
    parser.add_argument("--trace-method", default=None,
                        choices=["auto", "structured", "jacobian", "hutchinson"],
                        help="the MGS penalty's trace for every model (default: each model's "
                             "own; 'auto', exact, is what the paper plan trains)")  # fmt: skip
    parser.add_argument("--json", type=Path, help="write the rows as JSON")
    return parser


def _report(rows: list[dict]) -> None:
    """Print the engine's gain over the sequential loop, and the bound arithmetic sets on it."""
    print(f"\n{'model':16s} {'penalty':10s} {'runs':>4s} {'share':7s} {'engine / sequential':>20s}")
    for r in ratios(rows):
        print(f"{r['model']:16s} {r['penalty']:10s} {r['runs']:4d} {r['share']:7s} "
              f"{r['ratio']:19.1f}x")  # fmt: skip
    print(f"\nThe arithmetic bound: a {rows[0]['peak_flops_per_s'] / 1e9:.0f} GFLOP/s matrix "
          "product here, against the sequential loop's rate")  # fmt: skip
    print(f"{'model':16s} {'penalty':10s} {'MFLOP/step':>10s} {'GFLOP/s':>8s} {'of peak':>8s} "
          f"{'most any engine gains':>22s}")  # fmt: skip
    for c in ceilings(rows):
        print(
            f"{c['model']:16s} {c['penalty']:10s} {c['mflops_per_step']:10.1f} "
            f"{c['gflops_per_s']:8.1f} {c['share_of_peak']:7.0%} {c['ceiling']:21.1f}x"
        )


def main(argv: list[str] | None = None) -> list[dict]:
    """``python -m mgs_teach.lab bench training ...``: time, print, and with ``--json`` write
    the rows (after every model and penalty, so a cut-off keeps them) and their provenance.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after ``training`` (default: the process's).

    Returns
    -------
    list of dict
        The rows of :func:`training`.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    print(f"Training benchmark: sequential loop vs batched engine, jax {jax.__version__} on "
          f"{jax.devices()[0]}", flush=True)  # fmt: skip
    start, started = time.perf_counter(), time.time()

    def save(rows: list[dict]) -> None:  # after every model and penalty: a cut-off keeps them
        write_atomic(args.json, json.dumps(rows, indent=1))

    rows = training(args.models, args.penalties, args.runs, shares=args.shares,
                    steps=args.steps, trace_method=args.trace_method,
                    on_rows=save if args.json else None)  # fmt: skip
    _report(rows)
    wall = time.perf_counter() - start
    print(f"(whole benchmark: {wall:.0f} s)")
    if args.json:
        save(rows)
        record = {**provenance(" ".join([*COMMAND, *argv]), started), "wall_s": round(wall, 1)}
        args.json.with_name(args.json.stem + ".provenance.json").write_text(
            json.dumps(record, indent=1)
        )
        print(f"wrote {args.json} and its provenance beside it")
    return rows


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
