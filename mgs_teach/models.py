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

from mgs_teach.fast import tap

__all__ = ["FCN", "AlexNet", "Conv", "LeNet5", "Linear", "functional", "n_params"]


class Linear(nnx.Linear):
    """``nnx.Linear`` that reports itself to :func:`mgs_teach.fast.tap` (for the fast trace)."""

    def __call__(self, x: jax.Array) -> jax.Array:
        return tap(super().__call__(x), x, self)


class Conv(nnx.Conv):
    """``nnx.Conv`` that reports itself to :func:`mgs_teach.fast.tap` (for the fast trace)."""

    def __call__(self, x: jax.Array) -> jax.Array:
        return tap(super().__call__(x), x, self)


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
        self.dropout = nnx.Dropout(dropout, rngs=rngs) if dropout > 0 else None

    def __call__(self, x: jax.Array, *, rngs: jax.Array | None = None) -> jax.Array:
        x = jnp.reshape(x, (x.shape[0], -1))
        return _fc_head(x, self.layers, self.dropout, rngs, self.activation)


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
        ``True``: training mode, dropout on; returns ``apply_fn(params, x, key)``, whose
        dropout masks are drawn from the PRNG ``key``.

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

    def train_fn(params: Any, x: jax.Array, key: jax.Array) -> jax.Array:
        return nnx.merge(graphdef, nnx.State(params), rest)(x, rngs=key)

    return (train_fn if train else apply_fn), nnx.to_pure_dict(state)


def n_params(params: Any) -> int:
    """Number of scalar parameters in a pytree."""
    return sum(int(leaf.size) for leaf in jax.tree.leaves(params))


def _as_image(x: jax.Array) -> jax.Array:
    """``(B, 28, 28)`` or ``(B, 28, 28, 1)`` inputs as NHWC ``(B, 28, 28, 1)``."""
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[1:] != (28, 28, 1):
        raise ValueError(
            f"expected images of shape (B, 28, 28) or (B, 28, 28, 1), got {tuple(x.shape)}"
        )
    return x


def _fc_head(
    x: jax.Array,
    layers: nnx.List,
    dropout: nnx.Dropout | None,
    rngs: jax.Array | None,
    activation: Callable[[jax.Array], jax.Array] = jax.nn.relu,
) -> jax.Array:
    """Fully connected layers with ``activation``, dropout between them, linear last layer.

    ``rngs`` (a PRNG key) draws the dropout masks; without it the module's own stream does.
    """
    for layer in layers[:-1]:
        x = activation(layer(x))
        if dropout is not None:
            x = dropout(x, rngs=rngs)
    return layers[-1](x)


class LeNet5(nnx.Module):
    """LeNet-5-style CNN for 28 x 28 grey-scale images (the paper's Table 1 model).

    ``conv 6@5x5 (SAME) -> relu -> avgpool 2 -> conv 16@5x5 (VALID) -> relu -> avgpool 2
    -> flatten (5*5*16 = 400) -> FC 120 -> relu -> FC 84 -> relu -> FC d_out``.
    With ``d_out = 10`` it has 61,706 parameters.

    Parameters
    ----------
    d_out : int
        Number of outputs (logits).
    dropout : float
        Dropout rate between the fully connected layers (0 disables it).
    rngs : nnx.Rngs

    Call with ``x`` of shape ``(B, 28, 28)`` or ``(B, 28, 28, 1)`` (NHWC); returns
    logits of shape ``(B, d_out)``.
    """

    def __init__(self, d_out: int = 10, *, dropout: float = 0.0, rngs: nnx.Rngs) -> None:
        if d_out < 1:
            raise ValueError(f"bad LeNet5 size: d_out={d_out}")
        self.conv1 = Conv(1, 6, (5, 5), padding="SAME", rngs=rngs)
        self.conv2 = Conv(6, 16, (5, 5), padding="VALID", rngs=rngs)
        sizes = [5 * 5 * 16, 120, 84, d_out]
        self.fc = nnx.List([Linear(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:])])
        self.dropout = nnx.Dropout(dropout, rngs=rngs) if dropout > 0 else None

    def __call__(self, x: jax.Array, *, rngs: jax.Array | None = None) -> jax.Array:
        x = _as_image(x)
        x = nnx.avg_pool(jax.nn.relu(self.conv1(x)), (2, 2), strides=(2, 2))  # (B, 14, 14, 6)
        x = nnx.avg_pool(jax.nn.relu(self.conv2(x)), (2, 2), strides=(2, 2))  # (B, 5, 5, 16)
        x = jnp.reshape(x, (x.shape[0], -1))  # (B, 400)
        return _fc_head(x, self.fc, self.dropout, rngs)


class AlexNet(nnx.Module):
    """A small AlexNet-style CNN for 28 x 28 grey-scale images (the paper's Figure 3 model).

    Five 3x3 convolutions (SAME padding, ReLU after each) with three max-pools, then three
    fully connected layers::

        conv 32 -> maxpool 2 -> conv 64 -> maxpool 2            # (B, 7, 7, 64)
        -> conv 96 -> conv 96 -> conv 64 -> maxpool 2           # (B, 3, 3, 64)
        -> flatten (576) -> FC 256 -> FC 256 -> FC d_out

    With ``d_out = 10`` it has 428,682 parameters, small enough for a CPU.

    Parameters
    ----------
    d_out : int
        Number of outputs (logits).
    dropout : float
        Dropout rate between the fully connected layers (0 disables it).
    rngs : nnx.Rngs

    Call with ``x`` of shape ``(B, 28, 28)`` or ``(B, 28, 28, 1)`` (NHWC); returns
    logits of shape ``(B, d_out)``.
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
        self.dropout = nnx.Dropout(dropout, rngs=rngs) if dropout > 0 else None

    def __call__(self, x: jax.Array, *, rngs: jax.Array | None = None) -> jax.Array:
        x = _as_image(x)
        pool_after = {0, 1, 4}
        for i, conv in enumerate(self.convs):
            x = jax.nn.relu(conv(x))
            if i in pool_after:
                x = nnx.max_pool(x, (2, 2), strides=(2, 2))
        x = jnp.reshape(x, (x.shape[0], -1))  # (B, 576)
        return _fc_head(x, self.fc, self.dropout, rngs)
