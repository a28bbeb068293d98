"""The benchmark command writes its table; neural-tangents agrees with mgs_kernel.

The agreement test runs neural-tangents 0.6.5 for real, in its own pinned environment
(``.nt-env``, created from ``requirements-nt.txt`` on first use): it cannot import next to
modern JAX.
"""

import json
from concurrent.futures import ThreadPoolExecutor

import jax
import numpy as np
import pytest

from mgs_teach import bench, mgs_kernel
from mgs_teach.models import functional


def test_bench_command_writes_the_table(tmp_path, capsys):
    out = tmp_path / "bench.json"
    bench.main(["--models", "fcn", "--methods", "plain", "structured", "hutchinson_k1",
                "--repeats", "1", "--batch", "8", "--nt", "off", "--json", str(out)])  # fmt: skip
    rows = json.loads(out.read_text())
    assert [r["method"] for r in rows] == ["plain", "structured", "hutchinson_k1"]
    for row in rows:
        assert set(row) == {"model", "method", "device", "seconds_per_step", "ratio_to_plain"}
        assert row["model"] == "fcn" and row["seconds_per_step"] > 0
    assert rows[0]["ratio_to_plain"] == 1.0
    assert "x plain" in capsys.readouterr().out


def test_the_penalty_steps_are_the_training_step(capsys):
    """The benchmark times train.make_step's update: a step with a penalty equals the same
    step built by hand from the same regulariser."""
    import jax
    import jax.numpy as jnp

    from mgs_teach import train as T
    from mgs_teach.penalties import regulariser

    apply_fn, params = functional(bench.MODELS["fcn"]())
    x, y = bench.inputs(8)
    step, init = bench.make_step(apply_fn, "structured", batch=8)
    new = step(init(params), x, y)
    reg = regulariser("mgs_trace", bench.STRENGTH)
    loss = lambda p: (
        T.cross_entropy(apply_fn(p, x), y)  # noqa: E731
        + reg.penalty(apply_fn, p, x, y, T.cross_entropy)
    )
    grads = jax.grad(loss)(params)
    by_hand = jax.tree.map(lambda p, g: p - 0.01 * g, params, grads)
    for a, b in zip(jax.tree.leaves(new.params), jax.tree.leaves(by_hand)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    assert jnp.all(new.diverged_at < 0)


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
    assert record["command"].startswith("python -m mgs_teach.bench training --models")
    assert record["wall_s"] > 0 and record["versions"]["jax"] == jax.__version__


def test_a_training_benchmark_cut_off_keeps_the_rows_it_measured(tmp_path, monkeypatch):
    out, real = tmp_path / "training.json", bench._sequential

    def cut(spec, data, reg, config):  # a time limit strikes at the second penalty
        if reg.name == "mgs_trace":
            raise KeyboardInterrupt
        return real(spec, data, reg, config)

    monkeypatch.setattr(bench, "_sequential", cut)
    with pytest.raises(KeyboardInterrupt):
        bench.main(["training", "--models", "two_circles_mlp", "--runs", "1", "--steps", "0.05",
                    "--json", str(out)])  # fmt: skip
    rows = json.loads(out.read_text())
    assert {(r["penalty"], r["engine"]) for r in rows} == {("none", "sequential"),
                                                           ("none", "batched")}  # fmt: skip
    assert not list(tmp_path.glob("*.tmp"))


def test_the_budget_of_a_plan_follows_from_rates():
    from mgs_teach import experiments as E
    from mgs_teach import plans

    rates = [
        dict(model=m, penalty=p, runs=r, engine="batched", steps_per_s_per_run=1000.0)
        for m in ("fcn", "lenet5")
        for p in ("none", "mgs_trace")
        for r in (8, 40)
    ]
    table = E.budget(plans.CPU, rates, flops=False)
    lenet_tables = table[(table["part"] == "table1")].iloc[0]
    # 5 methods x 4 noise levels x 3 runs x 35 epochs x 93 steps, at 1000 steps per second,
    # with the gradient penalty at 2.6 times the cost of a plain step
    per_method = 12 * 35 * 93
    assert lenet_tables["run_steps"] == 5 * per_method
    assert lenet_tables["seconds"] == pytest.approx(per_method / 1000 * (4 + 2.6))


def test_the_budget_uses_the_trace_method_the_plan_trains_and_counts_its_arithmetic():
    from mgs_teach import experiments as E
    from mgs_teach import plans

    def rates(method):
        return [dict(model="fcn", penalty=p, runs=8, engine="batched", trace_method=method,
                     steps_per_s_per_run=1000.0, peak_flops_per_s=1e12)
                for p in ("none", "mgs_trace")]  # fmt: skip

    plan = plans.PAPER  # the FCN table's penalty uses the exact trace ("auto")
    estimated = E.budget(plan, rates("hutchinson"), flops=False).set_index("part")
    assert np.isnan(estimated.loc["fcn_table", "seconds"])  # an estimate's rate: not this one
    exact = E.budget(plan, rates("auto"), flops=False).set_index("part")
    steps = 10 * 4 * 400 * 93  # runs x noise levels x epochs x steps per epoch
    assert exact.loc["fcn_table", "seconds"] == pytest.approx(steps * (4 + 2.6) / 1000)
    assert np.isnan(exact.loc["table1", "seconds"])  # LeNet-5 was not timed

    table = E.budget(plans.QUICK, rates("auto"))
    grid = plans.QUICK.grids({})["fcn_table"]
    flops = sum(e.config.total_steps(e.data.n_train) * E.step_flops(e) for e in grid)
    row = table.set_index("part").loc["fcn_table"]
    assert row["flops"] == pytest.approx(flops)
    assert row["floor_s"] == pytest.approx(flops / 1e12)  # the peak measured with the rates
    e = grid[-1]  # the MGS penalty: its step costs more than a plain one
    assert e.regulariser.name == "mgs_trace" and E.step_flops(e) > 2 * E.step_flops(grid[0])
    x, y, *_ = e.data.load(0)  # the count does not depend on the training set's size
    full = bench.step_flops(e.model, (x, y), e.regulariser, e.config)
    assert E.step_flops(e) == pytest.approx(full, rel=0.01)
    floor = E.budget(plans.QUICK, peak=2e12).set_index("part")
    assert floor.loc["fcn_table", "floor_s"] == pytest.approx(row["floor_s"] / 2)
    assert floor["seconds"].isna().all()


def test_the_budget_command_prints_the_floor_without_rates(capsys):
    from mgs_teach import experiments as E

    assert E.main(["budget", "--task", "regression", "--plan", "quick", "--peak-tflops", "1"]) == 0
    out = capsys.readouterr().out
    assert "no measured rate for any part" in out
    assert "at 1.0 TFLOP/s no engine trains it in under" in out
    with pytest.raises(SystemExit):
        E.main(["budget", "--plan", "quick"])  # neither rates nor a peak


def test_the_nt_environment_is_ready_only_once_installed(tmp_path, monkeypatch):
    """Workers that set it up at once install it once, and none uses it half-built."""
    env, installs = tmp_path / "nt", []

    def create(path, with_pip):
        (path / "bin").mkdir(parents=True)
        (path / "bin" / "python").touch()

    def install(cmd, check):
        assert bench.nt_python(env) is None  # not ready while installing
        installs.append(cmd)

    monkeypatch.setattr(bench.venv, "create", create)
    monkeypatch.setattr(bench.subprocess, "run", install)
    assert bench.nt_python(env) is None
    with ThreadPoolExecutor(4) as pool:
        pythons = set(pool.map(lambda _: bench.setup_nt(env), range(4)))
    assert pythons == {env / "bin" / "python"} and len(installs) == 1
    assert bench.nt_python(env) == env / "bin" / "python"
    changed = tmp_path / "requirements-nt.txt"
    changed.write_text(bench.NT_REQUIREMENTS.read_text() + "extra==1\n")
    monkeypatch.setattr(bench, "NT_REQUIREMENTS", changed)
    assert bench.nt_python(env) is None  # other requirements: installed again
    bench.setup_nt(env)
    assert len(installs) == 2 and bench.nt_python(env) == env / "bin" / "python"


@pytest.fixture(scope="module")
def nt_kernels():
    """The kernels of the three models in the neural-tangents environment, one worker for all."""
    python = bench.nt_python() or bench.setup_nt()
    x, y = bench.inputs(8, seed=3)
    nets = {model: functional(make()) for model, make in bench.MODELS.items()}
    params = {model: p for model, (_, p) in nets.items()}
    return x, nets, bench.neural_tangents(params, x, y, python=python, kernel_batch=4,
                                          time_steps=False)  # fmt: skip


@pytest.mark.parametrize("model", ["fcn", "lenet5", "alexnet"])
def test_neural_tangents_agrees_with_mgs_kernel(model, nt_kernels):
    x, nets, results = nt_kernels
    apply_fn, params = nets[model]
    ours = np.asarray(mgs_kernel(apply_fn, params, x[:4]), dtype=np.float64)
    methods = {r["method"]: r for r in results[model]["rows"]}
    assert set(methods) == {"nt_jacobian_contraction", "nt_ntk_vector_products"}
    for method, row in methods.items():
        assert "error" not in row, row.get("error")
        theirs = np.asarray(row["kernel"])
        assert theirs.shape == ours.shape == (40, 40)
        assert np.abs(theirs - ours).max() <= 1e-4 * np.abs(ours).max(), method
    assert "plain_seconds" not in results[model]  # only the kernels were asked for
    assert not any("seconds_per_step" in row for row in methods.values())


class Clock:
    """A fake ``time.perf_counter`` that a fake step advances by set amounts."""

    def __init__(self, durations):
        self.now, self.durations, self.calls = 0.0, list(durations), 0

    def __call__(self):
        return self.now

    def step(self):
        self.now += self.durations[min(self.calls, len(self.durations) - 1)]
        self.calls += 1


@pytest.mark.parametrize("durations, budget, repeats, calls, expected", [
    ([5.0, 3.0, 2.0, 4.0, 6.0], 10.0, 5, 5, 4.0),  # compile, warm-up 3 s, so 3 repeats fit
    ([5.0, 1.0, 1.0], 10.0, 3, 5, 1.0),  # all repeats fit
    ([30.0, 20.0], 10.0, 5, 2, 20.0),  # first call over budget: one timed run, no warm-up
    ([1.0, 8.0, 7.0], 10.0, 5, 3, 7.0),  # a slow warm-up leaves room for one timed run
    ([30.0, 20.0, 1.0, 2.0], None, 2, 4, 1.5),  # no budget: warm-up and every repeat
])  # fmt: skip
def test_median_seconds_fits_repeats_into_the_budget(monkeypatch, durations, budget, repeats,
                                                     calls, expected):  # fmt: skip
    clock = Clock(durations)
    monkeypatch.setattr(bench.time, "perf_counter", clock)
    assert bench.median_seconds(clock.step, repeats, budget) == expected
    assert clock.calls == calls


def test_the_arithmetic_of_a_step_and_the_bound_it_sets():
    from mgs_teach.experiments import DataSpec, ModelSpec
    from mgs_teach.penalties import regulariser
    from mgs_teach.train import Config

    spec = ModelSpec("fcn", d_in=2, d_out=2, depth=2, width=64)
    data = DataSpec("two_circles", 64, n_test=16).load(0)
    config = Config(batch_size=16, epochs=1)
    flops = bench.step_flops(spec, data, regulariser("none"), config)
    # forward and backward of the dense layers: about 6 flops per weight per sample
    weights = 2 * 64 + 64 * 64 + 64 * 2
    assert 6 * weights * 16 <= flops <= 12 * weights * 16
    penalised = bench.step_flops(spec, data, regulariser("mgs_trace", 1e-3), config)
    assert penalised > 2 * flops  # the trace penalty differentiates per output
    assert bench.matmul_peak(n=256, repeats=2) > 0
    rows = [dict(model="m", penalty="none", runs=r, engine=e, steps_per_s_per_run=v,
                 flops_per_step=1e6, peak_flops_per_s=1e10)
            for r, e, v in ((1, "sequential", 500.0), (8, "sequential", 500.0),
                            (1, "batched", 900.0))]  # fmt: skip
    (c,) = bench.ceilings(rows)
    assert c["gflops_per_s"] == pytest.approx(0.5) and c["share_of_peak"] == pytest.approx(0.05)
    assert c["ceiling"] == pytest.approx(20.0)
