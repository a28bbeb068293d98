r"""Layer taps: the hook the book's affine layers call, what it records, and their patches.

The layers of :mod:`mgs_teach.models` call :func:`tap` on their output. Outside a
:class:`Recorder` ``tap`` is the identity. Inside one (:func:`record`), it records the layer's
input and a description of the layer (:func:`describe`), and may add a perturbation to its
output or recompute it from stand-ins of its parameters: what the structured trace of
:mod:`mgs_teach.fast` needs to find the layers and their back-propagated errors.
"""

from __future__ import annotations

import contextvars
import dataclasses
import itertools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Params = Any
ApplyFn = Callable[[Params, jax.Array], jax.Array]

__all__ = ["Layer", "Recorder", "describe", "discover", "patches", "record", "tap"]


@dataclasses.dataclass(frozen=True)
class Layer:
    """What the structured trace needs to know about one tapped layer."""

    kind: str  # "dense" or "conv"
    n_params: int
    bias: bool
    kernel_size: tuple[int, ...] = ()
    strides: tuple[int, ...] = ()
    padding: Any = None


class Recorder:
    """What :func:`tap` does inside :func:`record`.

    ``eps`` given: add ``eps[i]`` to the i-th tapped output (for the deltas). ``shadow``
    given (a map from ``id`` of a parameter array to its stand-in): recompute the tapped
    output from the stand-ins instead (for the hypothesis check). Otherwise only record.

    Parameters
    ----------
    eps : list of arrays, optional
        One perturbation per tapped layer, each of the shape of that layer's output.
    shadow : dict, optional
        ``id`` of a parameter array -> the array that stands in for it.
    """

    def __init__(self, eps: list[jax.Array] | None = None, shadow: dict | None = None) -> None:
        self.eps, self.shadow = eps, shadow
        self.inputs, self.layers, self.shapes, self.ids = [], [], [], []

    def __call__(self, z: jax.Array, a: jax.Array, layer: Any) -> jax.Array:
        self.inputs.append(a)
        self.layers.append(describe(layer, a))
        self.shapes.append(jax.ShapeDtypeStruct(z.shape, z.dtype))
        self.ids.append(id(layer))
        if self.shadow is not None:
            return _recompute(layer, a, self.shadow)
        if self.eps is None:
            return z
        return z + self.eps[len(self.inputs) - 1]


_RECORDER: contextvars.ContextVar[Recorder | None] = contextvars.ContextVar(
    "mgs_teach_tap", default=None
)


def tap(z: jax.Array, a: jax.Array, layer: Any) -> jax.Array:
    """Hook for affine layers: ``z = layer(a)``. The identity, except inside the fast path.

    Parameters
    ----------
    z : array
        The layer's output (pre-activation).
    a : array
        The layer's input.
    layer : nnx.Linear or nnx.Conv
        The layer itself (its sizes are read, never its values).
    """
    recorder = _RECORDER.get()
    return z if recorder is None else recorder(z, a, layer)


def _variables(layer: Any) -> list[Any]:
    return [
        v for v in (getattr(layer, "kernel", None), getattr(layer, "bias", None)) if v is not None
    ]


def _recompute(layer: Any, a: jax.Array, shadow: dict) -> jax.Array:
    """The layer's own affine map of ``a``, with its parameters replaced by their stand-ins."""
    from flax import nnx

    base = nnx.Linear if isinstance(layer, nnx.Linear) else nnx.Conv
    variables = _variables(layer)
    saved = [v.get_value() for v in variables]
    try:
        for v, value in zip(variables, saved):
            v.set_value(shadow.get(id(value), value))
        return base.__call__(layer, a)
    finally:
        for v, value in zip(variables, saved):
            v.set_value(value)


def describe(layer: Any, a: jax.Array) -> Layer | None:
    """The :class:`Layer` of a dense layer or plain convolution applied to ``a``.

    Parameters
    ----------
    layer : nnx.Linear or nnx.Conv
        The layer (its sizes are read, never its values).
    a : array, shape ``(B, ..., fan_in)``
        The layer's input.

    Returns
    -------
    Layer or None
        ``None`` for anything else: not an ``nnx.Linear`` or ``nnx.Conv``, or a convolution
        with groups, dilation, a mask, or a padding other than ``SAME``, ``VALID`` or
        explicit pairs.
    """
    from flax import nnx

    kernel = getattr(layer, "kernel", None)
    bias = getattr(layer, "bias", None)  # None for a layer without bias
    if kernel is None or not isinstance(layer, nnx.Linear | nnx.Conv):
        return None
    kernel_shape = np.shape(kernel[...])
    has_bias = bias is not None
    n = int(np.prod(kernel_shape)) + (int(np.prod(np.shape(bias[...]))) if has_bias else 0)
    if isinstance(layer, nnx.Linear):  # kernel (in, out)
        return Layer("dense", n, has_bias)
    ks = tuple(layer.kernel_size)
    plain = (
        getattr(layer, "feature_group_count", 1) == 1
        and getattr(layer, "mask", None) is None
        and all(d == 1 for d in _as_tuple(getattr(layer, "kernel_dilation", 1), len(ks)))
        and all(d == 1 for d in _as_tuple(getattr(layer, "input_dilation", 1), len(ks)))
        and a.ndim >= len(ks) + 2
    )
    if not plain:
        return None
    strides = _as_tuple(getattr(layer, "strides", 1) or 1, len(ks))
    padding = _pads(layer.padding, len(ks))
    if padding is None:
        return None
    return Layer("conv", n, has_bias, ks, strides, padding)


