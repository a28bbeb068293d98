"""The grid runner resumes without losing or repeating runs, shards, merges and stops."""

import pandas as pd
import pytest

from mgs_teach.lab import engine
from mgs_teach.lab.grid import Deadline, run_grid, shard_of
from mgs_teach.lab.store import Store
from mgs_teach.records import TrainingDiverged

from .helpers import count_groups, grid

COLS = ["key", "seed", "step", "test_acc", "trace"]


def test_an_interrupted_grid_resumes_without_losing_or_repeating_runs(tmp_path, monkeypatch):
    reference = run_grid(grid(), [0, 1], tmp_path / "ref", progress=False)
    real, trained = engine.train_runs, []

    def dies_second(model, jobs, **kw):
        if trained:
            raise KeyboardInterrupt  # Ctrl-C in the second group
        trained.append(len(jobs))
        return real(model, jobs, **kw)

    monkeypatch.setattr(engine, "train_runs", dies_second)
    with pytest.raises(KeyboardInterrupt):
        run_grid(grid(), [0, 1], tmp_path / "out", progress=False)
    assert len(list((tmp_path / "out").glob("*/seed*.csv"))) == 2  # one group (2 seeds) kept
    assert not list((tmp_path / "out").rglob("*.tmp"))  # nothing half-written

    again = []
    monkeypatch.setattr(
        engine,
        "train_runs",
        lambda model, jobs, **kw: again.append(len(jobs)) or real(model, jobs, **kw),
    )
    resumed = run_grid(grid(), [0, 1], Store(tmp_path / "out"), progress=False)
    assert again == [2, 2]  # the two missing groups, each once
    pd.testing.assert_frame_equal(resumed[COLS], reference[COLS])
    again.clear()
    run_grid(grid(), [0, 1], tmp_path / "out", progress=False)
    assert again == []  # everything is on disk


def test_a_stop_ends_the_grid_with_a_deadline_and_keeps_what_finished(tmp_path, monkeypatch):
    """``stop()`` turns true in the second group, after its first run's chunk: the grid raises
    :class:`Deadline`, the first group's runs are stored, the second group's finished chunk is
    in its checkpoint, and the same call without a stop trains only the rest."""
    groups, asked = count_groups(monkeypatch), []

    def stop():  # asked before every chunk; serially, a group's runs are a chunk each here
        asked.append(len(groups))
        return asked.count(2) > 1

    with pytest.raises(Deadline), pytest.warns(TrainingDiverged, match="interrupted"):
        run_grid(grid(), [0, 1], tmp_path, progress=False, share="serial", stop=stop)
    assert groups == [2, 2] and len(list(tmp_path.glob("*/seed*.csv"))) == 2
    assert len(list(tmp_path.glob(".checkpoints/*.pkl"))) == 1  # the stopped group's
    groups.clear()
    runs = run_grid(grid(), [0, 1], tmp_path, progress=False, share="serial")
    assert groups == [2, 2] and len(runs) == 3 * 2 * 3
    assert not list(tmp_path.glob(".checkpoints/*.pkl"))  # finished groups leave none
    assert (runs["status"] == "finished").all()


def test_shards_are_disjoint_balanced_and_merge_to_the_whole_grid(tmp_path):
    runs = [(e, s) for e in grid() for s in range(4)]
    parts = [shard_of(runs, (i, 3)) for i in range(3)]
    keys = [{(e.key, s) for e, s in p} for p in parts]
    assert set().union(*keys) == {(e.key, s) for e, s in runs}
    assert sum(map(len, keys)) == len(runs)  # disjoint
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    for i in range(3):  # each shard into its own folder; copying them together merges
        run_grid(grid(), range(4), tmp_path / f"part{i}", shard=(i, 3), progress=False)
    merged = tmp_path / "merged"
    for i in range(3):
        for csv in (tmp_path / f"part{i}").glob("*/*"):
            target = merged / csv.parent.name / csv.name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(csv.read_bytes())
    whole = run_grid(grid(), range(4), tmp_path / "whole", progress=False)
    back = Store(merged).read_all().sort_values(["key", "seed", "step"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(back[COLS], whole.sort_values(["key", "seed", "step"])
                                  .reset_index(drop=True)[COLS])  # fmt: skip
    with pytest.raises(ValueError, match="0 <= i < n"):
        shard_of(runs, (3, 3))
    assert shard_of(runs, None) == runs


def test_a_prefix_is_trained_into_memory_and_never_stored(tmp_path):
    params = {}
    head = run_grid(grid()[:1], [0], tmp_path, n_records=2, progress=False, params=params)
    assert len(head) == 2 and list(params) == [(grid()[0].key, 0)]
    assert not list(tmp_path.rglob("*.csv")) and not list(tmp_path.rglob("*.pkl"))
