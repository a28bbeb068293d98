"""``python -m mgs_teach.lab``: plans run resumably, with provenance and a summary; a time
limit is a deadline that stops training at a chunk boundary, and the same command resumes."""

import dataclasses
import json
import shutil
import subprocess
import sys
import time
import types

import pytest

from mgs_teach.lab import cli, engine, plans, summaries
from mgs_teach.lab.aggregate import summarise
from mgs_teach.lab.plan import Figure3, Figure4, MNISTPlan, Table, Tuning
from mgs_teach.lab.specs import FacesSpec, ModelSpec
from mgs_teach.lab.summaries import load_mnist_results, load_part_results
from mgs_teach.records import TrainingDiverged

from .helpers import SMOKE, smoke_argv


def expiring_clock(monkeypatch):
    """The command line's clock, stopped at 0 until ``expire()``; then past any deadline."""
    now = {"t": 0.0}
    clock = types.SimpleNamespace(time=time.time, strftime=time.strftime,
                                  localtime=time.localtime, monotonic=lambda: now["t"])  # fmt: skip
    monkeypatch.setattr(cli, "time", clock)
    return lambda: now.update(t=float("inf"))


def test_cli_runs_a_plan_resumably_and_writes_provenance_and_summary(smoke, smoke_mnist,
                                                                      tmp_path):  # fmt: skip
    assert load_mnist_results(tmp_path / "empty") is None  # nothing yet: "pending"
    provenance = json.loads((smoke_mnist / "provenance.json").read_text())
    assert provenance["command"] == (
        f"python -m mgs_teach.lab mnist --plan smoke --out {smoke_mnist} --no-progress"
    )
    assert provenance["status"] == "finished" and provenance["wall_s"] >= 0
    assert provenance["plan"] == "smoke" and provenance["mnist_source"] == "offline"
    assert (
        provenance["git_commit"]
        and provenance["device"]
        and provenance["end"] >= provenance["start"]
    )
    assert set(provenance["versions"]) == {"python", "jax", "jaxlib", "flax", "optax", "numpy"}
    summary = json.loads((smoke_mnist / "summary.json").read_text())
    entry = summary["tables"]["fcn_table"]["entries"]["60%"]["MGS"]
    loaded = load_mnist_results(smoke_mnist)  # reads back without training
    table = summarise(loaded["fcn_table"], ["label_noise", "regulariser"]).set_index(
        ["label_noise", "regulariser"])  # fmt: skip
    assert entry["final"] == pytest.approx(100 * table.loc[(0.6, "mgs_trace"), "final"], abs=0.01)
    assert entry["runs"] == 2 and entry["sd"] is not None
    assert set(loaded) >= {"best", "tuning", "fcn_table", "provenance", "plan"}

    out = tmp_path / "mnist"
    shutil.copytree(smoke_mnist, out)  # copies keep their times
    csvs = sorted(out.rglob("seed*.csv"))
    stamps = [p.stat().st_mtime_ns for p in csvs]
    assert cli.main(smoke_argv(out)) == 0
    assert [p.stat().st_mtime_ns for p in csvs] == stamps  # resumed: nothing trained twice
    provenance = json.loads((out / "provenance.json").read_text())
    (out / "provenance.json").write_text(json.dumps({**provenance, "status": "running"}))
    assert load_mnist_results(out) is None  # an unfinished command is still pending


