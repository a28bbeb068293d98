"""The MGS kernel against a brute-force Jacobian, its metrics against NumPy, its errors."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.flatten_util import ravel_pytree

from mgs_teach import (
    MGSPrecisionWarning,
    kernel_logdet,
    mgs_jacobian,
    mgs_kernel,
    mgs_logdet,
    mgs_metrics,
    mgs_spectrum,
    mgs_trace,
)
from mgs_teach.models import FCN, functional
from tests.conftest import enable_x64

# ---------------------------------------------------------------------- test models


def mlp(sizes, key, scalar=False):
    """A plain-JAX MLP (no Flax), as apply_fn and params."""
    keys = jax.random.split(key, len(sizes) - 1)
    params = [
        {"w": jax.random.normal(k, (a, b)) / np.sqrt(a), "b": 0.1 * jax.random.normal(k, (b,))}
        for k, a, b in zip(keys, sizes[:-1], sizes[1:])
    ]

    def apply_fn(p, x):
        for layer in p[:-1]:
            x = jnp.tanh(x @ layer["w"] + layer["b"])
        out = x @ p[-1]["w"] + p[-1]["b"]
        return out[:, 0] if scalar else out

    return apply_fn, params


class SmallCNN(nnx.Module):
    def __init__(self, d_out, rngs):
        self.conv1 = nnx.Conv(1, 3, kernel_size=(3, 3), rngs=rngs)
        self.conv2 = nnx.Conv(3, 4, kernel_size=(3, 3), strides=(2, 2), rngs=rngs)
        self.head = nnx.Linear(4 * 4 * 4, d_out, rngs=rngs)

    def __call__(self, x):
        x = jax.nn.relu(self.conv1(x))
        x = jax.nn.relu(self.conv2(x))
        return self.head(x.reshape(x.shape[0], -1))


def brute_force_jacobian(apply_fn, params, x):
    """J by forward-mode differentiation of the whole flattened batch output (independent path)."""
    flat, unravel = ravel_pytree(params)

    def outputs(v):
        out = apply_fn(unravel(v), x)
        return out.reshape(-1)  # row-major: sample-major ordering i*C + c

    return jax.jacfwd(outputs)(flat)


MODELS = {
    "mlp-vector": lambda: (
        *mlp([3, 7, 5, 4], jax.random.key(0)),
        jax.random.normal(jax.random.key(1), (6, 3)),
    ),
    "mlp-scalar": lambda: (
        *mlp([3, 7, 5, 1], jax.random.key(2), scalar=True),
        jax.random.normal(jax.random.key(3), (9, 3)),
    ),
    "nnx-fcn": lambda: (
        *functional(FCN(2, 3, depth=2, width=6, rngs=nnx.Rngs(4))),
        jax.random.normal(jax.random.key(5), (5, 2)),
    ),
    "nnx-cnn-vector": lambda: (
        *functional(SmallCNN(3, nnx.Rngs(6))),
        jax.random.normal(jax.random.key(7), (4, 8, 8, 1)),
    ),
    "nnx-cnn-scalar": lambda: (
        *functional(SmallCNN(1, nnx.Rngs(8))),
        jax.random.normal(jax.random.key(9), (5, 8, 8, 1)),
    ),
}


@pytest.fixture(params=sorted(MODELS))
def model(request):
    return MODELS[request.param]()


# ---------------------------------------------------------------- against brute force


def test_jacobian_matches_brute_force(model):
    apply_fn, params, x = model
    np.testing.assert_allclose(
        mgs_jacobian(apply_fn, params, x),
        brute_force_jacobian(apply_fn, params, x),
        rtol=1e-5,
        atol=1e-5,
    )


def test_kernel_matches_brute_force(model):
    apply_fn, params, x = model
    j = np.asarray(brute_force_jacobian(apply_fn, params, x), dtype=np.float64)
    k = mgs_kernel(apply_fn, params, x)
    n_out = apply_fn(params, x).reshape(x.shape[0], -1).shape[1]
    assert k.shape == (x.shape[0] * n_out,) * 2
    np.testing.assert_allclose(k, j @ j.T, rtol=1e-4, atol=1e-4 * np.abs(j @ j.T).max())


def test_kernel_is_symmetric_psd(model):
    apply_fn, params, x = model
    k = np.asarray(mgs_kernel(apply_fn, params, x), dtype=np.float64)
    np.testing.assert_allclose(k, k.T, rtol=1e-6, atol=1e-6)
    assert np.linalg.eigvalsh(k).min() > -1e-4 * np.abs(k).max()


def test_trace_and_spectrum_match_numpy(model):
    apply_fn, params, x = model
    k = np.asarray(brute_force_jacobian(apply_fn, params, x), dtype=np.float64)
    k = k @ k.T
    np.testing.assert_allclose(mgs_trace(apply_fn, params, x), np.trace(k), rtol=1e-5)
    eig = np.sort(np.linalg.eigvalsh(k))[::-1]
    np.testing.assert_allclose(
        mgs_spectrum(apply_fn, params, x), eig, rtol=1e-4, atol=1e-4 * eig[0]
    )
    assert np.all(np.diff(np.asarray(mgs_spectrum(apply_fn, params, x))) <= 0)


def test_kernel_ordering_is_sample_major():
    """K[i*C + c, j*C + d] = grad f_c(x_i) . grad f_d(x_j), each gradient taken on its own."""
    apply_fn, params = mlp([3, 5, 4], jax.random.key(11))
    x = jax.random.normal(jax.random.key(12), (3, 3))
    n_out = 4
    k = mgs_kernel(apply_fn, params, x)

    def grad_of(i, c):
        g = jax.grad(lambda p: apply_fn(p, x[i : i + 1])[0, c])(params)
        return ravel_pytree(g)[0]

    for i, c, j, d in [(0, 0, 0, 0), (0, 1, 2, 3), (2, 3, 1, 0), (1, 2, 1, 1)]:
        expected = jnp.dot(grad_of(i, c), grad_of(j, d))
        np.testing.assert_allclose(k[i * n_out + c, j * n_out + d], expected, rtol=1e-5, atol=1e-6)


def test_logdet_matches_numpy_in_float64():
    with enable_x64():
        apply_fn, params = mlp([4, 16, 3], jax.random.key(13))
        params = jax.tree.map(lambda a: a.astype(jnp.float64), params)
        x = jax.random.normal(jax.random.key(14), (5, 4), dtype=jnp.float64)
        k = np.asarray(mgs_kernel(apply_fn, params, x))
        assert k.dtype == np.float64
        sign, expected = np.linalg.slogdet(k)
        assert sign > 0
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a well-conditioned float64 kernel warns about nothing
            got = mgs_logdet(apply_fn, params, x)
        np.testing.assert_allclose(got, expected, rtol=1e-10)
        np.testing.assert_allclose(mgs_metrics(apply_fn, params, x)["logdet"], expected, rtol=1e-10)
        np.testing.assert_allclose(
            mgs_metrics(apply_fn, params, x)["trace"], np.trace(k), rtol=1e-12
        )


# ------------------------------------------------------------------ log-det honesty


def test_logdet_of_singular_kernel_is_minus_inf_with_warning():
    # B*C = 8*3 = 24 outputs but only 2*3 + 3 = 9 parameters: rank K <= 9 < 24.
    apply_fn, params = mlp([2, 3], jax.random.key(15))
    x = jax.random.normal(jax.random.key(16), (8, 2))
    with pytest.warns(MGSPrecisionWarning, match="singular"):
        value = mgs_logdet(apply_fn, params, x)
    assert value == -np.inf


def test_jitter_gives_the_documented_regularised_value():
    apply_fn, params = mlp([2, 3], jax.random.key(15))
    x = jax.random.normal(jax.random.key(16), (8, 2))
    k = np.asarray(mgs_kernel(apply_fn, params, x), dtype=np.float64)
    sign, expected = np.linalg.slogdet(k + 0.1 * np.eye(k.shape[0]))
    assert sign > 0
    np.testing.assert_allclose(mgs_logdet(apply_fn, params, x, jitter=0.1), expected, rtol=1e-4)


def test_kernel_logdet_never_nan_under_jit():
    # Rank-1 PSD kernel whose tiny eigenvalues come out slightly negative in float32.
    v = jax.random.normal(jax.random.key(17), (12, 1))
    k = v @ v.T
    assert float(jnp.linalg.eigvalsh(k).min()) <= 1e-5  # round-off around zero
    value = jax.jit(kernel_logdet)(k)
    assert value == -np.inf and not np.isnan(value)
    assert np.isfinite(jax.jit(lambda m: kernel_logdet(m, jitter=1e-3))(k))


def test_float32_precision_limit_is_reported():
    # K = X X^T with X = [[1, 0], [1, d]]: eigenvalues ~ 2 and d^2/2, condition ~ 4/d^2.
    d = 0.005
    x = jnp.array([[1.0, 0.0], [1.0, d]], dtype=jnp.float32)
    apply_fn = lambda p, x: x @ p["w"]
    params = {"w": jnp.ones((2,), dtype=jnp.float32)}
    with pytest.warns(MGSPrecisionWarning, match="float32 precision.*jax_enable_x64"):
        value = mgs_logdet(apply_fn, params, x)
    assert np.isfinite(value)


def test_float64_resolves_what_float32_cannot():
    d = 0.005
    with enable_x64():
        x = jnp.array([[1.0, 0.0], [1.0, d]], dtype=jnp.float64)
        params = {"w": jnp.ones((2,), dtype=jnp.float64)}
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            value = mgs_logdet(lambda p, x: x @ p["w"], params, x)
        np.testing.assert_allclose(value, np.log(d**2), rtol=1e-9)  # det K = det(X)^2 = d^2


# ------------------------------------------------------------------------- errors


def test_empty_batch_is_rejected():
    apply_fn, params = mlp([3, 4], jax.random.key(0))
    with pytest.raises(ValueError, match="empty batch"):
        mgs_kernel(apply_fn, params, jnp.zeros((0, 3)))


def test_scalar_x_is_rejected():
    apply_fn, params = mlp([3, 4], jax.random.key(0))
    with pytest.raises(ValueError, match="scalar"):
        mgs_trace(apply_fn, params, jnp.float32(1.0))


def test_mismatched_input_shape_names_the_shape():
    apply_fn, params = mlp([3, 4], jax.random.key(0))
    with pytest.raises(ValueError, match=r"x of shape \(5, 7\)"):
        mgs_kernel(apply_fn, params, jnp.ones((5, 7)))


def test_output_without_batch_axis_is_rejected():
    apply_fn, params = mlp([3, 4], jax.random.key(0))
    with pytest.raises(ValueError, match="batch axis"):
        mgs_kernel(lambda p, x: apply_fn(p, x).sum(), params, jnp.ones((5, 3)))


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"w": [1.0, 2.0]}, "not an array"),
        ({"w": 3.0}, "not an array"),
        ({"w": "weights"}, "not an array"),
        ({"w": jnp.arange(3)}, "floating-point"),
        ({}, "no leaves"),
    ],
)
def test_non_array_params_are_rejected(bad, message):
    with pytest.raises((TypeError, ValueError), match=message):
        mgs_kernel(lambda p, x: x, bad, jnp.ones((2, 3)))


def test_non_finite_outputs_are_rejected():
    apply_fn, params = mlp([3, 4], jax.random.key(0))
    params[0]["b"] = params[0]["b"].at[0].set(jnp.nan)
    with pytest.raises(FloatingPointError, match="non-finite outputs"):
        mgs_logdet(apply_fn, params, jnp.ones((2, 3)))


def test_kernel_logdet_argument_errors():
    with pytest.raises(ValueError, match="square"):
        kernel_logdet(jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="jitter must be positive"):
        kernel_logdet(jnp.eye(2), jitter=0.0)


def test_kernel_works_under_jit():
    apply_fn, params = mlp([3, 5, 2], jax.random.key(18))
    x = jax.random.normal(jax.random.key(19), (4, 3))
    eager = mgs_kernel(apply_fn, params, x)
    jitted = jax.jit(lambda p, x: mgs_kernel(apply_fn, p, x))(params, x)
    np.testing.assert_allclose(jitted, eager, rtol=1e-5, atol=1e-6)


def test_cross_kernel_is_the_off_diagonal_block(model):
    apply_fn, params, x = model
    a, b = x[:2], x[2:]
    full = mgs_kernel(apply_fn, params, jnp.concatenate([a, b]))
    cross = mgs_kernel(apply_fn, params, a, b)
    n_out = full.shape[0] // x.shape[0]
    np.testing.assert_allclose(cross, full[: 2 * n_out, 2 * n_out :], rtol=1e-5, atol=1e-6)
