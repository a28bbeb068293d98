"""Self-checks for the chapter "One step of gradient descent, seen through the model"."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mgs_teach.checks._common import _call, _close, _report
from mgs_teach.kernel import float64

__all__ = [
    "ce_logit_grad",
    "curvature_term",
    "linearisation_error",
    "max_stable_lr",
    "mse_update",
    "share_from_others",
]


def mse_update(fn: Callable[..., Any]) -> bool:
    """Check ``fn(K, f, y, eta) -> Δf`` for the squared loss (shape ``(B, C)``)."""
    rng = np.random.default_rng(1)
    b, c = 5, 3
    j = rng.normal(size=(b * c, 11))
    kernel, f, y = j @ j.T, rng.normal(size=(b, c)), rng.normal(size=(b, c))
    expected = (-0.1 * kernel @ (f - y).reshape(-1)).reshape(b, c)
    got = _call(fn, jnp.asarray(kernel), jnp.asarray(f), jnp.asarray(y), 0.1)
    hint = "the gradient of ½‖f - y‖² with respect to f is the residual; flatten it sample-major"
    if got is not None and np.shape(got) != (b, c):
        hint = f"return shape (B, C) = {(b, c)}, got {np.shape(got)}"
    return _report(_close(got, expected), hint, what="mse_update")


def max_stable_lr(value: Any, kernel: Any) -> bool:
    """Check the largest learning rate for which ``(I - eta K)^t`` shrinks every component."""
    lam = float(np.max(np.linalg.eigvalsh(np.asarray(kernel, dtype=float))))
    return _report(
        _close(value, 2.0 / lam, rtol=1e-3, atol=0.0),
        "look at |1 - eta * lambda| for every eigenvalue lambda of K",
        what="max_stable_lr",
    )


def ce_logit_grad(fn: Callable[..., Any]) -> bool:
    """Check ``fn(logits, labels)``: the gradient of the mean cross-entropy w.r.t. the logits."""
    rng = np.random.default_rng(2)
    logits = jnp.asarray(rng.normal(size=(6, 4)) * 3)
    labels = jnp.asarray(rng.integers(0, 4, size=6))
    expected = jax.grad(
        lambda f: optax.softmax_cross_entropy_with_integer_labels(f, labels).mean()
    )(logits)
    got = _call(fn, logits, labels)
    hint = "differentiate -f_y + log sum_c exp(f_c); remember the 1/B of the mean"
    if got is not None and _close(np.asarray(got) / logits.shape[0], expected):
        hint = "almost: this is the gradient of the sum, not of the mean"
    return _report(_close(got, expected, rtol=1e-4, atol=1e-7), hint, what="ce_logit_grad")


def curvature_term(q: Any, apply_fn: Callable[..., Any], params: Any, x: Any, y: Any) -> bool:
    """Check ``q = ½ d²/dt² f(x; θ + t d)`` at ``t = 0``, ``d = -∇θ`` of the mean cross-entropy."""
    grads = jax.grad(
        lambda p: optax.softmax_cross_entropy_with_integer_labels(apply_fn(p, x), y).mean()
    )(params)

    def along(t: jax.Array) -> jax.Array:
        return apply_fn(jax.tree.map(lambda p, g: p - t * g, params, grads), x)

    second = jax.jvp(lambda t: jax.jvp(along, (t,), (1.0,))[1], (0.0,), (1.0,))[1]
    expected = 0.5 * second
    hint = "differentiate twice along d (a jvp of a jvp) and keep the factor 1/2"
    if q is not None and _close(q, 2 * expected, rtol=1e-3, atol=1e-9):
        hint = "right direction, but the Taylor term carries a factor 1/2"
    return _report(_close(q, expected, rtol=1e-3, atol=1e-9), hint, what="curvature_term")


def _shape(value: Any) -> tuple | None:
    try:
        return np.shape(value)
    except (TypeError, ValueError):  # ragged or strange objects
        return None


def _mlp(activation: Callable[[jax.Array], jax.Array]) -> Callable[..., jax.Array]:
    """``apply_fn(params, x)`` of a network with one hidden layer and the given activation."""

    def apply_fn(params: Any, x: jax.Array) -> jax.Array:
        return activation(x @ params["w1"] + params["b1"]) @ params["w2"] + params["b2"]

    return apply_fn


def _step_norms(apply_fn: Callable[..., Any], params: Any, x: Any, y: Any, eta: float) -> dict:
    """Norms of the actual change of one GD step, of its linearisation (a jvp, no kernel),
    of their difference and of their sum."""
    grads = jax.grad(
        lambda p: optax.softmax_cross_entropy_with_integer_labels(apply_fn(p, x), y).mean()
    )(params)
    step = jax.tree.map(lambda g: -eta * g, grads)
    f0, linear = jax.jvp(lambda p: apply_fn(p, x), (params,), (step,))  # J Δθ = -η K ∇_f L
    actual = apply_fn(jax.tree.map(jnp.add, params, step), x) - f0
    norms = {"error": actual - linear, "sign": actual + linear, "actual": actual, "linear": linear}
    return {name: float(jnp.linalg.norm(v)) for name, v in norms.items()}


def linearisation_error(fn: Callable[..., Any]) -> bool:
    """Check ``fn(apply_fn, params, x, y, eta) -> ‖Δf + η K ∇_f L‖`` for one full-batch step.

    ``Δf`` is the actual change of the outputs on ``x`` after one gradient-descent step of
    size ``eta`` on the mean softmax cross-entropy ``L`` of the batch ``(x, y)``; the norm is
    the Euclidean norm over all entries. The cases are a ReLU and a tanh network with one
    hidden layer, in float64, from small to large ``eta``.
    """
    what = "linearisation error"
    rng = np.random.default_rng(4)
    b, d, h, c = 6, 2, 8, 3
    with float64():
        for activation in (jax.nn.relu, jnp.tanh):
            params = {
                "w1": rng.normal(size=(d, h)),
                "b1": 0.5 * rng.normal(size=h),
                "w2": rng.normal(size=(h, c)) / np.sqrt(h),
                "b2": rng.normal(size=c),
            }
            params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
            x = jnp.asarray(rng.normal(size=(b, d)), jnp.float64)
            y = jnp.asarray(rng.integers(0, c, size=b))
            apply_fn = _mlp(activation)
            for eta in (1e-2, 0.3, 2.0):
                ref = _step_norms(apply_fn, params, x, y, eta)
                got = _call(fn, apply_fn, params, x, y, eta)
                if got is None or _shape(got) != ():
                    return _report(False, "return one number, the norm of the difference.",
                                   what=what)  # fmt: skip
                if _close(got, ref["error"], rtol=1e-5, atol=1e-12):
                    continue
                hint = (
                    "take one gradient-descent step on the mean cross-entropy of the batch and "
                    "compare f(X) after it with f(X) - η K ∇_f L, with ∇_f L flattened "
                    "sample-major like the rows of K"
                )
                if _close(got, ref["sign"], rtol=1e-5):
                    hint = "the first-order prediction is -η K ∇_f L: mind the sign"
                elif _close(got, ref["actual"], rtol=1e-5) or _close(got, ref["linear"], 1e-5):
                    hint = "return the norm of the difference of the actual and predicted changes"
                elif _close(got, _step_norms(apply_fn, params, x, y, b * eta)["error"], 1e-5):
                    hint = "L is the mean over the batch, not the sum: mind the factor 1/B"
                return _report(False, hint, what=what)
    return _report(True, "", what=what)


def _own_others(
    kernel: np.ndarray, grad_f: np.ndarray, direction: np.ndarray, own_blocks: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Own and others' margin changes, with ``own_blocks`` masking a sample's own entries."""
    b, c = grad_f.shape
    own = -(kernel * own_blocks) @ grad_f.reshape(-1)
    others = -(kernel * (1 - own_blocks)) @ grad_f.reshape(-1)
    return (np.sum(own.reshape(b, c) * direction, axis=1),
            np.sum(others.reshape(b, c) * direction, axis=1))  # fmt: skip


