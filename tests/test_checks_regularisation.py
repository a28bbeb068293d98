"""The self-checks of "Watching regularisation through MGS" accept right answers, reject
wrong ones, survive malformed ones, and never print the expected numbers."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from scipy.stats import spearmanr

from mgs_teach import checks

# ------------------------------------------------------------------ right answers


def growth_ok(h):
    return (np.log(h["trace"].iloc[-1]) - np.log(h["trace"].iloc[0])) / (
        h["epoch"].iloc[-1] - h["epoch"].iloc[0]
    )


def wd_grad_ok(params, strength):
    return jax.tree.map(lambda a: strength * a, params)


def exponent_ok(depth):
    return 2 * (depth - 1)


def spearman_ok(a, b):
    return spearmanr(a, b).statistic


RIGHT = [
    (checks.trace_growth, growth_ok),
    (checks.weight_decay_grad, wd_grad_ok),
    (checks.kernel_scaling_exponent, exponent_ok),
    (checks.rank_correlation, spearman_ok),
]

# ------------------------------------------------------------------ wrong answers

WRONG = [
    (checks.trace_growth, lambda h: (h["trace"].iloc[-1] - h["trace"].iloc[0]) / 50),
    (checks.trace_growth, lambda h: growth_ok(h) * (h["epoch"].iloc[-1] - h["epoch"].iloc[0])),
    (checks.trace_growth, lambda h: -growth_ok(h)),
    (checks.trace_growth, lambda h: [1.0, 2.0]),
    (checks.trace_growth, lambda h: 1 / 0),
    (checks.weight_decay_grad, lambda p, s: jax.tree.map(lambda a: 0.5 * s * a, p)),
    (checks.weight_decay_grad, lambda p, s: jax.tree.map(lambda a: s * a**2, p)),
    (checks.weight_decay_grad, lambda p, s: s),
    (checks.weight_decay_grad, lambda p, s: [s * a for a in jax.tree.leaves(p)]),
    (checks.weight_decay_grad, lambda p, s: None),
    (checks.kernel_scaling_exponent, lambda d: 2 * d),
    (checks.kernel_scaling_exponent, lambda d: d - 1),
    (checks.kernel_scaling_exponent, lambda d: "two"),
    (checks.kernel_scaling_exponent, lambda d: [2, 3]),
    (checks.rank_correlation, lambda a, b: np.corrcoef(a, b)[0, 1]),
    (checks.rank_correlation, lambda a, b: -spearmanr(a, b).statistic),
    (checks.rank_correlation, lambda a, b: spearmanr(a, b)),
    (checks.rank_correlation, lambda a, b: np.ones(3)),
]


@pytest.mark.parametrize(("check", "answer"), RIGHT)
def test_accepts_right_answer(check, answer, capsys):
    assert check(answer) is True
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize(("check", "answer"), WRONG)
def test_rejects_wrong_answer(check, answer, capsys):
    assert check(answer) is False
    out = capsys.readouterr().out
    assert "not yet" in out and "Hint" in out


def test_hints_never_print_expected_numbers(capsys):
    checks.kernel_scaling_exponent(lambda d: 2 * d)
    out = capsys.readouterr().out
    for depth in (1, 2, 3, 6):
        assert f" {2 * (depth - 1)} " not in out
    checks.rank_correlation(lambda a, b: 0.123)
    out = capsys.readouterr().out
    assert "1.0" not in out and "0." not in out.replace("0.123", "")
