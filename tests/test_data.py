import numpy as np
import pytest

from mgs_teach.data import two_circles, two_circles_task


def test_two_circles_is_deterministic_and_balanced():
    x, y = two_circles(100, noise=0.05, seed=3)
    x2, y2 = two_circles(100, noise=0.05, seed=3)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    assert x.shape == (100, 2) and x.dtype == np.float32 and y.dtype == np.int32
    assert np.bincount(y).tolist() == [50, 50]
    radius = np.linalg.norm(x, axis=1)
    assert radius[y == 1].mean() < radius[y == 0].mean()  # label 1 is the inner circle


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(n=1), "n >= 2"),
        (dict(noise=-0.1), "noise"),
        (dict(factor=1.0), "factor"),
    ],
)
def test_bad_requests_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        two_circles(**{"n": 10, **kwargs})


def test_two_circles_task_noises_only_the_training_labels():
    x_tr, y_tr, x_te, y_te = two_circles_task(100, 50, label_noise=0.2, seed=4)
    assert x_tr.shape == (100, 2) and x_te.shape == (50, 2)
    _, y_clean = two_circles(150, noise=0.1, seed=4)
    assert np.sum(y_tr != y_clean[:100]) == 20
    np.testing.assert_array_equal(y_te, y_clean[100:])


def test_mnist_and_the_corruptions_are_importable_from_data_too():
    from mgs_teach import corruptions, data, mnist

    for module in (mnist, corruptions):
        for name in module.__all__:
            assert getattr(data, name) is getattr(module, name), name
    assert data.OFFLINE_TEST_SIZE == mnist.OFFLINE_TEST_SIZE


def test_the_command_line_exports_the_offline_digits(tmp_path):
    import subprocess
    import sys

    run = [sys.executable, "-m", "mgs_teach.data"]
    done = subprocess.run(run, capture_output=True, text=True)
    assert done.returncode == 1 and "usage: python -m mgs_teach.data export-offline" in done.stderr
    path = tmp_path / "offline.npz"
    done = subprocess.run([*run, "export-offline", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"wrote {path}\n"
    with np.load(path) as f:
        assert f["x"].shape == (5000, 784) and f["y"].dtype == np.int32
