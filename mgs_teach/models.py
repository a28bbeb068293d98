"""Models used in the book, as Flax NNX modules, and the adapter to ``apply_fn(params, x)``.

The rest of the library sees a model only as a pure function ``apply_fn(params, x)`` and a
pytree ``params``. :func:`functional` makes that pair from any NNX module::

    model = FCN(2, 2, depth=3, width=64, rngs=nnx.Rngs(0))
    apply_fn, params = functional(model)
    logits = apply_fn(params, x)          # same as model(x) in eval mode
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from mgs_teach.taps import describe, patches, tap

__all__ = ["FCN", "AlexNet", "Conv", "Dropout", "LeNet5", "Linear", "functional", "n_params"]


class Linear(nnx.Linear):
    """``nnx.Linear`` that reports itself to :func:`mgs_teach.taps.tap` (for the fast trace)."""

    def __call__(self, x: jax.Array) -> jax.Array:
        return tap(super().__call__(x), x, self)


class Conv(nnx.Conv):
    """``nnx.Conv`` that reports itself to :func:`mgs_teach.taps.tap` (for the fast trace).

    A plain convolution (no groups, dilation or mask; ``SAME``, ``VALID`` or explicit
    padding) is computed as its patches times the kernel (:func:`mgs_teach.taps.patches`),
    the same numbers as ``nnx.Conv`` up to round-off. On a CPU this is faster than XLA's
    convolution, and much faster inside a compiled training loop, where XLA's CPU
    convolution slows down several-fold (jax-ml/jax#12868); vmapped over runs with their
    own weights it stays a batched matrix product instead of becoming a grouped convolution.
    Other convolutions use ``nnx.Conv`` itself.
    """

    def __call__(self, x: jax.Array) -> jax.Array:
        layer = describe(self, x)
        if layer is None:
            return tap(super().__call__(x), x, self)
        kernel = self.kernel[...]
        cols = patches(x, layer)  # (B, positions, fan_in)
        z = cols @ jnp.reshape(kernel, (-1, kernel.shape[-1])).astype(cols.dtype)
        if self.bias is not None:
            z = z + self.bias[...].astype(z.dtype)
        out = jax.eval_shape(lambda: nnx.Conv.__call__(self, x)).shape
        return tap(jnp.reshape(z, out), x, self)


class Dropout(nnx.Module):
    """Inverted dropout whose mask comes from an explicit key and whose rate may be data.

    ``dropout(x, key, rate)`` zeroes each entry with probability ``rate`` and scales the rest
    by ``1 / (1 - rate)``; ``rate`` defaults to the rate given at construction and may be a
    traced array, so that one compiled training step serves every dropout rate of a grid.
    Without a key, or in evaluation mode (``module.eval()``), it is the identity.

    Parameters
    ----------
    rate : float
        Default drop probability, in ``[0, 1)``.
    """

    def __init__(self, rate: float) -> None:
        if not 0 <= rate < 1:
            raise ValueError(f"a dropout rate must lie in [0, 1), got {rate}")
        self.rate = float(rate)
        self.deterministic = False

    def __call__(
        self, x: jax.Array, key: jax.Array | None, rate: float | jax.Array | None = None
    ) -> jax.Array:
        if key is None or self.deterministic:
            return x
        keep = 1.0 - (self.rate if rate is None else rate)
        mask = jax.random.uniform(key, x.shape, x.dtype) < keep  # Bernoulli(keep), in x's dtype
        return jnp.where(mask, x / keep, jnp.zeros((), x.dtype))


class FCN(nnx.Module):
    """Fully connected network: ``depth`` hidden layers of ``width`` units.

    Parameters
    ----------
    d_in, d_out : int
        Input features (inputs with more axes are flattened) and outputs (logits).
    depth, width : int
        Number and size of the hidden layers. The paper uses 6 x 300 on MNIST.
    activation : callable
        Element-wise nonlinearity after every hidden layer.
    dropout : float
        Dropout rate between fully connected layers (0 disables it).
    rngs : nnx.Rngs
    """

    def __init__(
        self,
        d_in: int,
        d_out: int,
        *,
        depth: int = 2,
        width: int = 64,
        activation: Callable[[jax.Array], jax.Array] = jax.nn.relu,
        dropout: float = 0.0,
        rngs: nnx.Rngs,
    ) -> None:
        if depth < 0 or width < 1 or d_in < 1 or d_out < 1:
            raise ValueError(
                f"bad FCN sizes: d_in={d_in}, d_out={d_out}, depth={depth}, width={width}"
            )
        sizes = [d_in] + [width] * depth + [d_out]
        self.layers = nnx.List([Linear(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:])])
        self.activation = activation
        self.dropout = Dropout(dropout) if dropout > 0 else None

    def __call__(
        self, x: jax.Array, *, rngs: jax.Array | None = None, dropout_rate: Any = None
    ) -> jax.Array:
        x = jnp.reshape(x, (x.shape[0], -1))
        return _fc_head(x, self.layers, self.dropout, rngs, dropout_rate, self.activation)


def functional(module: nnx.Module, *, train: bool = False) -> tuple[Callable[..., jax.Array], dict]:
    """Split an NNX module into a pure function and a plain-dict ``params``.

    The module is cloned, so the caller's module is left untouched.

    Parameters
    ----------
    module : nnx.Module
        A model whose ``__call__(x, *, rngs=None)`` takes a PRNG key for dropout (all models
        of this module do; a module without dropout may ignore ``rngs``).
    train : bool
        ``False`` (default): evaluation mode, dropout off; returns ``apply_fn(params, x)``,
        deterministic, the interface of the kernel and the penalties.
        ``True``: training mode, dropout on; returns ``train_fn(params, x, key, rate=None)``,
        whose dropout masks are drawn from the PRNG ``key``; ``rate``, if given, replaces
        the model's dropout rate (it may be a traced array).

    Returns
    -------
    apply_fn : callable
    params : dict
        Nested dict of the module's ``nnx.Param`` arrays.
    """
    module = nnx.clone(module)
    module.train() if train else module.eval()
    graphdef, state, rest = nnx.split(module, nnx.Param, ...)

    def apply_fn(params: Any, x: jax.Array) -> jax.Array:
        return nnx.merge(graphdef, nnx.State(params), rest)(x)

    def train_fn(params: Any, x: jax.Array, key: jax.Array, rate: Any = None) -> jax.Array:
        extra = {} if rate is None else {"dropout_rate": rate}
        return nnx.merge(graphdef, nnx.State(params), rest)(x, rngs=key, **extra)

    return (train_fn if train else apply_fn), nnx.to_pure_dict(state)


def n_params(params: Any) -> int:
    """Number of scalar parameters in a pytree."""
    return sum(int(leaf.size) for leaf in jax.tree.leaves(params))


def _as_image(x: jax.Array, side: int = 28) -> jax.Array:
    """``(B, S, S)`` or ``(B, S, S, 1)`` inputs as NHWC ``(B, S, S, 1)``, ``S = side``."""
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[1:] != (side, side, 1):
        raise ValueError(
            f"expected images of shape (B, {side}, {side}) or (B, {side}, {side}, 1), "
            f"got {tuple(x.shape)}"
        )
    return x


def _fc_head(
    x: jax.Array,
    layers: nnx.List,
    dropout: Dropout | None,
    key: jax.Array | None,
    rate: Any = None,
    activation: Callable[[jax.Array], jax.Array] = jax.nn.relu,
) -> jax.Array:
    """Fully connected layers with ``activation``, dropout between them, linear last layer.

    ``key`` (a PRNG key) draws the dropout masks, a different one per layer; without it
    there is no dropout. ``rate`` overrides the layers' dropout rate.
    """
    for i, layer in enumerate(layers[:-1]):
        x = activation(layer(x))
        if dropout is not None and key is not None:
            x = dropout(x, jax.random.fold_in(key, i), rate)
    return layers[-1](x)


class LeNet5(nnx.Module):
    """LeNet-5-style CNN for 28 x 28 grey-scale images (the paper's Table 1 model).

    ::

        conv 6@5x5 (SAME) -> relu -> avgpool 2 -> conv 16@5x5 (VALID) -> relu -> avgpool 2
        -> flatten (5*5*16 = 400) -> FC 120 -> relu -> FC 84 -> relu -> FC d_out

    With ``d_out = 10`` it has 61,706 parameters.
    Call with ``x`` of shape ``(B, 28, 28)`` or ``(B, 28, 28, 1)`` (NHWC); returns
    logits of shape ``(B, d_out)``.

    Parameters
    ----------
    d_out : int
        Number of outputs (logits).
    side : int
        Side of the square input images (28 for MNIST; a multiple of 4).
    dropout : float
        Dropout rate between the fully connected layers (0 disables it).
    rngs : nnx.Rngs
    """

    def __init__(self, d_out: int = 10, *, side: int = 28, dropout: float = 0.0,
                 rngs: nnx.Rngs) -> None:  # fmt: skip
        if d_out < 1 or side < 12 or side % 4:
            raise ValueError(f"bad LeNet5 size: d_out={d_out}, side={side} (a multiple of 4)")
        self.side = side
        self.conv1 = Conv(1, 6, (5, 5), padding="SAME", rngs=rngs)
        self.conv2 = Conv(6, 16, (5, 5), padding="VALID", rngs=rngs)
        last = (side // 2 - 4) // 2  # SAME conv, pool 2, VALID 5x5 conv, pool 2
        sizes = [last * last * 16, 120, 84, d_out]
        self.fc = nnx.List([Linear(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:])])
        self.dropout = Dropout(dropout) if dropout > 0 else None

    def __call__(
        self, x: jax.Array, *, rngs: jax.Array | None = None, dropout_rate: Any = None
    ) -> jax.Array:
        x = _as_image(x, self.side)
        x = nnx.avg_pool(jax.nn.relu(self.conv1(x)), (2, 2), strides=(2, 2))  # (B, 14, 14, 6)
        x = nnx.avg_pool(jax.nn.relu(self.conv2(x)), (2, 2), strides=(2, 2))  # (B, 5, 5, 16)
        x = jnp.reshape(x, (x.shape[0], -1))  # (B, 400) for 28 x 28 inputs
        return _fc_head(x, self.fc, self.dropout, rngs, dropout_rate)


class AlexNet(nnx.Module):
    """A small AlexNet-style CNN for 28 x 28 grey-scale images (the paper's Figure 3 model).

    Five 3x3 convolutions (SAME padding, ReLU after each) with three max-pools, then three
    fully connected layers::

        conv 32 -> maxpool 2 -> conv 64 -> maxpool 2            # (B, 7, 7, 64)
        -> conv 96 -> conv 96 -> conv 64 -> maxpool 2           # (B, 3, 3, 64)
        -> flatten (576) -> FC 256 -> FC 256 -> FC d_out

    With ``d_out = 10`` it has 428,682 parameters, small enough for a CPU.
    Call with ``x`` of shape ``(B, 28, 28)`` or ``(B, 28, 28, 1)`` (NHWC); returns
    logits of shape ``(B, d_out)``.

    Parameters
    ----------
    d_out : int
        Number of outputs (logits).
    dropout : float
        Dropout rate between the fully connected layers (0 disables it).
    rngs : nnx.Rngs
    """

    def __init__(self, d_out: int = 10, *, dropout: float = 0.0, rngs: nnx.Rngs) -> None:
        if d_out < 1:
            raise ValueError(f"bad AlexNet size: d_out={d_out}")
        chans = [1, 32, 64, 96, 96, 64]
        self.convs = nnx.List(
            [Conv(a, b, (3, 3), padding="SAME", rngs=rngs) for a, b in zip(chans[:-1], chans[1:])]
        )
        sizes = [3 * 3 * 64, 256, 256, d_out]
        self.fc = nnx.List([Linear(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:])])
        self.dropout = Dropout(dropout) if dropout > 0 else None

    def __call__(
        self, x: jax.Array, *, rngs: jax.Array | None = None, dropout_rate: Any = None
    ) -> jax.Array:
        x = _as_image(x)
        pool_after = {0, 1, 4}
        for i, conv in enumerate(self.convs):
            x = jax.nn.relu(conv(x))
            if i in pool_after:
                x = nnx.max_pool(x, (2, 2), strides=(2, 2))
        x = jnp.reshape(x, (x.shape[0], -1))  # (B, 576)
        return _fc_head(x, self.fc, self.dropout, rngs, dropout_rate)
