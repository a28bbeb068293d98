"""The regression benchmark's data: faces with 15 keypoints, drawn offline, and the Kaggle CSV.

The paper's regression task is Kaggle's Facial Keypoints Detection: 96 x 96 grey faces,
each with up to 15 keypoints (30 coordinates), motion-blurred, with Gaussian noise added to
the target coordinates, trained with an MSE loss. Its files need a Kaggle login, so this
module draws a stand-in with the same structure:

- :func:`keypoint_faces` draws faces procedurally: a head, eyes, eyebrows, a nose and a
  mouth, with random position, size, rotation, proportions, expression and lighting, and
  returns the 15 keypoints of Kaggle's table, in its order and units (pixels, x then y),
  known exactly because they define the drawing;
- :func:`corrupted_faces` blurs them (MNIST-C's motion blur, its radius and sigma scaled to
  the image size) and adds Gaussian noise to the training targets, at a scale given in
  the paper's units (pixels of a 96-pixel image) and scaled to the image size;
- :func:`load_kaggle_csv` reads Kaggle's ``training.csv`` for readers who have it, and
  :func:`resize` brings its images to the size a plan trains on.

::

    x, y = keypoint_faces(500, size=48, seed=0)      # (500, 48, 48), (500, 30)
    x_tr, y_tr, x_te, y_te = corrupted_faces(300, 200, target_noise=15.0, size=48, seed=0)
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from mgs_teach.corruptions import MNIST_C_BLUR, motion_blur

__all__ = [
    "KAGGLE_SIZE",
    "KEYPOINTS",
    "TRAIN_SHARE",
    "corrupted_faces",
    "kaggle_pool",
    "keypoint_faces",
    "load_kaggle_csv",
    "resize",
    "target_noise_scale",
]

#: The 15 keypoints of Kaggle's table, in its column order; each is an ``_x`` and a ``_y``
#: column. "Left" is the subject's left, on the right of the image.
KEYPOINTS = (
    "left_eye_center", "right_eye_center", "left_eye_inner_corner", "left_eye_outer_corner",
    "right_eye_inner_corner", "right_eye_outer_corner", "left_eyebrow_inner_end",
    "left_eyebrow_outer_end", "right_eyebrow_inner_end", "right_eyebrow_outer_end", "nose_tip",
    "mouth_left_corner", "mouth_right_corner", "mouth_center_top_lip",
    "mouth_center_bottom_lip",
)  # fmt: skip
#: The side of Kaggle's images, in pixels: the unit of the paper's noise scales.
KAGGLE_SIZE = 96


def _segment_distance(px: np.ndarray, py: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance of every pixel ``(px, py)`` to the segment from ``a`` to ``b``."""
    d = b - a
    t = np.clip(((px - a[0]) * d[0] + (py - a[1]) * d[1]) / max(float(d @ d), 1e-9), 0, 1)
    return np.hypot(px - a[0] - t * d[0], py - a[1] - t * d[1])


def _soft(distance: np.ndarray, edge: float = 0.7) -> np.ndarray:
    """Coverage of a shape from a signed distance (negative inside), anti-aliased."""
    return np.clip(0.5 - distance / edge, 0.0, 1.0)


class _Shape(NamedTuple):
    """A face's proportions in face units: the head's half-height is 1, ``u`` runs to the
    subject's left (the image's right) and ``v`` downwards, from the head's centre."""

    aspect: float  # head width / height
    eye_v: float  # height of the eyes' centres
    eye_u: float  # distance of each eye's centre from the middle
    eye_w: float  # an eye's half-width
    eye_h: float  # and half-height
    brow_v: float  # height of the eyebrows' inner ends
    brow_in: float  # distance of an eyebrow's inner end from the middle
    brow_out: float  # and of its outer end
    brow_tilt: float  # how much higher the outer end is
    nose: np.ndarray  # the nose tip, (u, v)
    mouth_v: float  # height of the lips' meeting line
    mouth_u: float  # half-width of the mouth
    top: float  # the top lip's height above mouth_v
    bottom: float  # the bottom lip's depth below it
    smile: float  # corners above (smile) or below the lips' middle


