"""Experiments are composed values; the grid runner resumes, shards and merges; one tuner."""

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from mgs_teach import engine, plans
from mgs_teach import experiments as E
from mgs_teach.penalties import regulariser
from mgs_teach.train import Config

BASE = E.Experiment(
    E.ModelSpec("fcn", d_in=2, d_out=2, depth=1, width=8),
    E.DataSpec("two_circles", 48, label_noise=0.2, noise="other", n_test=64),
    regulariser("none"),
    Config(epochs=2, batch_size=16, n_records=3, monitor_size=8),
)


def grid():
    return [BASE.replace(regulariser=regulariser(r, s))
            for r, s in [("none", 0.0), ("weight_decay", 0.1), ("mgs_trace", 0.01)]]  # fmt: skip


def test_replace_routes_each_field_to_its_part():
    e = BASE.replace(label_noise=0.6, epochs=5, width=16, regulariser="mgs_trace", strength=1e-3,
                     method="hutchinson")  # fmt: skip
    assert e.data.label_noise == 0.6 and e.config.epochs == 5 and e.model.width == 16
    assert e.regulariser == regulariser("mgs_trace", 1e-3, method="hutchinson")
    kept = BASE.replace(regulariser=regulariser("cyclical_lr", 0.5, cycle_steps=7))
    assert kept.replace(regulariser="cyclical_lr", strength=0.9).regulariser.cycle_steps == 7
    with pytest.raises(ValueError, match="no part of an Experiment has"):
        BASE.replace(colour="red")


def test_keys_are_stable_and_distinct():
    a, b = grid()[0], grid()[1]
    assert a.key == BASE.replace().key and a.key != b.key
    assert a.key.startswith("fcn-1x8-two_circles-n48-noise0.2-none")
    assert E.Experiment.from_json(json.loads(json.dumps(b.to_json()))) == b


