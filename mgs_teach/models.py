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

__all__ = ["FCN", "functional", "n_params"]


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
        self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:])])
        self.activation = activation
        self.dropout = nnx.Dropout(dropout, rngs=rngs) if dropout > 0 else None

    def __call__(self, x: jax.Array) -> jax.Array:
        x = jnp.reshape(x, (x.shape[0], -1))
        for layer in self.layers[:-1]:
            x = self.activation(layer(x))
            if self.dropout is not None:
                x = self.dropout(x)
        return self.layers[-1](x)


def functional(module: nnx.Module) -> tuple[Callable[[Any, jax.Array], jax.Array], dict]:
    """Split an NNX module into a pure ``apply_fn(params, x)`` and a plain-dict ``params``.

    The module is cloned and put in evaluation mode (dropout off), so the function is
    deterministic and the caller's module is left untouched.

    Returns
    -------
    apply_fn : callable
        ``apply_fn(params, x)`` evaluates the module with parameters ``params``.
    params : dict
        Nested dict of the module's ``nnx.Param`` arrays.
    """
    module = nnx.clone(module)
    module.eval()
    graphdef, state, rest = nnx.split(module, nnx.Param, ...)

    def apply_fn(params: Any, x: jax.Array) -> jax.Array:
        return nnx.merge(graphdef, nnx.State(params), rest)(x)

    return apply_fn, nnx.to_pure_dict(state)


def n_params(params: Any) -> int:
    """Number of scalar parameters in a pytree."""
    return sum(int(leaf.size) for leaf in jax.tree.leaves(params))
