r"""Fast MGS penalties: the exact trace and kernel from layer structure, and estimators.

Why the trace needs no kernel
-----------------------------
Every parameter of an affine layer enters the network through :math:`z = W a + b`
(a dense layer), or through the same map applied at every position of a convolution. With
:math:`\delta_{ic} = \partial f_c(x_i) / \partial z` the error that output :math:`c`
back-propagates to the layer for sample :math:`i`, the chain rule gives
:math:`\nabla_W f_c(x_i) = \sum_p \delta_{icp}\, a_{ip}^\top` (a sum over positions
:math:`p`; one position for a dense layer) and :math:`\nabla_b f_c(x_i) = \sum_p \delta_{icp}`.
So

.. math::
    \operatorname{tr} K = \sum_{i, c} \|\nabla_\theta f_c(x_i)\|^2
    = \sum_{\text{layers}} \sum_{i,c} \Big\|\sum_p \delta_{icp} a_{ip}^\top\Big\|_F^2
      + \Big\|\sum_p \delta_{icp}\Big\|^2 ,

which for a dense layer is :math:`\sum_{i,c} \|\delta_{ic}\|^2 (\|a_i\|^2 + 1)`. The
:math:`\delta` come from **one** backward pass per output class, all samples at once; no
per-example parameter gradient is ever formed. For a convolution the squared Frobenius
norm is computed either from the per-example weight gradient of that layer alone, or from
the patch-Gram identity
:math:`\|\Delta^\top P\|_F^2 = \langle \Delta\Delta^\top, PP^\top \rangle`, whichever is
cheaper for the layer's sizes.

How the layers are found
------------------------
The layers of :mod:`mgs_teach.models` call :func:`tap` on their output. Outside this module
``tap`` does nothing. Inside, it records the layer's input and adds a zero perturbation
:math:`\epsilon` to its output, so that :math:`\partial f / \partial \epsilon = \delta`. A model
whose parameters are not all in tapped layers (or whose layer is used twice) takes the
generic per-example Jacobian path instead, with a one-line notice.
"""

from __future__ import annotations

import contextvars
import dataclasses
import itertools
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mgs_teach.kernel import mgs_kernel, mgs_trace

Params = Any
ApplyFn = Callable[[Params, jax.Array], jax.Array]

__all__ = ["hutchinson_trace", "is_structured", "structured_kernel", "structured_trace", "tap"]


@dataclasses.dataclass(frozen=True)
class _Layer:
    """What the structured trace needs to know about one tapped layer."""

    kind: str  # "dense" or "conv"
    n_params: int
    bias: bool
    kernel_size: tuple[int, ...] = ()
    strides: tuple[int, ...] = ()
    padding: Any = None


class _Recorder:
    def __init__(self, eps: list[jax.Array] | None) -> None:
        self.eps, self.inputs, self.layers, self.shapes, self.ids = eps, [], [], [], []

    def __call__(self, z: jax.Array, a: jax.Array, layer: Any) -> jax.Array:
        self.inputs.append(a)
        self.layers.append(_describe(layer))
        self.shapes.append(jax.ShapeDtypeStruct(z.shape, z.dtype))
        self.ids.append(id(layer))
        if self.eps is None:
            return z
        return z + self.eps[len(self.inputs) - 1]


