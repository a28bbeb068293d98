"""The self-checks of "The MGS penalty" accept right answers, reject wrong ones, survive
malformed ones, and never print the expected numbers."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from scipy.linalg import cho_factor, cho_solve
from scipy.special import softmax

from mgs_teach import checks, float64, penalties
from mgs_teach.models import FCN, functional

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


def output_weight_pull_ok(x, w1, b1, w2):
    """Closed form: a weight decay on W2 whose strength for hidden unit k is
    2 sum_i (||x_i||^2 + 1) tanh'(z_ik)^2 (the check differentiates the Jacobian instead)."""
    slope = 1.0 - np.tanh(x @ w1 + b1) ** 2
    return 2.0 * w2 * np.sum((np.sum(x**2, 1) + 1.0)[:, None] * slope**2, 0)[:, None]


def output_weight_pull_library(x, w1, b1, w2):
    """jax.grad of the library's penalty on the book's FCN with these weights."""
    (d, h), c = w1.shape, w2.shape[1]
    apply_fn, _ = functional(FCN(d, c, depth=1, width=h, activation=jnp.tanh, rngs=nnx.Rngs(0)))
    with float64():
        params = {"layers": {0: {"kernel": w1, "bias": b1}, 1: {"kernel": w2, "bias": np.ones(c)}}}
        params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
        grad = jax.grad(lambda p: penalties.mgs_trace_penalty(apply_fn, p, jnp.asarray(x)))(params)
        return np.asarray(grad["layers"][1]["kernel"])


RIGHT = [
    (checks.linear_trace, linear_trace_ok),
    (checks.linear_trace, linear_trace_loop),
    (checks.output_gradient, output_gradient_ok),
    (checks.logdet_gradient, logdet_gradient_ok),
    (checks.logdet_gradient, lambda j: 2.0 * np.linalg.inv(j @ j.T) @ j),
    (checks.output_weight_pull, output_weight_pull_ok),
    (checks.output_weight_pull, output_weight_pull_library),
]

# ------------------------------------------------------------------ wrong answers


def naive_softmax_gradient(logits, y):
    z = np.exp(logits)
    return (z / z.sum(1, keepdims=True) - np.eye(logits.shape[1])[y]) / len(y)


def output_weight_pull_no_bias(x, w1, b1, w2):  # forgets the first layer's bias
    slope = 1.0 - np.tanh(x @ w1 + b1) ** 2
    return 2.0 * w2 * np.sum(np.sum(x**2, 1)[:, None] * slope**2, 0)[:, None]


def output_weight_pull_slope(x, w1, b1, w2):  # tanh' not squared
    slope = 1.0 - np.tanh(x @ w1 + b1) ** 2
    return 2.0 * w2 * np.sum((np.sum(x**2, 1) + 1.0)[:, None] * slope, 0)[:, None]


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
    (checks.output_weight_pull, lambda x, w1, b1, w2: np.zeros_like(w2)),  # as if linear
    (checks.output_weight_pull, lambda *a: output_weight_pull_ok(*a) / 2),  # factor 2
    (checks.output_weight_pull, output_weight_pull_no_bias),
    (checks.output_weight_pull, output_weight_pull_slope),
    (checks.output_weight_pull, lambda *a: output_weight_pull_ok(*a).T),  # wrong shape
]

MALFORMED = [lambda *a: None, lambda *a: "nonsense", lambda *a: [[1, 2], [3]], lambda *a: 1 / 0]
CHECKS = [
    checks.linear_trace,
    checks.output_gradient,
    checks.logdet_gradient,
    checks.output_weight_pull,
]


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
    rng = np.random.default_rng(24)
    x, w1 = rng.standard_normal((5, 2)), rng.standard_normal((2, 4))
    b1, w2 = 0.5 * rng.standard_normal(4), rng.standard_normal((4, 3))
    values += list(output_weight_pull_ok(x, w1, b1, w2).ravel()[:5])
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


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (lambda x, w1, b1, w2: np.zeros_like(w2), "unlike in the linear model"),
        (output_weight_pull_no_bias, "bias b1 is a parameter too"),
        (lambda *a: 2.0 * output_weight_pull_ok(*a), "check the factor"),
    ],
)
def test_output_weight_pull_hints(answer, hint, capsys):
    assert checks.output_weight_pull(answer) is False
    assert hint in capsys.readouterr().out
