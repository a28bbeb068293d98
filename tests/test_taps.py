"""The layer taps: the hook, the layer descriptions, the recorder and the patches."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from mgs_teach import taps
from mgs_teach.models import FCN, Conv, Linear, functional


def test_tap_is_the_identity_outside_the_fast_path():
    layer = Linear(3, 2, rngs=nnx.Rngs(0))
    x = jnp.ones((4, 3))
    np.testing.assert_array_equal(layer(x), nnx.Linear.__call__(layer, x))


def test_describe_reads_the_sizes_of_dense_and_plain_convolution_layers():
    dense = taps.describe(nnx.Linear(3, 5, rngs=nnx.Rngs(0)), jnp.ones((2, 3)))
    assert dense == taps.Layer("dense", 3 * 5 + 5, True)
    conv = nnx.Conv(2, 4, (3, 2), strides=(2, 1), padding=((1, 2), (0, 1)), use_bias=False,
                    rngs=nnx.Rngs(0))  # fmt: skip
    layer = taps.describe(conv, jnp.ones((1, 7, 5, 2)))
    assert layer == taps.Layer("conv", 3 * 2 * 2 * 4, False, (3, 2), (2, 1), ((1, 2), (0, 1)))
    assert taps.describe(Conv(1, 2, 3, padding=1, rngs=nnx.Rngs(0)), jnp.ones((2, 5, 1))).padding \
        == ((1, 1),)  # fmt: skip


@pytest.mark.parametrize("conv", [
    lambda r: nnx.Conv(1, 2, (3, 3), padding="CIRCULAR", rngs=r),
    lambda r: nnx.Conv(1, 2, (3, 3), kernel_dilation=2, rngs=r),
    lambda r: nnx.Conv(2, 2, (3, 3), feature_group_count=2, rngs=r),
])  # fmt: skip
def test_describe_refuses_what_is_not_a_plain_affine_map(conv):
    x = jnp.ones((1, 6, 6, conv(nnx.Rngs(0)).in_features))
    assert taps.describe(conv(nnx.Rngs(0)), x) is None
    assert taps.describe(object(), x) is None


@pytest.mark.parametrize("kwargs, shape", [
    (dict(kernel_size=(3, 3), padding="SAME"), (2, 6, 6, 2)),
    (dict(kernel_size=(3, 3), strides=(2, 2), padding="VALID"), (2, 7, 7, 2)),
    (dict(kernel_size=(3, 2), strides=(2, 1), padding=((1, 2), (0, 1))), (2, 7, 5, 2)),
    (dict(kernel_size=3, padding=1), (2, 4, 6, 2)),  # a 1-d convolution along every row
])  # fmt: skip
def test_patches_times_the_kernel_is_the_convolution(kwargs, shape):
    conv = nnx.Conv(2, 3, use_bias=False, rngs=nnx.Rngs(0), **kwargs)
    x = jax.random.normal(jax.random.key(1), shape)
    cols = taps.patches(x, taps.describe(conv, x))
    assert cols.shape[::2] == (shape[0], int(np.prod(conv.kernel.shape[:-1])))
    z = cols @ conv.kernel[...].reshape(-1, 3)
    want = conv(x)
    np.testing.assert_allclose(z.reshape(want.shape), want, rtol=1e-5, atol=1e-5)


def test_dense_patches_are_the_inputs_with_one_position():
    a = jnp.arange(6.0).reshape(2, 3)
    layer = taps.Layer("dense", 8, True)
    np.testing.assert_array_equal(taps.patches(a, layer), a[:, None, :])


def test_discover_finds_the_tapped_layers_in_call_order():
    apply_fn, params = functional(FCN(4, 2, depth=2, width=5, rngs=nnx.Rngs(0)))
    recorder = taps.discover(apply_fn, params, jnp.ones((3, 4)))
    assert [layer.n_params for layer in recorder.layers] == [4 * 5 + 5, 5 * 5 + 5, 5 * 2 + 2]
    assert [s.shape for s in recorder.shapes] == [(3, 5), (3, 5), (3, 2)]
    assert [a.shape for a in recorder.inputs] == [(3, 4), (3, 5), (3, 5)]
    assert len(set(recorder.ids)) == 3


def test_record_perturbs_each_tapped_output_and_otherwise_changes_nothing():
    apply_fn, params = functional(FCN(4, 2, depth=1, width=5, rngs=nnx.Rngs(0)))
    x = jax.random.normal(jax.random.key(0), (3, 4))
    out, recorder = taps.record(apply_fn, params, x, taps.Recorder())
    np.testing.assert_array_equal(out, apply_fn(params, x))
    np.testing.assert_array_equal(recorder.inputs[0], x)
    eps = [jnp.zeros((3, 5)), jnp.full((3, 2), 0.5)]  # the last layer's output moves by 0.5
    moved, _ = taps.record(apply_fn, params, x, taps.Recorder(eps=eps))
    np.testing.assert_allclose(moved, out + 0.5, rtol=1e-6)
    z = jnp.ones(2)
    assert taps.tap(z, jnp.ones(3), None) is z  # the recorder is gone again


def test_a_shadow_recorder_recomputes_each_layer_from_its_stand_ins():
    apply_fn, params = functional(FCN(4, 2, depth=1, width=5, rngs=nnx.Rngs(0)))
    x = jax.random.normal(jax.random.key(0), (3, 4))

    def zeroed(p, xx):
        stand_ins = {id(leaf): jnp.zeros_like(leaf) for leaf in jax.tree.leaves(p)}
        return taps.record(apply_fn, p, xx, taps.Recorder(shadow=stand_ins))[0]

    before = apply_fn(params, x)
    np.testing.assert_array_equal(jax.jit(zeroed)(params, x), jnp.zeros((3, 2)))
    np.testing.assert_array_equal(apply_fn(params, x), before)