def test_a_time_limit_stops_cleanly_and_the_next_call_continues(smoke, tmp_path, monkeypatch,
                                                                capsys):  # fmt: skip
    """The deadline passes while the second group trains: its runs stop at their next chunk,
    the command says why and exits 3, and the next call finishes the plan."""
    out, expire = tmp_path / "mnist", expiring_clock(monkeypatch)
    real, calls = engine.train_runs, []

    def slow(model, jobs, **kw):
        calls.append(1)
        if len(calls) == 2:
            expire()  # the time limit is reached while this group trains
        return real(model, jobs, **kw)

    monkeypatch.setattr(engine, "train_runs", slow)
    with pytest.warns(TrainingDiverged, match="interrupted"):
        assert cli.main(smoke_argv(out, "--time-limit", "100")) == 3
    assert "stopped (time limit of 100 s reached)" in capsys.readouterr().out
    assert json.loads((out / "provenance.json").read_text())["status"] == "partial"
    assert len(calls) == 2  # nothing trains after the deadline
    monkeypatch.setattr(engine, "train_runs", real)
    assert cli.main(smoke_argv(out)) == 0
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["status"] == "finished"
    assert provenance["total_wall_s"] >= provenance["wall_s"]


def test_the_time_limit_stops_training_at_a_chunk_boundary(smoke, tmp_path, capsys):
    """A deadline, asked before every chunk (no signal: an exception raised in a handler could
    land inside JAX): the first chunk boundary stops the group, and the command says why."""
    out = tmp_path / "mnist"
    with pytest.warns(TrainingDiverged, match="interrupted"):
        assert cli.main(smoke_argv(out, "--time-limit", "0.001")) == 3
    assert "stopped (time limit of 0.001 s reached)" in capsys.readouterr().out
    assert json.loads((out / "provenance.json").read_text())["status"] == "partial"
    assert not list(out.rglob("seed*.csv"))  # stopped before the first chunk
    assert not hasattr(engine, "STOP")  # no global state for whatever runs next
    assert cli.main(smoke_argv(out)) == 0


def test_the_test_bench_keeps_the_tuned_strengths_and_resumes(smoke, smoke_mnist, tmp_path,
                                                              capsys):  # fmt: skip
    tuned, out = tmp_path / "mnist", tmp_path / "bench"
    argv = ["testbench", "--plan", "smoke", "--out", str(out), "--tuned", str(tuned),
            "--no-progress"]  # fmt: skip
    assert cli.main(argv) == 2  # no tuned strengths yet: it says what to run first
    assert "python -m mgs_teach.lab mnist --plan smoke" in capsys.readouterr().err
    assert not out.exists()
    shutil.copytree(smoke_mnist, tuned)  # ``mnist --plan smoke --out tuned`` has run
    best = json.loads((tuned / "best_strengths.json").read_text())
    assert cli.main(argv) == 0
    loaded = load_part_results(out)
    assert loaded["best"] == best and loaded["plan"] is SMOKE
    runs = loaded["testbench"]
    assert set(zip(runs["n_train"], runs["label_noise"])) == {(32, 0.0), (32, 0.6), (64, 0.0),
                                                              (64, 0.6)}  # fmt: skip
    mgs = runs[runs["regulariser"] == "mgs_trace"]
    assert set(mgs["strength"]) == {best["fcn-1x8"]["mgs_trace"]}
    assert runs.groupby("key")["seed"].nunique().eq(2).all()
    summary = json.loads((out / "summary.json").read_text())
    table = summarise(runs, ["n_train", "label_noise", "regulariser"]).set_index(
        ["n_train", "label_noise", "regulariser"])  # fmt: skip
    entry = summary["entries"]["64"]["60%"]["mgs_trace"]
    assert entry["final"] == pytest.approx(100 * table.loc[(64, 0.6, "mgs_trace"), "final"],
                                           abs=0.01)  # fmt: skip
    assert entry["runs"] + entry["diverged"] == 2
    assert summary["strengths"] == {"none": 0.0, "mgs_trace": best["fcn-1x8"]["mgs_trace"]}
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["status"] == "finished" and provenance["command"].startswith(
        "python -m mgs_teach.lab testbench --plan smoke")  # fmt: skip
    stamps = [p.stat().st_mtime_ns for p in sorted(out.rglob("seed*.csv"))]
    assert cli.main(argv) == 0
    assert [p.stat().st_mtime_ns for p in sorted(out.rglob("seed*.csv"))] == stamps


