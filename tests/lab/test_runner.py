"""Running a plan: each network tuned just before its first grid, resumably, stoppable; a
shard waits for the other shards' tuning; the test bench keeps the tuned strengths."""

import dataclasses
import json
import shutil

import pandas as pd
import pytest

from mgs_teach.lab.grid import Deadline
from mgs_teach.lab.runner import run_mnist, run_part, tuned_strengths
from mgs_teach.lab.summaries import read_mnist
from mgs_teach.records import TrainingDiverged

from .helpers import SMOKE, count_groups


def test_run_mnist_stops_at_the_deadline_and_resumes(smoke_mnist, tmp_path, monkeypatch):
    """Two methods' runs missing: ``stop()`` true once the first of them trained, so
    :func:`run_mnist` raises :class:`Deadline` before the second, after rewriting the strengths
    its (stored) tuning chose; the same call without a stop trains the second only, and the
    results are those of the uninterrupted command."""
    out = tmp_path / "mnist"
    shutil.copytree(smoke_mnist, out)
    (out / "best_strengths.json").unlink()
    for method in ("dropout", "mgs_trace"):
        for csv in (out / "runs").glob(f"*-{method}-*/seed*.csv"):
            csv.unlink()
    groups = count_groups(monkeypatch)
    with pytest.raises(Deadline), pytest.warns(TrainingDiverged, match="interrupted"):
        run_mnist(SMOKE, out, progress=False, stop=lambda: len(groups) > 1)
    assert groups == [4, 4]  # two noise levels x two runs each; the second stopped at once
    assert (out / "best_strengths.json").read_text() == (
        smoke_mnist / "best_strengths.json").read_text()  # fmt: skip
    assert len(list((out / "runs").glob("*/seed*.csv"))) == 4 * 4
    groups.clear()
    results = run_mnist(SMOKE, out, progress=False)
    assert groups == [4]  # only the stopped group, from its start (it saved no chunk)
    assert set(results) == {"best", "tuning", "fcn_table"}
    assert len(results["fcn_table"]) == 2 * 5 * 2 * SMOKE.n_records
    expected = read_mnist(SMOKE, smoke_mnist)
    assert results["best"] == expected["best"]
    pd.testing.assert_frame_equal(results["fcn_table"], expected["fcn_table"], check_dtype=False)
    pd.testing.assert_frame_equal(results["tuning"], expected["tuning"])


def test_a_shard_waits_for_the_other_shards_tuning(tmp_path):
    with pytest.raises(RuntimeError, match="tuning runs of other shards are missing"):
        run_mnist(SMOKE, tmp_path, shard=(0, 2), progress=False)
    assert len(list((tmp_path / "tuning").glob("*/seed*.csv"))) == 1  # its own share
    assert not (tmp_path / "best_strengths.json").exists()


def test_the_test_bench_needs_the_tuned_strengths(smoke_mnist, tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m mgs_teach.lab mnist --plan smoke"):
        tuned_strengths(SMOKE, tmp_path)
    with pytest.raises(FileNotFoundError, match="best_strengths.json is missing"):
        run_part(SMOKE, "testbench", tmp_path / "bench", tmp_path, progress=False)
    assert not (tmp_path / "bench").exists()
    best = json.loads((smoke_mnist / "best_strengths.json").read_text())
    assert tuned_strengths(SMOKE, smoke_mnist) == best
    wide = dataclasses.replace(SMOKE.testbench, model=dataclasses.replace(
        SMOKE.testbench.model, width=12))  # fmt: skip
    plan = dataclasses.replace(SMOKE, testbench=wide, tables=SMOKE.tables + (
        dataclasses.replace(SMOKE.tables[0], name="wide", model=wide.model),))  # fmt: skip
    with pytest.raises(FileNotFoundError, match="no strengths for fcn-1x12 yet"):
        tuned_strengths(plan, smoke_mnist)
    shutil.copytree(smoke_mnist, tmp_path / "copy")
    (tmp_path / "copy" / "best_strengths.json").write_text(json.dumps({**best, "fcn-1x12": {}}))
    assert "fcn-1x12" in tuned_strengths(plan, tmp_path / "copy")
