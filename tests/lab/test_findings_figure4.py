"""Figure 4's spokes and quantiles on crafted runs whose answers are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mgs_teach.lab import plans
from mgs_teach.lab.findings import figure4 as F

MIDDLE = dict(n_train=3000, label_noise=0.5, batch_size=32, learning_rate=0.1, epochs=30)


def run(reg, seed, acc, status="finished", **change):
    setting = {**MIDDLE, **change}
    key = f"{reg}-" + "-".join(f"{v}" for v in setting.values())
    return pd.DataFrame(dict(key=key, seed=seed, regulariser=reg, step=np.arange(6),
                             test_acc=np.r_[np.zeros(1), np.full(5, acc)], status=status,
                             **setting))  # fmt: skip


def grid():
    frames = []
    for seed in range(4):
        frames += [run("mgs_trace", seed, 0.70 + 0.01 * seed),
                   run("mgs_trace", seed, 0.60 + 0.01 * seed, label_noise=0.8),
                   run("none", seed, 0.50 + 0.01 * seed),
                   run("none", seed, 0.20, label_noise=0.8,
                       status="diverged" if seed == 0 else "finished")]  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def test_each_run_lands_on_its_spoke_with_its_final():
    finals = F.spoke_finals(grid(), MIDDLE)
    assert set(finals["spoke"]) == {"middle", "noise 0.8"}
    mine = finals[(finals["method"] == "MGS") & (finals["spoke"] == "middle")]
    assert sorted(mine["final"].round(6)) == [70.0, 71.0, 72.0, 73.0]
    assert finals["final"].isna().sum() == 1  # the diverged run


def test_quantiles_are_over_the_runs_of_each_spoke():
    q = F.spoke_quantiles(F.spoke_finals(grid(), MIDDLE))
    assert list(q.columns) == ["middle", "noise 0.8"]
    assert q.loc[("MGS", 0.5), "middle"] == pytest.approx(np.median([70, 71, 72, 73]))
    assert q.loc[("MGS", 0.25), "noise 0.8"] == pytest.approx(np.quantile([60, 61, 62, 63], 0.25))
    assert q.loc[("Unregularised", 0.5), "noise 0.8"] == pytest.approx(20.0)


def test_robustness_names_the_weakest_spoke_and_the_winner():
    r = F.robustness(F.spoke_finals(grid(), MIDDLE))
    assert r.loc["MGS", "best_spokes"] == 2 and r.loc["Unregularised", "best_spokes"] == 0
    assert r.loc["MGS", "weakest"] == "noise 0.8" and r.loc["MGS", "rank"] == 1
    assert r.loc["Unregularised", "spread"] == pytest.approx(51.5 - 20.0)


def test_a_run_that_changes_two_settings_is_refused():
    bad = run("none", 0, 0.5, label_noise=0.8, epochs=60)
    with pytest.raises(ValueError, match="more than one setting"):
        F.spoke_finals(bad, MIDDLE)


def test_the_glued_phrases_rank_the_methods_by_their_median_spoke():
    finals = F.spoke_finals(grid(), MIDDLE)
    texts = F.texts(F.robustness(finals), finals)
    assert texts["mgs_rank"] == "1st of 2" and texts["mgs_best"] == "2 of 2"
    assert texts["winners"] == "MGS 2" and texts["diverged"] == "1" and texts["runs"] == "16"
    assert texts["mgs_weakest"] == "noise 0.8 (61.5 %)"


def test_the_middle_of_the_cpu_plan_is_its_figure4_scenario_at_the_plans_batch_and_rate():
    assert F.middle(plans.CPU) == dict(n_train=3000, label_noise=0.5, batch_size=32,
                                       learning_rate=0.1, epochs=30)  # fmt: skip
    assert set(F.middle(plans.CPU)) == set(F.AXIS_NAMES)
