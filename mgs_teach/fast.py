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

How the layers are found, and when the method applies
------------------------------------------------------
The layers of :mod:`mgs_teach.models` call :func:`tap` (from :mod:`mgs_teach.taps`) on their
output. Outside the fast path ``tap`` does nothing. Inside, it records the layer's input and
adds a zero perturbation :math:`\epsilon` to its output, so that
:math:`\partial f / \partial \epsilon = \delta`.

The identity above holds under two hypotheses, and :func:`structure_report` checks both
before the method is used:

1. **Samples are independent in the forward pass**: the output for sample :math:`i` depends
   on :math:`x_i` alone (no batch statistics, no batch-mean subtraction). Checked by
   evaluating the model on two batches that share their first (and last) sample.
2. **Every parameter enters only through its own tapped affine map**: no weight is reused
   elsewhere (tied weights), no parameter lives outside a tapped layer, no tapped layer is
   called twice. Checked on the jaxpr: the tapped outputs are recomputed from *shadow*
   copies of their parameters, and then no original parameter may still reach the output.

When a hypothesis fails, :func:`mgs_teach.kernel.mgs_trace` with ``method="auto"`` takes the
Jacobian path instead, and ``method="structured"`` raises a ``ValueError`` that says why.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mgs_teach.guards import batch_dependence, remember
from mgs_teach.taps import Layer, Recorder, discover, patches, record, tap

Params = Any
ApplyFn = Callable[[Params, jax.Array], jax.Array]

__all__ = [
    "hutchinson_trace",
    "is_structured",
    "structure_report",
    "structured_kernel",
    "structured_trace",
    "tap",
]


def _leaking_parameters(apply_fn: ApplyFn, params: Params, x: jax.Array) -> list[str]:
    """Parameters that reach the output other than through their own tapped affine map.

    Each tapped layer's output is recomputed from stand-ins of its parameters; the names of
    the original parameters that the output still depends on are returned (a conservative
    dependence analysis of the jaxpr: an equation's outputs depend on all of its inputs).
    """
    spec = jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a), a.dtype), params)
    paths = [
        jax.tree_util.keystr(path) for path, _ in jax.tree_util.tree_flatten_with_path(spec)[0]
    ]

    def shadowed(p: Params, xx: jax.Array) -> jax.Array:
        stand_ins = {id(leaf): jnp.zeros(leaf.shape, leaf.dtype) for leaf in jax.tree.leaves(p)}
        return record(apply_fn, p, xx, Recorder(shadow=stand_ins))[0]

    closed = jax.make_jaxpr(shadowed)(spec, jax.ShapeDtypeStruct(x.shape, x.dtype))
    jaxpr = closed.jaxpr
    n_leaves = len(paths)
    depends = {v: frozenset((i,)) for i, v in enumerate(jaxpr.invars[:n_leaves])}
    for eqn in jaxpr.eqns:
        found = frozenset().union(*(depends.get(v, frozenset()) for v in eqn.invars
                                    if not isinstance(v, jax.extend.core.Literal)))  # fmt: skip
        if found:
            for v in eqn.outvars:
                depends[v] = found
    leaked = frozenset().union(*(depends.get(v, frozenset()) for v in jaxpr.outvars
                                 if not isinstance(v, jax.extend.core.Literal)))  # fmt: skip
    return [paths[i] for i in sorted(leaked)]


def structure_report(apply_fn: ApplyFn, params: Params, x: jax.Array) -> str | None:
    """Why the structured trace cannot be used for this model, or ``None`` if it can.

    Checks the method's hypotheses (see the module docstring): tapped dense or plain
    convolution layers, each called once; independent samples; every parameter entering
    only through its own tapped affine map.

    Returns
    -------
    str or None
        A sentence naming the first hypothesis that fails.
    """
    x = x if isinstance(x, jax.Array) else jnp.asarray(x)
    return remember(apply_fn, params, x, "structure", lambda: _report(apply_fn, params, x))


