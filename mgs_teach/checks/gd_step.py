"""Self-checks for the chapter "One step of gradient descent, seen through the model"."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mgs_teach.checks._common import _call, _close, _report

__all__ = ["ce_logit_grad", "curvature_term", "max_stable_lr", "mse_update"]


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