class _Look(NamedTuple):
    """A face's grey levels, and its eyebrows' thickness (in face units)."""

    light: np.ndarray  # direction of the light, (u, v)
    background: float
    skin: float
    dark: float  # the eyes, the eyebrows and the mouth
    brow_width: float


def _draw_pose(rng: np.random.Generator, size: int) -> tuple[float, np.ndarray, np.ndarray]:
    """Where the head sits: its half-height ``s`` in pixels, its centre ``(2,)`` in pixels,
    and its rotation ``(2, 2)``."""
    s = size / 2 * rng.uniform(0.72, 0.9)  # half-height of the head, pixels
    centre = size / 2 + rng.uniform(-0.06, 0.06, 2) * size
    angle = np.radians(rng.uniform(-15, 15))
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return s, centre, rot


def _draw_shape(rng: np.random.Generator) -> _Shape:
    """Random proportions: the head, the eyes, the eyebrows, the nose and the mouth."""
    aspect = rng.uniform(0.72, 0.86)  # head width / height
    eye_v, eye_u = -0.22 + rng.uniform(-0.05, 0.05), 0.34 + rng.uniform(-0.04, 0.04)
    eye_w, eye_h = rng.uniform(0.1, 0.14), rng.uniform(0.04, 0.07)
    brow_v = eye_v - rng.uniform(0.15, 0.22)
    brow_in, brow_out = 0.16 + rng.uniform(-0.03, 0.03), 0.52 + rng.uniform(-0.04, 0.04)
    brow_tilt = rng.uniform(-0.06, 0.06)
    nose = np.array([rng.uniform(-0.04, 0.04), 0.14 + rng.uniform(-0.04, 0.04)])
    mouth_v, mouth_u = 0.5 + rng.uniform(-0.05, 0.05), 0.27 + rng.uniform(-0.04, 0.04)
    top, bottom = rng.uniform(0.02, 0.06), rng.uniform(0.03, 0.12)
    smile = rng.uniform(-0.05, 0.06)
    return _Shape(aspect, eye_v, eye_u, eye_w, eye_h, brow_v, brow_in, brow_out, brow_tilt,
                  nose, mouth_v, mouth_u, top, bottom, smile)  # fmt: skip


def _draw_look(rng: np.random.Generator) -> _Look:
    """Random lighting and grey levels (drawn after the shape: every draw keeps its place)."""
    light = rng.uniform(-0.25, 0.25, 2)
    background, skin = rng.uniform(0.05, 0.45), rng.uniform(0.55, 0.85)
    dark = rng.uniform(0.02, 0.2)
    return _Look(light, background, skin, dark, brow_width=rng.uniform(0.035, 0.06))


def _keypoints(f: _Shape) -> np.ndarray:
    """The 15 keypoints of :data:`KEYPOINTS` in face units, shape ``(15, 2)``."""
    eye_u, eye_v, eye_w, brow_v, smile = f.eye_u, f.eye_v, f.eye_w, f.brow_v, f.smile
    return np.array([
        (eye_u, eye_v), (-eye_u, eye_v),
        (eye_u - eye_w, eye_v), (eye_u + eye_w, eye_v),
        (-eye_u + eye_w, eye_v), (-eye_u - eye_w, eye_v),
        (f.brow_in, brow_v), (f.brow_out, brow_v - f.brow_tilt),
        (-f.brow_in, brow_v), (-f.brow_out, brow_v - f.brow_tilt),
        tuple(f.nose),
        (f.mouth_u, f.mouth_v - smile), (-f.mouth_u, f.mouth_v - smile),
        (0.0, f.mouth_v - f.top), (0.0, f.mouth_v + f.bottom),
    ])  # fmt: skip


