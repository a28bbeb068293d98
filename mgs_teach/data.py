"""Small data sets for the book.

Every function is deterministic given its ``seed`` and returns NumPy arrays: inputs
``x`` as float32 of shape ``(n, d)`` and integer labels ``y`` of shape ``(n,)``.
"""

from __future__ import annotations

import numpy as np
from sklearn.datasets import make_circles

__all__ = ["flip_labels", "two_circles", "two_circles_task"]


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


def flip_labels(y: np.ndarray, fraction: float, *, n_classes: int, seed: int = 0) -> np.ndarray:
    """Label noise: flip a given fraction of labels, each to a uniformly chosen *other* class.

    Parameters
    ----------
    y : int array, shape ``(n,)``
    fraction : float
        Share of labels to flip, in ``[0, 1]``; exactly ``round(fraction * n)`` are flipped.
    n_classes : int
        Number of classes (at least 2).
    seed : int

    Returns
    -------
    int array, shape ``(n,)``
        A new array; ``y`` is not modified.
    """
    y = np.asarray(y)
    if not 0 <= fraction <= 1:
        raise ValueError(f"the noise fraction must lie in [0, 1], got {fraction}")
    if n_classes < 2:
        raise ValueError(f"label noise needs at least 2 classes, got n_classes={n_classes}")
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes}), got [{y.min()}, {y.max()}]")
    rng = np.random.default_rng(seed)
    noisy = y.copy()
    idx = rng.choice(len(y), size=int(round(fraction * len(y))), replace=False)
    shift = rng.integers(1, n_classes, size=len(idx))  # never 0: always another class
    noisy[idx] = (y[idx] + shift) % n_classes
    return noisy


def two_circles_task(
    n_train: int = 200,
    n_test: int = 1000,
    *,
    noise: float = 0.1,
    label_noise: float = 0.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The two-circles problem as ``(x_train, y_train, x_test, y_test)`` for training.

    Training labels carry ``label_noise`` (a fraction flipped); test labels are clean, so test
    accuracy measures what was learnt about the circles, not about the noise.
    """
    x, y = two_circles(n_train + n_test, noise=noise, seed=seed)
    y_train = flip_labels(y[:n_train], label_noise, n_classes=2, seed=seed + 1)
    return x[:n_train], y_train, x[n_train:], y[n_train:]