def test_each_network_is_tuned_just_before_its_first_grid(tmp_path, monkeypatch, capsys):
    """A time limit that stops a plan leaves whole tables, and never a test bench tuned on
    strengths that were not chosen yet."""
    wide = ModelSpec("fcn", depth=1, width=12)
    two = dataclasses.replace(SMOKE, tables=SMOKE.tables + (
        Table("wide_table", wide, (0.6,), n_train=64, epochs=1, runs=1),),
        testbench=dataclasses.replace(SMOKE.testbench, model=wide))  # fmt: skip
    monkeypatch.setitem(plans.PLANS, "smoke", two)
    out, real, calls = tmp_path / "mnist", engine.train_runs, []
    expire = expiring_clock(monkeypatch)

    def spy(model, jobs, **kw):
        calls.append((model.name, "tuning" if jobs[0].data[0].shape[0] == 60 else "grid"))
        if calls[-1] == ("fcn-1x12", "tuning"):
            expire()  # the time limit strikes
        return real(model, jobs, **kw)

    monkeypatch.setattr(engine, "train_runs", spy)
    with pytest.warns(TrainingDiverged, match="interrupted"):
        assert cli.main(smoke_argv(out, "--time-limit", "100")) == 3
    assert list(dict.fromkeys(calls)) == [("fcn-1x8", "tuning"), ("fcn-1x8", "grid"),
                                          ("fcn-1x12", "tuning")]  # fmt: skip
    assert set(json.loads((out / "best_strengths.json").read_text())) == {"fcn-1x8"}
    bench = ["testbench", "--plan", "smoke", "--out", str(tmp_path / "b"), "--tuned", str(out)]
    assert cli.main(bench) == 2  # the test bench's network is not tuned yet
    assert "no strengths for fcn-1x12" in capsys.readouterr().err
    monkeypatch.setattr(engine, "train_runs", real)
    assert cli.main(smoke_argv(out)) == 0
    assert set(json.loads((out / "best_strengths.json").read_text())) == {"fcn-1x8", "fcn-1x12"}


def test_regression_plans_tune_by_validation_mse_and_summarise_in_pixels(tmp_path, monkeypatch):
    smoke = MNISTPlan(
        name="smoke", task="faces", source="procedural", noise="uniform", n_records=3,
        monitor_size=4, batch_size=16, image_size=16, n_test=20,
        tuning=Tuning(n_train=32, n_val=16, label_noise=15.0, epochs=1, runs=1,
                      candidates=(("weight_decay", (1e-4, 10.0)),)),
        tables=(Table("fcn_regression", ModelSpec("fcn", d_in=256, d_out=30, depth=1, width=8),
                      (0.0, 30.0), n_train=32, epochs=2, runs=2),),
        figure3=None, figure4=None)  # fmt: skip
    monkeypatch.setitem(plans.REGRESSION_PLANS, "smoke", smoke)
    out = tmp_path / "regression"
    assert cli.main(["regression", "--plan", "smoke", "--out", str(out), "--no-progress"]) == 0
    loaded = load_mnist_results(out)
    assert loaded["plan"] is smoke and loaded["provenance"]["task"] == "faces"
    tuning = loaded["tuning"].set_index("strength")
    # lowest validation MSE wins: a decay of 10 shrinks every weight (not a useful network)
    assert tuning["best"].sum() == 1
    assert tuning.loc[tuning["best"]].index[0] == tuning["val_loss"].idxmin()
    summary = json.loads((out / "summary.json").read_text())
    entry = summary["tables"]["fcn_regression"]["entries"]["30"]["MGS"]
    runs = loaded["fcn_regression"]
    mgs = runs[(runs["regulariser"] == "mgs_trace") & (runs["target_noise"] == 30.0)]
    table = summarise(mgs, ["regulariser"], metric="test_loss", best="min")
    assert entry["final"] == pytest.approx(FacesSpec.PIXEL_MSE * table["final"].iloc[0],
                                           abs=0.01)  # fmt: skip
    assert entry["max"] <= entry["final"] + 1e-9 or entry["runs"] == 0
    assert "squared pixels" in summary["unit"]


