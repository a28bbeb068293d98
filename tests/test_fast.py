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


class Tied(nnx.Module):
    """A tapped layer's kernel reused outside the layer (weight tying)."""

    def __init__(self, rngs):
        self.enc = Linear(5, 4, rngs=rngs)
        self.out = Linear(4, 3, rngs=rngs)

    def __call__(self, x, rngs=None):
        h = jnp.tanh(self.enc(x))
        return self.out(h) + (h @ self.enc.kernel[...].T)[:, :3]


class Mixing(nnx.Module):
    """A parameter-free operation across the batch: the samples are not independent."""

    def __init__(self, rngs):
        self.a = Linear(5, 4, rngs=rngs)
        self.b = Linear(4, 3, rngs=rngs)

    def __call__(self, x, rngs=None):
        h = jnp.tanh(self.a(x))
        return self.b(h - h.mean(axis=0))


class RowConv(nnx.Module):
    """``Conv`` with an integer kernel size on images: a 1-d convolution along every row."""

    def __init__(self, rngs):
        self.c = Conv(2, 3, 3, strides=2, rngs=rngs)
        self.o = Linear(3 * 6 * 4, 2, rngs=rngs)

    def __call__(self, x, rngs=None):
        h = jnp.tanh(self.c(x))
        return self.o(h.reshape(h.shape[0], -1))


def batched_jacobian_trace(apply_fn, params, x):
    """tr K of the *batched* model: the Jacobian of all its outputs at once, mixing or not."""
    jac = jax.jacrev(lambda p: apply_fn(p, x).reshape(-1))(params)
    return sum(float(jnp.sum(leaf**2)) for leaf in jax.tree.leaves(jac))


CASES = {
    "tied": (Tied, (6, 5)),
    "mixing": (Mixing, (6, 5)),
    "row-conv": (RowConv, (4, 6, 8, 2)),
    "untapped": (Untapped, (4, 3)),
    "shared": (Shared, (4, 3)),
    "circular": (CircularCNN, (2, 5, 5, 1)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_fast_path_matches_the_batched_jacobian_or_refuses(name, x64):
    """Every case where the structured method's hypotheses might fail: its answer is the
    trace of the batched model's Jacobian, or it refuses and says why; ``auto`` is right."""
    module, shape = CASES[name]
    apply_fn, params = functional(module(nnx.Rngs(0)))
    params = jax.tree.map(lambda a: a.astype(jnp.float64), params)
    x = jax.random.normal(jax.random.key(0), shape, dtype=jnp.float64)
    truth = batched_jacobian_trace(apply_fn, params, x)
    reason = fast.structure_report(apply_fn, params, x)
    if reason is None:
        assert float(mgs_trace(apply_fn, params, x, method="structured")) == pytest.approx(
            truth, rel=1e-10
        )
        assert float(jnp.trace(fast.structured_kernel(apply_fn, params, x))) == pytest.approx(
            truth, rel=1e-10
        )
    else:
        with pytest.raises(ValueError, match="does not apply to this model"):
            mgs_trace(apply_fn, params, x, method="structured")
        with pytest.raises(ValueError, match="does not apply to this model"):
            fast.structured_kernel(apply_fn, params, x)
    if name == "mixing":  # no per-sample kernel exists: every exact method refuses
        assert "depends on the other samples" in reason
        for method in ("auto", "jacobian"):
            with pytest.raises(ValueError, match="depends on the other samples"):
                mgs_trace(apply_fn, params, x, method=method)
        return
    assert float(mgs_trace(apply_fn, params, x)) == pytest.approx(truth, rel=1e-10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # auto's choice is its contract: no warning
        jax.jit(lambda p: mgs_trace(apply_fn, p, x))(params)


@pytest.mark.parametrize("name, words", [
    ("tied", "outside their own tapped affine map"), ("untapped", "outside their own tapped"),
    ("shared", "called more than once"), ("circular", "neither dense nor a plain convolution"),
    ("mixing", "depends on the other samples"),
])  # fmt: skip
def test_the_refusal_says_why(name, words):
    module, shape = CASES[name]
    apply_fn, params = functional(module(nnx.Rngs(0)))
    assert words in fast.structure_report(apply_fn, params, jnp.ones(shape))
    assert not fast.is_structured(apply_fn, params, jnp.ones(shape))
    assert mgs_trace is not None


def test_the_row_convolution_is_structured():
    apply_fn, params = functional(RowConv(nnx.Rngs(0)))
    assert fast.structure_report(apply_fn, params, jnp.ones((2, 6, 8, 2))) is None


def test_auto_chooses_by_the_model_never_by_history():
    from mgs_teach.kernel import trace_method

    fcn_fn, fcn_params = functional(FCN(3, 2, depth=1, width=4, rngs=nnx.Rngs(0)))
    tied_fn, tied_params = functional(Tied(nnx.Rngs(0)))
    for _ in range(2):
        assert trace_method(fcn_fn, fcn_params, jnp.ones((4, 3))) == "structured"
        assert trace_method(tied_fn, tied_params, jnp.ones((4, 5))) == "jacobian"


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
