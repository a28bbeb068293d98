"""The cpu plan's parts with a command of their own (Figure 3, the 100-epoch FCN table,
Figure 4): provenance within the hour, the tables' strengths, a summary that the stored runs
reproduce, and a re-trained prefix of one stored run of each."""

import json
import re

import pytest
from bookfiles import ROOT

from mgs_teach.lab import plans, summaries
from mgs_teach.lab.grid import run_grid
from mgs_teach.lab.store import Store

from .test_results import CPU, PREFIX, assert_retrains, command, load, stored_experiment

#: Each part and the stored run whose prefix is re-trained: (regulariser, label noise, setting).
PARTS = {"figure3": ("mgs_logdet", 0.5, {}), "long_fcn": ("param_gradient", 0.8, {}),
         "figure4": ("mgs_trace", 0.5, {"batch_size": 128})}  # fmt: skip


@pytest.fixture(scope="module", params=sorted(PARTS))
def part(request):
    folder = ROOT / "results" / f"{request.param}-cpu"
    loaded = load(summaries.load_part_results, folder)
    assert loaded is not None, f"{folder} must hold a finished run of its part"
    return request.param, folder, loaded


def test_each_part_has_its_provenance_within_the_hour_and_the_tables_strengths(part):
    name, _, loaded = part
    p = loaded["provenance"]
    assert command(f"part {name} --plan cpu --time-limit 3550").fullmatch(p["command"])
    assert p["status"] == "finished" and p["plan"] == "cpu" and p["part"] == name
    assert re.fullmatch(r"[0-9a-f]{40}", p["git_commit"]), "run from a committed tree"
    assert 0 < p["total_wall_s"] <= 3600 and p["cpu_count"] <= 2
    assert loaded["best"] == json.loads((CPU / "best_strengths.json").read_text())


def test_each_summary_is_what_its_runs_give_with_every_run(part):
    name, folder, loaded = part
    summary = json.loads((folder / "summary.json").read_text())
    again = summaries.part_summary(name, loaded[name], plans.CPU, loaded["best"])
    assert summary == json.loads(json.dumps(again))
    runs = loaded[name].groupby(["key", "seed"]).ngroups
    assert runs == len(plans.CPU.part(name, {})) * plans.CPU.runs_of(name)


def test_a_stored_run_of_each_part_retrains_to_the_same_records(part):
    name, folder, loaded = part
    reg, noise, setting = PARTS[name]
    runs = loaded[name]
    pick = (runs["regulariser"] == reg) & (runs["label_noise"] == noise) & (runs["seed"] == 1)
    for column, value in setting.items():
        pick &= runs[column] == value
    stored = runs[pick].sort_values("step")
    assert stored["key"].nunique() == 1
    experiment = stored_experiment(folder / "runs", stored["key"].iloc[0])
    again = run_grid([experiment], [1], Store(folder / "runs"), n_records=PREFIX, progress=False)
    assert_retrains(again, stored, ["test_loss", "test_acc", "trace", "logdet"])
