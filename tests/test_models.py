import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from mgs_teach.models import FCN, AlexNet, Dropout, LeNet5, functional, n_params


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
    # the caller's module still trains with dropout: two keys, two masks
    assert not np.allclose(model(x, rngs=jax.random.key(0)), model(x, rngs=jax.random.key(1)))
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


# ------------------------------------------------------------------------------ CNNs

LENET5_PARAMS = (
    (5 * 5 * 1 * 6 + 6)  # conv1, SAME: 28x28x6 -> avgpool -> 14x14x6
    + (5 * 5 * 6 * 16 + 16)  # conv2, VALID: 10x10x16 -> avgpool -> 5x5x16 = 400
    + (400 * 120 + 120)
    + (120 * 84 + 84)
    + (84 * 10 + 10)
)

ALEXNET_PARAMS = (
    (9 * 1 * 32 + 32)
    + (9 * 32 * 64 + 64)
    + (9 * 64 * 96 + 96)
    + (9 * 96 * 96 + 96)
    + (9 * 96 * 64 + 64)
    + (3 * 3 * 64 * 256 + 256)
    + (256 * 256 + 256)
    + (256 * 10 + 10)
)


def test_lenet5_parameter_count_by_hand():
    _, params = functional(LeNet5(rngs=nnx.Rngs(0)))
    assert LENET5_PARAMS == 61_706
    assert n_params(params) == LENET5_PARAMS


def test_alexnet_parameter_count_under_a_million():
    _, params = functional(AlexNet(rngs=nnx.Rngs(0)))
    assert n_params(params) == ALEXNET_PARAMS < 1_000_000


@pytest.mark.parametrize("cls", [LeNet5, AlexNet])
def test_cnn_shapes_and_functional(cls):
    model = cls(7, dropout=0.3, rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(1), (3, 28, 28, 1))
    assert model(x).shape == (3, 7)
    apply_fn, params = functional(model)
    out = apply_fn(params, x)
    assert out.shape == (3, 7)
    # (B, 28, 28) gets its channel axis added
    np.testing.assert_allclose(apply_fn(params, x[..., 0]), out, rtol=1e-6)
    # eval-mode functional view equals the module in eval mode
    model.eval()
    np.testing.assert_allclose(out, model(x), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="28, 28"):
        apply_fn(params, jnp.ones((2, 32, 32)))


def test_train_mode_draws_dropout_masks_from_the_key():
    model = FCN(4, 3, depth=2, width=32, dropout=0.5, rngs=nnx.Rngs(3))
    train_fn, params = functional(model, train=True)
    apply_fn, _ = functional(model)
    x = jax.random.normal(jax.random.key(0), (8, 4))
    a = train_fn(params, x, jax.random.key(1))
    np.testing.assert_allclose(a, train_fn(params, x, jax.random.key(1)))  # same key, same mask
    assert not np.allclose(a, train_fn(params, x, jax.random.key(2)))
    assert not np.allclose(a, apply_fn(params, x))  # eval mode has no dropout
    jitted = jax.jit(train_fn)(params, x, jax.random.key(1))
    np.testing.assert_allclose(jitted, a, rtol=1e-6)
    np.testing.assert_allclose(train_fn(params, x, None), apply_fn(params, x))  # no key, no mask


def test_the_dropout_rate_can_be_data():
    """One compiled function serves every rate: the rate is an argument, and it acts as one."""
    model = FCN(4, 3, depth=2, width=256, dropout=0.5, rngs=nnx.Rngs(3))
    train_fn, params = functional(model, train=True)
    apply_fn, _ = functional(model)
    x = jax.random.normal(jax.random.key(0), (8, 4))
    f = jax.jit(train_fn)
    np.testing.assert_allclose(f(params, x, jax.random.key(1), 0.0), apply_fn(params, x),
                               rtol=1e-6)  # fmt: skip
    h = jnp.ones((20000,))
    for rate in (0.1, 0.3, 0.7):
        kept = Dropout(0.5)(h, jax.random.key(2), jnp.float32(rate))
        assert float(jnp.mean(kept == 0)) == pytest.approx(rate, abs=0.02)
        assert float(jnp.mean(kept)) == pytest.approx(1.0, abs=0.03)  # inverted: mean kept
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        Dropout(1.0)


def test_every_dropout_layer_draws_its_own_mask():
    model = FCN(4, 4, depth=3, width=64, dropout=0.5, rngs=nnx.Rngs(0))
    seen = []
    real = Dropout.__call__

    def spy(self, x, key, rate=None):
        out = real(self, x, key, rate)
        seen.append(np.asarray(out == 0))
        return out

    Dropout.__call__ = spy
    try:
        model(jnp.ones((2, 4)), rngs=jax.random.key(0))
    finally:
        Dropout.__call__ = real
    assert len(seen) == 3 and not np.array_equal(seen[0], seen[1])


def test_lenet5_takes_larger_square_images():
    apply_fn, params = functional(LeNet5(30, side=48, rngs=nnx.Rngs(0)))
    out = apply_fn(params, jnp.zeros((3, 48, 48)))
    assert out.shape == (3, 30)
    # after SAME conv, pool, VALID 5x5 conv, pool: 10 x 10 x 16 features for 48 x 48 inputs
    assert params["fc"][0]["kernel"].shape == (10 * 10 * 16, 120)
    with pytest.raises(ValueError, match="multiple of 4"):
        LeNet5(10, side=30, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"\(B, 48, 48\)"):
        apply_fn(params, jnp.zeros((3, 28, 28)))
