"""Reading results never trains: a command's stored runs read back to what it computed."""

import json
import shutil

import pandas as pd
import pytest

from mgs_teach.lab import engine
from mgs_teach.lab.runner import run_mnist
from mgs_teach.lab.summaries import (
    finished,
    load_mnist_results,
    load_part_results,
    mnist_summary,
    read_mnist,
)

from .helpers import SMOKE


@pytest.fixture
def no_training(monkeypatch):
    """Any training is an error."""

    def train_runs(*args, **kwargs):
        raise AssertionError("reading results must never train")

    monkeypatch.setattr(engine, "train_runs", train_runs)


def assert_same_results(a, b):
    assert set(a) == set(b) and a["best"] == b["best"]
    for name in set(a) - {"best", "provenance", "plan"}:
        pd.testing.assert_frame_equal(a[name], b[name], check_dtype=False)


def test_read_mnist_reads_what_the_command_computed_and_never_trains(smoke_mnist, no_training):
    read = read_mnist(SMOKE, smoke_mnist)
    assert set(read) == {"best", "tuning", "fcn_table"}
    assert read["best"] == json.loads((smoke_mnist / "best_strengths.json").read_text())
    assert len(read["fcn_table"]) == 2 * 5 * 2 * SMOKE.n_records
    assert read["tuning"]["best"].sum() == 1
    assert_same_results(read, run_mnist(SMOKE, smoke_mnist, progress=False))  # all stored
    summary = json.loads((smoke_mnist / "summary.json").read_text())
    assert summary == json.loads(json.dumps(mnist_summary(read, SMOKE)))


def test_a_missing_run_is_an_error_not_a_training(smoke_mnist, tmp_path, no_training):
    out = tmp_path / "mnist"
    shutil.copytree(smoke_mnist, out)
    next(iter(sorted((out / "runs").rglob("seed1.csv")))).unlink()
    with pytest.raises(FileNotFoundError, match="1 runs are missing"):
        read_mnist(SMOKE, out)
    next(iter(sorted((out / "tuning").rglob("seed0.csv")))).unlink()
    with pytest.raises(FileNotFoundError, match="1 runs are missing"):
        read_mnist(SMOKE, out)


def test_the_loaders_read_only_a_finished_command(smoke, smoke_mnist, tmp_path, no_training):
    assert finished(tmp_path) is None and load_mnist_results(tmp_path) is None
    assert load_part_results(tmp_path) is None
    loaded = load_mnist_results(smoke_mnist)
    assert loaded["plan"] is SMOKE and finished(smoke_mnist) == loaded["provenance"]
    assert_same_results(loaded, {**read_mnist(SMOKE, smoke_mnist), "plan": 0, "provenance": 0})
    out = tmp_path / "mnist"
    shutil.copytree(smoke_mnist, out)
    provenance = json.loads((out / "provenance.json").read_text())
    (out / "provenance.json").write_text(json.dumps({**provenance, "status": "partial"}))
    assert finished(out) is None and load_mnist_results(out) is None