def test_a_plan_without_a_test_bench_is_refused_by_the_command(monkeypatch, capsys):
    monkeypatch.setitem(plans.PLANS, "smoke", dataclasses.replace(SMOKE, testbench=None))
    with pytest.raises(SystemExit):
        cli.main(["testbench", "--plan", "smoke"])
    assert "plan smoke has no test bench" in capsys.readouterr().err


def test_the_lab_runs_as_a_module():
    done = subprocess.run([sys.executable, "-m", "mgs_teach.lab", "--help"], capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0
    for command in ("mnist", "regression", "testbench", "budget", "bench"):
        assert command in done.stdout


def test_a_part_of_its_own_trains_with_the_tuned_strengths_and_stays_out_of_mnist(
        smoke_mnist, tmp_path, monkeypatch, capsys):  # fmt: skip
    """``part NAME`` trains one of a plan's own grids (Figure 3, Figure 4, a long table) with
    the strengths its ``mnist`` command tuned; the ``mnist`` command leaves those grids out."""
    model = ModelSpec("fcn", depth=1, width=8)
    plan = dataclasses.replace(
        SMOKE, figure3=Figure3(model, 0.6, n_train=64, epochs=1, runs=2,
                               regularisers=("none", "weight_decay", "mgs_trace")),
        figure4=Figure4(model, ("none", "mgs_trace"), n_train=64, label_noise=0.5, epochs=1,
                        changes=(("batch_size", (16,)), ("epochs", (2,))), runs=1),
        long_table=Table("long_fcn", model, (0.6,), n_train=64, epochs=2, runs=1),
        own=("figure3", "long_fcn", "figure4"))  # fmt: skip
    monkeypatch.setitem(plans.PLANS, "smoke", plan)
    assert set(plan.grids({})) == {"fcn_table"}  # the mnist command trains none of them
    assert load_mnist_results(smoke_mnist)["plan"] is plan  # and still reads its results
    with pytest.raises(SystemExit):
        cli.main(["part", "figure5", "--plan", "smoke"])
    assert "its own parts: figure3, long_fcn, figure4" in capsys.readouterr().err
    best = json.loads((smoke_mnist / "best_strengths.json").read_text())
    for name in ("figure3", "long_fcn", "figure4"):
        out = tmp_path / name
        argv = ["part", name, "--plan", "smoke", "--out", str(out), "--tuned", str(smoke_mnist),
                "--no-progress"]  # fmt: skip
        assert cli.main(argv) == 0
        loaded = load_part_results(out)
        assert loaded["part"] == name and loaded["provenance"]["part"] == name
        assert loaded["best"] == best
        runs = loaded[name]
        assert runs.groupby(["key", "seed"]).ngroups == len(plan.part(name, {})) * \
            plan.runs_of(name)  # fmt: skip
        mgs = runs[runs["regulariser"] == "mgs_trace"]
        assert set(mgs["strength"]) == {best["fcn-1x8"]["mgs_trace"]}
        summary = json.loads((out / "summary.json").read_text())
        assert summary["part"] == name and summary["strengths"]["mgs_trace"] == set(
            mgs["strength"]).pop()  # fmt: skip
        assert len(summaries.part_summary(name, runs, plan, best)["entries"]) >= 1
    summary = json.loads((tmp_path / "figure3" / "summary.json").read_text())
    assert summary["strengths"]["weight_decay"] == 1e-3  # untuned: its middle candidate
    assert summary["strengths"]["none"] == 0.0
    figure4 = load_part_results(tmp_path / "figure4")["figure4"]
    assert set(figure4["batch_size"]) == {32, 16} and set(figure4["epochs"]) == {1, 2}
