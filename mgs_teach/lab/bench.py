"""The penalty benchmark: what one trace-penalised SGD step costs, method by method.

``python -m mgs_teach.lab bench [penalty]`` times one trace-penalised SGD step by method;
``python -m mgs_teach.lab bench training`` times whole training runs, the sequential loop
against the batched engine (:mod:`mgs_teach.lab.bench_training`).

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
``seconds_per_step`` and ``ratio_to_plain``, and ``<stem>.provenance.json`` beside it (the
command, commit, machine and versions). neural-tangents only imports on old JAX, so its
rows run in a separate environment (``.nt-env`` by default; ``--setup-nt`` creates it from
``requirements-nt.txt``), on the same weights and inputs, passed through a file.

Every step here is :func:`mgs_teach.train.make_step`'s, the one training uses
(:func:`penalty_step`).
"""

from __future__ import annotations

import argparse
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

from mgs_teach.checkpoint import write_atomic
from mgs_teach.config import Config, Hyper
from mgs_teach.lab import bench_training
from mgs_teach.lab.bench_training import median_seconds
from mgs_teach.lab.provenance import provenance
from mgs_teach.models import FCN, AlexNet, LeNet5, functional
from mgs_teach.penalties import regulariser
from mgs_teach.train import make_step

__all__ = [
    "METHODS",
    "MODELS",
    "NT_ENV",
    "benchmark",
    "inputs",
    "main",
    "median_seconds",
    "neural_tangents",
    "nt_python",
    "penalty_step",
    "setup_nt",
]

ROOT = Path(__file__).resolve().parents[2]
NT_ENV = ROOT / ".nt-env"
NT_REQUIREMENTS = ROOT / "requirements-nt.txt"
_NT_READY = "mgs-requirements.txt"  # a copy of the requirements, written once installed
STRENGTH = 1e-3
#: How the command is written in help texts.
COMMAND = "python -m mgs_teach.lab bench"

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


def penalty_step(apply_fn: Callable, method: str, batch: int = 32) -> tuple[Callable, Callable]:
    """A jitted SGD step of one penalty method, from :func:`mgs_teach.train.make_step`.

    Parameters
    ----------
    apply_fn : callable
        ``apply_fn(params, x) -> logits``, ``x`` of shape ``(batch, 28, 28)`` and the logits
        ``(batch, 10)``.
    method : str
        One of :data:`METHODS`.
    batch : int
        Samples per step.

    Returns
    -------
    step : callable
        ``step(state, x, y) -> state`` on the batch ``(x, y)`` of ``batch`` samples.
    init : callable
        ``init(params) -> state``.
    """
    reg = _REGULARISERS[method]
    builder = make_step(apply_fn, lambda p, x, key, rate=None: apply_fn(p, x), reg,
                        Config(learning_rate=0.01, batch_size=batch), batch)  # fmt: skip
    hyper = Hyper.of(reg, Config(learning_rate=0.01))
    update = jax.jit(lambda s, x, y: builder.update(s, x, y, jnp.int32(1), hyper)[0])
    return update, lambda params: builder.init(params, jax.random.key(1))


def inputs(batch: int, seed: int = 0) -> tuple[jax.Array, jax.Array]:
    """A fixed batch of inputs ``(batch, 28, 28)`` and labels ``(batch,)`` in 0..9 (random:
    only the cost is measured)."""
    kx, ky = jax.random.split(jax.random.key(seed))
    return jax.random.uniform(kx, (batch, 28, 28)), jax.random.randint(ky, (batch,), 0, 10)


def benchmark(
    models: list[str], methods: list[str], *, batch: int = 32, repeats: int = 5,
    budget: float | None = 10.0, progress: bool = True,
) -> list[dict]:  # fmt: skip
    """Time every method on every model; rows as in the module docstring.

    Each step is timed by :func:`median_seconds` with ``repeats`` and ``budget``.

    Parameters
    ----------
    models, methods : list of str
        Keys of :data:`MODELS` and :data:`METHODS`.
    batch : int
        Samples per step: inputs ``(batch, 28, 28)`` (:func:`inputs`).
    repeats, budget
        As in :func:`median_seconds`.
    progress : bool
        Print every step's time as it is measured.

    Returns
    -------
    list of dict
        ``model``, ``method``, ``device``, ``seconds_per_step`` and ``ratio_to_plain`` (NaN
        without a ``plain`` method).
    """
    rows, device = [], jax.devices()[0].platform
    for name in models:
        apply_fn, params = functional(MODELS[name]())
        x, y = inputs(batch)
        plain = None
        for method in methods:
            step, init = penalty_step(apply_fn, method, batch)
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
    """Run :mod:`mgs_teach.lab._nt_worker` in the neural-tangents environment, once for all
    models.

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


# ------------------------------------------------------------------------------ CLI


def _table(rows: list[dict]) -> str:
    lines = [f"{'model':8s} {'method':26s} {'device':6s} {'ms/step':>10s} {'x plain':>8s}"]
    for r in rows:
        ms = r.get("seconds_per_step", float("nan")) * 1e3
        lines.append(f"{r['model']:8s} {r['method']:26s} {r['device']:6s} {ms:10.2f} "
                     f"{r.get('ratio_to_plain', float('nan')):8.2f}")  # fmt: skip
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    """The penalty benchmark's options (the same flags as ever)."""
    parser = argparse.ArgumentParser(
        prog=COMMAND,
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
    return parser


def _nt_rows(args: argparse.Namespace, rows: list[dict], python: Path) -> None:
    """Append to ``rows`` the neural-tangents steps of ``args.models``, timed in its
    environment at ``python``, each over this environment's plain step of its model."""
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


def main(argv: list[str] | None = None) -> list[dict]:
    """``python -m mgs_teach.lab bench [penalty] ...`` or
    ``python -m mgs_teach.lab bench training ...`` (:func:`mgs_teach.lab.bench_training.main`).

    Parameters
    ----------
    argv : list of str, optional
        The arguments after ``bench`` (default: the process's).

    Returns
    -------
    list of dict
        The rows, as in the module docstring (or the training benchmark's).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["training"]:
        return bench_training.main(argv[1:])
    if argv[:1] == ["penalty"]:
        argv = argv[1:]
    parser = _parser()
    args = parser.parse_args(argv)
    started = time.time()
    print(f"MGS penalty step benchmark: batch {args.batch}, median of up to {args.repeats} "
          f"repeats within {args.budget:g} s per step, "
          f"jax {jax.__version__} on {jax.devices()[0]}", flush=True)  # fmt: skip
    rows = benchmark(args.models, args.methods, batch=args.batch, repeats=args.repeats,
                     budget=args.budget)  # fmt: skip
    python = setup_nt() if args.setup_nt else nt_python()
    if args.nt == "on" and python is None:
        parser.error(f"no neural-tangents environment at {NT_ENV}; pass --setup-nt")
    if args.nt != "off" and python is not None:
        _nt_rows(args, rows, python)
    print(_table(rows))
    if args.json:
        write_atomic(args.json, json.dumps(rows, indent=1))
        record = {**provenance(" ".join(["python", "-m", "mgs_teach.lab", "bench", *argv]),
                               started), "wall_s": round(time.time() - started, 1)}  # fmt: skip
        write_atomic(args.json.with_name(args.json.stem + ".provenance.json"),
                     json.dumps(record, indent=1))  # fmt: skip
        print(f"wrote {args.json} and its provenance beside it")
    return rows


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
