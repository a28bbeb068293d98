"""The benchmark command writes its table; neural-tangents agrees with mgs_kernel.

The agreement test runs neural-tangents 0.6.5 for real, in its own pinned environment
(``.nt-env``, created from ``requirements-nt.txt`` on first use): it cannot import next to
modern JAX.
"""

import json

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


@pytest.fixture(scope="module")
def nt_python():
    return bench.nt_python() or bench.setup_nt()


@pytest.mark.parametrize("model", ["fcn", "lenet5", "alexnet"])
def test_neural_tangents_agrees_with_mgs_kernel(model, nt_python):
    apply_fn, params = functional(bench.MODELS[model]())
    x, y = bench.inputs(8, seed=3)
    result = bench.neural_tangents(model, params, x, y, python=nt_python, kernel_batch=4,
                                   time_steps=False)  # fmt: skip
    ours = np.asarray(mgs_kernel(apply_fn, params, x[:4]), dtype=np.float64)
    methods = {r["method"]: r for r in result["rows"]}
    assert set(methods) == {"nt_jacobian_contraction", "nt_ntk_vector_products"}
    for method, row in methods.items():
        assert "error" not in row, row.get("error")
        theirs = np.asarray(row["kernel"])
        assert theirs.shape == ours.shape == (40, 40)
        assert np.abs(theirs - ours).max() <= 1e-4 * np.abs(ours).max(), method


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