def _paint(f: _Shape, look: _Look, kp: np.ndarray, xx: np.ndarray, u: np.ndarray,
           v: np.ndarray, unit: float) -> np.ndarray:  # fmt: skip
    """Paint the face, part after part, on the pixel grid: ``xx`` holds each pixel's column
    divided by the image's side, ``u`` and ``v`` its face coordinates, all ``(size, size)``;
    ``unit`` is one pixel in face units. Returns the unclipped image ``(size, size)``."""
    background = look.background + 0.1 * (look.light[0] * (xx - 0.5))
    skin = look.skin + 0.15 * (look.light[0] * u + look.light[1] * v)
    image = background.copy()
    head = np.hypot(u / f.aspect, v) - 1.0
    image += _soft(head / unit) * (skin - background)
    dark = look.dark
    for cx in (f.eye_u, -f.eye_u):  # eyes: dark ellipses with a bright rim left as skin
        eye = np.hypot((u - cx) / f.eye_w, (v - f.eye_v) / f.eye_h) - 1.0
        image += _soft(eye * min(f.eye_w, f.eye_h) / unit) * (dark - image)
    for a, b in ((kp[6], kp[7]), (kp[8], kp[9])):  # eyebrows: thick strokes
        dist = _segment_distance(u, v, a, b) - look.brow_width
        image += _soft(dist / unit) * (dark + 0.1 - image)
    bridge = np.array([0.0, f.eye_v + 0.05])  # nose: a shaded stroke ending in the tip
    dist = _segment_distance(u, v, bridge, f.nose) - 0.025
    image += 0.5 * _soft(dist / unit) * (skin - 0.25 - image)
    tip = np.hypot(u - f.nose[0], v - f.nose[1]) - 0.05
    image += _soft(tip / unit) * (skin - 0.3 - image)
    mid = f.mouth_v + (f.bottom - f.top) / 2  # mouth: an ellipse through corners and lips
    half_h = (f.top + f.bottom) / 2
    bend = f.smile * (1 - (u / f.mouth_u) ** 2)  # the corners move, the middle stays
    mouth = np.hypot(u / f.mouth_u, (v - mid + bend) / half_h) - 1.0
    image += _soft(mouth * half_h / unit) * (dark + 0.05 - image)
    return image


