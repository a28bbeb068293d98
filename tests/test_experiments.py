"""The grid runner resumes without losing or repeating runs; aggregation follows the paper."""

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from mgs_teach import experiments as E
from mgs_teach.train import Run

BASE = E.Scenario("fcn", n_train=64, label_noise=0.5, regulariser="none", epochs=1,
                  n_records=3, model_kwargs=(("depth", 1), ("width", 16)))  # fmt: skip


class FakeRunner:
    """Stands in for train(): a deterministic history per (scenario, seed); counts calls."""

    def __init__(self, fail_on=None):
        self.calls, self.fail_on = [], fail_on

    def __call__(self, make_model, data, reg, config, *, checkpoint, progress):
        self.calls.append((reg.name, reg.strength, config.seed))
        if self.fail_on is not None and len(self.calls) == self.fail_on:
            raise KeyboardInterrupt  # Ctrl-C while this run trains
        steps = np.arange(10)
        acc = 0.5 + 0.01 * steps + 0.001 * config.seed + 0.1 * reg.strength
        hist = pd.DataFrame(dict(step=steps, test_acc=acc, test_loss=1 - acc + reg.strength**2))
        hist = hist.assign(regulariser=reg.name, strength=reg.strength, seed=config.seed)
        return Run(hist, None, "finished", "ok")


@pytest.fixture
def no_mnist(monkeypatch):
    """The fake runner needs no data."""
    monkeypatch.setattr(E, "make_data", lambda scenario, seed: None)


def grid():
    return [dataclasses.replace(BASE, regulariser=r, strength=s)
            for r, s in [("none", 0.0), ("weight_decay", 0.1), ("mgs_trace", 0.2)]]  # fmt: skip


def test_interrupted_grid_resumes_without_losing_or_repeating_runs(tmp_path, no_mnist):
    reference = E.run_grid(grid(), [0, 1], tmp_path / "ref", runner=FakeRunner(), progress=False)

    first = FakeRunner(fail_on=4)
    with pytest.raises(KeyboardInterrupt):
        E.run_grid(grid(), [0, 1], tmp_path / "out", runner=first, progress=False)
    assert len(list((tmp_path / "out").glob("*/seed*.csv"))) == 3  # three finished runs kept
    assert not list((tmp_path / "out").glob("*/*.tmp"))  # nothing half-written

    second = FakeRunner()
    resumed = E.run_grid(grid(), [0, 1], tmp_path / "out", runner=second, progress=False)
    done_before = set(first.calls[:3])
    assert len(second.calls) == 3 and not done_before & set(second.calls)  # no run repeated
    assert set(first.calls[:3]) | set(second.calls) == {
        (s.regulariser, s.strength, seed) for s in grid() for seed in (0, 1)
    }  # no run lost
    pd.testing.assert_frame_equal(resumed.drop(columns="wall_s"), reference.drop(columns="wall_s"))

    third = FakeRunner()
    E.run_grid(grid(), [0, 1], tmp_path / "out", runner=third, progress=False)
    assert third.calls == []  # everything is on disk


def test_load_runs_reads_back_what_run_grid_wrote(tmp_path, no_mnist):
    runs = E.run_grid(grid(), [0, 1], tmp_path, runner=FakeRunner(), progress=False)
    back = E.load_runs(tmp_path)
    cols = ["key", "seed", "step", "test_acc"]
    pd.testing.assert_frame_equal(
        back.sort_values(cols)[cols].reset_index(drop=True),
        runs.sort_values(cols)[cols].reset_index(drop=True),
    )
    meta = json.loads(next(tmp_path.glob("*/scenario.json")).read_text())
    assert meta["model"] == "fcn"


