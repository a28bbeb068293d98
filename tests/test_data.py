import numpy as np
import pytest

from mgs_teach.data import flip_labels, two_circles, two_circles_task


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


def test_flip_labels_flips_exactly_the_fraction_to_other_classes():
    y = np.repeat(np.arange(10), 30)
    noisy = flip_labels(y, 0.3, n_classes=10, seed=0, convention="other")
    assert np.sum(noisy != y) == 90  # exactly round(0.3 * 300), each to another class
    assert noisy.min() >= 0 and noisy.max() < 10
    np.testing.assert_array_equal(noisy, flip_labels(y, 0.3, n_classes=10, seed=0,
                                                     convention="other"))  # fmt: skip
    assert np.array_equal(y, np.repeat(np.arange(10), 30))  # input untouched
    # targets are spread over the other classes, not always the next one
    assert len(np.unique((noisy - y)[noisy != y] % 10)) > 5


def test_uniform_noise_redraws_the_fraction_over_all_classes():
    """The default reading: the chosen labels are redrawn uniformly, the true class included,
    so about (C - 1) / C of them change and the rest keep their (true) value by chance."""
    y = np.repeat(np.arange(10), 2000)
    noisy = flip_labels(y, 0.6, n_classes=10, seed=0)
    changed = np.mean(noisy != y)
    assert changed == pytest.approx(0.6 * 9 / 10, abs=0.01)  # 54 %, not 60 %
    kept_by_chance = flip_labels(y, 1.0, n_classes=10, seed=1)
    assert np.mean(kept_by_chance == y) == pytest.approx(0.1, abs=0.01)
    counts = np.bincount(noisy[y == 3], minlength=10) / 2000  # row 3 of the noise matrix
    np.testing.assert_allclose(counts[3], 1 - 0.6 + 0.06, atol=0.02)
    np.testing.assert_allclose(np.delete(counts, 3), 0.06, atol=0.015)
    with pytest.raises(ValueError, match="convention"):
        flip_labels(y, 0.1, n_classes=10, convention="sometimes")


@pytest.mark.parametrize(
    "fraction, classes, message",
    [
        (1.5, 2, r"\[0, 1\]"),
        (-0.1, 2, r"\[0, 1\]"),
        (0.1, 1, "at least 2"),
        (0.1, 3, "must lie in"),
    ],
)
def test_flip_labels_rejects_bad_requests(fraction, classes, message):
    with pytest.raises(ValueError, match=message):
        flip_labels(np.array([0, 1, 3]), fraction, n_classes=classes)


def test_two_circles_task_noises_only_the_training_labels():
    x_tr, y_tr, x_te, y_te = two_circles_task(100, 50, label_noise=0.2, seed=4)
    assert x_tr.shape == (100, 2) and x_te.shape == (50, 2)
    _, y_clean = two_circles(150, noise=0.1, seed=4)
    assert np.sum(y_tr != y_clean[:100]) == 20
    np.testing.assert_array_equal(y_te, y_clean[100:])
