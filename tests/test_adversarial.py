"""mgs_teach.adversarial: attacks stay in their ball, traces match brute force."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from mgs_teach import adversarial, mgs_kernel
from mgs_teach.models import FCN, functional


@pytest.fixture(scope="module")
def model():
    apply_fn, params = functional(FCN(12, 4, depth=1, width=16, rngs=nnx.Rngs(0)))
    x = jax.random.uniform(jax.random.key(1), (6, 12))
    y = jnp.arange(6) % 4
    return apply_fn, params, x, y


def in_ball(z, x, eps):
    return bool(jnp.all(jnp.abs(z - x) <= eps + 1e-6) and jnp.all((z >= 0) & (z <= 1)))


def test_fgsm_moves_every_free_pixel_by_eps_and_raises_the_loss(model):
    apply_fn, params, x, y = model
    z = adversarial.fgsm(apply_fn, params, x, y, 0.05)
    assert in_ball(z, x, 0.05)
    free = (x > 0.05) & (x < 0.95)
    np.testing.assert_allclose(jnp.abs(z - x)[free], 0.05, atol=1e-6)
    loss = lambda v: adversarial.cross_entropy_each(apply_fn, params, v, y).sum()  # noqa: E731
    assert loss(z) > loss(x)


def test_pgd_stays_in_the_ball_and_beats_fgsm(model):
    apply_fn, params, x, y = model
    each = lambda v: adversarial.cross_entropy_each(apply_fn, params, v, y)  # noqa: E731
    z = adversarial.pgd(each, x, 0.1, step_size=0.025, steps=20)
    assert in_ball(z, x, 0.1)
    assert each(z).sum() >= each(adversarial.fgsm(apply_fn, params, x, y, 0.1)).sum() - 1e-5
    assert jnp.array_equal(adversarial.pgd(each, x, 0.1, step_size=0.025, steps=0), x)


def test_project_is_the_nearest_point_of_the_box():
    x0 = jnp.array([0.0, 0.5, 0.98])
    np.testing.assert_allclose(adversarial.project(jnp.array([-1.0, 0.9, 1.5]), x0, 0.1),
                               [0.0, 0.6, 1.0])  # fmt: skip


def test_input_trace_is_the_trace_of_each_inputs_kernel(model, x64):
    apply_fn, params, x, _ = model
    params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
    x = jnp.asarray(x, jnp.float64)
    expected = [float(jnp.trace(mgs_kernel(apply_fn, params, x[i : i + 1]))) for i in range(6)]
    np.testing.assert_allclose(adversarial.input_trace(apply_fn, params, x), expected, rtol=1e-10)


def test_fisher_trace_is_the_kernel_weighted_by_the_softmax_curvature(model, x64):
    apply_fn, params, x, _ = model
    params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
    x = jnp.asarray(x, jnp.float64)
    got = adversarial.fisher_trace(apply_fn, params, x)
    for i in range(6):
        k = np.asarray(mgs_kernel(apply_fn, params, x[i : i + 1]))  # (C, C)
        p = np.asarray(jax.nn.softmax(apply_fn(params, x[i : i + 1])[0]))
        assert float(got[i]) == pytest.approx(
            np.trace((np.diag(p) - np.outer(p, p)) @ k), rel=1e-10
        )


def test_traces_are_differentiable_in_the_input(model):
    apply_fn, params, x, _ = model
    for score in (adversarial.input_trace, adversarial.fisher_trace):
        g = jax.grad(lambda v: score(apply_fn, params, v).sum())(x)  # noqa: B023
        assert g.shape == x.shape and bool(jnp.all(jnp.isfinite(g))) and float(jnp.abs(g).max()) > 0
