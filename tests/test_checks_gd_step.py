"""Each self-check accepts the right answer, rejects wrong ones, and never leaks the solution."""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from optax import softmax_cross_entropy_with_integer_labels as ce

from mgs_teach import checks, mgs_kernel
from mgs_teach.models import FCN, functional


def rejects_with_hints(check, wrong, capsys):
    """Every wrong answer (hint -> answer) fails, and its own hint is shown."""
    for hint, answer in wrong.items():
        assert not check(answer)
        out = capsys.readouterr().out
        assert "❌" in out and hint in out, (hint, out)


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


def _changes(apply_fn, params, x, y, eta, reduce=jnp.mean):
    """Actual change and first-order prediction -η K ∇_f L (the check uses a jvp instead)."""
    f0 = apply_fn(params, x)
    g = jax.grad(lambda f: reduce(ce(f, y)))(f0).reshape(-1)
    grads = jax.grad(lambda p: reduce(ce(apply_fn(p, x), y)))(params)
    stepped = jax.tree.map(lambda p, d: p - eta * d, params, grads)
    predicted = (-eta * mgs_kernel(apply_fn, params, x) @ g).reshape(f0.shape)
    return apply_fn(stepped, x) - f0, predicted


def linearisation_error_ok(apply_fn, params, x, y, eta):
    actual, predicted = _changes(apply_fn, params, x, y, eta)
    return float(jnp.linalg.norm(actual - predicted))


def test_linearisation_error(capsys):
    seen = []

    def spy(*args):
        seen.append(linearisation_error_ok(*args))
        return 0.0

    assert checks.linearisation_error(linearisation_error_ok)
    assert "✅" in capsys.readouterr().out
    wrong = {
        "mind the sign": lambda *a: float(jnp.linalg.norm(sum(_changes(*a)))),
        "not the sum": lambda *a: float(jnp.linalg.norm(jnp.subtract(*_changes(*a, jnp.sum)))),
        "actual and predicted changes": lambda *a: float(jnp.linalg.norm(_changes(*a)[0])),
        "one number": lambda *a: np.zeros(3),
        "ZeroDivisionError": lambda *a: 1 / 0,
    }
    rejects_with_hints(checks.linearisation_error, wrong, capsys)
    assert not checks.linearisation_error(spy)
    out = capsys.readouterr().out
    assert f"{seen[0]:.3g}" not in out and f"{seen[0]:.6f}" not in out


def _share_from_others_loop(kernel, grad_f, direction):
    """Sample by sample, block by block (the check masks whole blocks of K instead)."""
    b, c = grad_f.shape
    shares = []
    for i in range(b):
        own = -kernel[i * c : (i + 1) * c, i * c : (i + 1) * c] @ grad_f[i]
        others = sum(
            -kernel[i * c : (i + 1) * c, j * c : (j + 1) * c] @ grad_f[j]
            for j in range(b)
            if j != i
        )
        s, o = own @ direction[i], others @ direction[i]
        shares.append(abs(o) / (abs(s) + abs(o)))
    return np.array(shares)


def test_share_from_others(capsys):
    seen = []

    def spy(kernel, grad_f, direction):
        seen.append(_share_from_others_loop(kernel, grad_f, direction))
        return np.zeros(len(grad_f))

    assert checks.share_from_others(_share_from_others_loop)
    assert "✅" in capsys.readouterr().out

    def terms(kernel, grad_f, direction, own_mask):
        """Projected own and others' terms, the own term taken from K * own_mask."""
        total = -(kernel @ grad_f.reshape(-1)).reshape(grad_f.shape)
        own = -((kernel * own_mask) @ grad_f.reshape(-1)).reshape(grad_f.shape)
        return np.sum(own * direction, 1), np.sum((total - own) * direction, 1)

    def diagonal_only(kernel, grad_f, direction):
        s, o = terms(kernel, grad_f, direction, np.eye(len(kernel)))
        return np.abs(o) / (np.abs(s) + np.abs(o))

    def blocks(grad_f):
        return np.kron(np.eye(grad_f.shape[0]), np.ones((grad_f.shape[1],) * 2))

    def total_for_others(kernel, grad_f, direction):
        s, o = terms(kernel, grad_f, direction, blocks(grad_f))
        return np.abs(s + o) / (np.abs(s) + np.abs(s + o))

    def signed(kernel, grad_f, direction):
        s, o = terms(kernel, grad_f, direction, blocks(grad_f))
        return o / (s + o)

    wrong = {
        "asks for the others'": lambda k, g, d: 1 - _share_from_others_loop(k, g, d),
        "cross-logit entries included": diagonal_only,
        "total update minus": total_for_others,
        "absolute values": signed,
        "shape (B,)": lambda k, g, d: _share_from_others_loop(k, g, d)[:-1],
        "ZeroDivisionError": lambda *a: 1 / 0,
    }
    rejects_with_hints(checks.share_from_others, wrong, capsys)
    assert not checks.share_from_others(spy)
    out = capsys.readouterr().out
    assert not any(f"{v:.2f}" in out or f"{v:.3g}" in out for v in seen[0])
