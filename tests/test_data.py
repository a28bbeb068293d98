import numpy as np
import pytest

from mgs_teach.data import two_circles


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