_RECORDER: contextvars.ContextVar[_Recorder | None] = contextvars.ContextVar(
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


def _describe(layer: Any) -> _Layer | None:
    kernel = getattr(layer, "kernel", None)
    bias = getattr(layer, "bias", None)  # None for a layer without bias
    if kernel is None:
        return None
    kernel_shape = np.shape(kernel[...])
    has_bias = bias is not None
    n = int(np.prod(kernel_shape)) + (int(np.prod(np.shape(bias[...]))) if has_bias else 0)
    if len(kernel_shape) == 2:  # nnx.Linear: (in, out)
        return _Layer("dense", n, has_bias)
    ks = tuple(layer.kernel_size)
    plain = (
        getattr(layer, "feature_group_count", 1) == 1
        and all(d == 1 for d in _as_tuple(getattr(layer, "kernel_dilation", 1), len(ks)))
        and all(d == 1 for d in _as_tuple(getattr(layer, "input_dilation", 1), len(ks)))
    )
    if not plain:
        return None
    strides = _as_tuple(getattr(layer, "strides", 1) or 1, len(ks))
    padding = _pads(layer.padding, len(ks))
    if padding is None:
        return None
    return _Layer("conv", n, has_bias, ks, strides, padding)


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


# ----------------------------------------------------------------------- the taps


def _run(apply_fn: ApplyFn, params: Params, x: jax.Array, eps: list | None) -> tuple:
    recorder = _Recorder(eps)
    token = _RECORDER.set(recorder)
    try:
        out = apply_fn(params, x)
    finally:
        _RECORDER.reset(token)
    return jnp.reshape(out, (out.shape[0], -1)), recorder


def _discover(apply_fn: ApplyFn, params: Params, x: jax.Array) -> tuple[_Recorder | None, str]:
    """The model's taps, or ``None`` and the reason why its structure cannot be used."""
    box = {}

    def probe(p: Params, xx: jax.Array) -> jax.Array:
        out, box["recorder"] = _run(apply_fn, p, xx, None)
        return out

    jax.eval_shape(probe, params, x)
    recorder = box["recorder"]
    total = sum(int(np.prod(np.shape(leaf))) for leaf in jax.tree.leaves(params))
    covered = sum(layer.n_params for layer in recorder.layers if layer is not None)
    if not recorder.layers:
        return None, "the model has no tapped layers"
    if any(layer is None for layer in recorder.layers):
        return None, "a layer is neither dense nor a plain convolution"
    if len(set(recorder.ids)) != len(recorder.ids):
        return None, "a layer is used more than once"
    if covered != total:
        return None, f"{total - covered} of its {total} parameters are outside tapped layers"
    return recorder, ""


def is_structured(apply_fn: ApplyFn, params: Params, x: jax.Array) -> bool:
    """Whether :func:`structured_trace` can use the layer structure of this model."""
    return _discover(apply_fn, params, jnp.asarray(x))[0] is not None


_NOTICED: set[str] = set()


def _fallback_notice(reason: str) -> None:
    if reason not in _NOTICED:
        _NOTICED.add(reason)
        warnings.warn(
            f"MGS fast path unavailable ({reason}); using per-example Jacobians",
            stacklevel=3,
        )


def _deltas(apply_fn: ApplyFn, params: Params, x: jax.Array, recorder: _Recorder,
            cotangents: jax.Array) -> tuple[list[jax.Array], list[jax.Array]]:  # fmt: skip
    """Per-sample back-propagated errors for each cotangent, and the layers' inputs.

    ``cotangents`` has shape ``(k, B, C)``; the result's layer ``l`` has shape
    ``(k, *z_l.shape)``.
    """
    eps = [jnp.zeros(s.shape, s.dtype) for s in recorder.shapes]

    def f(e: list) -> tuple:
        out, rec = _run(apply_fn, params, x, e)
        return out, rec.inputs

    _, vjp_fn, inputs = jax.vjp(f, eps, has_aux=True)
    (deltas,) = jax.vmap(vjp_fn)(cotangents)
    return deltas, inputs


def _patches(a: jax.Array, layer: _Layer) -> jax.Array:
    """Inputs as ``(B, positions, fan_in)``: the vectors each output position is affine in.

    A convolution's patches are gathered as ``prod(kernel_size)`` strided slices of the padded
    input: pure data movement. (``lax.conv_general_dilated_patches`` computes the same thing
    as a convolution with ``fan_in`` one-hot output channels, ``fan_in / C_out`` times the
    arithmetic of the layer itself.) The fan-in order differs from the kernel's, which no norm
    or inner product of the structured trace can see.
    """
    if layer.kind == "dense":
        return jnp.reshape(a, (a.shape[0], -1, a.shape[-1]))
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
    p = jnp.stack(slices, axis=-2)  # (B, *out, prod(kernel_size), C_in)
    return jnp.reshape(p, (a.shape[0], int(np.prod(out)), -1))


def _layer_sq_norms(delta: jax.Array, a: jax.Array, layer: _Layer) -> jax.Array:
    """Per (cotangent, sample) squared norm of this layer's parameter gradient: ``(k, B)``."""
    patches = _patches(a, layer)  # (B, P, fan_in)
    k, b = delta.shape[:2]
    d = jnp.reshape(delta, (k, b, patches.shape[1], -1))  # (k, B, P, out)
    if patches.shape[1] == 1:  # dense on vectors: ||delta||^2 ||a||^2
        weight = jnp.sum(d[:, :, 0] ** 2, -1) * jnp.sum(patches[:, 0] ** 2, -1)
    else:
        n_pos, n_in, n_out = patches.shape[1], patches.shape[2], d.shape[-1]
        if n_pos * (n_in + n_out) < n_in * n_out:  # patch-Gram identity is cheaper
            gram_a = jnp.einsum("bpi,bqi->bpq", patches, patches)
            gram_d = jnp.einsum("kbpo,kbqo->kbpq", d, d)
            weight = jnp.einsum("kbpq,bpq->kb", gram_d, gram_a)
        else:  # per-example gradient of this layer only
            weight = jnp.sum(jnp.einsum("kbpo,bpi->kboi", d, patches) ** 2, axis=(-2, -1))
    if layer.bias:
        weight = weight + jnp.sum(jnp.sum(d, axis=2) ** 2, -1)
    return weight


def _per_sample_sq_norms(apply_fn: ApplyFn, params: Params, x: jax.Array,
                         recorder: _Recorder, cotangents: jax.Array) -> jax.Array:  # fmt: skip
    deltas, inputs = _deltas(apply_fn, params, x, recorder, cotangents)
    return sum(_layer_sq_norms(*t) for t in zip(deltas, inputs, recorder.layers))


def structured_trace(apply_fn: ApplyFn, params: Params, x: jax.Array) -> jax.Array:
    """Exact :math:`\\operatorname{tr} K` from the layer structure (see the module docstring).

    Equals :func:`mgs_teach.kernel.mgs_trace` to floating-point precision, and so does its
    gradient, at a fraction of the cost: ``C`` batched backward passes and no per-example
    Jacobians. Models that are not fully built from tapped dense/conv layers fall back to
    :func:`mgs_teach.kernel.mgs_trace` with a one-line notice.

    Parameters
    ----------
    apply_fn, params, x
        As in :func:`mgs_teach.kernel.mgs_kernel`.

    Returns
    -------
    scalar array
    """
    x = jnp.asarray(x)
    recorder, reason = _discover(apply_fn, params, x)
    if recorder is None:
        _fallback_notice(reason)
        return mgs_trace(apply_fn, params, x)
    b = x.shape[0]
    c = int(np.prod(jax.eval_shape(lambda: apply_fn(params, x)).shape[1:]))
    cotangents = jnp.broadcast_to(jnp.eye(c)[:, None, :], (c, b, c))  # one class at a time
    return jnp.sum(_per_sample_sq_norms(apply_fn, params, x, recorder, cotangents))


def hutchinson_trace(
    apply_fn: ApplyFn, params: Params, x: jax.Array, key: jax.Array, probes: int = 1
) -> jax.Array:
    """Unbiased Hutchinson estimate of :math:`\\operatorname{tr} K` with ``probes`` probes.

    With Rademacher vectors :math:`v` (entries :math:`\\pm 1`),
    :math:`\\mathbb E\\,\\|J^\\top v\\|^2 = \\operatorname{tr}(JJ^\\top)`.

    - Structured models probe the **classes only**: :math:`v_i \\in \\{\\pm1\\}^C` per sample,
      and each sample's :math:`\\|\\sum_c v_{ic} \\nabla_\\theta f_c(x_i)\\|^2` comes from the
      layer structure. Its variance is
      :math:`\\frac{2}{k}\\sum_i \\sum_{c \\ne d} k_{cd}(x_i, x_i)^2`, the off-diagonal
      of each sample's own :math:`C \\times C` block only.
    - Other models probe all :math:`B \\cdot C` outputs with one backward pass of
      :math:`v^\\top f`; variance :math:`\\frac{2}{k}\\sum_{r \\ne s} K_{rs}^2`.

    Parameters
    ----------
    apply_fn, params, x
        As in :func:`mgs_teach.kernel.mgs_kernel`.
    key : PRNG key
    probes : int
        Number of probes :math:`k`; the variance falls as :math:`1/k`.

    Returns
    -------
    scalar array
    """
    if probes < 1:
        raise ValueError(f"need at least one probe, got {probes}")
    x = jnp.asarray(x)
    out_shape = jax.eval_shape(lambda: apply_fn(params, x)).shape
    b, c = out_shape[0], int(np.prod(out_shape[1:]))
    v = jax.random.rademacher(key, (probes, b, c), dtype=jnp.result_type(float))
    recorder, _ = _discover(apply_fn, params, x)
    if recorder is not None:
        return jnp.sum(_per_sample_sq_norms(apply_fn, params, x, recorder, v)) / probes

    def sq_norm(vk: jax.Array) -> jax.Array:
        g = jax.grad(lambda p: jnp.vdot(vk, jnp.reshape(apply_fn(p, x), (b, c))))(params)
        return sum(jnp.sum(leaf**2) for leaf in jax.tree.leaves(g))

    return jnp.mean(jax.vmap(sq_norm)(v))


def structured_kernel(apply_fn: ApplyFn, params: Params, x: jax.Array) -> jax.Array:
    """The MGS kernel from the layer structure, for the log-det penalty.

    For dense layers on vectors,
    :math:`K = \\sum_l (\\Delta_l \\Delta_l^\\top) \\odot (A_l A_l^\\top + 1)` with
    :math:`\\Delta_l` the ``(B*C, out)`` back-propagated errors and :math:`A_l` the layer
    inputs repeated per class: no per-example Jacobian of those layers is formed. Other
    layers (convolutions, dense layers on sequences) contribute through the per-example
    gradient of that layer alone. Falls back to :func:`mgs_teach.kernel.mgs_kernel` for
    models that are not fully structured.

    Returns
    -------
    array, shape ``(B*C, B*C)``
        Sample-major, identical to :func:`mgs_teach.kernel.mgs_kernel`.
    """
    x = jnp.asarray(x)
    recorder, reason = _discover(apply_fn, params, x)
    if recorder is None:
        _fallback_notice(reason)
        return mgs_kernel(apply_fn, params, x)
    b = x.shape[0]
    c = int(np.prod(jax.eval_shape(lambda: apply_fn(params, x)).shape[1:]))
    cotangents = jnp.broadcast_to(jnp.eye(c)[:, None, :], (c, b, c))
    deltas, inputs = _deltas(apply_fn, params, x, recorder, cotangents)
    kernel = jnp.zeros((b * c, b * c), dtype=jnp.result_type(*inputs))
    for delta, a, layer in zip(deltas, inputs, recorder.layers):
        patches = _patches(a, layer)  # (B, P, in)
        d = jnp.reshape(delta, (c, b, patches.shape[1], -1))  # (C, B, P, out)
        d = jnp.reshape(jnp.swapaxes(d, 0, 1), (b * c, patches.shape[1], -1))  # rows i*C + c
        if patches.shape[1] == 1:
            a_rows = jnp.repeat(patches[:, 0], c, axis=0)  # (B*C, in)
            dd = d[:, 0] @ d[:, 0].T
            kernel = kernel + dd * (a_rows @ a_rows.T + (1.0 if layer.bias else 0.0))
        else:
            grads = jnp.einsum("rpo,rpi->roi", d, jnp.repeat(patches, c, axis=0))
            g = jnp.reshape(grads, (b * c, -1))
            if layer.bias:
                g = jnp.concatenate([g, jnp.sum(d, axis=1)], axis=1)
            kernel = kernel + g @ g.T
    return kernel