def _report(apply_fn: ApplyFn, params: Params, x: jax.Array) -> str | None:
    recorder = discover(apply_fn, params, x)
    if not recorder.layers:
        return "the model has no tapped layers"
    if any(layer is None for layer in recorder.layers):
        return "a tapped layer is neither dense nor a plain convolution"
    if len(set(recorder.ids)) != len(recorder.ids):
        return "a tapped layer is called more than once"
    mixing = batch_dependence(apply_fn, params, x)
    if mixing is not None:
        return mixing
    leaked = _leaking_parameters(apply_fn, params, x)
    if leaked:
        shown = ", ".join(leaked[:3]) + (f" and {len(leaked) - 3} more" if len(leaked) > 3 else "")
        return (f"parameters reach the output outside their own tapped affine map (tied "
                f"weights, or layers that are not tapped): {shown}")  # fmt: skip
    return None


def is_structured(apply_fn: ApplyFn, params: Params, x: jax.Array) -> bool:
    """Whether :func:`structured_trace` can use the layer structure of this model."""
    return structure_report(apply_fn, params, jnp.asarray(x)) is None


def _structured(apply_fn: ApplyFn, params: Params, x: jax.Array) -> Recorder:
    reason = structure_report(apply_fn, params, x)
    if reason is not None:
        raise ValueError(
            f"the structured MGS trace does not apply to this model: {reason}. Use "
            "mgs_trace(..., method='auto') to fall back to per-example Jacobians."
        )
    return discover(apply_fn, params, x)


def _deltas(apply_fn: ApplyFn, params: Params, x: jax.Array, recorder: Recorder,
            cotangents: jax.Array) -> tuple[list[jax.Array], list[jax.Array]]:  # fmt: skip
    """Per-sample back-propagated errors for each cotangent, and the layers' inputs.

    ``cotangents`` has shape ``(k, B, C)``; the result's layer ``l`` has shape
    ``(k, *z_l.shape)``.
    """
    eps = [jnp.zeros(s.shape, s.dtype) for s in recorder.shapes]

    def f(e: list) -> tuple:
        out, rec = record(apply_fn, params, x, Recorder(eps=e))
        return out, rec.inputs

    _, vjp_fn, inputs = jax.vjp(f, eps, has_aux=True)
    (deltas,) = jax.vmap(vjp_fn)(cotangents)
    return deltas, inputs


def _layer_sq_norms(delta: jax.Array, a: jax.Array, layer: Layer) -> jax.Array:
    """Per (cotangent, sample) squared norm of this layer's parameter gradient: ``(k, B)``."""
    cols = patches(a, layer)  # (B, P, fan_in)
    k, b = delta.shape[:2]
    d = jnp.reshape(delta, (k, b, cols.shape[1], -1))  # (k, B, P, out)
    if cols.shape[1] == 1:  # dense on vectors: ||delta||^2 ||a||^2
        weight = jnp.sum(d[:, :, 0] ** 2, -1) * jnp.sum(cols[:, 0] ** 2, -1)
    else:
        n_pos, n_in, n_out = cols.shape[1], cols.shape[2], d.shape[-1]
        if n_pos * (n_in + n_out) < n_in * n_out:  # patch-Gram identity is cheaper
            gram_a = jnp.einsum("bpi,bqi->bpq", cols, cols)
            gram_d = jnp.einsum("kbpo,kbqo->kbpq", d, d)
            weight = jnp.einsum("kbpq,bpq->kb", gram_d, gram_a)
        else:  # per-example gradient of this layer only
            weight = jnp.sum(jnp.einsum("kbpo,bpi->kboi", d, cols) ** 2, axis=(-2, -1))
    if layer.bias:
        weight = weight + jnp.sum(jnp.sum(d, axis=2) ** 2, -1)
    return weight


