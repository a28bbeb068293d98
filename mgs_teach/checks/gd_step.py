"""Self-checks for the chapter "One step of gradient descent, seen through the model".

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
import optax

from mgs_teach.checks._common import Case, _shape, check
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
    return check(
        "mse_update", fn, [Case((jnp.asarray(kernel), jnp.asarray(f), jnp.asarray(y), 0.1),
                                expected)],
        shape_hint=lambda case, got: f"return shape (B, C) = {(b, c)}, got {_shape(got)}",
        hint="the gradient of ½‖f - y‖² with respect to f is the residual; flatten it "
             "sample-major",
        rtol=1e-4, atol=1e-6,
    )  # fmt: skip


def max_stable_lr(value: Any, kernel: Any) -> bool:
    """Check the largest learning rate for which ``(I - eta K)^t`` shrinks every component."""
    lam = float(np.max(np.linalg.eigvalsh(np.asarray(kernel, dtype=float))))
    return check("max_stable_lr", lambda: value, [Case((), 2.0 / lam)],
                 hint="look at |1 - eta * lambda| for every eigenvalue lambda of K",
                 rtol=1e-3, atol=0.0)  # fmt: skip


def ce_logit_grad(fn: Callable[..., Any]) -> bool:
    """Check ``fn(logits, labels)``: the gradient of the mean cross-entropy w.r.t. the logits."""
    rng = np.random.default_rng(2)
    logits = jnp.asarray(rng.normal(size=(6, 4)) * 3)
    labels = jnp.asarray(rng.integers(0, 4, size=6))
    expected = jax.grad(
        lambda f: optax.softmax_cross_entropy_with_integer_labels(f, labels).mean()
    )(logits)
    return check(
        "ce_logit_grad", fn, [Case((logits, labels), expected)],
        diagnoses=[(lambda f, y: f.shape[0] * expected,
                    "almost: this is the gradient of the sum, not of the mean")],
        hint="differentiate -f_y + log sum_c exp(f_c); remember the 1/B of the mean",
        rtol=1e-4, atol=1e-7,
    )  # fmt: skip


def curvature_term(q: Any, apply_fn: Callable[..., Any], params: Any, x: Any, y: Any) -> bool:
    """Check ``q = ½ d²/dt² f(x; θ + t d)`` at ``t = 0``, ``d = -∇θ`` of the mean cross-entropy."""
    grads = jax.grad(
        lambda p: optax.softmax_cross_entropy_with_integer_labels(apply_fn(p, x), y).mean()
    )(params)

    def along(t: jax.Array) -> jax.Array:
        return apply_fn(jax.tree.map(lambda p, g: p - t * g, params, grads), x)

    second = jax.jvp(lambda t: jax.jvp(along, (t,), (1.0,))[1], (0.0,), (1.0,))[1]
    expected = 0.5 * second
    return check(
        "curvature_term", lambda: q, [Case((), expected)],
        diagnoses=[(lambda: 2 * expected,
                    "right direction, but the Taylor term carries a factor 1/2")],
        hint="differentiate twice along d (a jvp of a jvp) and keep the factor 1/2",
        rtol=1e-3, atol=1e-9,
    )  # fmt: skip


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
    rng = np.random.default_rng(4)
    b, d, h, c = 6, 2, 8, 3
    with float64():
        cases = []
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
                norms = _step_norms(apply_fn, params, x, y, eta)
                cases.append(Case((apply_fn, params, x, y, eta), norms["error"]))

        def norm(name):
            return lambda *args: _step_norms(*args)[name]

        return check(
            "linearisation error", fn, cases,
            shape_hint="return one number, the norm of the difference.",
            diagnoses=[
                (norm("sign"), "the first-order prediction is -η K ∇_f L: mind the sign"),
                (norm("actual"),
                 "return the norm of the difference of the actual and predicted changes"),
                (norm("linear"),
                 "return the norm of the difference of the actual and predicted changes"),
                (lambda f, p, x, y, eta: _step_norms(f, p, x, y, len(x) * eta)["error"],
                 "L is the mean over the batch, not the sum: mind the factor 1/B"),
            ],
            hint="take one gradient-descent step on the mean cross-entropy of the batch and "
                 "compare f(X) after it with f(X) - η K ∇_f L, with ∇_f L flattened "
                 "sample-major like the rows of K",
            rtol=1e-5, atol=1e-12,
        )  # fmt: skip


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
    rng = np.random.default_rng(5)
    cases = []
    for b, c, block_diagonal in ((6, 2, False), (4, 3, False), (5, 2, True)):
        j = rng.normal(size=(b * c, 3 * b * c))
        if block_diagonal:  # the samples' gradients are orthogonal to each other
            j = j * np.kron(np.eye(b), np.ones((c, 3 * c)))
        labels = rng.integers(0, c, size=b)
        direction = np.eye(c)[labels] - np.eye(c)[(labels + 1) % c]
        args = (j @ j.T, rng.normal(size=(b, c)), direction)
        cases.append(Case(args, _share(*args, own="blocks")))

    def total_minus_own(*args):
        s, o = _terms(*args, own="blocks")
        return np.abs(s + o) / (np.abs(s) + np.abs(s + o))

    def signed(*args):
        s, o = _terms(*args, own="blocks")
        return o / (s + o)

    return check(
        "share from others", fn, cases,
        shape_hint=lambda case, got: (
            f"return one share per sample, shape (B,) = {(len(case.args[1]),)}."),
        diagnoses=[
            (lambda *args: 1 - _share(*args, own="blocks"),
             "that is the share of the sample's own term; the question asks for the others'"),
            (lambda *args: _share(*args, own="diagonal"),
             "a sample's own term is its whole C x C block k(x_i, x_i), cross-logit entries "
             "included, not only the diagonal of K"),
            (total_minus_own, "the others' term is the total update minus the sample's own term"),
            (signed, "the two terms can have opposite signs: compare their absolute values"),
        ],
        hint="view K as (B, C, B, C): sample i's own term uses its block k(x_i, x_i), the "
             "others' term every block k(x_i, x_j) with j ≠ i; project both on direction[i]",
        rtol=1e-5, atol=1e-7,  # float32 answers pass too
    )  # fmt: skip


def _terms(kernel: np.ndarray, grad_f: np.ndarray, direction: np.ndarray,
           own: str) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Own and others' terms, a sample's own entries being its whole block or its diagonal."""
    b, c = grad_f.shape
    mask = np.kron(np.eye(b), np.ones((c, c))) if own == "blocks" else np.eye(b * c)
    return _own_others(kernel, grad_f, direction, mask)


def _share(kernel: np.ndarray, grad_f: np.ndarray, direction: np.ndarray, own: str) -> np.ndarray:
    """``|o_i| / (|s_i| + |o_i|)``, the share of the others' term (see :func:`_terms`)."""
    s, o = _terms(kernel, grad_f, direction, own)
    return np.abs(o) / (np.abs(s) + np.abs(o))
