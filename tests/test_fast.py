"""The structured trace and kernel against brute force; the Hutchinson estimator's statistics."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.flatten_util import ravel_pytree

from mgs_teach import fast, mgs_kernel, mgs_trace
from mgs_teach.models import FCN, AlexNet, Conv, LeNet5, Linear, functional


class GramCNN(nnx.Module):
    """Strided conv, then a conv where the patch-Gram identity is the cheaper branch."""

    def __init__(self, rngs):
        self.c1 = Conv(1, 16, (3, 3), strides=(2, 2), padding="SAME", rngs=rngs)  # 6x6 -> 3x3
        self.c2 = Conv(16, 32, (3, 3), padding="VALID", use_bias=False, rngs=rngs)  # 9 positions
        self.head = Linear(32, 3, rngs=rngs)

    def __call__(self, x, rngs=None):
        x = jnp.tanh(self.c1(x))
        x = jnp.tanh(self.c2(x))
        return self.head(x.reshape(x.shape[0], -1))


class PaddedCNN(nnx.Module):
    """Explicit, asymmetric padding with unequal strides, and a 1-d convolution."""

    def __init__(self, rngs):
        self.c1 = Conv(2, 4, (3, 2), strides=(2, 1), padding=((1, 2), (0, 1)), rngs=rngs)
        self.c2 = Conv(4, 3, (2,), padding=1, rngs=rngs)
        self.head = Linear(3, 2, rngs=rngs)

    def __call__(self, x, rngs=None):
        x = jnp.tanh(self.c1(x))  # (B, 4, 6, 4)
        x = jnp.tanh(self.c2(x.reshape(x.shape[0], -1, 4)))  # (B, 25, 3)
        return self.head(x.mean(axis=1))


class CircularCNN(nnx.Module):
    def __init__(self, rngs):
        self.c = Conv(1, 2, (3, 3), padding="CIRCULAR", rngs=rngs)
        self.head = Linear(2, 2, rngs=rngs)

    def __call__(self, x, rngs=None):
        return self.head(jnp.tanh(self.c(x)).mean(axis=(1, 2)))


MODELS = {
    "fcn": (lambda: FCN(12, 4, depth=3, width=9, rngs=nnx.Rngs(0)), (5, 12)),
    "padded-cnn": (lambda: PaddedCNN(nnx.Rngs(4)), (3, 7, 5, 2)),
    "lenet5": (lambda: LeNet5(10, rngs=nnx.Rngs(1)), (2, 28, 28)),
    "alexnet": (lambda: AlexNet(10, rngs=nnx.Rngs(2)), (1, 28, 28)),
    "gram-cnn": (lambda: GramCNN(nnx.Rngs(3)), (4, 6, 6, 1)),
}


def float64_model(name):
    apply_fn, params = functional(MODELS[name][0]())
    params = jax.tree.map(lambda a: a.astype(jnp.float64), params)
    x = jax.random.normal(jax.random.key(7), MODELS[name][1], dtype=jnp.float64)
    return apply_fn, params, x


@pytest.mark.parametrize("name", sorted(MODELS))
def test_structured_trace_and_gradient_equal_brute_force(name, x64):
    apply_fn, params, x = float64_model(name)
    assert fast.is_structured(apply_fn, params, x)
    exact, exact_grad = jax.jit(jax.value_and_grad(lambda p: mgs_trace(apply_fn, p, x)))(params)
    value, grad = jax.jit(jax.value_and_grad(lambda p: fast.structured_trace(apply_fn, p, x)))(
        params
    )
    np.testing.assert_allclose(value, exact, rtol=1e-12)
    g, g_exact = ravel_pytree(grad)[0], ravel_pytree(exact_grad)[0]
    np.testing.assert_allclose(g, g_exact, rtol=1e-10, atol=1e-12 * float(jnp.abs(g_exact).max()))


@pytest.mark.parametrize("name", ["fcn", "lenet5", "gram-cnn", "padded-cnn"])
def test_structured_kernel_equals_the_jacobian_kernel(name, x64):
    apply_fn, params, x = float64_model(name)
    np.testing.assert_allclose(fast.structured_kernel(apply_fn, params, x),
                               mgs_kernel(apply_fn, params, x), rtol=1e-10, atol=1e-10)  # fmt: skip


@pytest.mark.parametrize("name", ["fcn", "lenet5"])
def test_float32_agrees_to_float32_precision(name):
    apply_fn, params = functional(MODELS[name][0]())
    x = jax.random.normal(jax.random.key(8), (16, *MODELS[name][1][1:]))
    a, b = (
        mgs_trace(apply_fn, params, x),
        jax.jit(lambda p: fast.structured_trace(apply_fn, p, x))(params),
    )
    np.testing.assert_allclose(b, a, rtol=1e-4)


class Untapped(nnx.Module):
    def __init__(self, rngs):
        self.a = nnx.Linear(3, 5, rngs=rngs)  # a plain flax layer: not tapped
        self.b = Linear(5, 2, rngs=rngs)

    def __call__(self, x, rngs=None):
        return self.b(jnp.tanh(self.a(x)))


class Shared(nnx.Module):
    def __init__(self, rngs):
        self.a = Linear(3, 3, rngs=rngs)

    def __call__(self, x, rngs=None):
        return self.a(jnp.tanh(self.a(x)))  # the same layer twice: gradients add up


@pytest.mark.parametrize("module, shape, reason", [
    (Untapped, (4, 3), "outside tapped layers"),
    (Shared, (4, 3), "used more than once"),
    (CircularCNN, (2, 5, 5, 1), "neither dense nor a plain convolution"),
])  # fmt: skip
def test_other_models_fall_back_with_a_notice(module, shape, reason):
    apply_fn, params = functional(module(nnx.Rngs(0)))
    x = jax.random.normal(jax.random.key(0), shape)
    assert not fast.is_structured(apply_fn, params, x)
    fast._NOTICED.clear()
    with pytest.warns(UserWarning, match=f"fast path unavailable .*{reason}"):
        value = fast.structured_trace(apply_fn, params, x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one notice per reason, not one per call
        fast.structured_trace(apply_fn, params, x)
    np.testing.assert_allclose(value, mgs_trace(apply_fn, params, x), rtol=1e-6)
    np.testing.assert_allclose(fast.structured_kernel(apply_fn, params, x),
                               mgs_kernel(apply_fn, params, x), rtol=1e-6)  # fmt: skip


def hutchinson_stats(apply_fn, params, x, structured, n=400, probes=1):
    keys = jax.random.split(jax.random.key(0), n)
    est = jax.jit(jax.vmap(lambda k: fast.hutchinson_trace(apply_fn, params, x, k, probes)))(keys)
    k = np.asarray(mgs_kernel(apply_fn, params, x), dtype=np.float64)
    b = x.shape[0]
    c = k.shape[0] // b
    if structured:  # only each sample's own C x C block enters
        blocks = k.reshape(b, c, b, c)[np.arange(b), :, np.arange(b), :]
        variance = 2 * (np.sum(blocks**2) - np.sum(np.diagonal(k) ** 2)) / probes
    else:
        variance = 2 * (np.sum(k**2) - np.sum(np.diagonal(k) ** 2)) / probes
    return np.asarray(est, dtype=np.float64), np.trace(k), variance


@pytest.mark.parametrize("module", ["structured", "generic"])
def test_hutchinson_is_unbiased_with_the_documented_variance(module, x64):
    if module == "structured":
        apply_fn, params = functional(FCN(3, 4, depth=1, width=6, rngs=nnx.Rngs(0)))
    else:
        apply_fn, params = functional(Untapped(nnx.Rngs(0)))
    params = jax.tree.map(lambda a: a.astype(jnp.float64), params)
    x = jax.random.normal(jax.random.key(1), (5, 3), dtype=jnp.float64)
    fast._NOTICED.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est, exact, variance = hutchinson_stats(apply_fn, params, x, module == "structured")
    n = len(est)
    assert abs(est.mean() - exact) < 4 * np.sqrt(variance / n)  # unbiased
    # the sample variance of n draws has relative sd ~ sqrt(2/n) (about 7 %) for normal-ish draws
    assert 0.7 < est.var(ddof=1) / variance < 1.4
    four = hutchinson_stats(apply_fn, params, x, module == "structured", n=200, probes=4)[0]
    assert 0.6 < four.var(ddof=1) / (variance / 4) < 1.5  # variance falls as 1/k


def test_hutchinson_needs_a_probe():
    apply_fn, params = functional(FCN(3, 2, depth=1, width=4, rngs=nnx.Rngs(0)))
    with pytest.raises(ValueError, match="at least one probe"):
        fast.hutchinson_trace(apply_fn, params, jnp.ones((2, 3)), jax.random.key(0), 0)


def test_tap_is_the_identity_outside_the_fast_path():
    layer = Linear(3, 2, rngs=nnx.Rngs(0))
    x = jnp.ones((4, 3))
    np.testing.assert_array_equal(layer(x), nnx.Linear.__call__(layer, x))
