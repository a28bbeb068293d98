"""Two benchmarks: what a penalised step costs, and what the batched engine gains.

``python -m mgs_teach.bench [penalty]`` times one trace-penalised SGD step by method;
``python -m mgs_teach.bench training`` times whole training runs, the sequential loop
against the batched engine (:func:`training`).

The penalty benchmark
---------------------

Every method runs in one process on the same weights and inputs (batch 32, 10 classes,
28 x 28 inputs), jit-compiled, with warm-up, as the median of several repeats (fewer for
steps of several seconds, see :func:`median_seconds`):

=================  ===============================================================
plain              SGD step on cross-entropy
naive              + trace penalty through per-example Jacobians (``vmap(jacrev)``)
structured         + exact trace from the layer structure (:mod:`mgs_teach.fast`)
hutchinson_k1/k4   + Hutchinson estimate with 1 or 4 probes
logdet             + log-det penalty (structured kernel, Cholesky)
nt_*               + trace from neural-tangents 0.6.5 (its own pinned environment)
=================  ===============================================================

``--json PATH`` writes the table as a list of rows with ``model``, ``method``, ``device``,
``seconds_per_step`` and ``ratio_to_plain``. neural-tangents only imports on old JAX, so its
rows run in a separate environment (``.nt-env`` by default; ``--setup-nt`` creates it from
``requirements-nt.txt``), on the same weights and inputs, passed through a file.

Every step here is :func:`mgs_teach.train.make_step`'s, the one training uses.

The training benchmark
----------------------
``python -m mgs_teach.bench training --json FILE`` trains, in one process, the two-circles
MLP, the FCN 6 x 300 and LeNet-5, plain and MGS-trace-penalised, as ``R = 1, 8, 32`` runs:
with the sequential loop (:func:`mgs_teach.train.train`, one jitted step per Python call,
the runs one after another) and with the batched engine (:func:`mgs_teach.engine.train_runs`,
sharing the program as the engine would on this backend; ``--shares vmap serial`` times
both ways). Every row is timed after a first, compiling call of the
same program. It prints the ratios; each JSON row has ``model``, ``penalty``, ``runs``,
``engine`` (``sequential`` or ``batched``), ``share``, ``steps_per_s_per_run`` (every run's
optimiser steps counted: R runs of S steps in T seconds make ``R * S / T``) and ``seconds``.
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import json
import os
import subprocess
import sys
import tempfile
import time
import venv
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from mgs_teach import engine
from mgs_teach.experiments import DataSpec, ModelSpec, _write_atomic, provenance
from mgs_teach.models import FCN, AlexNet, LeNet5, functional
from mgs_teach.penalties import Regulariser, regulariser
from mgs_teach.train import Config, Hyper
from mgs_teach.train import make_step as make_train_step

__all__ = [
    "METHODS",
    "MODELS",
    "NT_ENV",
    "TRAINING_MODELS",
    "benchmark",
    "inputs",
    "main",
    "make_step",
    "median_seconds",
    "neural_tangents",
    "nt_python",
    "setup_nt",
    "step_flops",
    "training",
]

ROOT = Path(__file__).resolve().parents[1]
NT_ENV = ROOT / ".nt-env"
NT_REQUIREMENTS = ROOT / "requirements-nt.txt"
_NT_READY = "mgs-requirements.txt"  # a copy of the requirements, written once installed
STRENGTH = 1e-3

MODELS: dict[str, Callable[[], nnx.Module]] = {
    "fcn": lambda: FCN(784, 10, depth=6, width=300, rngs=nnx.Rngs(0)),
    "lenet5": lambda: LeNet5(10, rngs=nnx.Rngs(0)),
    "alexnet": lambda: AlexNet(10, rngs=nnx.Rngs(0)),
}


#: regulariser of each penalty method (``plain``: none)
_REGULARISERS = {
    "plain": regulariser("none"),
    "naive": regulariser("mgs_trace", STRENGTH, method="jacobian"),
    "structured": regulariser("mgs_trace", STRENGTH, method="structured"),
    "hutchinson_k1": regulariser("mgs_trace", STRENGTH, method="hutchinson", probes=1),
    "hutchinson_k4": regulariser("mgs_trace", STRENGTH, method="hutchinson", probes=4),
    "logdet": regulariser("mgs_logdet", STRENGTH),
}

METHODS = tuple(_REGULARISERS)


def make_step(apply_fn: Callable, method: str, batch: int = 32) -> tuple[Callable, Callable]:
    """A jitted SGD step of one penalty method, from :func:`mgs_teach.train.make_step`.

    Returns
    -------
    step : callable
        ``step(state, x, y) -> state`` on the batch ``(x, y)`` of ``batch`` samples.
    init : callable
        ``init(params) -> state``.
    """
    reg = _REGULARISERS[method]
    builder = make_train_step(apply_fn, lambda p, x, key, rate=None: apply_fn(p, x), reg,
                              Config(learning_rate=0.01, batch_size=batch), batch)  # fmt: skip
    hyper = Hyper.of(reg, Config(learning_rate=0.01))
    update = jax.jit(lambda s, x, y: builder.update(s, x, y, jnp.int32(1), hyper)[0])
    return update, lambda params: builder.init(params, jax.random.key(1))


def median_seconds(fn: Callable[[], Any], repeats: int, budget: float | None = 10.0) -> float:
    """Median wall time of ``fn()`` over up to ``repeats`` timed runs, after compile and warm-up.

    The first call compiles. A step that is fast enough then gets an untimed warm-up run, and
    as many of the ``repeats`` as fit in ``budget`` seconds (at least one). A step whose first
    call alone took longer than ``budget`` is timed once more, without a warm-up: the median of
    a few multi-second steps is as precise as that of many short ones, and a warm-up guards
    against start-up costs that are negligible at that length. ``budget=None`` always runs
    the warm-up and all ``repeats``.
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


