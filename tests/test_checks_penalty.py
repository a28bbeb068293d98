"""The self-checks of "The MGS penalty" accept right answers, reject wrong ones, survive
malformed ones, and never print the expected numbers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import cho_factor, cho_solve
from scipy.special import softmax

from mgs_teach import checks

# ------------------------------------------------------------------ right answers


def linear_trace_ok(x, c):
    return c * float(np.sum(np.square(x)) + x.shape[0])


def linear_trace_loop(x, c):
    total = 0.0
    for xi in x:
        for _ in range(c):
            total += xi @ xi + 1.0
    return total


def output_gradient_ok(logits, y):
    b, c = logits.shape
    return (softmax(logits, axis=1) - np.eye(c)[y]) / b


def logdet_gradient_ok(jac):
    return 2.0 * cho_solve(cho_factor(jac @ jac.T), jac)


RIGHT = [
    (checks.linear_trace, linear_trace_ok),
    (checks.linear_trace, linear_trace_loop),
    (checks.output_gradient, output_gradient_ok),
    (checks.logdet_gradient, logdet_gradient_ok),
    (checks.logdet_gradient, lambda j: 2.0 * np.linalg.inv(j @ j.T) @ j),
]

# ------------------------------------------------------------------ wrong answers


def naive_softmax_gradient(logits, y):
    z = np.exp(logits)
    return (z / z.sum(1, keepdims=True) - np.eye(logits.shape[1])[y]) / len(y)


WRONG = [
    (checks.linear_trace, lambda x, c: c * float(np.sum(x**2))),  # forgot the bias
    (checks.linear_trace, lambda x, c: float(np.sum(x**2) + len(x))),  # forgot C
    (checks.linear_trace, lambda x, c: np.full(len(x), c)),  # an array
    (checks.output_gradient, lambda f, y: output_gradient_ok(f, y) * len(y)),  # sum, not mean
    (checks.output_gradient, lambda f, y: -output_gradient_ok(f, y)),  # sign
    (checks.output_gradient, naive_softmax_gradient),  # overflows on large logits
    (checks.output_gradient, lambda f, y: softmax(f, axis=1) / len(y)),  # forgot the label
    (checks.logdet_gradient, lambda j: cho_solve(cho_factor(j @ j.T), j)),  # factor 2
    (checks.logdet_gradient, lambda j: 2.0 * j),  # no inverse
    (checks.logdet_gradient, lambda j: j.T),  # wrong shape
]

MALFORMED = [lambda *a: None, lambda *a: "nonsense", lambda *a: [[1, 2], [3]], lambda *a: 1 / 0]
CHECKS = [checks.linear_trace, checks.output_gradient, checks.logdet_gradient]


@pytest.mark.parametrize(("check", "answer"), RIGHT)
def test_accepts_right_answers(check, answer, capsys):
    assert check(answer) is True
    assert "✅" in capsys.readouterr().out


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize(("check", "answer"), WRONG)
def test_rejects_wrong_answers_with_a_hint(check, answer, capsys):
    assert check(answer) is False
    out = capsys.readouterr().out
    assert "❌" in out and "Hint:" in out


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("answer", MALFORMED)
def test_survives_malformed_answers(check, answer, capsys):
    assert check(answer) is False
    assert "❌" in capsys.readouterr().out


def _expected_numbers():
    """Every number a check compares against, as it would be printed."""
    rng = np.random.default_rng(21)
    xs = [
        rng.standard_normal((5, 3)),
        rng.standard_normal((1, 4)),
        3.0 * rng.standard_normal((7, 2)),
    ]
    values = [c * (np.sum(x**2) + len(x)) for x, c in zip(xs, (2, 1, 4))]
    rng = np.random.default_rng(23)
    j = rng.standard_normal((3, 7))
    values += list(logdet_gradient_ok(j).ravel()[:5])
    return values


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("check", CHECKS)
def test_never_prints_the_expected_value(check, capsys):
    for answer in [
        lambda *a: 0.0,
        lambda *a: np.zeros((2, 2)),
        *[a for c, a in WRONG if c is check],
    ]:
        check(answer)
    out = capsys.readouterr().out
    for value in _expected_numbers():
        for text in (f"{value:.3f}", f"{value:.4g}", repr(float(value))):
            assert text not in out
