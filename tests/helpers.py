"""What the core's tests share: one small network and one small two-circles task.

The lab's tests (``tests/lab/helpers.py``) import the same :func:`make_model` and
:data:`CFG` (one object each), so that compiled programs, cached by their arguments, are
compiled once per process whichever module asks first.
"""

import jax.numpy as jnp

from mgs_teach.config import Config
from mgs_teach.data import two_circles
from mgs_teach.models import FCN

CFG = Config(epochs=4, batch_size=16, n_records=5, monitor_size=8, learning_rate=0.2)


def make_model(dropout, rngs):
    """A 2 x 16 tanh network on the plane with two classes."""
    return FCN(2, 2, depth=2, width=16, activation=jnp.tanh, dropout=dropout, rngs=rngs)


def circles():
    """``(x_train, y_train, x_test, y_test)``: 64 and 32 points of two circles."""
    x, y = two_circles(96, noise=0.1, seed=1)
    return x[:64], y[:64], x[64:], y[64:]
