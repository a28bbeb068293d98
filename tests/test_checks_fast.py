"""The self-checks of "Making the MGS penalty fast" accept right answers, reject wrong ones,
survive malformed ones, and never print the expected numbers."""

from __future__ import annotations

import numpy as np
import pytest

from mgs_teach import checks
from mgs_teach.checks.fast import _two_layer_cases, _two_layer_reference

# ------------------------------------------------------------------ right answers


def two_layer_ok(w1, b1, w2, b2, x):
    z = x @ w1.T + b1
    a = np.maximum(z, 0.0)
    c = w2.shape[0]
    delta1 = w2[None, :, :] * (z[:, None, :] > 0)  # (B, C, h)
    first = np.sum(np.sum(delta1**2, -1) * (np.sum(x**2, 1)[:, None] + 1.0))
    second = c * np.sum(np.sum(a**2, 1) + 1.0)  # ||delta2||^2 = 1 for every class
    return float(first + second)


def two_layer_autodiff(w1, b1, w2, b2, x):
    import jax
    import jax.numpy as jnp

    from mgs_teach import float64

    def f(p, xi):
        return p[2] @ jax.nn.relu(p[0] @ xi + p[1]) + p[3]

    with float64():
        p = [jnp.asarray(t, jnp.float64) for t in (w1, b1, w2, b2)]
        jac = jax.vmap(jax.jacrev(f), in_axes=(None, 0))(p, jnp.asarray(x, jnp.float64))
        return float(sum(jnp.sum(j**2) for j in jac))


def hutchinson_variance_ok(blocks, k):
    off = blocks * (1.0 - np.eye(blocks.shape[1]))
    return 2.0 / k * float(np.sum(off**2))


def hutchinson_variance_loop(blocks, k):
    total = 0.0
    for block in blocks:
        for c in range(len(block)):
            for d in range(len(block)):
                if c != d:
                    total += 2 * block[c, d] ** 2
    return total / k


def dense_multiplications_loop(b, c, n_in, n_out):
    """Count one multiplication at a time, as the two methods would run."""
    naive = structured = 0
    for _ in range(b):
        structured += n_in  # ||a_i||^2, shared by all outputs
        for _ in range(c):
            naive += n_out * n_in  # the outer product delta_ic a_i^T
            naive += n_out * n_in  # squaring its entries
            structured += n_out + 1  # ||delta_ic||^2, then times ||a_i||^2
    return naive, structured


RIGHT = [
    (checks.two_layer_trace, two_layer_ok),
    (checks.two_layer_trace, two_layer_autodiff),
    (checks.hutchinson_variance, hutchinson_variance_ok),
    (checks.hutchinson_variance, hutchinson_variance_loop),
    (checks.gram_crossover, lambda p, i, o: p * (i + o) < i * o),
    (checks.gram_crossover, lambda p, i, o: bool(p**2 * (i + o) < p * i * o)),
    (checks.gram_crossover, lambda p, i, o: np.bool_(p * (i + o) < i * o)),
    (checks.dense_multiplications, dense_multiplications_loop),
    (
        checks.dense_multiplications,
        lambda b, c, i, o: (2.0 * b * c * i * o, b * c * (o + 1) + b * i),
    ),
]

# ------------------------------------------------------------------ wrong answers


def two_layer_no_bias(w1, b1, w2, b2, x):
    z = x @ w1.T + b1
    a = np.maximum(z, 0.0)
    delta1 = w2[None, :, :] * (z[:, None, :] > 0)
    return float(np.sum(np.sum(delta1**2, -1) * np.sum(x**2, 1)[:, None])
                 + w2.shape[0] * np.sum(a**2))  # fmt: skip


def two_layer_no_mask(w1, b1, w2, b2, x):
    a = np.maximum(x @ w1.T + b1, 0.0)
    c = w2.shape[0]
    first = np.sum(np.sum(w2**2, -1)[None] * (np.sum(x**2, 1)[:, None] + 1.0))
    return float(first + c * np.sum(np.sum(a**2, 1) + 1.0))


def two_layer_last_only(w1, b1, w2, b2, x):
    a = np.maximum(x @ w1.T + b1, 0.0)
    return float(w2.shape[0] * np.sum(np.sum(a**2, 1) + 1.0))


WRONG = [
    (checks.two_layer_trace, two_layer_no_bias),
    (checks.two_layer_trace, two_layer_no_mask),
    (checks.two_layer_trace, two_layer_last_only),
    (checks.two_layer_trace, lambda *a: np.ones(3)),  # an array
    (checks.hutchinson_variance, lambda b, k: 2.0 / k * float(np.sum(b**2))),  # diagonal
    (checks.hutchinson_variance, lambda b, k: hutchinson_variance_ok(b, 1)),  # forgot 1/k
    (checks.hutchinson_variance, lambda b, k: hutchinson_variance_ok(b, k) / 2),  # factor 2
    (checks.hutchinson_variance, lambda b, k: float(np.trace(b.sum(0)))),  # the trace itself
    (checks.gram_crossover, lambda p, i, o: p * (i + o) > i * o),  # reversed
    (checks.gram_crossover, lambda p, i, o: p > 10),  # a rule of thumb
    (checks.gram_crossover, lambda p, i, o: int(p * (i + o) < i * o)),  # not a bool
    (checks.dense_multiplications, lambda b, c, i, o: (b * c * i * o, b * c * (o + 1) + b * i)),
    (checks.dense_multiplications, lambda b, c, i, o: (2 * b * c * i * o, b * c * (o + i + 1))),
    (checks.dense_multiplications, lambda b, c, i, o: (2 * b * c * i * o, b * c * o + b * i)),
    (checks.dense_multiplications, lambda b, c, i, o: (2 * b * c * i * o, 2 * b * c * o)),
    (checks.dense_multiplications, lambda b, c, i, o: 2 * b * c * i * o),  # one number
    (checks.dense_multiplications, lambda b, c, i, o: (True, True)),
]

MALFORMED = [lambda *a: None, lambda *a: "nonsense", lambda *a: [[1, 2], [3]], lambda *a: 1 / 0]
CHECKS = [
    checks.two_layer_trace,
    checks.hutchinson_variance,
    checks.gram_crossover,
    checks.dense_multiplications,
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


def test_reference_matches_the_library():
    """The check's own reference agrees with mgs_teach.fast on an equivalent model."""
    w1, b1, w2, b2, x = _two_layer_cases()[0]
    assert np.isclose(two_layer_ok(w1, b1, w2, b2, x), _two_layer_reference(w1, b1, w2, b2, x))


def _expected_numbers():
    values = [_two_layer_reference(*case) for case in _two_layer_cases()]
    rng = np.random.default_rng(32)
    for b, c, k in [(3, 4, 1), (2, 3, 4), (5, 2, 16)]:
        g = rng.standard_normal((b, c, c + 2))
        values.append(hutchinson_variance_ok(np.einsum("bci,bdi->bcd", g, g), k))
    values += dense_multiplications_loop(32, 10, 300, 300) + dense_multiplications_loop(4, 3, 5, 7)
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
        (lambda b, c, i, o: (b * c * i * o, b * c * (o + 1) + b * i), "a multiplication too"),
        (lambda b, c, i, o: (2 * b * c * i * o, b * c * (o + i + 1)), "once per sample"),
        (lambda b, c, i, o: (2 * b * c * i * o, b * c * o + b * i), "one more, per (i, c)"),
    ],
)
def test_dense_multiplications_hints(answer, hint, capsys):
    assert checks.dense_multiplications(answer) is False
    assert hint in capsys.readouterr().out
