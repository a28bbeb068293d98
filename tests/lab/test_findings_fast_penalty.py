"""The fast-penalty chapter's findings, on crafted measurements."""

import json

import numpy as np
import pandas as pd
import pytest

from mgs_teach.lab import summaries
from mgs_teach.lab.findings.fast_penalty import fast_penalty_findings, nt_table


def rows(model: str, **ratios: float) -> list[dict]:
    """Benchmark rows of one model: method -> ratio to the plain step (plain: 1 ms)."""
    return [
        {"model": model, "method": m, "seconds_per_step": 1e-3 * r, "ratio_to_plain": r}
        for m, r in {"plain": 1.0, **ratios}.items()
    ]


FAST = rows("fcn", naive=200.0, structured=3.0, hutchinson_k1=1.5, hutchinson_k4=2.5) + rows(
    "lenet5", structured=5.0, hutchinson_k1=2.0, hutchinson_k4=3.0
)
SLOW = rows("fcn", naive=50.0, structured=8.0, hutchinson_k1=2.0) + rows(
    "lenet5", structured=50.0, hutchinson_k1=60.0
)
NT = rows("fcn", structured=3.0) + [
    {"model": "fcn", "method": "nt_jacobian_contraction", "seconds_per_step": 0.06},
    {"model": "fcn", "method": "nt_ntk_vector_products", "seconds_per_step": 0.4},
    {"model": "fcn", "method": "plain (jax 0.4.38, nt env)", "seconds_per_step": 0.004},
]
PROFILE = pd.DataFrame(
    {
        "fcn": {"forward pass": 0.2, "per-class parameter gradients (jacrev)": 4.0,
                "structured trace, value": 0.5, "structured trace, gradient": 2.0,
                "whole plain step": 1.0, "whole structured step": 8.0},
        "lenet5": {"forward pass": 0.5, "per-class parameter gradients (jacrev)": 3.0,
                   "structured trace, value": 1.5, "structured trace, gradient": 12.0,
                   "whole plain step": 2.0, "whole structured step": 100.0},
    }
)  # fmt: skip


def findings(bench, **kw):
    args = dict(agreement=3e-16, probe_cost={1: 1e-3, 4: 2e-3, 16: 6e-3}, exact_cost=3e-3)
    return fast_penalty_findings(bench, **{**args, **kw})


def test_targets_met_are_reproduced_and_nothing_is_left_to_explain():
    f = findings(FAST, nt_rows=NT, nt_when="a run")
    assert f.target_met() == {"fcn": True, "speedup": True, "lenet5": True, "nt": True}
    t = f.texts()
    assert t["ratio_fcn_structured"] == "3×" and t["ratio_fcn_naive"] == "200×"
    assert t["speedup"] == "67×"
    assert t["agreement"] == "3e-16"
    assert t["not_reproduced"] == "nothing: every claim held"
    assert t["why_not"].startswith("nothing to explain")
    assert "computationally more burdensome" in t["reproduced"]
    assert t["k1_verdict"] == "the cheapest penalty on every model benchmarked"
    assert t["lenet_verdict"].startswith("more plain steps than the FCN's")
    # neural-tangents: its best implementation, over the same run's structured step (3 ms)
    # and over its own environment's plain step (4 ms)
    assert t["nt_fcn_best"] == "nt_jacobian_contraction"
    assert t["nt_fcn_over_structured"] == "20×"
    assert t["nt_fcn_over_own_plain"] == "15×"
    assert t["nt_when"] == "a run"


