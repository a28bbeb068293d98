"""How the paper corrupts its data: label noise, and MNIST-C's motion blur.

Both are deterministic given their ``seed`` and return new NumPy arrays.
:func:`flip_labels` corrupts a share of the labels, in either of the two readings of
"randomly flipped" (:data:`NOISE_CONVENTIONS`); :func:`motion_blur` blurs images as MNIST-C
does, with ImageMagick's kernel (:func:`motion_blur_kernel`). :mod:`mgs_teach.mnist` applies
both to the digits, :mod:`mgs_teach.faces` the blur to the faces, and :mod:`mgs_teach.data`
the label noise to the two circles.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "MNIST_C_BLUR",
    "NOISE_CONVENTIONS",
    "flip_labels",
    "motion_blur",
    "motion_blur_kernel",
]

#: The two readings of "a fraction of the labels was randomly flipped".
NOISE_CONVENTIONS = ("uniform", "other")


def flip_labels(
    y: np.ndarray,
    fraction: float,
    *,
    n_classes: int,
    seed: int = 0,
    convention: str = "uniform",
) -> np.ndarray:
    """Label noise: corrupt exactly ``round(fraction * n)`` labels, chosen at random.

    Parameters
    ----------
    y : int array, shape ``(n,)``
    fraction : float
        Share of labels to corrupt, in ``[0, 1]``.
    n_classes : int
        Number of classes (at least 2).
    seed : int
    convention : {"uniform", "other"}
        ``"uniform"``: each chosen label is redrawn uniformly over all ``n_classes`` classes,
        the true one included, so about ``fraction * (C - 1) / C`` of the labels end up
        wrong. ``"other"``: each chosen label is sent to a uniformly chosen *other* class,
        so exactly ``fraction`` of them are wrong.

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
    if convention not in NOISE_CONVENTIONS:
        raise ValueError(f"unknown noise convention {convention!r}; use one of {NOISE_CONVENTIONS}")
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes}), got [{y.min()}, {y.max()}]")
    rng = np.random.default_rng(seed)
    noisy = y.copy()
    idx = rng.choice(len(y), size=int(round(fraction * len(y))), replace=False)
    if convention == "uniform":
        noisy[idx] = rng.integers(0, n_classes, size=len(idx))
    else:
        shift = rng.integers(1, n_classes, size=len(idx))  # never 0: always another class
        noisy[idx] = (y[idx] + shift) % n_classes
    return noisy


# -------------------------------------------------------------------- motion blur


#: MNIST-C's motion blur: ImageMagick's motion blur with this radius and sigma (severity 1),
#: at an angle drawn uniformly from this range, in degrees.
MNIST_C_BLUR = dict(radius=10.0, sigma=3.0, angles=(-45.0, 45.0))


def motion_blur_kernel(
    angle: float, radius: float = MNIST_C_BLUR["radius"], sigma: float = MNIST_C_BLUR["sigma"]
) -> tuple[np.ndarray, np.ndarray]:
    r"""ImageMagick's motion-blur kernel: one-sided Gaussian weights along a line of pixels.

    As ``MotionBlurImage`` in ImageMagick's ``effect.c``: ``width = 2 * ceil(radius) + 1``
    taps; tap ``i`` has weight proportional to :math:`\exp(-i^2 / 2\sigma^2)` (normalised
    to sum to 1) and reads the pixel ``round(i * (cos a, sin a))`` away, rounded half down
    (``ceil(v - 0.5)``). So each output pixel averages the pixels *behind* it along the
    direction ``a``, most weight on itself: a streak that fades in one direction.

    Parameters
    ----------
    angle : float
        Direction in degrees (0: along +x, the columns; 90: along +y, the rows).
    radius, sigma : float
        ImageMagick's radius (sets the number of taps) and standard deviation, in pixels.

    Returns
    -------
    offsets : int array, shape ``(width, 2)``
        ``(dx, dy)`` of each tap.
    weights : float array, shape ``(width,)``
        Non-negative, summing to 1, decreasing.
    """
    if not radius > 0 or not sigma > 0:
        raise ValueError(f"need radius > 0 and sigma > 0, got radius={radius}, sigma={sigma}")
    width = int(2 * np.ceil(radius) + 1)
    i = np.arange(width)
    weights = np.exp(-(i.astype(float) ** 2) / (2 * sigma**2))
    weights /= weights.sum()
    px, py = width * np.sin(np.radians(angle)), width * np.cos(np.radians(angle))
    hyp = np.hypot(px, py)
    offsets = np.stack([np.ceil(i * py / hyp - 0.5), np.ceil(i * px / hyp - 0.5)], axis=1)
    return offsets.astype(int), weights


def motion_blur(
    images: np.ndarray,
    *,
    angles: np.ndarray | None = None,
    seed: int = 0,
    radius: float = MNIST_C_BLUR["radius"],
    sigma: float = MNIST_C_BLUR["sigma"],
) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-C's motion blur {cite}`mu2019mnistc`, as ImageMagick computes it.

    MNIST-C saves each digit as an 8-bit PNG, calls ImageMagick's
    ``MagickMotionBlurImage(radius=10, sigma=3, angle)`` with an angle drawn uniformly from
    (-45°, 45°), and reads the 8-bit result back. This does the same in NumPy: each pixel
    becomes the weighted sum of :func:`motion_blur_kernel`'s taps (pixels beyond the border
    repeat the edge, ImageMagick's default), accumulated in ImageMagick's 16-bit quantum
    (``257`` per 8-bit grey level), rounded, and written back to 8 bits as ImageMagick 6
    (Q16) writes a PNG, by integer division by 257. A test compares it with ImageMagick
    itself, pixel for pixel.

    Parameters
    ----------
    images : array, shape ``(n, H, W)``
        Grey levels in ``[0, 1]`` (they are rounded to 8 bits first, as a PNG would).
    angles : array, shape ``(n,)``, optional
        Blur directions in degrees; drawn uniformly from (-45°, 45°) with ``seed`` if omitted.
    seed : int
    radius, sigma : float
        ImageMagick's parameters (MNIST-C's severity 1 by default).

    Returns
    -------
    blurred : float32 array, shape ``(n, H, W)``
        In ``[0, 1]``, multiples of 1/255.
    angles : array, shape ``(n,)``
        The angle used for each image.
    """
    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 3:
        raise ValueError(f"images must have shape (n, H, W), got {images.shape}")
    n, h, w = images.shape
    if angles is None:
        lo, hi = MNIST_C_BLUR["angles"]
        angles = np.random.default_rng(seed).uniform(lo, hi, size=n)
    angles = np.asarray(angles, dtype=float)
    if angles.shape != (n,):
        raise ValueError(f"need one angle per image: {angles.shape} for {n} images")
    grey = np.round(np.clip(images, 0, 1) * 255) * 257.0  # 8-bit PNG read into 16 bits
    width = int(2 * np.ceil(radius) + 1)
    pad = np.pad(grey, [(0, 0), (width, width), (width, width)], mode="edge")
    rows, cols = np.arange(h)[:, None], np.arange(w)[None, :]
    out = np.empty_like(grey)
    for k in range(n):
        offsets, weights = motion_blur_kernel(angles[k], radius, sigma)
        acc = np.zeros((h, w))
        for (dx, dy), wt in zip(offsets, weights):
            acc += wt * pad[k, width + dy + rows, width + dx + cols]
        out[k] = acc
    quantum = np.clip(np.floor(out + 0.5), 0, 65535)
    return (np.floor(quantum / 257) / 255).astype(np.float32), angles