def inputs(batch: int, seed: int = 0) -> tuple[jax.Array, jax.Array]:
    """A fixed batch of 28 x 28 inputs and labels (random: only the cost is measured)."""
    kx, ky = jax.random.split(jax.random.key(seed))
    return jax.random.uniform(kx, (batch, 28, 28)), jax.random.randint(ky, (batch,), 0, 10)


def benchmark(
    models: list[str], methods: list[str], *, batch: int = 32, repeats: int = 5,
    budget: float | None = 10.0, progress: bool = True,
) -> list[dict]:  # fmt: skip
    """Time every method on every model; rows as in the module docstring.

    Each step is timed by :func:`median_seconds` with ``repeats`` and ``budget``.
    """
    rows, device = [], jax.devices()[0].platform
    for name in models:
        apply_fn, params = functional(MODELS[name]())
        x, y = inputs(batch)
        plain = None
        for method in methods:
            step, init = make_step(apply_fn, method, batch)
            state = init(params)
            seconds = median_seconds(lambda: step(state, x, y), repeats, budget)  # noqa: B023
            plain = seconds if method == "plain" else plain
            rows.append(dict(model=name, method=method, device=device, seconds_per_step=seconds))
            if progress:
                print(f"  {name:8s} {method:24s} {seconds * 1e3:10.2f} ms", flush=True)
        for row in rows:
            if row["model"] == name:
                row["ratio_to_plain"] = row["seconds_per_step"] / plain if plain else float("nan")
    return rows


# -------------------------------------------------------------------- neural-tangents


def nt_python(env: Path = NT_ENV) -> Path | None:
    """The neural-tangents environment's Python, once :func:`setup_nt` has finished it.

    ``None`` while the environment is missing, half-built, or built from other requirements
    than ``requirements-nt.txt`` holds now.
    """
    python = env / "bin" / "python"
    ready = env / _NT_READY
    if python.exists() and ready.exists() and ready.read_text() == NT_REQUIREMENTS.read_text():
        return python
    return None


def setup_nt(env: Path = NT_ENV) -> Path:
    """Create the pinned neural-tangents environment (needs the package index once).

    Processes that call it at once (two test runs, or the tests and the benchmark) take turns
    on a lock file beside ``env``; the environment counts as ready only after its
    requirements are installed.
    """
    env.parent.mkdir(parents=True, exist_ok=True)
    with open(env.with_name(env.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        python = env / "bin" / "python"
        if nt_python(env) is None:
            if not python.exists():
                venv.create(env, with_pip=True)
            subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(NT_REQUIREMENTS)],
                           check=True)  # fmt: skip
            (env / _NT_READY).write_text(NT_REQUIREMENTS.read_text())
    return python


