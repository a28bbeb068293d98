"""The training benchmark writes its rows and keeps them when cut off; the arithmetic of a
step bounds what any engine gains; a plan's budget follows from the measured rates."""

import json

import jax
import numpy as np
import pytest

from mgs_teach.config import Config
from mgs_teach.lab import bench, bench_training, cli, plans
from mgs_teach.lab import budget as B
from mgs_teach.lab.specs import DataSpec, ModelSpec
from mgs_teach.penalties import regulariser


def test_the_training_benchmark_writes_its_rows(tmp_path, capsys):
    out = tmp_path / "training.json"
    rows = bench.main(["training", "--models", "two_circles_mlp", "--runs", "1", "2",
                       "--steps", "0.05", "--json", str(out)])  # fmt: skip
    assert json.loads(out.read_text()) == json.loads(json.dumps(rows))
    assert {(r["engine"], r["runs"]) for r in rows} == {
        ("sequential", 1),
        ("sequential", 2),
        ("batched", 1),
        ("batched", 2),
    }
    for row in rows:
        assert {"model", "penalty", "runs", "engine", "steps_per_s_per_run"} <= set(row)
        assert row["steps_per_s_per_run"] > 0 and row["penalty"] in ("none", "mgs_trace")
    text = capsys.readouterr().out
    assert "engine / sequential" in text and text.count("x\n") >= 4
    record = json.loads((tmp_path / "training.provenance.json").read_text())
    assert record["command"].startswith("python -m mgs_teach.lab bench training --models")
    assert record["wall_s"] > 0 and record["versions"]["jax"] == jax.__version__


def test_a_training_benchmark_cut_off_keeps_the_rows_it_measured(tmp_path, monkeypatch):
    out, real = tmp_path / "training.json", bench_training._sequential

    def cut(spec, data, reg, config):  # a time limit strikes at the second penalty
        if reg.name == "mgs_trace":
            raise KeyboardInterrupt
        return real(spec, data, reg, config)

    monkeypatch.setattr(bench_training, "_sequential", cut)
    with pytest.raises(KeyboardInterrupt):
        bench.main(["training", "--models", "two_circles_mlp", "--runs", "1", "--steps", "0.05",
                    "--json", str(out)])  # fmt: skip
    rows = json.loads(out.read_text())
    assert {(r["penalty"], r["engine"]) for r in rows} == {("none", "sequential"),
                                                           ("none", "batched")}  # fmt: skip
    assert not list(tmp_path.glob("*.tmp"))


def test_the_budget_of_a_plan_follows_from_rates():
    rates = [
        dict(model=m, penalty=p, runs=r, engine="batched", steps_per_s_per_run=1000.0)
        for m in ("fcn", "lenet5")
        for p in ("none", "mgs_trace")
        for r in (8, 40)
    ]
    table = B.budget(plans.CPU, rates, flops=False)
    lenet_tables = table[(table["part"] == "table1")].iloc[0]
    # 5 methods x 4 noise levels x 3 runs x 35 epochs x 93 steps, at 1000 steps per second,
    # with the gradient penalty at 2.6 times the cost of a plain step
    per_method = 12 * 35 * 93
    assert lenet_tables["run_steps"] == 5 * per_method
    assert lenet_tables["seconds"] == pytest.approx(per_method / 1000 * (4 + 2.6))


def test_the_budget_uses_the_trace_method_the_plan_trains_and_counts_its_arithmetic():
    def rates(method):
        return [dict(model="fcn", penalty=p, runs=8, engine="batched", trace_method=method,
                     steps_per_s_per_run=1000.0, peak_flops_per_s=1e12)
                for p in ("none", "mgs_trace")]  # fmt: skip

    plan = plans.PAPER  # the FCN table's penalty uses the exact trace ("auto")
    estimated = B.budget(plan, rates("hutchinson"), flops=False).set_index("part")
    assert np.isnan(estimated.loc["fcn_table", "seconds"])  # an estimate's rate: not this one
    exact = B.budget(plan, rates("auto"), flops=False).set_index("part")
    steps = 10 * 4 * 400 * 93  # runs x noise levels x epochs x steps per epoch
    assert exact.loc["fcn_table", "seconds"] == pytest.approx(steps * (4 + 2.6) / 1000)
    assert np.isnan(exact.loc["table1", "seconds"])  # LeNet-5 was not timed

    table = B.budget(plans.QUICK, rates("auto"))
    grid = plans.QUICK.grids({})["fcn_table"]
    flops = sum(e.config.total_steps(e.data.n_train) * B.step_flops(e) for e in grid)
    row = table.set_index("part").loc["fcn_table"]
    assert row["flops"] == pytest.approx(flops)
    assert row["floor_s"] == pytest.approx(flops / 1e12)  # the peak measured with the rates
    e = grid[-1]  # the MGS penalty: its step costs more than a plain one
    assert e.regulariser.name == "mgs_trace" and B.step_flops(e) > 2 * B.step_flops(grid[0])
    x, y, *_ = e.data.load(0)  # the count does not depend on the training set's size
    full = bench_training.step_flops(e.model, (x, y), e.regulariser, e.config)
    assert B.step_flops(e) == pytest.approx(full, rel=0.01)
    floor = B.budget(plans.QUICK, peak=2e12).set_index("part")
    assert floor.loc["fcn_table", "floor_s"] == pytest.approx(row["floor_s"] / 2)
    assert floor["seconds"].isna().all()


def test_the_budget_command_prints_the_floor_without_rates(capsys):
    argv = ["budget", "--task", "regression", "--plan", "quick", "--peak-tflops", "1"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "no measured rate for any part" in out
    assert "at 1.0 TFLOP/s no engine trains it in under" in out
    with pytest.raises(SystemExit):
        cli.main(["budget", "--plan", "quick"])  # neither rates nor a peak


def test_the_arithmetic_of_a_step_and_the_bound_it_sets():
    spec = ModelSpec("fcn", d_in=2, d_out=2, depth=2, width=64)
    data = DataSpec("two_circles", 64, n_test=16).load(0)
    config = Config(batch_size=16, epochs=1)
    flops = bench_training.step_flops(spec, data, regulariser("none"), config)
    # forward and backward of the dense layers: about 6 flops per weight per sample
    weights = 2 * 64 + 64 * 64 + 64 * 2
    assert 6 * weights * 16 <= flops <= 12 * weights * 16
    penalised = bench_training.step_flops(spec, data, regulariser("mgs_trace", 1e-3), config)
    assert penalised > 2 * flops  # the trace penalty differentiates per output
    assert bench_training.matmul_peak(n=256, repeats=2) > 0
    rows = [dict(model="m", penalty="none", runs=r, engine=e, steps_per_s_per_run=v,
                 flops_per_step=1e6, peak_flops_per_s=1e10)
            for r, e, v in ((1, "sequential", 500.0), (8, "sequential", 500.0),
                            (1, "batched", 900.0))]  # fmt: skip
    (c,) = bench_training.ceilings(rows)
    assert c["gflops_per_s"] == pytest.approx(0.5) and c["share_of_peak"] == pytest.approx(0.05)
    assert c["ceiling"] == pytest.approx(20.0)