def test_summarise_the_papers_way():
    rows = []
    for seed, offset in [(0, 0.0), (1, 0.2)]:
        curve = [0.1, 0.9, 0.5, 0.5, 0.5, 0.5, 0.5]  # peaks early, then overfits
        rows += [dict(step=t, seed=seed, test_acc=v + offset, method="m", status="finished")
                 for t, v in enumerate(curve)]  # fmt: skip
    rows.append(dict(step=0, seed=2, test_acc=0.0, method="m", status="diverged"))
    table = E.summarise(pd.DataFrame(rows), ["method"])
    row = table.iloc[0]
    assert row["runs"] == 2  # the diverged run is left out
    assert row["final"] == pytest.approx(0.6)  # finals 0.5 and 0.7 (mean of last 5)
    assert row["sd"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert row["max"] == pytest.approx(1.0)  # max of the run-averaged curve: (0.9 + 1.1) / 2


def test_tune_grid_picks_the_lowest_validation_loss(tmp_path, no_mnist):
    runner = FakeRunner()
    best, table = E.tune_grid(BASE, {"weight_decay": [0.0, 0.3, 1.0], "mgs_trace": [0.5, 0.1]},
                              [0], tmp_path, runner=runner, progress=False)  # fmt: skip
    # fake loss = 1 - acc + s^2 = 0.455 - 0.1 s + s^2 (mean of last 5): minimised at s = 0.05
    assert best == {"weight_decay": 0.0, "mgs_trace": 0.1}
    assert table["best"].sum() == 2
    assert {c[0] for c in runner.calls} == {"weight_decay", "mgs_trace"}


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(model="resnet"), "unknown model"),
        (dict(regulariser="l1"), "unknown regulariser"),
        (dict(split="train"), "split"),
        (dict(label_noise=1.5), r"\[0, 1\]"),
        (dict(regulariser="adam", strength=0.0), "adam needs"),
    ],
)
def test_bad_scenarios_are_rejected(change, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(BASE, **change)


def test_keys_are_stable_and_distinct():
    a, b = grid()[0], grid()[1]
    assert a.key == dataclasses.replace(a).key and a.key != b.key
    assert a.key.startswith("fcn-n64-noise0.5-none")


def test_a_real_grid_end_to_end(tmp_path):
    """Real data, real training, tiny sizes: the plumbing between the modules works."""
    scenario = dataclasses.replace(BASE, n_train=64, regulariser="mgs_trace", strength=1e-3)
    runs = E.run_grid([scenario], [0], tmp_path, progress=False)
    assert (runs["status"] == "finished").all() and len(runs) == 3
    assert np.isfinite(runs[["trace", "test_acc"]].to_numpy()).all()
    assert not runs["logdet"].isna().any()  # finite, or -inf where the kernel is singular
    assert runs["label_noise"].iloc[0] == 0.5 and runs["model"].iloc[0] == "fcn"
    x_tr, y_tr, x_ev, y_ev = E.make_data(dataclasses.replace(scenario, split="validation"), 0)
    assert len(x_tr) == 48 and len(x_ev) == 16  # a quarter of the subset held out


# ------------------------------------------------------------ the MNIST chapter's command


def test_full_scale_grids_have_the_papers_sizes():
    best = {"lenet5": {"mgs_trace": 1e-4}, "fcn": {}, "alexnet": {}}
    grids = E.mnist_grids("full", best)
    table1 = grids["table1"]
    assert {(s.model, s.n_train, s.epochs) for s in table1} == {("lenet5", 3000, 400)}
    assert sorted({s.label_noise for s in table1}) == [0.0, 0.3, 0.6, 0.8]
    assert {s.regulariser for s in table1} == set(E.TABLE_METHODS.values())
    assert {s.strength for s in table1 if s.regulariser == "mgs_trace"} == {1e-4}
    assert {s.model for s in grids["fcn_table"]} == {"fcn"} and len(grids["fcn_table"]) == 20
    assert [s.regulariser for s in grids["figure3"]] == list(E.MNIST_REGULARISERS)
    assert {s.model for s in grids["figure3"]} == {"alexnet"}
    middle = grids["figure4"][0]
    assert (middle.n_train, middle.label_noise, middle.epochs) == (3000, 0.5, 100)
    for scenario in grids["figure4"]:  # every scenario changes at most one setting
        changed = [f for f in ("n_train", "label_noise", "batch_size", "learning_rate", "epochs")
                   if getattr(scenario, f) != getattr(middle, f)]  # fmt: skip
        assert len(changed) <= 1
    assert {name for name in E.mnist_tuning("full")} == {"lenet5", "fcn", "alexnet"}
    assert E.mnist_settings("full")["seeds"] == 10
    with pytest.raises(ValueError, match="unknown scale"):
        E.mnist_settings("huge")


def test_cli_runs_every_grid_resumably_and_writes_provenance(tmp_path, no_mnist, monkeypatch):
    runner = FakeRunner()
    monkeypatch.setattr(E, "train", runner)
    out = tmp_path / "mnist"
    assert E.load_mnist_results(out) is None  # nothing yet: the chapter says "pending"
    E.main(["mnist", "--out", str(out), "--scale", "smoke", "--source", "offline",
            "--no-progress"])  # fmt: skip
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["command"].endswith(
        f"-m mgs_teach.experiments mnist --out {out} --scale smoke --source offline --no-progress"
    )
    assert provenance["status"] == "finished" and provenance["wall_s"] >= 0
    assert provenance["scale"] == "smoke" and provenance["source"] == "offline"
    assert provenance["git_commit"] and provenance["device"] and provenance["start"]
    assert provenance["end"] >= provenance["start"]
    assert set(provenance["versions"]) == {"python", "jax", "jaxlib", "flax", "optax", "numpy"}
    n_calls = len(runner.calls)
    assert n_calls > 0

    loaded = E.load_mnist_results(out)  # reads back without training
    assert len(runner.calls) == n_calls
    assert set(loaded) >= {"best", "tuning", "figure3", "table1", "fcn_table", "figure4"}
    assert set(loaded["figure3"]["regulariser"]) == set(E.MNIST_REGULARISERS)
    assert loaded["provenance"] == provenance

    E.main(["mnist", "--out", str(out), "--scale", "smoke", "--source", "offline",
            "--no-progress"])  # fmt: skip
    assert len(runner.calls) == n_calls  # resumed: nothing ran twice

    (out / "provenance.json").write_text(json.dumps({**provenance, "status": "running"}))
    assert E.load_mnist_results(out) is None  # an unfinished command is still pending
