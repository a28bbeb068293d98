import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from mgs_teach.models import FCN, functional, n_params


def test_fcn_shapes_and_parameter_count():
    model = FCN(784, 10, depth=6, width=300, rngs=nnx.Rngs(0))
    _, params = functional(model)
    assert n_params(params) == 784 * 300 + 300 + 5 * (300 * 300 + 300) + 300 * 10 + 10
    assert model(jnp.ones((3, 28, 28))).shape == (3, 10)  # image inputs are flattened


def test_functional_matches_module_in_eval_mode_and_leaves_module_alone():
    model = FCN(4, 3, depth=2, width=16, dropout=0.5, rngs=nnx.Rngs(1))
    x = jax.random.normal(jax.random.key(0), (8, 4))
    apply_fn, params = functional(model)
    assert isinstance(params, dict)
    # the caller's module still trains with dropout: two calls differ
    assert not np.allclose(model(x), model(x))
    # the functional view is deterministic and equals the module in eval mode
    np.testing.assert_allclose(apply_fn(params, x), apply_fn(params, x))
    model.eval()
    np.testing.assert_allclose(apply_fn(params, x), model(x), rtol=1e-6)


def test_functional_params_are_used():
    apply_fn, params = functional(FCN(2, 2, depth=1, width=4, rngs=nnx.Rngs(2)))
    x = jnp.ones((1, 2))
    zeroed = jax.tree.map(jnp.zeros_like, params)
    np.testing.assert_allclose(apply_fn(zeroed, x), 0.0)


@pytest.mark.parametrize("kwargs", [dict(depth=-1), dict(width=0)])
def test_bad_sizes_are_rejected(kwargs):
    with pytest.raises(ValueError, match="bad FCN sizes"):
        FCN(2, 2, rngs=nnx.Rngs(0), **kwargs)
