"""The results store: has, write, read and missing by experiment and seed; atomic writes;
reading a missing run is an error, never a training."""

import json
import os

import pandas as pd
import pytest

from mgs_teach import checkpoint
from mgs_teach.lab.experiment import Experiment
from mgs_teach.lab.store import Store, with_fields

from .helpers import grid


def history(seed, n=3):
    """A run's history as the grid stores it (no training needed)."""
    acc = [0.5 + 0.1 * seed + 0.01 * t for t in range(n)]
    return pd.DataFrame(dict(step=range(n), test_acc=acc, status="finished"))


def test_a_stored_run_is_read_back_with_its_experiment(tmp_path):
    store, (a, b, _) = Store(tmp_path / "runs"), grid()
    assert not store.has(a, 0) and store.missing([a, b], [0, 1]) == [
        (a.key, 0), (a.key, 1), (b.key, 0), (b.key, 1)]  # fmt: skip
    store.write(a, 0, history(0))
    assert store.has(a, 0) and not store.has(a, 1) and not store.has(b, 0)
    assert store.path(a, 0) == tmp_path / "runs" / a.key / "seed0.csv"
    meta = json.loads((tmp_path / "runs" / a.key / "experiment.json").read_text())
    assert Experiment.from_json(meta) == a
    back = store.read(a, 0)
    pd.testing.assert_frame_equal(back[["step", "test_acc", "status"]], history(0))
    assert (back["key"] == a.key).all() and (back["seed"] == 0).all()
    assert (back["model"] == "fcn-1x8").all() and (back["label_noise"] == 0.2).all()
    pd.testing.assert_frame_equal(back, with_fields(history(0), a, 0), check_dtype=False)
    assert store.missing([a, b], [0, 1]) == [(a.key, 1), (b.key, 0), (b.key, 1)]
    assert repr(store) == f"Store({str(tmp_path / 'runs')!r})"


def test_reading_a_missing_run_is_an_error(tmp_path):
    store, (a, b, _) = Store(tmp_path), grid()
    with pytest.raises(FileNotFoundError, match=f"no run {a.key} seed 0"):
        store.read(a, 0)
    store.write(a, 0, history(0))
    with pytest.raises(FileNotFoundError, match="3 runs are missing"):
        store.read_grid([a, b], [0, 1])
    empty = Store(tmp_path / "nothing")
    with pytest.raises(FileNotFoundError):
        empty.read_grid([a], [0])
    assert not (tmp_path / "nothing").exists()  # reading creates nothing


def test_a_grid_is_read_in_its_order_and_read_all_finds_every_run(tmp_path):
    store, experiments = Store(tmp_path), grid()
    for e in reversed(experiments):
        for seed in (1, 0):
            store.write(e, seed, history(seed))
    runs = store.read_grid([*experiments, experiments[0]], [0, 1])  # an experiment twice: once
    assert list(zip(runs["key"], runs["seed"]))[::3] == [(e.key, s) for e in experiments
                                                        for s in (0, 1)]  # fmt: skip
    assert len(runs) == 3 * 2 * 3
    every = store.read_all().sort_values(["key", "seed", "step"]).reset_index(drop=True)
    ordered = runs.sort_values(["key", "seed", "step"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(every[ordered.columns], ordered, check_dtype=False)
    assert Store(tmp_path / "nothing").read_all().empty


def test_writes_are_atomic(tmp_path, monkeypatch):
    store, a = Store(tmp_path), grid()[0]
    store.write(a, 0, history(0))
    store.write(a, 0, history(1))  # a second write replaces the first whole
    assert store.read(a, 0)["test_acc"].tolist() == history(1)["test_acc"].tolist()
    assert not list(tmp_path.rglob("*.tmp"))  # no temporary file is left behind

    real = os.replace

    def killed(src, dst):  # killed between writing the new run and moving it in place
        if str(dst).endswith(".csv"):
            raise KeyboardInterrupt
        real(src, dst)

    monkeypatch.setattr(checkpoint.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        store.write(a, 0, history(2))
    monkeypatch.setattr(checkpoint.os, "replace", real)
    assert store.read(a, 0)["test_acc"].tolist() == history(1)["test_acc"].tolist()
    assert store.has(a, 0) and not store.has(a, 2)


def test_checkpoints_live_beside_the_runs_and_are_not_runs(tmp_path):
    store, a = Store(tmp_path), grid()[0]
    path = store.checkpoint("0123abcd")
    assert path == tmp_path / ".checkpoints" / "0123abcd.pkl"
    checkpoint.save(path, {"done": {}})
    store.write(a, 0, history(0))
    assert set(store.read_all()["key"]) == {a.key}
