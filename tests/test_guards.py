"""The guards of the kernel and the fast trace: checks, sample independence, memory, precision."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from mgs_teach import guards
from mgs_teach.models import FCN, functional


def test_check_batch_wants_a_sample_axis_and_a_sample():
    assert isinstance(guards.check_batch(np.ones((2, 3))), jax.Array)
    with pytest.raises(ValueError, match="scalar"):
        guards.check_batch(1.0)
    with pytest.raises(ValueError, match="empty batch"):
        guards.check_batch(np.ones((0, 3)))


def test_check_params_wants_floating_point_arrays():
    guards.check_params({"w": jnp.ones(2)})
    with pytest.raises(ValueError, match="no leaves"):
        guards.check_params({})
    with pytest.raises(TypeError, match=r"params\['w'\] has dtype int32"):
        guards.check_params({"w": jnp.ones(2, jnp.int32)})


def test_checked_outputs_are_the_model_outputs_or_a_readable_error():
    apply_fn, params = functional(FCN(3, 2, depth=1, width=4, rngs=nnx.Rngs(0)))
    x = jnp.ones((4, 3))
    np.testing.assert_array_equal(guards.checked_outputs(apply_fn, params, x), apply_fn(params, x))
    with pytest.raises(ValueError, match="batch axis"):
        guards.checked_outputs(lambda p, xx: jnp.sum(xx), params, x)
    with pytest.raises(FloatingPointError, match=r"\(0 NaN, 4 inf\)"):
        guards.checked_outputs(lambda p, xx: jnp.log(xx - 1.0)[:, :1], params, x)


def test_batch_dependence_names_a_model_that_mixes_its_samples():
    apply_fn, params = functional(FCN(3, 2, depth=1, width=4, rngs=nnx.Rngs(0)))
    x = jnp.ones((4, 3))
    assert guards.batch_dependence(apply_fn, params, x) is None
    centred = lambda p, xx: apply_fn(p, xx - xx.mean(axis=0))  # noqa: E731
    assert "depends on the other samples" in guards.batch_dependence(centred, params, x)
    assert guards.batch_dependence(centred, params, x[:2]) is None  # too few samples to tell


class Unreferenceable:
    __slots__ = ()

    def __call__(self, p, x):
        return x


def test_remember_asks_once_per_shape():
    calls = []

    def model(p, x):
        return x

    def ask():
        calls.append(1)
        return len(calls)

    params = {"w": jnp.ones(2)}
    assert guards.remember(model, params, jnp.ones((3, 2)), "fact", ask) == 1
    assert guards.remember(model, params, jnp.zeros((3, 2)), "fact", ask) == 1  # same shapes
    assert guards.remember(model, params, jnp.ones((4, 2)), "fact", ask) == 2
    assert guards.remember(model, params, jnp.ones((3, 2)), "other", ask) == 3
    unreferenceable = Unreferenceable()  # a function without weak references: asked each time
    assert guards.remember(unreferenceable, params, jnp.ones((3, 2)), "fact", ask) == 4
    assert guards.remember(unreferenceable, params, jnp.ones((3, 2)), "fact", ask) == 5


def test_precision_report_warns_only_when_the_log_det_cannot_be_trusted():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        guards.precision_report(np.array([1.0, 2.0, 3.0]), jnp.float32, None)
    with pytest.warns(guards.MGSPrecisionWarning, match="numerical rank 2 of 3"):
        guards.precision_report(np.array([0.0, 2.0, 3.0]), jnp.float32, None)
    with pytest.warns(guards.MGSPrecisionWarning, match="float32 precision.*jax_enable_x64"):
        guards.precision_report(np.array([1e-5, 1.0, 3.0]), jnp.float32, None)