def _face(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One face: ``(image (size, size), keypoints (15, 2))``; every length in face units,
    where the head's half-height is 1, then mapped to pixels."""
    s, centre, rot = _draw_pose(rng, size)
    shape = _draw_shape(rng)
    look = _draw_look(rng)
    kp = _keypoints(shape)
    # pixel grid in face units
    yy, xx = np.mgrid[0:size, 0:size].astype(float) + 0.5
    rel = (np.stack([xx - centre[0], yy - centre[1]], -1) @ rot) / s
    u, v = rel[..., 0], rel[..., 1]
    image = _paint(shape, look, kp, xx / size, u, v, unit=1.0 / s)  # one pixel in face units
    return np.clip(image, 0.0, 1.0), centre + (kp * s) @ rot.T


def keypoint_faces(
    n: int, *, size: int = KAGGLE_SIZE, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` faces and their 15 keypoints.

    Parameters
    ----------
    n : int
    size : int
        Side of the square images, in pixels (Kaggle's is 96).
    seed : int

    Returns
    -------
    images : float32 array, shape ``(n, size, size)``
        Grey levels in ``[0, 1]``, with a little pixel noise.
    keypoints : float32 array, shape ``(n, 30)``
        Kaggle's columns: ``x`` then ``y`` of each of :data:`KEYPOINTS`, in pixels from the
        top-left corner.
    """
    if n < 1 or size < 16:
        raise ValueError(f"need n >= 1 and size >= 16, got n={n}, size={size}")
    rng = np.random.default_rng(seed)
    images = np.empty((n, size, size), np.float32)
    keypoints = np.empty((n, 2 * len(KEYPOINTS)), np.float32)
    for i in range(n):
        image, kp = _face(rng, size)
        images[i] = np.clip(image + rng.normal(0, 0.02, image.shape), 0, 1)
        keypoints[i] = kp.reshape(-1)
    return images, keypoints


def target_noise_scale(noise: float, size: int) -> float:
    """The paper's target-noise scale ``noise`` (pixels of a 96-pixel image) on ``size`` pixels."""
    return float(noise) * size / KAGGLE_SIZE


def corrupted_faces(
    n_train: int,
    n_test: int,
    *,
    target_noise: float = 0.0,
    size: int = 48,
    blur: bool = True,
    seed: int = 0,
    pool_seed: int = 2022,
    pool: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The regression task: blurred faces, Gaussian noise on the training targets.

    The faces form one fixed pool (``pool_seed``), blurred once, as MNIST-C's digits are.
    Its training part holds ``n_train / TRAIN_SHARE`` faces, so that, as in the paper, "the
    training size was held fixed at 30% of the total data"; ``seed`` draws the training
    subset from it and the target noise. The test faces are the pool's last ``n_test``, the
    same for every seed, with exact targets.

    Parameters
    ----------
    n_train, n_test : int
    target_noise : float
        Standard deviation of the Gaussian noise added to every training coordinate, in the
        paper's units (pixels of a 96-pixel image; its tables use 0, 10, 20 and 30), scaled
        to ``size`` by :func:`target_noise_scale`.
    size : int
        Side of the images, in pixels.
    blur : bool
        Motion-blur every face (MNIST-C's blur, its radius and sigma scaled by ``size / 28``).
    seed, pool_seed : int
    pool : (images, keypoints), optional
        Faces to use instead of drawn ones (Kaggle's, from :func:`kaggle_pool`), already at
        ``size`` and blurred: the last ``n_test`` are the test faces, the training faces are
        drawn from the others.

    Returns
    -------
    x_train : float32 array, shape ``(n_train, size, size)``
    y_train : float32 array, shape ``(n_train, 30)``
        Noisy keypoints, in pixels.
    x_test : float32 array, shape ``(n_test, size, size)``
    y_test : float32 array, shape ``(n_test, 30)``
        Exact keypoints.
    """
    if n_train < 1 or n_test < 1 or target_noise < 0:
        raise ValueError(f"need n_train, n_test >= 1 and target_noise >= 0, got {n_train}, "
                         f"{n_test}, {target_noise}")  # fmt: skip
    x, y = _pool(n_train, n_test, size, blur, pool_seed) if pool is None else pool
    n_pool = len(y) - n_test
    if n_pool < n_train:
        raise ValueError(f"{len(y)} faces cannot hold {n_train} training and {n_test} test faces")
    idx = np.random.default_rng(seed).permutation(n_pool)[:n_train]
    noise = np.random.default_rng(seed + 1).normal(0, target_noise_scale(target_noise, size),
                                                   (n_train, y.shape[1]))  # fmt: skip
    y_train = (y[idx] + noise).astype(np.float32)
    return x[idx], y_train, x[n_pool:], y[n_pool:]


_FACE_POOLS: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}  # at most 4 pools, as _KAGGLE
#: A training set's share of the faces it is drawn from (the paper's 30 %).
TRAIN_SHARE = 0.3


def _blur(x: np.ndarray, size: int, seed: int) -> np.ndarray:
    """MNIST-C's motion blur with its radius and sigma scaled from 28 pixels to ``size``."""
    scale = size / 28
    return motion_blur(x, seed=seed, radius=MNIST_C_BLUR["radius"] * scale,
                       sigma=MNIST_C_BLUR["sigma"] * scale)[0]  # fmt: skip


def _pool(n_train: int, n_test: int, size: int, blur: bool, seed: int) -> tuple:
    n_pool = int(np.ceil(n_train / TRAIN_SHARE))
    key = (n_pool, n_test, size, blur, seed)
    if key not in _FACE_POOLS:
        if len(_FACE_POOLS) >= 4:  # bounded: the oldest pool goes first
            _FACE_POOLS.pop(next(iter(_FACE_POOLS)))
        x, y = keypoint_faces(n_pool + n_test, size=size, seed=seed)
        _FACE_POOLS[key] = (_blur(x, size, seed + 1) if blur else x, y)
    return _FACE_POOLS[key]


_KAGGLE: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}


def kaggle_pool(path: str | Path, size: int, blur: bool = True, *,
                seed: int = 2022) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Kaggle's complete faces at ``size`` pixels, blurred once as :func:`corrupted_faces`
    blurs drawn ones, in a fixed shuffled order (cached per process).

    Returns
    -------
    images : float32 array, shape ``(n, size, size)``
    keypoints : float32 array, shape ``(n, 30)``
        In pixels of the ``size``-pixel images.
    """
    key = (str(path), size, blur, seed)
    if key not in _KAGGLE:
        if len(_KAGGLE) >= 4:
            _KAGGLE.pop(next(iter(_KAGGLE)))
        x, y = resize(*load_kaggle_csv(path), size)
        order = np.random.default_rng(seed).permutation(len(y))
        x, y = x[order], y[order]
        _KAGGLE[key] = (_blur(x, size, seed + 1) if blur else x, y)
    return _KAGGLE[key]


def load_kaggle_csv(path: str | Path, *, complete: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Read Kaggle's Facial Keypoints ``training.csv``.

    Its columns are the 30 keypoint coordinates (:data:`KEYPOINTS`, ``_x`` and ``_y``), in
    any order, and ``Image``: 96 x 96 grey levels 0-255 separated by spaces. Many rows lack
    some keypoints.

    Parameters
    ----------
    path : path
    complete : bool
        Keep only the rows with all 30 coordinates (2,140 of Kaggle's 7,049); otherwise
        missing ones are NaN.

    Returns
    -------
    images : float32 array, shape ``(n, 96, 96)``
        In ``[0, 1]``.
    keypoints : float32 array, shape ``(n, 30)``
        In the order of :data:`KEYPOINTS`, ``x`` then ``y``, in pixels.

    Raises
    ------
    ValueError
        If a column is missing or an image does not hold 96 x 96 values.
    """
    import pandas as pd

    frame = pd.read_csv(path)
    columns = [f"{k}_{axis}" for k in KEYPOINTS for axis in ("x", "y")]
    missing = [c for c in [*columns, "Image"] if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: not Kaggle's keypoints table, missing columns {missing[:3]}")
    if complete:
        frame = frame.dropna(subset=columns)
    pixels = KAGGLE_SIZE * KAGGLE_SIZE
    images = np.empty((len(frame), KAGGLE_SIZE, KAGGLE_SIZE), np.float32)
    for i, text in enumerate(frame["Image"]):
        values = np.array(str(text).split(), dtype=np.float32)
        if values.size != pixels:
            raise ValueError(f"{path}: image {i} has {values.size} values, expected {pixels}")
        images[i] = values.reshape(KAGGLE_SIZE, KAGGLE_SIZE) / 255.0
    return images, frame[columns].to_numpy(np.float32)


def resize(images: np.ndarray, keypoints: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Shrink square images by an integer factor (block means) and scale their keypoints.

    Parameters
    ----------
    images : array, shape ``(n, S, S)``
    keypoints : array, shape ``(n, 30)``
        In pixels of the ``S``-pixel images.
    size : int
        New side; must divide ``S``.
    """
    n, side, _ = images.shape
    if side % size:
        raise ValueError(f"{size} does not divide the image side {side}")
    f = side // size
    small = images.reshape(n, size, f, size, f).mean(axis=(2, 4))
    return small.astype(np.float32), (keypoints / f).astype(np.float32)
