"""mgs_teach.ntk: kernel gradient descent, modes and the full-batch trajectory."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st

from mgs_teach import mgs_kernel, ntk
from mgs_teach.models import FCN, functional


def _psd(n, seed):
    g = np.random.default_rng(seed).standard_normal((n, n + 1))
    return g @ g.T


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 8), seed=st.integers(0, 10_000), t=st.integers(0, 12))
def test_kernel_gd_is_the_matrix_power(n, seed, t):
    k = _psd(n, seed)
    r0 = np.random.default_rng(seed + 1).standard_normal(n)
    eta = 0.9 / np.linalg.eigvalsh(k)[-1]
    expected = np.linalg.matrix_power(np.eye(n) - eta * k, t) @ r0
    got = ntk.kernel_gd(k, r0, eta, [0, t])
    np.testing.assert_allclose(got[0], r0, atol=1e-12)
    np.testing.assert_allclose(got[1], expected, rtol=1e-9, atol=1e-9)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 8), seed=st.integers(0, 10_000))
def test_modes_reconstruct_the_kernel_largest_first(n, seed):
    k = _psd(n, seed)
    values, vectors = ntk.modes(k)
    assert np.all(np.diff(values) <= 1e-12)
    np.testing.assert_allclose((vectors * values) @ vectors.T, k, atol=1e-9 * np.abs(k).max())
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(n), atol=1e-10)


def test_band_energy_of_kernel_gd_decays_at_each_modes_rate():
    k = _psd(6, 3)
    values, vectors = ntk.modes(k)
    r0 = np.random.default_rng(0).standard_normal(6)
    eta = 1.0 / values[0]
    residuals = ntk.kernel_gd(k, r0, eta, range(5))
    energy = ntk.band_energy(vectors, residuals, [slice(k_, k_ + 1) for k_ in range(6)])
    expected = (1 - eta * values[None]) ** (2 * np.arange(5)[:, None])
    np.testing.assert_allclose(energy, expected, rtol=1e-8, atol=1e-12)


def test_band_energy_refuses_bands_it_cannot_measure():
    values, vectors = ntk.modes(_psd(4, 4))
    r = np.random.default_rng(1).standard_normal((3, 4))
    with pytest.raises(ValueError, match="band 1 .* holds none"):
        ntk.band_energy(vectors, r, [slice(0, 2), slice(4, None)])
    with pytest.raises(ValueError, match="5 values per record"):
        ntk.band_energy(vectors, np.zeros((3, 5)), [slice(0, 2)])
    r[0] = vectors[:, 0]  # the initial residual lies in the first mode alone
    with pytest.raises(ValueError, match=r"no energy in band\(s\) \[1\]"):
        ntk.band_energy(vectors, r, [slice(0, 1), slice(1, None)])


def test_fit_gd_matches_kernel_gd_for_a_linear_model(x64):
    """A linear model's kernel never moves, so gradient descent *is* kernel gradient descent."""
    apply_fn, params = functional(FCN(3, 2, depth=0, rngs=nnx.Rngs(0)))
    params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
    x = jax.random.normal(jax.random.key(1), (5, 3), jnp.float64)
    y = jax.random.normal(jax.random.key(2), (5, 2), jnp.float64)
    k = np.asarray(mgs_kernel(apply_fn, params, x))
    eta = 0.5 / np.linalg.eigvalsh(k)[-1]
    traj = ntk.fit_gd(apply_fn, params, x, y, eta=eta, steps=40, n_records=4)
    assert traj.steps.tolist() == [0, 10, 20, 30, 40]
    assert traj.outputs.shape == (5, 5, 2)
    assert jax.tree.leaves(traj.params)[0].shape[0] == 5
    residuals = traj.outputs.reshape(5, -1) - np.asarray(y).reshape(-1)
    np.testing.assert_allclose(residuals, ntk.kernel_gd(k, residuals[0], eta, traj.steps),
                               rtol=1e-9, atol=1e-10)  # fmt: skip


def test_fit_gd_penalty_changes_the_run_and_steps_are_checked(x64):
    apply_fn, params = functional(FCN(2, 1, depth=1, width=8, rngs=nnx.Rngs(0)))
    x = jnp.ones((4, 2)) * jnp.arange(4.0)[:, None]
    y = jnp.zeros((4, 1))
    plain = ntk.fit_gd(apply_fn, params, x, y, eta=0.01, steps=4, n_records=2)

    def decay(p):
        return 10.0 * sum(jnp.sum(a**2) for a in jax.tree.leaves(p))

    decayed = ntk.fit_gd(apply_fn, params, x, y, eta=0.01, steps=4, n_records=2, penalty=decay)
    norm = lambda t: sum(float(jnp.sum(a[-1] ** 2)) for a in jax.tree.leaves(t.params))  # noqa: E731
    assert norm(decayed) < norm(plain)
    with pytest.raises(ValueError, match="multiple"):
        ntk.fit_gd(apply_fn, params, x, y, eta=0.01, steps=5, n_records=2)


def test_kernel_drift_and_errors():
    k = _psd(4, 0)
    assert ntk.kernel_drift(k, k) == 0.0
    assert ntk.kernel_drift(k, 2 * k) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shapes"):
        ntk.kernel_drift(k, k[:3, :3])
    with pytest.raises(ValueError, match="square"):
        ntk.modes(np.ones((2, 3)))
    with pytest.raises(ValueError, match="entries"):
        ntk.kernel_gd(k, np.ones(3), 0.1, [1])


def test_roughness_orders_smooth_below_oscillating():
    x = np.linspace(0, 1, 40)[:, None]
    smooth, wiggly = np.cos(np.pi * x[:, 0]), np.cos(12 * np.pi * x[:, 0])
    r = ntk.roughness(np.stack([smooth, wiggly], axis=1), x, neighbours=2)
    assert r[0] < r[1] / 20
    two_outputs = np.stack([smooth, smooth], axis=1).reshape(-1)[:, None]  # (B * 2, 1)
    assert ntk.roughness(two_outputs, x, neighbours=2)[0] == pytest.approx(r[0])
    with pytest.raises(ValueError, match="neighbours"):
        ntk.roughness(smooth[:, None], x, neighbours=40)