def neural_tangents(
    models: Mapping[str, Any], x: jax.Array, y: jax.Array, *, python: Path,
    kernel_batch: int = 4, time_steps: bool = True, repeats: int = 5, budget: float | None = 10.0,
) -> dict[str, dict]:  # fmt: skip
    """Run :mod:`mgs_teach._nt_worker` in the neural-tangents environment, once for all models.

    Parameters
    ----------
    models
        Model name (a key of :data:`MODELS`) -> its parameters, which the worker rebuilds
        layer for layer.
    x, y
        The batch, ``(B, 28, 28, 1)`` and ``(B,)``.
    time_steps
        Time the steps (as by :func:`median_seconds`, with the same ``repeats`` and
        ``budget``), or only compute the kernels.

    Returns
    -------
    dict
        Per model: ``device``, ``jax`` (its version there), ``plain_seconds`` (a plain step
        there, when timed) and ``rows``: per implementation, ``method``, the ``kernel`` of the
        first ``kernel_batch`` samples (sample-major, like :func:`mgs_teach.mgs_kernel`) and
        ``seconds_per_step`` (when timed), or ``error``.
    """
    meta = dict(kernel_batch=kernel_batch, time=time_steps, repeats=repeats, budget=budget,
                strength=STRENGTH)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        paths = {name: (Path(tmp) / f"{name}.npz", Path(tmp) / f"{name}.json") for name in models}
        for name, params in models.items():
            flat = {"p/" + "/".join(str(getattr(k, "key", k)) for k in path): np.asarray(leaf)
                    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]}  # fmt: skip
            np.savez(paths[name][0], x=np.asarray(x), y=np.asarray(y),
                     meta=json.dumps({**meta, "model": name}), **flat)  # fmt: skip
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env.update(TF_CPP_MIN_LOG_LEVEL="3", JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", ""))
        worker = Path(__file__).with_name("_nt_worker.py")
        args = [str(p) for pair in paths.values() for p in pair]
        done = subprocess.run([str(python), str(worker), *args], capture_output=True, text=True,
                              env=env)  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"neural-tangents worker failed:\n{done.stderr[-3000:]}")
        return {name: json.loads(out.read_text()) for name, (_, out) in paths.items()}


# ----------------------------------------------------------------- training benchmark

#: The training benchmark's models: ``name -> (model, data, config, steps, trace method)``.
#: ``steps`` is how many optimiser steps each timing trains per run. LeNet-5's MGS penalty
#: uses the Hutchinson trace, as the ``cpu`` plan does (its exact trace costs about nine plain
#: steps on a CPU).
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


def _sequential(spec: ModelSpec, data: tuple, reg: Regulariser, config: Config) -> Callable:
    """``run(steps)``: the reference loop's steps, :func:`mgs_teach.train.train`'s inner loop
    (one jitted step per Python call, its mini-batch loss kept), without its records."""
    from mgs_teach.kernel import float64
    from mgs_teach.train import _compiled, build, compile_key

    builder, step, _ = _compiled(spec, *compile_key(reg, config), len(data[0]))
    x, y = jnp.asarray(data[0]), jnp.asarray(data[1])
    hyper = Hyper.of(reg, config)
    state = builder.init(build(spec, reg, 0)[2], jax.random.key(0))

    def run(steps: int) -> None:
        nonlocal state
        with float64():
            losses = []
            for t in range(steps):
                state, loss = step(state, x, y, jnp.int32(t), hyper)
                losses.append(loss)
            jax.block_until_ready((state, losses))

    return run


def step_flops(spec: ModelSpec, data: tuple, reg: Regulariser, config: Config,
               loss: str = "cross_entropy") -> float:  # fmt: skip
    """Floating-point operations of one training step of one run, by XLA's cost analysis of
    the lowered step (the arithmetic that no way of running it can avoid).

    ``data`` is ``(x_train, y_train, ...)``: only its shapes and dtypes matter, and
    ``loss`` is the task's (:attr:`mgs_teach.experiments.DataSpec.loss`)."""
    from mgs_teach.train import _compiled, build, compile_key

    builder, _, _ = _compiled(spec, *compile_key(reg, config), len(data[0]), loss)
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
    """Run-steps per second of ``run``: ``run(steps)`` minus ``run(0)`` (the engine's
    ``run(0)`` is its record alone), after a compiling call; the median of as many timings as
    fit in ``budget`` seconds, at most three, at least one."""
    run(0)
    run(1)
    rates, spent = [], 0.0
    while len(rates) < 3 and (not rates or spent < budget):
        start = time.perf_counter()
        run(0)
        mid = time.perf_counter()
        run(steps)
        end = time.perf_counter()
        spent += end - start
        rates.append(runs * steps / max((end - mid) - (mid - start), 1e-6))
    return float(np.median(rates))


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
        the engine picks on this backend (:func:`mgs_teach.engine.share_for`), which keeps the
        default run within five minutes on a 2-core CPU; ``["vmap", "serial"]`` compares them.
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


