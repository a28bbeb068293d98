"""Self-checks for the chapter \"The MGS penalty\".

Every check calls the student's function on a few fixed test cases, compares with a
reference computed here, prints a verdict with a hint, and returns ``True`` or ``False``.
The hints never contain the expected numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mgs_teach.checks._common import _call, _close, _report
from mgs_teach.kernel import float64

__all__ = ["linear_trace", "logdet_gradient", "output_gradient", "output_weight_pull"]


def _shape(value: Any) -> tuple | None:
    try:
        return np.shape(value)
    except (TypeError, ValueError):  # ragged or strange objects
        return None


# -------------------------------------------------------------------- linear trace


def linear_trace(fn: Callable[[np.ndarray, int], Any]) -> bool:
    """Check ``fn(x, n_outputs) -> tr K`` for the linear model ``f(x) = W x + b``.

    ``x`` has shape ``(B, d)``; ``W`` is ``(n_outputs, d)`` and ``b`` is ``(n_outputs,)``.
    The cases vary ``B``, ``d`` and ``n_outputs`` (including a single output).
    """
    rng = np.random.default_rng(21)
    cases = [(rng.standard_normal((5, 3)), 2), (rng.standard_normal((1, 4)), 1),
             (3.0 * rng.standard_normal((7, 2)), 4)]  # fmt: skip
    what = "linear trace"
    for x, c in cases:
        expected = c * float(np.sum(x**2) + len(x))
        got = _call(fn, x.copy(), c)
        if _shape(got) != ():
            return _report(False, "return a single number, tr K, not an array.", what=what)
        if _close(got, c * float(np.sum(x**2)), rtol=1e-6) and not _close(got, expected):
            return _report(False, "the bias b is a parameter too: its gradient is not zero.",
                           what=what)  # fmt: skip
        if not _close(got, expected, rtol=1e-6):
            return _report(
                False,
                "tr K sums the squared parameter gradient of every output of every sample; "
                "the gradient of f_c(x_i) with respect to W touches only row c of W.",
                what=what,
            )
    return _report(True, "", what=what)


# --------------------------------------------------------------- output weight pull


def _one_hidden_trace(w2: jax.Array, x: jax.Array, w1: jax.Array, b1: jax.Array) -> jax.Array:
    """tr K = ||J||_F^2 of ``tanh(x W1 + b1) W2 + b2`` from its full per-sample Jacobian."""

    def f(params: tuple, xi: jax.Array) -> jax.Array:
        a, b, v, c = params
        return jnp.tanh(xi @ a + b) @ v + c

    params = (w1, b1, w2, jnp.zeros(w2.shape[1], w2.dtype))
    jac = jax.vmap(jax.jacrev(f), in_axes=(None, 0))(params, x)
    return sum(jnp.sum(j**2) for j in jac)


def output_weight_pull(fn: Callable[..., Any]) -> bool:
    """Check ``fn(x, W1, b1, W2) -> d tr K / d W2`` for ``f(x) = tanh(x W1 + b1) W2 + b2``.

    ``x`` is ``(B, d)``, ``W1`` ``(d, h)``, ``b1`` ``(h,)`` and ``W2`` ``(h, C)``, weights
    stored as (inputs, outputs) like the book's ``FCN``; the answer has the shape of ``W2``.
    The reference differentiates the full Jacobian's squared norm with ``jax.grad``.
    """
    rng = np.random.default_rng(24)
    what = "output weight pull"
    for b, d, h, c in [(5, 2, 4, 3), (1, 3, 2, 1), (8, 4, 6, 2)]:
        x, w1 = rng.standard_normal((b, d)), rng.standard_normal((d, h))
        b1, w2 = 0.5 * rng.standard_normal(h), rng.standard_normal((h, c))
        with float64():
            expected = np.asarray(
                jax.grad(_one_hidden_trace)(*(jnp.asarray(a, jnp.float64) for a in (w2, x, w1, b1)))
            )
        got = _call(fn, x.copy(), w1.copy(), b1.copy(), w2.copy())
        if _shape(got) != w2.shape:
            return _report(False, "return an array with the shape of W2, (h, C).", what=what)
        if _close(got, expected, rtol=1e-5, atol=1e-8):  # float32 answers pass too
            continue
        slope_sq = (1.0 - np.tanh(x @ w1 + b1) ** 2) ** 2  # (B, h)
        if _close(got, np.zeros_like(expected)):
            hint = (
                "unlike in the linear model, W2 reaches tr K: it carries the gradients of the "
                "first layer's parameters."
            )
        elif _close(got, 2 * w2 * (slope_sq * np.sum(x**2, 1)[:, None]).sum(0)[:, None]):
            hint = "the first layer's bias b1 is a parameter too: its gradient adds to tr K."
        elif _close(got, expected / 2) or _close(got, 2 * expected):
            hint = "check the factor: tr K contains W2 squared."
        else:
            hint = (
                "write the first layer's share of tr K from the gradient of f_c(x_i) with "
                "respect to W1 and b1, which runs through column c of W2 and tanh'; the output "
                "layer's own share does not depend on W2."
            )
        return _report(False, hint, what=what)
    return _report(True, "", what=what)


# ------------------------------------------------------------------ output gradient


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def output_gradient(fn: Callable[[np.ndarray, np.ndarray], Any]) -> bool:
    """Check ``fn(logits, y) -> d L / d logits`` for the mean softmax cross-entropy ``L``.

    ``logits`` has shape ``(B, C)``, ``y`` integer labels ``(B,)``; the answer has the shape
    of ``logits``. Cases include large logits, where a naive softmax overflows.
    """
    rng = np.random.default_rng(22)
    cases = [
        (rng.standard_normal((4, 3)), np.array([0, 2, 1, 1])),
        (rng.standard_normal((6, 2)), np.array([1, 0, 0, 1, 1, 0])),
        (np.array([[800.0, 0.0, -5.0], [0.0, 1.0, 2.0]]), np.array([1, 2])),
    ]
    what = "output gradient"
    for logits, y in cases:
        b, c = logits.shape
        expected = (_softmax(logits) - np.eye(c)[y]) / b
        got = _call(fn, logits.copy(), y.copy())
        if _shape(got) != expected.shape:
            return _report(False, "return an array with the shape of the logits, (B, C).",
                           what=what)  # fmt: skip
        if _close(got, expected * b):
            return _report(False, "L is the mean over the batch, not the sum.", what=what)
        if _close(got, -expected):
            return _report(False, "check the sign: the gradient points towards larger loss.",
                           what=what)  # fmt: skip
        if not np.all(np.isfinite(np.asarray(got, dtype=float))):
            return _report(
                False,
                "your gradient is not finite for large logits: stabilise the softmax.",
                what=what,
            )
        if not _close(got, expected, rtol=1e-6, atol=1e-9):
            return _report(
                False, "differentiate -log softmax(f)_y with respect to every logit f_c.", what=what
            )
    return _report(True, "", what=what)


# ------------------------------------------------------------------ log-det gradient


def logdet_gradient(fn: Callable[[np.ndarray], Any]) -> bool:
    """Check ``fn(J) -> d log det(J J^T) / d J`` for a full-row-rank ``J`` of shape ``(n, P)``.

    Cases include an ill-scaled ``J`` whose kernel is far from the identity.
    """
    rng = np.random.default_rng(23)
    cases = [rng.standard_normal((3, 7)), rng.standard_normal((5, 5)),
             rng.standard_normal((4, 9)) * np.array([[10.0], [1.0], [0.1], [1.0]])]  # fmt: skip
    what = "log-det gradient"
    for jac in cases:
        kernel = jac @ jac.T
        expected = 2.0 * np.linalg.solve(kernel, jac)
        got = _call(fn, jac.copy())
        if _shape(got) != expected.shape:
            return _report(False, "return an array with the shape of J, (n, P).", what=what)
        if _close(got, expected / 2):
            return _report(False, "K = J J^T contains J twice: mind the factor.", what=what)
        if _close(got, 2.0 * jac):
            return _report(False, "the gradient involves the inverse of K.", what=what)
        if not _close(got, expected, rtol=1e-6, atol=1e-9):
            return _report(
                False,
                "use d log det K = tr(K^{-1} dK) with dK = dJ J^T + J dJ^T, and solve with "
                "the Cholesky factor of K rather than inverting it.",
                what=what,
            )
    return _report(True, "", what=what)