def share_from_others(fn: Callable[..., Any]) -> bool:
    """Check ``fn(K, grad_f, direction) -> share of each sample's update from the others``.

    ``K`` is the ``(B*C, B*C)`` kernel (sample-major), ``grad_f`` the loss-model gradients
    and ``direction`` the margin directions, both ``(B, C)``. For sample ``i`` the answer is
    ``|o_i| / (|s_i| + |o_i|)``, where ``s_i`` and ``o_i`` are the own and the others' terms of
    equation 3 projected on ``direction[i]``; shape ``(B,)``. One case has a block-diagonal
    kernel, where no sample moves another.
    """
    what = "share from others"
    rng = np.random.default_rng(5)
    cases = []
    for b, c, block_diagonal in ((6, 2, False), (4, 3, False), (5, 2, True)):
        j = rng.normal(size=(b * c, 3 * b * c))
        if block_diagonal:  # the samples' gradients are orthogonal to each other
            j = j * np.kron(np.eye(b), np.ones((c, 3 * c)))
        labels = rng.integers(0, c, size=b)
        direction = np.eye(c)[labels] - np.eye(c)[(labels + 1) % c]
        cases.append((j @ j.T, rng.normal(size=(b, c)), direction))
    for kernel, grad_f, direction in cases:
        b, c = grad_f.shape
        s, o = _own_others(kernel, grad_f, direction, np.kron(np.eye(b), np.ones((c, c))))
        expected = np.abs(o) / (np.abs(s) + np.abs(o))
        got = _call(fn, kernel.copy(), grad_f.copy(), direction.copy())
        if got is None or _shape(got) != (b,):
            return _report(False, f"return one share per sample, shape (B,) = {(b,)}.",
                           what=what)  # fmt: skip
        if _close(got, expected, rtol=1e-5, atol=1e-7):  # float32 answers pass too
            continue
        s_diag, o_diag = _own_others(kernel, grad_f, direction, np.eye(b * c))
        hint = (
            "view K as (B, C, B, C): sample i's own term uses its block k(x_i, x_i), the "
            "others' term every block k(x_i, x_j) with j ≠ i; project both on direction[i]"
        )
        if _close(got, 1 - expected, rtol=1e-6, atol=1e-9):
            hint = "that is the share of the sample's own term; the question asks for the others'"
        elif _close(got, np.abs(o_diag) / (np.abs(s_diag) + np.abs(o_diag)), rtol=1e-6):
            hint = (
                "a sample's own term is its whole C x C block k(x_i, x_i), cross-logit "
                "entries included, not only the diagonal of K"
            )
        elif _close(got, np.abs(s + o) / (np.abs(s) + np.abs(s + o)), rtol=1e-6):
            hint = "the others' term is the total update minus the sample's own term"
        elif _close(got, o / (s + o), rtol=1e-6):
            hint = "the two terms can have opposite signs: compare their absolute values"
        return _report(False, hint, what=what)
    return _report(True, "", what=what)