def _training_main(argv: list[str]) -> list[dict]:
    parser = argparse.ArgumentParser(prog="python -m mgs_teach.bench training",
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
    args = parser.parse_args(argv)
    print(f"Training benchmark: sequential loop vs batched engine, jax {jax.__version__} on "
          f"{jax.devices()[0]}", flush=True)  # fmt: skip
    start, started = time.perf_counter(), time.time()

    def save(rows: list[dict]) -> None:  # after every model and penalty: a cut-off keeps them
        _write_atomic(args.json, json.dumps(rows, indent=1))

    rows = training(args.models, args.penalties, args.runs, shares=args.shares,
                    steps=args.steps, trace_method=args.trace_method,
                    on_rows=save if args.json else None)  # fmt: skip
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
    wall = time.perf_counter() - start
    print(f"(whole benchmark: {wall:.0f} s)")
    if args.json:
        save(rows)
        command = " ".join(["python", "-m", "mgs_teach.bench", "training", *(argv or [])])
        record = {**provenance(command, started), "wall_s": round(wall, 1)}
        args.json.with_name(args.json.stem + ".provenance.json").write_text(
            json.dumps(record, indent=1)
        )
        print(f"wrote {args.json} and its provenance beside it")
    return rows


# ------------------------------------------------------------------------------ CLI


def _table(rows: list[dict]) -> str:
    lines = [f"{'model':8s} {'method':26s} {'device':6s} {'ms/step':>10s} {'x plain':>8s}"]
    for r in rows:
        ms = r.get("seconds_per_step", float("nan")) * 1e3
        lines.append(f"{r['model']:8s} {r['method']:26s} {r['device']:6s} {ms:10.2f} "
                     f"{r.get('ratio_to_plain', float('nan')):8.2f}")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    """``python -m mgs_teach.bench [penalty] ...`` or ``python -m mgs_teach.bench training ...``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["training"]:
        return _training_main(argv[1:])
    if argv[:1] == ["penalty"]:
        argv = argv[1:]
    parser = argparse.ArgumentParser(
        prog="python -m mgs_teach.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5, help="most timed runs per step")
    parser.add_argument(
        "--budget",
        type=float,
        default=10.0,
        help="seconds of timed runs per step: slow steps get fewer repeats (at least one)",
    )
    parser.add_argument("--json", type=Path, help="write the rows as JSON")
    parser.add_argument(
        "--nt",
        choices=["auto", "on", "off"],
        default="auto",
        help="neural-tangents rows: if its environment exists (auto), always, never",
    )
    parser.add_argument(
        "--setup-nt",
        action="store_true",
        help=f"create the neural-tangents environment at {NT_ENV} first",
    )
    args = parser.parse_args(argv)

    print(f"MGS penalty step benchmark: batch {args.batch}, median of up to {args.repeats} "
          f"repeats within {args.budget:g} s per step, "
          f"jax {jax.__version__} on {jax.devices()[0]}", flush=True)  # fmt: skip
    rows = benchmark(args.models, args.methods, batch=args.batch, repeats=args.repeats,
                     budget=args.budget)  # fmt: skip
    python = setup_nt() if args.setup_nt else nt_python()
    if args.nt == "on" and python is None:
        parser.error(f"no neural-tangents environment at {NT_ENV}; pass --setup-nt")
    if args.nt != "off" and python is not None:
        x, y = inputs(args.batch)
        results = neural_tangents({name: functional(MODELS[name]())[1] for name in args.models},
                                  x, y, python=python, repeats=args.repeats,
                                  budget=args.budget)  # fmt: skip
        for name, result in results.items():
            plains = [r["seconds_per_step"] for r in rows
                      if r["model"] == name and r["method"] == "plain"]  # fmt: skip
            plain = plains[0] if plains else float("nan")
            for r in result["rows"]:
                row = dict(model=name, method=r["method"], device=result["device"])
                if "error" in r:
                    print(f"  {name:8s} {r['method']:24s} failed: {r['error'][:120]}")
                    continue
                row["seconds_per_step"] = r["seconds_per_step"]
                row["ratio_to_plain"] = r["seconds_per_step"] / plain
                rows.append(row)
                print(f"  {name:8s} {r['method']:24s} {r['seconds_per_step'] * 1e3:10.2f} ms")
            rows.append(dict(model=name, method=f"plain (jax {result['jax']}, nt env)",
                             device=result["device"], seconds_per_step=result["plain_seconds"],
                             ratio_to_plain=result["plain_seconds"] / plain))  # fmt: skip
    print(_table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
        print(f"wrote {args.json}")
    return rows


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
