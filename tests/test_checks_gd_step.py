"""Each self-check accepts the right answer, rejects wrong ones, and never leaks the solution."""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from optax import softmax_cross_entropy_with_integer_labels as ce

from mgs_teach import checks
from mgs_teach.models import FCN, functional


def test_mse_update(capsys):
    assert checks.mse_update(lambda K, f, y, eta: (-eta * K @ (f - y).reshape(-1)).reshape(f.shape))
    assert not checks.mse_update(
        lambda K, f, y, eta: (-eta * K @ (y - f).reshape(-1)).reshape(f.shape)
    )
    assert not checks.mse_update(lambda K, f, y, eta: -eta * K @ (f - y).reshape(-1))  # wrong shape
    assert not checks.mse_update(lambda K, f, y, eta: 1 / 0)  # a crash is a wrong answer
    out = capsys.readouterr().out
    assert "✅" in out and "❌" in out and "ZeroDivisionError" in out


def test_max_stable_lr(capsys):
    j = np.random.default_rng(0).normal(size=(6, 4))
    kernel = j @ j.T
    lam = np.linalg.eigvalsh(kernel).max()
    assert checks.max_stable_lr(2 / lam, kernel)
    assert not checks.max_stable_lr(1 / lam, kernel)
    assert f"{2 / lam:.3f}" not in capsys.readouterr().out


def test_ce_logit_grad(capsys):
    def right(logits, labels):
        return (jax.nn.softmax(logits) - jax.nn.one_hot(labels, logits.shape[1])) / logits.shape[0]

    assert checks.ce_logit_grad(right)
    assert not checks.ce_logit_grad(lambda f, y: right(f, y) * f.shape[0])
    assert "sum, not of the mean" in capsys.readouterr().out


def test_curvature_term(capsys, x64):
    apply_fn, params = functional(
        FCN(2, 2, depth=1, width=8, activation=jnp.tanh, rngs=nnx.Rngs(0))
    )
    params = jax.tree.map(lambda a: a.astype(jnp.float64), params)
    x = jax.random.normal(jax.random.key(0), (5, 2), dtype=jnp.float64)
    y = jnp.array([0, 1, 0, 1, 1])
    d = jax.tree.map(lambda a: -a, jax.grad(lambda p: ce(apply_fn(p, x), y).mean())(params))
    # independent path: a central finite difference of the second derivative along d
    h = 1e-4

    def f_at(t):
        return apply_fn(jax.tree.map(lambda p, v: p + t * v, params, d), x)

    q_fd = 0.5 * (f_at(h) - 2 * f_at(0.0) + f_at(-h)) / h**2
    assert checks.curvature_term(q_fd, apply_fn, params, x, y)
    assert not checks.curvature_term(2 * q_fd, apply_fn, params, x, y)
    assert "factor 1/2" in capsys.readouterr().out