def test_runs_that_differ_only_in_numbers_share_a_program():
    """Strength, learning rate and label noise are data; epochs and batch size are not."""
    a = BASE.replace(regulariser="weight_decay", strength=0.1)
    assert a.program == a.replace(strength=0.3, learning_rate=0.01, label_noise=0.5).program
    assert a.program != a.replace(epochs=3).program != a.replace(batch_size=8).program
    assert a.program != a.replace(regulariser="dropout", strength=0.3).program


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: E.ModelSpec("resnet"), "unknown model"),
        (lambda: E.DataSpec("cifar", 10), "unknown task"),
        (lambda: E.DataSpec("mnist", 10, label_noise=1.5), r"\[0, 1\]"),
        (lambda: E.DataSpec("mnist", 10, noise="sometimes"), "convention"),
        (lambda: BASE.replace(regulariser="adam"), "adam needs"),
    ],
)
def test_bad_specs_are_rejected(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_validation_data_come_from_the_noisy_source_never_the_test_set():
    spec = E.DataSpec("two_circles", 40, label_noise=0.3, noise="other", n_val=30, n_test=50)
    x_tr, y_tr, x_val, y_val = spec.load(0)
    assert len(x_tr) == 40 and len(x_val) == 30
    x_te = dataclasses.replace(spec, n_val=0).load(0)[2]
    rows = {r.tobytes() for r in x_tr} | {r.tobytes() for r in x_val}
    assert not rows & {r.tobytes() for r in x_te}  # disjoint from the test set
    assert len({r.tobytes() for r in x_tr} & {r.tobytes() for r in x_val}) == 0


def test_mnist_runs_share_one_test_set_and_draw_their_own_subsets():
    spec = E.DataSpec("mnist", 200, label_noise=0.5)
    a, b = spec.load(0), spec.load(1)
    assert a[2] is b[2] and a[3] is b[3]  # the same test arrays: batched runs share them
    assert not np.array_equal(a[1], b[1])
    val = dataclasses.replace(spec, n_val=100).load(0)
    assert len(val[0]) == 200 and len(val[2]) == 100 and val[2] is not a[2]


def test_an_interrupted_grid_resumes_without_losing_or_repeating_runs(tmp_path, monkeypatch):
    reference = E.run_grid(grid(), [0, 1], tmp_path / "ref", progress=False)
    real, trained = engine.train_runs, []

    def dies_second(model, jobs, **kw):
        if trained:
            raise KeyboardInterrupt  # Ctrl-C in the second group
        trained.append(len(jobs))
        return real(model, jobs, **kw)

    monkeypatch.setattr(engine, "train_runs", dies_second)
    with pytest.raises(KeyboardInterrupt):
        E.run_grid(grid(), [0, 1], tmp_path / "out", progress=False)
    assert len(list((tmp_path / "out").glob("*/seed*.csv"))) == 2  # one group (2 seeds) kept
    assert not list((tmp_path / "out").rglob("*.tmp"))  # nothing half-written

    again = []
    monkeypatch.setattr(
        engine,
        "train_runs",
        lambda model, jobs, **kw: again.append(len(jobs)) or real(model, jobs, **kw),
    )
    resumed = E.run_grid(grid(), [0, 1], tmp_path / "out", progress=False)
    assert again == [2, 2]  # the two missing groups, each once
    cols = ["key", "seed", "step", "test_acc", "trace"]
    pd.testing.assert_frame_equal(resumed[cols], reference[cols])
    again.clear()
    E.run_grid(grid(), [0, 1], tmp_path / "out", progress=False)
    assert again == []  # everything is on disk


def test_shards_are_disjoint_balanced_and_merge_to_the_whole_grid(tmp_path):
    runs = [(e, s) for e in grid() for s in range(4)]
    parts = [E.shard_of(runs, (i, 3)) for i in range(3)]
    keys = [{(e.key, s) for e, s in p} for p in parts]
    assert set().union(*keys) == {(e.key, s) for e, s in runs}
    assert sum(map(len, keys)) == len(runs)  # disjoint
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    for i in range(3):  # each shard into its own folder; copying them together merges
        E.run_grid(grid(), range(4), tmp_path / f"part{i}", shard=(i, 3), progress=False)
    merged = tmp_path / "merged"
    for i in range(3):
        for csv in (tmp_path / f"part{i}").glob("*/*"):
            target = merged / csv.parent.name / csv.name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(csv.read_bytes())
    whole = E.run_grid(grid(), range(4), tmp_path / "whole", progress=False)
    back = E.load_runs(merged).sort_values(["key", "seed", "step"]).reset_index(drop=True)
    cols = ["key", "seed", "step", "test_acc", "trace"]
    pd.testing.assert_frame_equal(back[cols], whole.sort_values(["key", "seed", "step"])
                                  .reset_index(drop=True)[cols])  # fmt: skip
    with pytest.raises(ValueError, match="0 <= i < n"):
        E.shard_of(runs, (3, 3))


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


def test_tune_picks_the_highest_final_validation_accuracy(tmp_path):
    # long enough to learn the circles (about 0.68 on noisy validation labels); a weight
    # decay of 3 holds the network near constant (below 0.5)
    base = BASE.replace(epochs=30, width=32, depth=2, learning_rate=0.5)
    best, table = E.tune(base, {"weight_decay": [1e-4, 3.0], "mgs_trace": [1e-4]}, [0, 1],
                         tmp_path, n_val=32, progress=False)  # fmt: skip
    assert table["best"].sum() == 2
    wd = table[table["regulariser"] == "weight_decay"].set_index("strength")
    assert best["weight_decay"] == 1e-4 and wd.loc[1e-4, "val_acc"] > wd.loc[3.0, "val_acc"] + 0.1
    assert best["mgs_trace"] == 1e-4
    runs = E.load_runs(tmp_path)
    assert (runs["n_val"] == 32).all()  # evaluated on validation data, not the test set


# ------------------------------------------------------------ the MNIST chapter's command

SMOKE = plans.MNISTPlan(
    name="smoke", source="offline", noise="uniform", n_records=3, monitor_size=8,
    tuning=plans.Tuning(n_train=60, n_val=30, label_noise=0.5, epochs=1, runs=1,
                        candidates=(("mgs_trace", (1e-5, 1e-4)),)),
    tables=(plans.Table("fcn_table", E.ModelSpec("fcn", depth=1, width=8), (0.0, 0.6),
                        n_train=64, epochs=1, runs=2),),
    figure3=None, figure4=None,
    testbench=plans.TestBench(E.ModelSpec("fcn", depth=1, width=8), sizes=(32, 64),
                              noises=(0.0, 0.6), epochs=1, runs=2,
                              methods=("none", "mgs_trace")),
)  # fmt: skip


def test_cli_runs_a_plan_resumably_and_writes_provenance_and_summary(tmp_path, monkeypatch):
    monkeypatch.setitem(plans.PLANS, "smoke", SMOKE)
    out = tmp_path / "mnist"
    assert E.load_mnist_results(out) is None  # nothing yet: the chapter says "pending"
    assert E.main(["mnist", "--plan", "smoke", "--out", str(out), "--no-progress"]) == 0
    provenance = json.loads((out / "provenance.json").read_text())
    assert (
        provenance["command"]
        == f"python -m mgs_teach.experiments mnist --plan smoke --out {out} --no-progress"
    )
    assert provenance["status"] == "finished" and provenance["wall_s"] >= 0
    assert provenance["plan"] == "smoke" and provenance["mnist_source"] == "offline"
    assert (
        provenance["git_commit"]
        and provenance["device"]
        and provenance["end"] >= provenance["start"]
    )
    assert set(provenance["versions"]) == {"python", "jax", "jaxlib", "flax", "optax", "numpy"}
    summary = json.loads((out / "summary.json").read_text())
    entry = summary["tables"]["fcn_table"]["entries"]["60%"]["MGS"]
    loaded = E.load_mnist_results(out)  # reads back without training
    table = E.summarise(loaded["fcn_table"], ["label_noise", "regulariser"]).set_index(
        ["label_noise", "regulariser"])  # fmt: skip
    assert entry["final"] == pytest.approx(100 * table.loc[(0.6, "mgs_trace"), "final"], abs=0.01)
    assert entry["runs"] == 2 and entry["sd"] is not None
    assert set(loaded) >= {"best", "tuning", "fcn_table", "provenance", "plan"}

    csvs = sorted(out.rglob("seed*.csv"))
    stamps = [p.stat().st_mtime_ns for p in csvs]
    assert E.main(["mnist", "--plan", "smoke", "--out", str(out), "--no-progress"]) == 0
    assert [p.stat().st_mtime_ns for p in csvs] == stamps  # resumed: nothing trained twice
    (out / "provenance.json").write_text(json.dumps({**provenance, "status": "running"}))
    assert E.load_mnist_results(out) is None  # an unfinished command is still pending


def test_a_time_limit_stops_cleanly_and_the_next_call_continues(tmp_path, monkeypatch):
    monkeypatch.setitem(plans.PLANS, "smoke", SMOKE)
    out = tmp_path / "mnist"
    real, calls = engine.train_runs, []

    def slow(model, jobs, **kw):
        calls.append(1)
        if len(calls) == 2:
            engine.STOP.set()  # what the time limit's SIGALRM does mid-training
        return real(model, jobs, **kw)

    monkeypatch.setattr(engine, "train_runs", slow)
    assert E.main(["mnist", "--plan", "smoke", "--out", str(out), "--no-progress"]) == 3
    assert json.loads((out / "provenance.json").read_text())["status"] == "partial"
    monkeypatch.setattr(engine, "train_runs", real)
    assert E.main(["mnist", "--plan", "smoke", "--out", str(out), "--no-progress"]) == 0
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["status"] == "finished"
    assert provenance["total_wall_s"] >= provenance["wall_s"]


def test_the_time_limit_stops_training_at_a_chunk_boundary(tmp_path, monkeypatch, capsys):
    """SIGALRM sets engine.STOP (an exception raised in the handler could land inside JAX);
    the first chunk boundary stops the group, and the command says why."""
    monkeypatch.setitem(plans.PLANS, "smoke", SMOKE)
    out = tmp_path / "mnist"
    argv = ["mnist", "--plan", "smoke", "--out", str(out), "--no-progress"]
    assert E.main([*argv, "--time-limit", "0.001"]) == 3
    assert "stopped (time limit of 0.001 s reached)" in capsys.readouterr().out
    assert json.loads((out / "provenance.json").read_text())["status"] == "partial"
    assert not engine.STOP.is_set()  # cleared for whatever runs next in this process
    assert E.main(argv) == 0


def test_the_test_bench_keeps_the_tuned_strengths_and_resumes(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(plans.PLANS, "smoke", SMOKE)
    tuned, out = tmp_path / "mnist", tmp_path / "bench"
    argv = ["testbench", "--plan", "smoke", "--out", str(out), "--tuned", str(tuned),
            "--no-progress"]  # fmt: skip
    assert E.main(argv) == 2  # no tuned strengths yet: it says what to run first
    assert "python -m mgs_teach.experiments mnist --plan smoke" in capsys.readouterr().err
    assert not out.exists()
    assert E.main(["mnist", "--plan", "smoke", "--out", str(tuned), "--no-progress"]) == 0
    best = json.loads((tuned / "best_strengths.json").read_text())
    assert E.main(argv) == 0
    loaded = E.load_testbench_results(out)
    assert loaded["best"] == best and loaded["plan"] is SMOKE
    runs = loaded["testbench"]
    assert set(zip(runs["n_train"], runs["label_noise"])) == {(32, 0.0), (32, 0.6), (64, 0.0),
                                                              (64, 0.6)}  # fmt: skip
    mgs = runs[runs["regulariser"] == "mgs_trace"]
    assert set(mgs["strength"]) == {best["fcn-1x8"]["mgs_trace"]}
    assert runs.groupby("key")["seed"].nunique().eq(2).all()
    summary = json.loads((out / "summary.json").read_text())
    table = E.summarise(runs, ["n_train", "label_noise", "regulariser"]).set_index(
        ["n_train", "label_noise", "regulariser"])  # fmt: skip
    entry = summary["entries"]["64"]["60%"]["mgs_trace"]
    assert entry["final"] == pytest.approx(100 * table.loc[(64, 0.6, "mgs_trace"), "final"],
                                           abs=0.01)  # fmt: skip
    assert entry["runs"] + entry["diverged"] == 2
    assert summary["strengths"] == {"none": 0.0, "mgs_trace": best["fcn-1x8"]["mgs_trace"]}
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["status"] == "finished" and provenance["command"].startswith(
        "python -m mgs_teach.experiments testbench --plan smoke")  # fmt: skip
    stamps = [p.stat().st_mtime_ns for p in sorted(out.rglob("seed*.csv"))]
    assert E.main(argv) == 0
    assert [p.stat().st_mtime_ns for p in sorted(out.rglob("seed*.csv"))] == stamps


def test_each_network_is_tuned_just_before_its_first_grid(tmp_path, monkeypatch, capsys):
    """A time limit that stops a plan leaves whole tables, and never a test bench tuned on
    strengths that were not chosen yet."""
    wide = E.ModelSpec("fcn", depth=1, width=12)
    two = dataclasses.replace(SMOKE, tables=SMOKE.tables + (
        plans.Table("wide_table", wide, (0.6,), n_train=64, epochs=1, runs=1),),
        testbench=dataclasses.replace(SMOKE.testbench, model=wide))  # fmt: skip
    monkeypatch.setitem(plans.PLANS, "smoke", two)
    out, real, calls = tmp_path / "mnist", engine.train_runs, []

    def spy(model, jobs, **kw):
        calls.append((model.name, "tuning" if jobs[0].data[0].shape[0] == 60 else "grid"))
        if calls[-1] == ("fcn-1x12", "tuning"):
            engine.STOP.set()  # the time limit strikes
        return real(model, jobs, **kw)

    monkeypatch.setattr(engine, "train_runs", spy)
    assert E.main(["mnist", "--plan", "smoke", "--out", str(out), "--no-progress"]) == 3
    assert list(dict.fromkeys(calls)) == [("fcn-1x8", "tuning"), ("fcn-1x8", "grid"),
                                          ("fcn-1x12", "tuning")]  # fmt: skip
    assert set(json.loads((out / "best_strengths.json").read_text())) == {"fcn-1x8"}
    bench = ["testbench", "--plan", "smoke", "--out", str(tmp_path / "b"), "--tuned", str(out)]
    assert E.main(bench) == 2  # the test bench's network is not tuned yet
    assert "no strengths for fcn-1x12" in capsys.readouterr().err
    monkeypatch.setattr(engine, "train_runs", real)
    assert E.main(["mnist", "--plan", "smoke", "--out", str(out), "--no-progress"]) == 0
    assert set(json.loads((out / "best_strengths.json").read_text())) == {"fcn-1x8", "fcn-1x12"}


def test_a_plan_without_a_test_bench_says_so():
    with pytest.raises(ValueError, match="no test bench"):
        dataclasses.replace(SMOKE, testbench=None).testbench_grid({})


# ------------------------------------------------------------ the regression benchmark


def test_a_faces_experiment_is_a_regression_with_the_target_noise_as_data():
    data = E.FacesSpec(120, target_noise=30.0, n_test=40, size=32)
    x_tr, y_tr, x_te, y_te = data.load(0)
    assert x_tr.shape == (120, 32, 32) and y_tr.shape == (120, 30) and y_te.shape == (40, 30)
    assert np.abs(y_te).max() <= 1.0 and y_tr.dtype == np.float32  # scaled to [-1, 1]
    clean = E.FacesSpec(120, n_test=40, size=32).load(0)[1]
    # 30 pixels of a 96-pixel image, in units of half the image
    assert (y_tr - clean).std() == pytest.approx(30 / 48, rel=0.05)
    assert data.loss == "mse" and E.DataSpec("mnist", 10).loss == "cross_entropy"
    model = E.ModelSpec("lenet5", d_in=32 * 32, d_out=30)
    e = E.Experiment(model, data, regulariser("none"), Config(epochs=1))
    assert e.program == e.replace(target_noise=10.0).program  # the noise is data
    assert "faces-n120-noise30" in e.key
    again = E.Experiment.from_json(json.loads(json.dumps(e.to_json())))
    assert again == e and again.key == e.key
    with pytest.raises(ValueError, match="target_noise"):
        E.FacesSpec(10, target_noise=-1.0)
    with pytest.raises(ValueError, match="d_in = side"):
        _ = E.ModelSpec("lenet5", d_in=1000).side


def test_summarise_takes_the_lowest_point_for_an_error():
    rows = [dict(seed=s, step=t, test_loss=v, status="finished")
            for s, curve in enumerate([[3.0, 1.0, 2.0], [5.0, 1.0, 4.0]])
            for t, v in enumerate(curve)]  # fmt: skip
    table = E.summarise(pd.DataFrame(rows), ["status"], metric="test_loss", last=1, best="min")
    assert table["final"].iloc[0] == pytest.approx(3.0) and table["max"].iloc[0] == 1.0


def test_regression_plans_tune_by_validation_mse_and_summarise_in_pixels(tmp_path, monkeypatch):
    smoke = plans.MNISTPlan(
        name="smoke", task="faces", source="procedural", noise="uniform", n_records=3,
        monitor_size=4, batch_size=16, image_size=16, n_test=20,
        tuning=plans.Tuning(n_train=32, n_val=16, label_noise=15.0, epochs=1, runs=1,
                            candidates=(("weight_decay", (1e-4, 10.0)),)),
        tables=(plans.Table("fcn_regression", E.ModelSpec("fcn", d_in=256, d_out=30, depth=1,
                                                          width=8), (0.0, 30.0), n_train=32,
                            epochs=2, runs=2),),
        figure3=None, figure4=None)  # fmt: skip
    monkeypatch.setitem(plans.REGRESSION_PLANS, "smoke", smoke)
    out = tmp_path / "regression"
    assert E.main(["regression", "--plan", "smoke", "--out", str(out), "--no-progress"]) == 0
    loaded = E.load_mnist_results(out)
    assert loaded["plan"] is smoke and loaded["provenance"]["task"] == "faces"
    tuning = loaded["tuning"].set_index("strength")
    # lowest validation MSE wins: a decay of 10 shrinks every weight (not a useful network)
    assert tuning["best"].sum() == 1
    assert tuning.loc[tuning["best"]].index[0] == tuning["val_loss"].idxmin()
    summary = json.loads((out / "summary.json").read_text())
    entry = summary["tables"]["fcn_regression"]["entries"]["30"]["MGS"]
    runs = loaded["fcn_regression"]
    mgs = runs[(runs["regulariser"] == "mgs_trace") & (runs["target_noise"] == 30.0)]
    table = E.summarise(mgs, ["regulariser"], metric="test_loss", best="min")
    assert entry["final"] == pytest.approx(E.FacesSpec.PIXEL_MSE * table["final"].iloc[0],
                                           abs=0.01)  # fmt: skip
    assert entry["max"] <= entry["final"] + 1e-9 or entry["runs"] == 0
    assert "squared pixels" in summary["unit"]