def _as_tuple(v: Any, n: int) -> tuple[int, ...]:
    return tuple(v) if isinstance(v, tuple | list) else (int(v),) * n


def _pads(padding: Any, nd: int) -> str | tuple[tuple[int, int], ...] | None:
    """A convolution's padding as ``"SAME"``, ``"VALID"`` or explicit pairs; ``None`` if other.

    Circular, causal and reflecting paddings are applied by the layer outside the affine
    map, so the layer's input is not what the kernel sees: those layers are not structured.
    """
    if isinstance(padding, str):
        return padding if padding in ("SAME", "VALID") else None
    if isinstance(padding, int):
        return ((padding, padding),) * nd
    pairs = tuple((p, p) if isinstance(p, int) else tuple(p) for p in padding)
    return pairs if len(pairs) == nd and all(len(p) == 2 for p in pairs) else None


def record(apply_fn: ApplyFn, params: Params, x: jax.Array,
           recorder: Recorder) -> tuple[jax.Array, Recorder]:  # fmt: skip
    """Run the model with ``recorder`` answering its taps.

    Parameters
    ----------
    apply_fn, params, x
        As in :func:`mgs_teach.kernel.mgs_kernel`; ``x`` of shape ``(B, ...)``.
    recorder : Recorder

    Returns
    -------
    out : array, shape ``(B, C)``
        The model's outputs, trailing axes flattened.
    recorder : Recorder
        The same recorder, now holding the tapped layers' inputs and descriptions.
    """
    token = _RECORDER.set(recorder)
    try:
        out = apply_fn(params, x)
    finally:
        _RECORDER.reset(token)
    return jnp.reshape(out, (out.shape[0], -1)), recorder


def discover(apply_fn: ApplyFn, params: Params, x: jax.Array) -> Recorder:
    """Run the model abstractly (``jax.eval_shape``) and record its taps.

    Parameters
    ----------
    apply_fn, params, x
        As in :func:`record`.

    Returns
    -------
    Recorder
        Its inputs are abstract (``ShapeDtypeStruct``-like tracers); its layers, shapes and
        ids describe the tapped layers in call order.
    """
    box = {}

    def probe(p: Params, xx: jax.Array) -> jax.Array:
        out, box["recorder"] = record(apply_fn, p, xx, Recorder())
        return out

    jax.eval_shape(probe, params, x)
    return box["recorder"]


def patches(a: jax.Array, layer: Layer) -> jax.Array:
    """Inputs as ``(B, positions, fan_in)``: the vectors each output position is affine in.

    A convolution's patches are gathered as ``prod(kernel_size)`` strided slices of the padded
    input: pure data movement. (``lax.conv_general_dilated_patches`` computes the same thing
    as a convolution with ``fan_in`` one-hot output channels, ``fan_in / C_out`` times the
    arithmetic of the layer itself.) The fan-in order differs from the kernel's, which no norm
    or inner product of the structured trace can see.

    Axes between the sample axis and the convolved ones (a 1-d convolution applied to every
    row of an image, as ``nnx.Conv`` does with an integer ``kernel_size``) are folded into
    the positions: they share the kernel just as the positions do.

    Parameters
    ----------
    a : array, shape ``(B, ..., fan_in)`` or ``(B, ..., *spatial, C_in)``
        The layer's input.
    layer : Layer
        From :func:`describe`.

    Returns
    -------
    array, shape ``(B, positions, fan_in)``
    """
    if layer.kind == "dense":
        return jnp.reshape(a, (a.shape[0], -1, a.shape[-1]))
    b = a.shape[0]
    a = jnp.reshape(a, (-1, *a.shape[a.ndim - 1 - len(layer.kernel_size) :]))
    spatial = a.shape[1:-1]
    pads = layer.padding
    if isinstance(pads, str):
        pads = jax.lax.padtype_to_pads(spatial, layer.kernel_size, layer.strides, pads)
    a = jnp.pad(a, [(0, 0), *pads, (0, 0)])
    out = [(n - k) // s + 1 for n, k, s in zip(a.shape[1:-1], layer.kernel_size, layer.strides)]
    slices = [
        a[(slice(None), *(slice(o, o + (m - 1) * s + 1, s)
                          for o, m, s in zip(offset, out, layer.strides)), slice(None))]
        for offset in itertools.product(*map(range, layer.kernel_size))
    ]  # fmt: skip
    p = jnp.stack(slices, axis=-2)  # (B * extra, *out, prod(kernel_size), C_in)
    return jnp.reshape(p, (b, -1, p.shape[-2] * p.shape[-1]))
