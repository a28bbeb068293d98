"""The regularisation chapter's findings, on crafted per-seed tables."""

import numpy as np
import pandas as pd
import pytest

from mgs_teach.lab.findings.regularisation import (
    final_table,
    noise_entropy,
    regularisation_findings,
)

FLOOR = noise_entropy(0.3)  # 0.611


def per_seed(rows: dict[str, list[tuple[float, float, float]]]) -> pd.DataFrame:
    """regulariser -> per seed (final tr K, train loss, test acc); log det K follows tr K."""
    records = [
        {"regulariser": name, "seed": s, "final tr K": t, "final log det K": np.log(t),
         "train loss": loss, "test acc": acc}
        for name, runs in rows.items() for s, (t, loss, acc) in enumerate(runs)
    ]  # fmt: skip
    return pd.DataFrame(records).set_index(["regulariser", "seed"])


def peaks(table: pd.DataFrame, extra: float = 0.05) -> pd.Series:
    return table["test acc"] + extra


# the paper's picture: every regulariser has a smaller tr K and a higher accuracy than none
# (six methods: with four, even a perfect rank correlation is within two chance levels)
PAPER_LIKE = per_seed({
    "none": [(1000, 0.2, 0.70), (1100, 0.1, 0.72), (900, 0.2, 0.71)],
    "weight_decay": [(500, 0.65, 0.80), (520, 0.65, 0.81), (480, 0.65, 0.79)],
    "mgs_trace": [(100, 0.7, 0.90), (110, 0.65, 0.91), (90, 0.7, 0.80)],
    "dropout": [(300, 0.62, 0.85), (310, 0.62, 0.84), (290, 0.62, 0.86)],
    "label_smoothing": [(700, 0.65, 0.75), (710, 0.65, 0.76), (690, 0.65, 0.74)],
    "mixup": [(400, 0.65, 0.83), (410, 0.65, 0.82), (390, 0.65, 0.84)],
})  # fmt: skip


def test_noise_entropy():
    assert noise_entropy(0.3) == pytest.approx(0.6109, abs=1e-4)
    assert noise_entropy(0.0) == 0.0


def test_paper_like_runs_reproduce_every_claim():
    f = regularisation_findings(PAPER_LIKE, peaks(PAPER_LIKE), 0.3)
    assert f.n_regularisers == 6 and f.n_seeds == 3
    assert f.rho["tr K"] == pytest.approx(-1.0)
    assert f.rho["log det K"] == pytest.approx(-1.0)
    assert set(f.lower_trace) == {"weight_decay", "mgs_trace", "dropout", "label_smoothing",
                                  "mixup"}  # fmt: skip
    assert f.higher_trace == () and f.worse == ()
    assert f.penalty_helps and f.penalty_wins == 3
    assert all(ok for ok, _ in f.claims())
    t = f.texts()
    assert t["rho_trace"] == "-1.00"
    assert t["sign_trace"].startswith("-1.00, the paper's negative sign")
    assert t["not_reproduced"] == "nothing: every claim checked held"
    assert t["why_not"].startswith("nothing to explain")
    assert "5 of 5 regularisers end with a lower final tr K" in t["reproduced"]
    assert t["penalty_wins"] == "3 of 3"
    assert t["penalty_verdict"].startswith("lower tr K and higher test accuracy")
    # none memorises in every seed; the penalty, at 0.65 to 0.7, in none
    assert t["memorising"] == "none (unregularised)"
    assert t["baseline_side"] == "below the noise floor (3 of 3 seeds end below it)"
    assert t["penalty_side"] == "above the noise floor (0 of 3 seeds end below it)"
    assert t["baseline_peak"] == "0.760"


