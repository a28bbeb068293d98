"""How much a trace-penalised SGD step costs, by method: ``python -m mgs_teach.bench``.

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
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import venv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np
import optax
from flax import nnx

from mgs_teach import fast
from mgs_teach.kernel import mgs_trace
from mgs_teach.models import FCN, AlexNet, LeNet5, functional
from mgs_teach.penalties import cross_entropy, mgs_logdet_penalty

__all__ = ["METHODS", "MODELS", "NT_ENV", "benchmark", "main", "neural_tangents", "setup_nt"]

ROOT = Path(__file__).resolve().parents[1]
NT_ENV = ROOT / ".nt-env"
NT_REQUIREMENTS = ROOT / "requirements-nt.txt"
STRENGTH = 1e-3

MODELS: dict[str, Callable[[], nnx.Module]] = {
    "fcn": lambda: FCN(784, 10, depth=6, width=300, rngs=nnx.Rngs(0)),
    "lenet5": lambda: LeNet5(10, rngs=nnx.Rngs(0)),
    "alexnet": lambda: AlexNet(10, rngs=nnx.Rngs(0)),
}


def _penalty(method: str) -> Callable[..., jax.Array] | None:
    return {
        "plain": None,
        "naive": lambda f, p, x, key: mgs_trace(f, p, x),
        "structured": lambda f, p, x, key: fast.structured_trace(f, p, x),
        "hutchinson_k1": lambda f, p, x, key: fast.hutchinson_trace(f, p, x, key, 1),
        "hutchinson_k4": lambda f, p, x, key: fast.hutchinson_trace(f, p, x, key, 4),
        "logdet": lambda f, p, x, key: mgs_logdet_penalty(f, p, x),
    }[method]


METHODS = ("plain", "naive", "structured", "hutchinson_k1", "hutchinson_k4", "logdet")


def make_step(apply_fn: Callable, method: str) -> Callable:
    """A jitted SGD step ``(params, opt_state, x, y, key) -> (params, opt_state)``."""
    penalty = _penalty(method)
    opt = optax.sgd(0.01)

    def loss(p: Any, x: jax.Array, y: jax.Array, key: jax.Array) -> jax.Array:
        value = cross_entropy(apply_fn(p, x), y)
        return value if penalty is None else value + STRENGTH * penalty(apply_fn, p, x, key)

    @jax.jit
    def step(p: Any, s: Any, x: jax.Array, y: jax.Array, key: jax.Array) -> tuple:
        grads = jax.grad(loss)(p, x, y, key)
        updates, s = opt.update(grads, s, p)
        return optax.apply_updates(p, updates), s

    return step, opt


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
            step, opt = make_step(apply_fn, method)
            state = opt.init(params)
            seconds = median_seconds(lambda: step(params, state, x, y, jax.random.key(1)),  # noqa: B023
                                     repeats, budget)  # fmt: skip
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
    """The neural-tangents environment's Python, if that environment exists."""
    python = env / "bin" / "python"
    return python if python.exists() else None


def setup_nt(env: Path = NT_ENV) -> Path:
    """Create the pinned neural-tangents environment (needs the package index once)."""
    if nt_python(env) is None:
        venv.create(env, with_pip=True)
    python = env / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(NT_REQUIREMENTS)],
                   check=True)  # fmt: skip
    return python


def neural_tangents(
    model: str, params: Any, x: jax.Array, y: jax.Array, *, python: Path,
    kernel_batch: int = 4, time_steps: bool = True, repeats: int = 5, budget: float | None = 10.0,
) -> dict:  # fmt: skip
    """Run :mod:`mgs_teach._nt_worker` in the neural-tangents environment.

    Steps are timed as by :func:`median_seconds`, with the same ``repeats`` and ``budget``.

    Returns
    -------
    dict
        ``device``, ``jax`` (its version there), ``plain_seconds`` (a plain step there) and
        ``rows``: per implementation, ``method``, the ``kernel`` of the first ``kernel_batch``
        samples (sample-major, like :func:`mgs_teach.mgs_kernel`) and ``seconds_per_step``,
        or ``error``.
    """
    flat = {"p/" + "/".join(str(getattr(k, "key", k)) for k in path): np.asarray(leaf)
            for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]}  # fmt: skip
    meta = dict(model=model, kernel_batch=kernel_batch, time=time_steps, repeats=repeats,
                budget=budget, strength=STRENGTH)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        path_in, path_out = Path(tmp) / "in.npz", Path(tmp) / "out.json"
        np.savez(path_in, x=np.asarray(x), y=np.asarray(y), meta=json.dumps(meta), **flat)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env.update(TF_CPP_MIN_LOG_LEVEL="3", JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", ""))
        worker = Path(__file__).with_name("_nt_worker.py")
        done = subprocess.run([str(python), str(worker), str(path_in), str(path_out)],
                              capture_output=True, text=True, env=env)  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"neural-tangents worker failed:\n{done.stderr[-3000:]}")
        return json.loads(path_out.read_text())


# ------------------------------------------------------------------------------ CLI


def _table(rows: list[dict]) -> str:
    lines = [f"{'model':8s} {'method':26s} {'device':6s} {'ms/step':>10s} {'x plain':>8s}"]
    for r in rows:
        ms = r.get("seconds_per_step", float("nan")) * 1e3
        lines.append(f"{r['model']:8s} {r['method']:26s} {r['device']:6s} {ms:10.2f} "
                     f"{r.get('ratio_to_plain', float('nan')):8.2f}")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
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
        for name in args.models:
            plains = [r["seconds_per_step"] for r in rows
                      if r["model"] == name and r["method"] == "plain"]  # fmt: skip
            plain = plains[0] if plains else float("nan")
            result = neural_tangents(name, functional(MODELS[name]())[1], x, y, python=python,
                                     repeats=args.repeats, budget=args.budget)  # fmt: skip
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