def _per_sample_sq_norms(apply_fn: ApplyFn, params: Params, x: jax.Array,
                         recorder: Recorder, cotangents: jax.Array) -> jax.Array:  # fmt: skip
    deltas, inputs = _deltas(apply_fn, params, x, recorder, cotangents)
    return sum(_layer_sq_norms(*t) for t in zip(deltas, inputs, recorder.layers))


def structured_trace(apply_fn: ApplyFn, params: Params, x: jax.Array) -> jax.Array:
    """Exact :math:`\\operatorname{tr} K` from the layer structure (see the module docstring).

    Equals the Jacobian trace to floating-point precision, and so does its gradient, at a
    fraction of the cost: ``C`` batched backward passes and no per-example Jacobians. Use it
    through :func:`mgs_teach.kernel.mgs_trace` (``method="structured"`` or ``"auto"``).

    Raises
    ------
    ValueError
        When the model does not meet the method's hypotheses (:func:`structure_report`).

    Parameters
    ----------
    apply_fn, params, x
        As in :func:`mgs_teach.kernel.mgs_kernel`.

    Returns
    -------
    scalar array
    """
    x = jnp.asarray(x)
    recorder = _structured(apply_fn, params, x)
    return jnp.sum(
        _per_sample_sq_norms(apply_fn, params, x, recorder, _one_hot(apply_fn, params, x))
    )


def _one_hot(apply_fn: ApplyFn, params: Params, x: jax.Array) -> jax.Array:
    """Cotangents ``(C, B, C)`` that select one class at a time, in the output's dtype."""
    out = jax.eval_shape(lambda: apply_fn(params, x))
    b, c = out.shape[0], int(np.prod(out.shape[1:]))
    return jnp.broadcast_to(jnp.eye(c, dtype=out.dtype)[:, None, :], (c, b, c))


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
    out = jax.eval_shape(lambda: apply_fn(params, x))
    b, c = out.shape[0], int(np.prod(out.shape[1:]))
    v = jax.random.rademacher(key, (probes, b, c), dtype=out.dtype)
    if structure_report(apply_fn, params, x) is None:
        recorder = discover(apply_fn, params, x)
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
    gradient of that layer alone. Use it through :func:`mgs_teach.kernel.mgs_kernel`
    (``method="structured"`` or ``"auto"``).

    Returns
    -------
    array, shape ``(B*C, B*C)``
        Sample-major, identical to the Jacobian kernel.

    Raises
    ------
    ValueError
        When the model does not meet the method's hypotheses (:func:`structure_report`).
    """
    x = jnp.asarray(x)
    recorder = _structured(apply_fn, params, x)
    cotangents = _one_hot(apply_fn, params, x)
    c, b = cotangents.shape[:2]
    deltas, inputs = _deltas(apply_fn, params, x, recorder, cotangents)
    kernel = jnp.zeros((b * c, b * c), dtype=jnp.result_type(*inputs))
    for delta, a, layer in zip(deltas, inputs, recorder.layers):
        cols = patches(a, layer)  # (B, P, in)
        d = jnp.reshape(delta, (c, b, cols.shape[1], -1))  # (C, B, P, out)
        d = jnp.reshape(jnp.swapaxes(d, 0, 1), (b * c, cols.shape[1], -1))  # rows i*C + c
        if cols.shape[1] == 1:
            a_rows = jnp.repeat(cols[:, 0], c, axis=0)  # (B*C, in)
            dd = d[:, 0] @ d[:, 0].T
            kernel = kernel + dd * (a_rows @ a_rows.T + (1.0 if layer.bias else 0.0))
        else:
            grads = jnp.einsum("rpo,rpi->roi", d, jnp.repeat(cols, c, axis=0))
            g = jnp.reshape(grads, (b * c, -1))
            if layer.bias:
                g = jnp.concatenate([g, jnp.sum(d, axis=1)], axis=1)
            kernel = kernel + g @ g.T
    return kernel
