"""The regression chapter's findings: ranks, overfitting, the noise floor and the paper's claim,
on crafted histories whose answers are known, and on the committed results."""

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from mgs_teach import paper
from mgs_teach.lab import summaries
from mgs_teach.lab.findings import regression as R
from mgs_teach.lab.plans import TABLE_METHODS

PX = 48.0**2  # squared pixels of a 96-pixel image per unit of the scaled MSE


def histories(finals, noise=30.0, shape=None, train=None, seeds=3, steps=10, n_train=600):
    """Crafted runs: each method's test MSE falls to ``finals[method]`` (px²) and stays, or
    follows ``shape[method]`` (a curve of ``steps`` values, px²); its training loss is
    ``train[method]`` (scaled units) or far above the noise floor."""
    shape, train = shape or {}, train or {}
    rows = []
    for method, final in finals.items():
        curve = shape.get(method, np.linspace(3 * final, final, steps // 2).tolist()
                          + [final] * (steps - steps // 2))  # fmt: skip
        for seed in range(seeds):
            for step, value in enumerate(curve):
                rows.append(dict(regulariser=TABLE_METHODS[method], target_noise=noise,
                                 seed=seed, step=step, test_loss=value / PX,
                                 train_loss=train.get(method, 1.0), status="finished",
                                 n_train=n_train, key=f"{method}-{noise}"))  # fmt: skip
    return pd.DataFrame(rows)


def crafted(runs, tuning=None):
    plan = SimpleNamespace(name="crafted", tables=(SimpleNamespace(name="table2"),), mse_unit=PX)
    return {"plan": plan, "table2": runs, "tuning": tuning}


FINALS = {"Unregularised": 10.0, "Dropout": 11.0, "MGS": 12.0, "Weight": 13.0, "Loss grad.": 14.0}


def test_a_table_where_mgs_ranks_third_says_third():
    found = R.findings(crafted(histories(FINALS)))
    assert [e.rank() for e in found.ranks] == [3]
    texts = found.texts()
    assert texts["mgs_rank"] == "3rd of 5 at 1 of 1 entry"
    assert texts["mgs_best"] == "0 of 1"
    assert texts["best_methods"] == "Unregularised at 1 entry"
    assert texts["table2_top"] == "MGS 12.0 against 10.0–14.0"
    assert found.ranks_frame()["MGS rank"].tolist() == ["3rd of 5"]


def test_ties_share_a_rank_and_mgs_first_is_first():
    found = R.findings(crafted(histories({**FINALS, "MGS": 9.0, "Dropout": 10.0})))
    assert found.texts()["mgs_rank"] == "1st of 5 at 1 of 1 entry"
    assert R.EntryRank("t", 0.0, ("A", "MGS", "B"), (1.0, 1.0, 2.0)).rank() == 1


def test_a_test_mse_that_rises_after_its_lowest_point_is_overfitting():
    u_shape = [30.0, 20.0, 10.0, 12.0, 14.0, 16.0, 18.0, 20.0, 20.0, 20.0]
    found = R.findings(crafted(histories(FINALS, shape={"Unregularised": u_shape})))
    curves = {c.method: c for c in found.curves}
    assert curves["Unregularised"].overfits
    assert curves["Unregularised"].lowest == pytest.approx(10.0)
    assert curves["Unregularised"].rise == pytest.approx(1.0)
    assert not any(c.overfits for m, c in curves.items() if m != "Unregularised")
    texts = found.texts()
    assert texts["overfit"].startswith("Unregularised (LeNet-5, noise 30) overfit")
    assert "not known yet" in texts["diagnosis"]


def test_a_falling_test_mse_is_not_overfitting():
    found = R.findings(crafted(histories(FINALS)))
    assert not any(c.overfits for c in found.curves)
    assert all(c.rise == 0 for c in found.curves)
    texts = found.texts()
    assert texts["overfit"].startswith("no method overfits")
    assert texts["diagnosis"].startswith("In this stand-in no method overfits or diverges")


def test_a_training_loss_below_the_noise_floor_fits_the_noise():
    floor = (30 / 48) ** 2
    train = {m: floor * 1.01 for m in FINALS} | {"Unregularised": floor * 0.8}
    found = R.findings(crafted(histories(FINALS, train=train)))
    below = {f.method: f.below for f in found.floors}
    assert below == {m: m == "Unregularised" for m in FINALS}
    assert found.floors[0].floor == pytest.approx(floor)
    # two standard errors of the sample variance of 600 x 30 x 3 Gaussian draws
    assert found.floors[0].tolerance == pytest.approx(2 * floor * np.sqrt(2 / 54_000))
    assert (
        found.texts()["floor_verdict"]
        == "below the floor for Unregularised (LeNet-5): they fit the noise"
    )
    # a loss within the sampling error of the floor is not below it
    near = R.noise_floor(histories(FINALS, train={m: floor * 0.999 for m in FINALS}), 30.0)
    assert not any(f.below for f in near)


def test_the_rule_recovers_the_papers_claim_from_its_own_numbers():
    for name, methods in R.PAPER_SATISFACTORY.items():
        assert R.satisfactory(paper.frame(name)) == methods
    # five methods within 1.5 times the best: the claim does not hold; two of them: it does
    found = R.findings(crafted(histories(FINALS)))
    assert found.texts()["claim"] == "does not hold"
    assert found.texts()["claim_ours"] == "all five methods on LeNet-5"
    assert found.texts()["rule_here"] == "separates no method from the others here"
    apart = {"Unregularised": 60.0, "Dropout": 15.0, "Weight": 90.0, "Loss grad.": 200.0,
             "MGS": 14.0}  # fmt: skip
    found = R.findings(crafted(histories(apart)))
    assert found.texts()["claim"] == "holds"
    assert found.texts()["claim_ours"] == "Dropout and MGS on LeNet-5"


def test_the_tuners_choices_say_which_is_the_smallest_candidate():
    tuning = pd.DataFrame(dict(model="lenet5", regulariser=["mgs_trace"] * 3 + ["dropout"] * 3,
                               strength=[1e-6, 1e-5, 1e-4, 0.1, 0.3, 0.5],
                               val_loss=[1.0, 2.0, 3.0, 2.0, 1.0, 3.0],
                               best=[True, False, False, False, True, False]))  # fmt: skip
    choices = {c.method: c for c in R.tuning_choices(tuning)}
    assert choices["MGS"].smallest and choices["MGS"].rising
    assert not choices["Dropout"].smallest and not choices["Dropout"].rising
    texts = R.findings(crafted(histories(FINALS), tuning)).texts()
    assert texts["smallest"] == "MGS" and texts["mgs_strength"] == "1e-06"


@pytest.fixture(scope="module")
def committed():
    results = summaries.load_mnist_results(summaries.results_dir("regression-cpu-scaled"))
    assert results is not None, "results/regression-cpu-scaled is part of the repository"
    return results


def test_the_committed_findings_agree_with_the_summary(committed):
    found = R.findings(committed)
    summary = json.loads(
        (summaries.results_dir("regression-cpu-scaled") / "summary.json").read_text()
    )
    for e in found.ranks:
        entries = summary["tables"][e.table]["entries"][f"{e.noise:g}"]
        mgs = entries["MGS"]["final"]
        # MGS's rank from the stored (rounded) finals, unless a rounding tie decides it
        assert sum(v["final"] < mgs for v in entries.values()) + 1 == e.rank()
    cells = [v for t in summary["tables"].values() for row in t["entries"].values()
             for v in row.values()]  # fmt: skip
    assert found.diverged == sum(v["diverged"] for v in cells)
    assert found.runs == 2 * 4 * 5 * 3
    assert [c.paper_rule for c in found.claims] == [R.PAPER_SATISFACTORY[c.table]
                                                    for c in found.claims]  # fmt: skip
    texts = found.texts()
    assert all(isinstance(v, str) and v for v in texts.values())
    ranks = [e.rank() for e in found.ranks]
    assert texts["mgs_best"] == f"{ranks.count(1)} of 8"