def test_opposite_sign_and_a_failing_penalty_are_said_and_diagnosed():
    # the smaller the trace, the lower the accuracy; the penalty still memorises; adam ends
    # with a larger trace than none
    table = per_seed({
        "none": [(1000, 0.2, 0.80), (1000, 0.2, 0.80)],
        "adam": [(2000, 0.1, 0.85), (2100, 0.1, 0.86)],
        "weight_decay": [(500, 0.3, 0.70), (510, 0.3, 0.71)],
        "mgs_trace": [(100, 0.4, 0.60), (110, 0.5, 0.62)],
    })  # fmt: skip
    f = regularisation_findings(table, peaks(table), 0.3)
    assert f.rho["tr K"] == pytest.approx(1.0)
    assert f.higher_trace == ("adam",)
    assert set(f.worse) == {"weight_decay", "mgs_trace"}
    assert not f.penalty_helps and f.penalty_wins == 0
    t = f.texts()
    assert t["sign_trace"].startswith("+1.00, the opposite of the paper's sign")
    assert "Spearman correlation of the final tr K" in t["not_reproduced"]
    assert "2 of 3 regularisers" in t["not_reproduced"]
    assert "the higher in 0 of 2 seeds" in t["not_reproduced"]
    assert t["reproduced"] == "none of the claims checked here"
    assert "adam ends with a higher tr K" in t["why_not"]
    assert "(1 of 1 change the optimiser, not the loss)" in t["why_not"]
    assert "they still memorise the flips" in t["why_not"]
    assert t["penalty_verdict"] == (
        "the paper's claim does not hold here: the trace penalty ends with a lower tr K and a "
        "lower test accuracy"
    )
    assert t["memorising"] == "all 4 regularisers, no regularisation included"


def test_a_weak_correlation_is_within_chance():
    table = per_seed({
        "none": [(1000, 0.2, 0.70)] * 2,
        "a": [(900, 0.2, 0.72)] * 2,
        "b": [(800, 0.2, 0.69)] * 2,
        "mgs_trace": [(700, 0.2, 0.71)] * 2,
    })  # fmt: skip
    f = regularisation_findings(table, peaks(table), 0.3)
    assert abs(f.rho["tr K"]) < 2 * f.chance
    assert "within two chance levels" in f.texts()["sign_trace"]
    # identical seeds: every standard error is 0, so any lower mean is lower beyond them
    assert set(f.lower_trace) == {"a", "b", "mgs_trace"}


def test_a_trace_lower_within_the_standard_errors_is_named_in_the_diagnosis():
    table = per_seed({
        "none": [(1000, 0.2, 0.70), (1200, 0.2, 0.70)],
        "a": [(950, 0.2, 0.72), (1150, 0.2, 0.72)],
        "mgs_trace": [(100, 0.7, 0.80), (110, 0.7, 0.80)],
    })  # fmt: skip
    t = regularisation_findings(table, peaks(table), 0.3).texts()
    assert t["lower_trace"] == "mgs_trace"
    assert "1 of 2 regularisers end with a lower final tr K" in t["not_reproduced"]
    assert "a ends with a lower tr K than no regularisation, but by no more than" in t["why_not"]
    assert t["memorising"] == "none (unregularised), a"


def test_tanh_runs_are_judged_against_the_noise_floor():
    calm = pd.DataFrame({"train loss": [0.65, 0.64, 0.63], "test acc": [0.9, 0.9, 0.9],
                         "peak test acc": [0.91, 0.9, 0.92]})  # fmt: skip
    t = regularisation_findings(PAPER_LIKE, peaks(PAPER_LIKE), 0.3, tanh=calm).texts()
    assert t["tanh_runs"] == "3"
    assert t["tanh_verdict"].startswith("above the noise floor 0.611 (0 of 3 runs below it)")
    assert "does not memorise" in t["tanh_verdict"]
    wild = calm.assign(**{"train loss": [0.1, 0.7, 0.2]})
    t = regularisation_findings(PAPER_LIKE, peaks(PAPER_LIKE), 0.3, tanh=wild).texts()
    assert t["tanh_verdict"].startswith("below the noise floor 0.611: it memorises")
    assert "in 2 of 3 runs" in t["tanh_verdict"]
    assert "tanh_runs" not in regularisation_findings(PAPER_LIKE, peaks(PAPER_LIKE), 0.3).texts()


def test_final_table_sorts_by_trace_and_formats_mean_and_sd():
    strengths = {"none": 0.0, "weight_decay": 0.01, "mgs_trace": 1e-4, "dropout": 0.1,
                 "label_smoothing": 0.1, "mixup": 0.2}  # fmt: skip
    table = final_table(PAPER_LIKE, strengths)
    assert list(table["regulariser"]) == ["mgs_trace", "dropout", "mixup", "weight_decay",
                                          "label_smoothing", "none"]  # fmt: skip
    assert table.loc[0, "final tr K"] == "100 ± 10"
    assert table.loc[0, "strength"] == "0.0001"


