"""What the chapters read: a command's stored results, and their compact summaries.

Reading never trains: :func:`load_mnist_results` and :func:`load_part_results` read a
finished command's runs from its stores (a missing run is a ``FileNotFoundError``), apply
the tuner's rule to the stored tuning runs, and return what the command computed.
:func:`mnist_summary` and :func:`part_summary` make its ``summary.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from mgs_teach.lab.aggregate import entry, summarise
from mgs_teach.lab.plans import TABLE_METHODS, plans_for
from mgs_teach.lab.runner import tuned_strengths
from mgs_teach.lab.store import Store
from mgs_teach.lab.tuner import plan_tuning, select, tuning_order

__all__ = [
    "finished",
    "load_mnist_results",
    "load_part_results",
    "mnist_summary",
    "read_mnist",
    "results_dir",
    "part_summary",
]


def results_dir(name: str) -> Path:
    """The folder of the stored results ``name`` (for example ``"mnist-cpu"``).

    In a clone of the repository (``pyproject.toml`` and ``results/`` beside the package),
    ``results/<name>`` of the clone. In an installed wheel, the copy the package carries,
    ``mgs_teach/_results/<name>`` (``setup.py`` puts the repository's ``results/`` there), and
    for a plan the wheel has no results of (``"mnist-paper"``, say) ``results/<name>`` under
    the working folder, where ``python -m mgs_teach.lab`` writes by default. The folder need
    not exist: the loaders then return ``None``.

    Raises
    ------
    FileNotFoundError
        If there are no stored results at all: neither a clone's ``results/`` nor a copy
        inside the package (a build that left them out).
    """
    package = Path(__file__).resolve().parents[1]
    clone = package.parent
    if (clone / "pyproject.toml").is_file() and (clone / "results").is_dir():
        return clone / "results" / name
    shipped = package / "_results"
    if not shipped.is_dir():
        raise FileNotFoundError(
            f"no stored results for {name!r}: {package} is neither in a clone of the "
            "repository (with its results/) nor a package built with them "
            "(mgs_teach/_results/); install mgs-teach from the repository or its wheel"
        )
    return shipped / name if (shipped / name).is_dir() else Path.cwd() / "results" / name


def finished(out: str | Path) -> dict[str, Any] | None:
    """The provenance of a command's results under ``out``, if the command finished."""
    path = Path(out) / "provenance.json"
    if not path.exists():
        return None
    provenance = json.loads(path.read_text())
    return provenance if provenance.get("status") == "finished" else None


def read_mnist(plan: Any, out: str | Path) -> dict[str, Any]:
    """What :func:`mgs_teach.lab.runner.run_mnist` returns, read from ``out`` (no training).

    Raises
    ------
    FileNotFoundError
        If a run of the plan is missing.
    """
    out = Path(out)
    seeds, tuning = range(plan.tuning.runs), plan_tuning(plan)
    best: dict[str, dict[str, float]] = {}
    tables = []
    for network in tuning_order(plan):
        if network in tuning:
            base, grid = tuning[network]
            runs = Store(out / "tuning").read_grid(grid, seeds)
            best[network], table = select(grid, runs, seeds)
            tables.append(table.assign(model=network))
    results: dict[str, Any] = {"best": best}
    for name, grid in plan.grids(best).items():
        results[name] = Store(out / "runs").read_grid(grid, range(plan.runs_of(name)))
    results["tuning"] = pd.concat(tables, ignore_index=True) if tables else None
    return results


def load_mnist_results(out: str | Path) -> dict[str, Any] | None:
    """The results of ``python -m mgs_teach.lab mnist`` (or ``regression``) under ``out``.

    Returns ``None`` when ``out/provenance.json`` is missing or says the command has not
    finished; otherwise what :func:`read_mnist` returns, plus ``provenance`` and ``plan``.
    """
    provenance = finished(out)
    if provenance is None:
        return None
    plan = plans_for(provenance.get("task", "mnist"))[provenance["plan"]]
    plan = plan.for_source(provenance.get("mnist_source", "offline"))  # the sizes it tuned at
    return {**read_mnist(plan, out), "provenance": provenance, "plan": plan}


def load_part_results(out: str | Path) -> dict[str, Any] | None:
    """The results of a part with a command of its own (``python -m mgs_teach.lab testbench``
    or ``part NAME``) under ``out``, read back (as :func:`load_mnist_results`), or ``None``
    if not finished. The command keeps a copy of the strengths it used in
    ``out/best_strengths.json``.

    Returns
    -------
    dict or None
        ``best``, ``part`` (its name), the part's runs under that name, ``provenance`` and
        ``plan``.
    """
    provenance = finished(out)
    if provenance is None:
        return None
    plan, name = plans_for()[provenance["plan"]], provenance.get("part", "testbench")
    best = tuned_strengths(plan, out, name)
    runs = Store(Path(out) / "runs").read_grid(plan.part(name, best), range(plan.runs_of(name)))
    return {"best": best, "part": name, name: runs, "provenance": provenance, "plan": plan}


#: The columns that tell the scenarios of a part apart in its summary.
PART_GROUPS = {
    "testbench": ["n_train", "label_noise"],
    "figure3": [],
    "figure4": ["n_train", "label_noise", "batch_size", "learning_rate", "epochs"],
}


def part_summary(name: str, runs: pd.DataFrame, plan: Any, best: dict[str, Any]
                 ) -> dict[str, Any]:  # fmt: skip
    """The compact summary of a part with a command of its own (``summary.json``): for each
    scenario and method, the final mean, sd and max of the test accuracy in percent
    (:func:`mgs_teach.lab.aggregate.summarise`), the runs behind them and those that
    diverged; plus the strengths the runs trained with (tuned, or an untuned method's
    middle candidate), and the epochs of the first scenario (Figure 4's middle).
    The entries nest by the columns ``levels``: training size and noise (the test bench),
    noise (a table), Figure 4's five settings, or none (Figure 3)."""
    groups = PART_GROUPS.get(name, ["label_noise"])
    table = summarise(runs, groups + ["regulariser"])
    entries: dict[str, Any] = {}
    for row in table.itertuples():
        cell = entries
        for g in groups:
            v = getattr(row, g)
            cell = cell.setdefault(f"{v:.0%}" if g == "label_noise" else f"{v:g}", {})
        cell[row.regulariser] = entry(row, 100.0)
    grid = plan.part(name, best)
    return dict(plan=plan.name, part=name, model=grid[0].model.name, runs=plan.runs_of(name),
                epochs=grid[0].config.epochs, levels=groups,
                strengths={e.regulariser.name: e.regulariser.strength for e in grid},
                entries=entries)  # fmt: skip


def mnist_summary(results: dict[str, Any], plan: Any) -> dict[str, Any]:
    """The compact summary of a plan's results (``summary.json``).

    For each table, noise level and method: the final mean, the sd and the max of the test
    accuracy in percent (:func:`mgs_teach.lab.aggregate.summarise`), the runs behind them and
    the runs that diverged (``null`` statistics when every run did); plus the tuned
    strengths. For the regression plans: the test MSE in squared pixels of a 96-pixel image,
    with the lowest point of the run-averaged curve in place of the max.
    """
    names = {r: m for m, r in TABLE_METHODS.items()}
    tables: dict[str, Any] = {}
    faces = plan.task == "faces"
    # accuracy in percent; a regression's MSE in squared pixels of a 96-pixel image
    scale = plan.mse_unit if faces else 100.0
    noise = "target_noise" if faces else "label_noise"
    for t in plan.tables:
        table = summarise(results[t.name], [noise, "regulariser"],
                          metric="test_loss" if faces else "test_acc",
                          best="min" if faces else "max")  # fmt: skip
        cells: dict[str, Any] = {}
        for row in table.itertuples():
            level = getattr(row, noise)
            cells.setdefault(f"{level:g}" if faces else f"{level:.0%}", {})[
                names[row.regulariser]] = entry(row, scale)  # fmt: skip
        tables[t.name] = dict(model=t.model.name, n_train=t.n_train, epochs=t.epochs,
                              runs=t.runs, entries=cells)  # fmt: skip
    out = dict(plan=plan.name, best_strengths=results["best"], tables=tables)
    if faces:
        out["unit"] = "test MSE, squared pixels of a 96-pixel image; 'max' is the lowest"
    return out
