"""The self-checks of "MGS on corrupted MNIST" accept right answers, reject wrong ones,
survive malformed ones, and never print the expected values."""

from __future__ import annotations

import pytest

from mgs_teach import checks
from mgs_teach.checks import mnist as M


def aggregate_ok(frame, last):
    frame = frame.sort_values(["seed", "step"])
    finals = frame.groupby("seed")["test_acc"].apply(lambda a: a.tail(last).mean())
    return finals.mean(), finals.std(ddof=1), frame.groupby("step")["test_acc"].mean().max()


def aggregate_unsorted(frame, last):  # forgets that the rows are shuffled
    finals = frame.groupby("seed")["test_acc"].apply(lambda a: a.tail(last).mean())
    return finals.mean(), finals.std(ddof=1), frame.groupby("step")["test_acc"].mean().max()


def aggregate_max_of_runs(frame, last):  # max over runs instead of over the mean curve
    final, sd, _ = aggregate_ok(frame, last)
    return final, sd, frame["test_acc"].max()


def aggregate_population_sd(frame, last):
    frame = frame.sort_values(["seed", "step"])
    finals = frame.groupby("seed")["test_acc"].apply(lambda a: a.tail(last).mean())
    return finals.mean(), finals.std(ddof=0), frame.groupby("step")["test_acc"].mean().max()


def raises(*args):
    raise RuntimeError("student bug")


def test_right_answers_pass(capsys):
    assert checks.paper_aggregate(aggregate_ok)
    assert checks.memoriser_accuracy(lambda p, c: 1 - p + p / c)
    assert checks.memoriser_accuracy(lambda p, c: 1 - p, convention="other")
    assert checks.noise_threshold(0.9)
    assert checks.noise_threshold(9 / 10)
    assert checks.survivor_at_80("MGS") and checks.survivor_at_80(" mgs_trace ")
    assert capsys.readouterr().out.count("✅") == 7


@pytest.mark.parametrize("fn", [aggregate_unsorted, aggregate_max_of_runs,
                                aggregate_population_sd, raises, lambda f, n: "x",
                                lambda f, n: (1.0, 2.0)])  # fmt: skip
def test_wrong_aggregations_fail(fn, capsys):
    assert checks.paper_aggregate(fn) is False
    assert "❌" in capsys.readouterr().out


@pytest.mark.parametrize("fn", [lambda p, c: 1 - p, lambda p, c: p, raises,
                                lambda p, c: [1, 2], lambda p, c: None])  # fmt: skip
def test_wrong_memorisers_fail(fn, capsys):
    assert checks.memoriser_accuracy(fn) is False
    assert "❌" in capsys.readouterr().out
    assert checks.memoriser_accuracy(lambda p, c: 1 - p + p / c, convention="other") is False
    assert "true class" in capsys.readouterr().out


@pytest.mark.parametrize("value", [0.5, 90, 0.8, 1.0, "abc", None, [0.9, 0.9]])
def test_wrong_thresholds_fail(value, capsys):
    assert checks.noise_threshold(value) is False
    assert "❌" in capsys.readouterr().out


@pytest.mark.parametrize("answer", ["Dropout", "weight", "Loss grad.", "Unregularised", "nobody",
                                    None, 3])  # fmt: skip
def test_wrong_predictions_fail(answer, capsys):
    assert checks.survivor_at_80(answer) is False
    assert "❌" in capsys.readouterr().out


def test_never_print_the_expected_values(capsys):
    checks.memoriser_accuracy(lambda p, c: 0.0)
    checks.noise_threshold(0.3)
    checks.paper_aggregate(aggregate_max_of_runs)
    checks.survivor_at_80("dropout")
    out = capsys.readouterr().out
    for secret in ("0.9", "9/10", "90 %", "90%", "0.7", "0.2", "mgs", "MGS"):
        assert secret not in out


def test_exported():
    assert set(M.__all__) == {"memoriser_accuracy", "noise_threshold", "paper_aggregate",
                              "scenario_winners", "survivor_at_80"}  # fmt: skip


def _finals(table):
    return table.set_index(["n_train", "label_noise", "regulariser"])["final"]


def winners_ok(table):
    return _finals(table).groupby(["n_train", "label_noise"]).idxmax().map(lambda k: k[-1])


def winners_lowest(table):
    return _finals(table).groupby(["n_train", "label_noise"]).idxmin().map(lambda k: k[-1])


def winners_nan_wins(table):  # a diverged method (NaN final) counted as perfect
    return winners_ok(table.fillna({"final": 1.0}))


@pytest.mark.parametrize("wrong, hint", [
    (winners_lowest, "highest final accuracy"),
    (lambda t: t.groupby(["n_train", "label_noise"])["final"].max(), "regulariser's name"),
    (lambda t: t, "indexed by (n_train, label_noise)"),
    (winners_nan_wins, "never wins"),
    (raises, "indexed by (n_train, label_noise)"),
])  # fmt: skip
def test_scenario_winners_rejects_wrong_answers_with_their_hint(wrong, hint, capsys):
    assert checks.scenario_winners(winners_ok)
    assert not checks.scenario_winners(wrong)
    out = capsys.readouterr().out
    assert hint in out and "mgs_trace" not in out.split("Hint:")[-1]