def test_missed_targets_are_not_reproduced_and_diagnosed_from_the_profile():
    f = findings(SLOW, profile=PROFILE)
    met = f.target_met()
    assert met["fcn"] is False and met["lenet5"] is False and met["speedup"] is False
    assert met["nt"] is None  # not measured: no neural-tangents rows
    t = f.texts()
    assert (
        "the structured step of the FCN, in plain steps: 8× (target at most 4×)"
        in (t["not_reproduced"])
    )
    assert (
        "the structured step of LeNet-5, in plain steps: 50× (target at most 6×)"
        in (t["not_reproduced"])
    )
    assert "neural-tangents" not in t["not_reproduced"] and t["target_nt"] == "not measured"
    # the profile explains the two models' misses; nothing explains the speed-up's
    assert "in the FCN 6×300 step the penalty is 88% of the time" in t["why_not"]
    assert "in the LeNet-5 step the penalty is 98% of the time" in t["why_not"]
    assert "the trace's gradient costs 8× its value" in t["why_not"]
    assert "we do not know yet why the naive step of the FCN" in t["why_not"]
    assert t["k1_verdict"] == "not the cheapest penalty on every model benchmarked"
    assert t["fcn_share"] == "88%" and t["fcn_penalty_ms"] == "7"
    assert t["fcn_value_over_forward"] == "2.5×" and t["fcn_jacrev_over_value"] == "8×"
    assert t["lenet5_grad_over_value"] == "8×"


def test_probe_costs_and_crossover():
    f = findings(FAST)
    t = f.texts()
    assert t["probe_costs"] == "k = 1: 0.33×, k = 4: 0.67×, k = 16: 2×"
    assert f.crossover == 16 and t["probe_crossover"] == "k = 16"
    assert t["probe_verdict"] == (
        "from k = 16 probes on, Hutchinson costs at least as much as the exact trace"
    )
    slow = findings(FAST, probe_cost={1: 4e-3, 4: 5e-3}).texts()
    assert slow["probe_verdict"].startswith("even 1 probe cost at least as much")
    assert t["kmax_verdict"] == "with 16 probes it costs 2× the exact trace, so it has no advantage"
    cheap = findings(FAST, probe_cost={1: 1e-3, 4: 2e-3}).texts()
    assert cheap["probe_crossover"] == "none of the k up to 4"
    assert cheap["probe_verdict"].startswith("every number of probes tried, up to 4, costs less")
    assert cheap["kmax_verdict"].endswith("still less than the exact trace")


SIZES = {100: (1.0, 3.0, 150.0), 300: (2.0, 5.0, 2000.0), 1000: (4.0, 9.0, None)}


def test_scaling_ranges_of_the_naive_and_structured_steps():
    scaling = pd.DataFrame(
        [dict(method=m, width=w, batch=32, seconds=s)
         for w, secs in SIZES.items()
         for m, s in zip(("plain", "structured", "naive"), secs) if s is not None]
    )  # fmt: skip
    t = findings(FAST, scaling=scaling).texts()
    assert t["naive_range"] == "150× to 1,000×"
    assert t["naive_orders"] == "2"
    assert t["structured_range"] == "2.2× to 3×"


def test_nt_table_divides_each_step_by_its_own_environments_plain_step():
    table = nt_table(NT)
    ratio = table["× its environment's plain step"]["fcn"]
    assert ratio["nt_jacobian_contraction"] == pytest.approx(15.0)
    assert ratio["plain (neural-tangents env, jax 0.4.38)"] == pytest.approx(1.0)
    assert ratio["structured"] == pytest.approx(3.0)
    assert table["ms per step"]["fcn"]["nt_ntk_vector_products"] == pytest.approx(400.0)


def test_the_committed_neural_tangents_run_has_its_rows_and_provenance():
    path = summaries.results_dir("bench") / "neural-tangents-cpu.json"
    committed = json.loads(path.read_text())
    provenance = json.loads(path.with_name("neural-tangents-cpu.provenance.json").read_text())
    assert provenance["nt_env_versions"]["neural-tangents"] == "0.6.5"
    assert "--nt on" in provenance["command"]
    f = findings(FAST, nt_rows=committed)
    for model in ("fcn", "lenet5"):
        assert f.nt[model]["method"].startswith("nt_")
        assert np.isfinite(f.nt[model]["over_structured"])