def test_a_negative_correlation_within_chance_is_inconclusive_not_reproduced():
    table = per_seed({
        "none": [(1000, 0.2, 0.70)] * 2,
        "a": [(900, 0.2, 0.69)] * 2,
        "b": [(800, 0.2, 0.72)] * 2,
        "mgs_trace": [(700, 0.2, 0.71)] * 2,
    })  # fmt: skip
    f = regularisation_findings(table, peaks(table), 0.3)
    assert f.rho["tr K"] == pytest.approx(-0.6) and 0.6 < 2 * f.chance
    assert not f.sign_held("tr K")
    t = f.texts()
    assert t["sign_trace"] == "-0.60, the paper's negative sign, within two chance levels of zero"
    assert "Spearman correlation of the final tr K" in t["not_reproduced"]
    assert "Spearman correlation" not in t["reproduced"]
    assert "the tr K correlation is -0.60, within two chance levels (±1.15) of zero, so " \
        "inconclusive" in t["why_not"]  # fmt: skip


def test_lower_trace_uses_the_standard_error_of_the_difference():
    # none: mean 1100, SE 100; a: 800 ± 100, b: 850 ± 100. The SE of a difference is
    # hypot(100, 100) = 141: a is 300 lower (> 283), b 250 (< 283). Their ±2 SE intervals
    # overlap with none's in both cases.
    table = per_seed({
        "none": [(1000, 0.2, 0.70), (1200, 0.2, 0.70)],
        "a": [(700, 0.2, 0.72), (900, 0.2, 0.72)],
        "b": [(750, 0.2, 0.72), (950, 0.2, 0.72)],
        "mgs_trace": [(100, 0.7, 0.80), (110, 0.7, 0.80)],
    })  # fmt: skip
    f = regularisation_findings(table, peaks(table), 0.3)
    assert f.trace["a"] == pytest.approx((800, 100))
    assert f.trace["none"] == pytest.approx((1100, 100))
    assert set(f.lower_trace) == {"a", "mgs_trace"}
    t = f.texts()
    assert "2 of 3 regularisers end with a lower final tr K than no regularisation, by more " \
        "than two standard errors of the difference" in t["not_reproduced"]  # fmt: skip
    assert "b ends with a lower tr K than no regularisation, but by no more than two standard " \
        "errors of the difference" in t["why_not"]  # fmt: skip


def test_penalty_wins_pairs_seeds_by_label():
    def frame(rows):  # (regulariser, seed, test acc); the other columns do not matter here
        records = [
            {"regulariser": r, "seed": s, "final tr K": 1000.0 if r == "none" else 100.0,
             "train loss": 0.2, "test acc": a} for r, s, a in rows
        ]  # fmt: skip
        return pd.DataFrame(records).set_index(["regulariser", "seed"])

    base = [("none", 0, 0.70), ("none", 1, 0.80), ("none", 2, 0.90)]
    # seeds in another order: by label the penalty wins seeds 0 and 2 (0.71 > 0.70, 0.91 >
    # 0.90) and loses seed 1; by position it would win only the first pair
    shuffled = frame(base + [("mgs_trace", 2, 0.91), ("mgs_trace", 0, 0.71),
                             ("mgs_trace", 1, 0.79)])  # fmt: skip
    f = regularisation_findings(shuffled, peaks(shuffled), 0.3)
    assert f.penalty_wins == 2 and f.n_paired == 3
    assert f.texts()["penalty_wins"] == "2 of 3"
    # a seed the penalty did not run is left out of the pairs, and its count is its own
    missing = frame(base + [("mgs_trace", 2, 0.91), ("mgs_trace", 0, 0.71)])
    f = regularisation_findings(missing, peaks(missing), 0.3)
    assert f.penalty_wins == 2 and f.n_paired == 2 and f.n_seeds == 3
    t = f.texts()
    assert t["penalty_wins"] == "2 of 2"
    assert t["penalty_side"].endswith("(2 of 2 seeds end below it)")
    assert t["baseline_side"].endswith("(3 of 3 seeds end below it)")
    assert "the higher in 2 of 2 seeds" in t["reproduced"] + t["not_reproduced"]
