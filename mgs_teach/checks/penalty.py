"""Self-checks for the chapter \"The MGS penalty\".

Every check is data for :func:`mgs_teach.checks._common.check`: fixed cases, the expected
answers computed here, and hints for the usual mistakes. The hints never contain the
expected numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mgs_teach.checks._common import Case, check
from mgs_teach.kernel import float64

__all__ = ["linear_trace", "logdet_gradient", "output_gradient", "output_weight_pull"]


# -------------------------------------------------------------------- linear trace


def linear_trace(fn: Callable[[np.ndarray, int], Any]) -> bool:
    """Check ``fn(x, n_outputs) -> tr K`` for the linear model ``f(x) = W x + b``.

    ``x`` has shape ``(B, d)``; ``W`` is ``(n_outputs, d)`` and ``b`` is ``(n_outputs,)``.
    The cases vary ``B``, ``d`` and ``n_outputs`` (including a single output).
    """
    rng = np.random.default_rng(21)
    inputs = [(rng.standard_normal((5, 3)), 2), (rng.standard_normal((1, 4)), 1),
              (3.0 * rng.standard_normal((7, 2)), 4)]  # fmt: skip
    return check(
        "linear trace", fn, [Case((x, c), c * float(np.sum(x**2) + len(x))) for x, c in inputs],
        shape_hint="return a single number, tr K, not an array.",
        diagnoses=[(lambda x, c: c * float(np.sum(x**2)),
                    "the bias b is a parameter too: its gradient is not zero.")],
        hint="tr K sums the squared parameter gradient of every output of every sample; "
             "the gradient of f_c(x_i) with respect to W touches only row c of W.",
        rtol=1e-6,
    )  # fmt: skip


# --------------------------------------------------------------- output weight pull


def _one_hidden_trace(w2: jax.Array, x: jax.Array, w1: jax.Array, b1: jax.Array) -> jax.Array:
    """tr K = ||J||_F^2 of ``tanh(x W1 + b1) W2 + b2`` from its full per-sample Jacobian."""

    def f(params: tuple, xi: jax.Array) -> jax.Array:
        a, b, v, c = params
        return jnp.tanh(xi @ a + b) @ v + c

    params = (w1, b1, w2, jnp.zeros(w2.shape[1], w2.dtype))
    jac = jax.vmap(jax.jacrev(f), in_axes=(None, 0))(params, x)
    return sum(jnp.sum(j**2) for j in jac)


def _pull(x: np.ndarray, w1: np.ndarray, b1: np.ndarray, w2: np.ndarray) -> np.ndarray:
    with float64():
        args = (jnp.asarray(a, jnp.float64) for a in (w2, x, w1, b1))
        return np.asarray(jax.grad(_one_hidden_trace)(*args))


def output_weight_pull(fn: Callable[..., Any]) -> bool:
    """Check ``fn(x, W1, b1, W2) -> d tr K / d W2`` for ``f(x) = tanh(x W1 + b1) W2 + b2``.

    ``x`` is ``(B, d)``, ``W1`` ``(d, h)``, ``b1`` ``(h,)`` and ``W2`` ``(h, C)``, weights
    stored as (inputs, outputs) like the book's ``FCN``; the answer has the shape of ``W2``.
    The reference differentiates the full Jacobian's squared norm with ``jax.grad``.
    """
    rng = np.random.default_rng(24)
    cases = []
    for b, d, h, c in [(5, 2, 4, 3), (1, 3, 2, 1), (8, 4, 6, 2)]:
        x, w1 = rng.standard_normal((b, d)), rng.standard_normal((d, h))
        b1, w2 = 0.5 * rng.standard_normal(h), rng.standard_normal((h, c))
        cases.append(Case((x, w1, b1, w2), _pull(x, w1, b1, w2)))

    def no_bias(x, w1, b1, w2):
        slope_sq = (1.0 - np.tanh(x @ w1 + b1) ** 2) ** 2  # (B, h)
        return 2 * w2 * (slope_sq * np.sum(x**2, 1)[:, None]).sum(0)[:, None]

    factor = "check the factor: tr K contains W2 squared."
    return check(
        "output weight pull", fn, cases,
        shape_hint="return an array with the shape of W2, (h, C).",
        diagnoses=[
            (lambda x, w1, b1, w2: np.zeros_like(w2),
             "unlike in the linear model, W2 reaches tr K: it carries the gradients of the "
             "first layer's parameters."),
            (no_bias, "the first layer's bias b1 is a parameter too: its gradient adds to tr K."),
            (lambda *a: _pull(*a) / 2, factor),
            (lambda *a: 2 * _pull(*a), factor),
        ],
        hint="write the first layer's share of tr K from the gradient of f_c(x_i) with "
             "respect to W1 and b1, which runs through column c of W2 and tanh'; the output "
             "layer's own share does not depend on W2.",
        atol=1e-8,
    )  # fmt: skip


# ------------------------------------------------------------------ output gradient


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def _ce_grad(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (_softmax(logits) - np.eye(logits.shape[1])[y]) / len(y)


def output_gradient(fn: Callable[[np.ndarray, np.ndarray], Any]) -> bool:
    """Check ``fn(logits, y) -> d L / d logits`` for the mean softmax cross-entropy ``L``.

    ``logits`` has shape ``(B, C)``, ``y`` integer labels ``(B,)``; the answer has the shape
    of ``logits``. Cases include large logits, where a naive softmax overflows.
    """
    rng = np.random.default_rng(22)
    inputs = [
        (rng.standard_normal((4, 3)), np.array([0, 2, 1, 1])),
        (rng.standard_normal((6, 2)), np.array([1, 0, 0, 1, 1, 0])),
        (np.array([[800.0, 0.0, -5.0], [0.0, 1.0, 2.0]]), np.array([1, 2])),
    ]
    return check(
        "output gradient", fn, [Case((f, y), _ce_grad(f, y)) for f, y in inputs],
        shape_hint="return an array with the shape of the logits, (B, C).",
        diagnoses=[
            (lambda f, y: _ce_grad(f, y) * len(y), "L is the mean over the batch, not the sum."),
            (lambda f, y: -_ce_grad(f, y),
             "check the sign: the gradient points towards larger loss."),
        ],
        symptoms=[(lambda got, *_: not np.all(np.isfinite(np.asarray(got, dtype=float))),
                   "your gradient is not finite for large logits: stabilise the softmax.")],
        hint="differentiate -log softmax(f)_y with respect to every logit f_c.",
        rtol=1e-6, atol=1e-9,
    )  # fmt: skip


# ------------------------------------------------------------------ log-det gradient


def logdet_gradient(fn: Callable[[np.ndarray], Any]) -> bool:
    """Check ``fn(J) -> d log det(J J^T) / d J`` for a full-row-rank ``J`` of shape ``(n, P)``.

    Cases include an ill-scaled ``J`` whose kernel is far from the identity.
    """
    rng = np.random.default_rng(23)
    jacobians = [rng.standard_normal((3, 7)), rng.standard_normal((5, 5)),
                 rng.standard_normal((4, 9)) * np.array([[10.0], [1.0], [0.1], [1.0]])]  # fmt: skip

    def expected(jac):
        return 2.0 * np.linalg.solve(jac @ jac.T, jac)

    return check(
        "log-det gradient", fn, [Case((jac,), expected(jac)) for jac in jacobians],
        shape_hint="return an array with the shape of J, (n, P).",
        diagnoses=[(lambda jac: expected(jac) / 2, "K = J J^T contains J twice: mind the factor."),
                   (lambda jac: 2.0 * jac, "the gradient involves the inverse of K.")],
        hint="use d log det K = tr(K^{-1} dK) with dK = dJ J^T + J dJ^T, and solve with "
             "the Cholesky factor of K rather than inverting it.",
        rtol=1e-6, atol=1e-9,
    )  # fmt: skip
