"""Provenance: where a stored result comes from (the command, the commit, the machine)."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import jax

from mgs_teach.lab.specs import mnist_pool

__all__ = ["cpu_model", "mnist_source", "plan_provenance", "provenance"]


def provenance(command: str, start: float) -> dict[str, Any]:
    """Where a stored result comes from: the command, the commit, the machine, the versions.

    Parameters
    ----------
    command : str
        The command line that made the result.
    start : float
        Its start, as ``time.time()``.
    """
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True, cwd=root).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "mgs_teach"], capture_output=True,
                               text=True, cwd=root).stdout.strip() != ""  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = "unknown", False
    versions = {"python": platform.python_version()}
    for package in ("jax", "jaxlib", "flax", "optax", "numpy"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    return dict(
        command=command,
        git_commit=commit + ("+uncommitted changes in mgs_teach" if dirty else ""),
        device=[str(d) for d in jax.devices()], cpu=cpu_model(),
        cpu_count=os.cpu_count(), versions=versions,
        start=time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(start)),
    )  # fmt: skip


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else its architecture. XLA compiles for the
    CPU it runs on, so float32 round-off, and with it a long noisy run, depends on it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def mnist_source(plan: Any) -> str:
    """The MNIST source a plan trains on: its ``source``, with ``"auto"`` resolved to what
    :func:`mgs_teach.lab.specs.mnist_pool` finds (``"full"`` or ``"offline"``)."""
    return plan.source if plan.source != "auto" else mnist_pool("auto").source


def plan_provenance(argv: Sequence[str], plan: Any, start: float) -> dict[str, Any]:
    """:func:`provenance` of a plan's command, with the plan and its data source."""
    source = mnist_source(plan)
    found = provenance(" ".join(["python", "-m", "mgs_teach.lab", *argv]), start)
    if plan.task == "faces":
        return {**found, "plan": plan.name, "task": "faces", "faces_source": plan.source}
    return {**found, "plan": plan.name, "mnist_source": source}
