"""scripts/migrate_results.py: stored runs renamed to the current key scheme, nothing else."""

import json
import shutil

import migrate_results
from bookfiles import ROOT

from mgs_teach.lab.experiment import Experiment

RESULTS = ROOT / "results"


def test_the_committed_results_are_under_the_current_keys():
    assert migrate_results.main([str(RESULTS), "--check"]) == 0


def test_an_old_folder_is_renamed_and_a_stale_group_checkpoint_deleted(tmp_path, capsys):
    source = next(RESULTS.glob("mnist-cpu/runs/*/experiment.json")).parent
    old = tmp_path / "runs" / "fcn-6x300-some-old-key-0123456789"
    shutil.copytree(source, old)
    stale = tmp_path / "runs" / ".checkpoints" / "0123456789abcdef.pkl"
    stale.parent.mkdir()
    stale.write_bytes(b"old")
    assert migrate_results.main([str(tmp_path), "--check"]) == 1
    assert old.exists() and stale.exists()  # --check changes nothing
    assert migrate_results.main([str(tmp_path)]) == 0
    key = Experiment.from_json(json.loads((source / "experiment.json").read_text())).key
    assert not old.exists() and not stale.exists()
    assert sorted(p.name for p in (tmp_path / "runs" / key).iterdir()) == sorted(
        p.name for p in source.iterdir())  # fmt: skip
    assert migrate_results.main([str(tmp_path), "--check"]) == 0
