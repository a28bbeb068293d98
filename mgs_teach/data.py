"""Small data sets for the book.

Every function is deterministic given its ``seed`` and returns NumPy arrays: inputs
``x`` as float32 of shape ``(n, d)`` and integer labels ``y`` of shape ``(n,)``.
"""

from __future__ import annotations

import numpy as np
from sklearn.datasets import make_circles

__all__ = ["two_circles"]


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
