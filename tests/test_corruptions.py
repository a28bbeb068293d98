"""Label noise in both conventions, and MNIST-C's motion blur (against ImageMagick itself)."""

import os

import numpy as np
import pytest

from mgs_teach import corruptions, mnist
from mgs_teach.corruptions import flip_labels


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


@pytest.mark.parametrize("angle", [-45.0, -10.0, 0.0, 30.0, 45.0, 90.0])
def test_motion_blur_kernel_is_imagemagicks_one_sided_gaussian(angle):
    offsets, weights = corruptions.motion_blur_kernel(angle)
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
    a, angles = corruptions.motion_blur(images, seed=1)
    b, _ = corruptions.motion_blur(images, seed=1)
    c, _ = corruptions.motion_blur(images, seed=2)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    np.testing.assert_allclose(a.sum(axis=(1, 2)), images.sum(axis=(1, 2)), rtol=0.02)
    assert np.all((angles > -45) & (angles < 45))  # MNIST-C's range
    np.testing.assert_allclose(np.round(a * 255), a * 255, atol=1e-4)  # 256 grey levels
    with pytest.raises(ValueError, match=r"\(n, H, W\)"):
        corruptions.motion_blur(images[0])
    with pytest.raises(ValueError, match="one angle per image"):
        corruptions.motion_blur(images, angles=np.zeros(2))


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

    digits = mnist.load_mnist("offline")
    picks = [np.flatnonzero(digits.y_train == c)[0] for c in range(10)]
    angles = np.array([-45.0, -44.1, -30.0, -17.5, -3.2, 0.0, 11.0, 26.6, 38.7, 45.0])
    blurred = corruptions.motion_blur(digits.x_train[picks], angles=angles)[0]
    ours = np.round(blurred * 255).astype(int)
    for k, (i, angle) in enumerate(zip(picks, angles)):
        png = io.BytesIO()
        Image.fromarray(np.round(digits.x_train[i] * 255).astype(np.uint8), mode="L").save(
            png, "PNG"
        )
        with WandImage(blob=png.getvalue()) as image:
            library.MagickMotionBlurImage(image.wand, 10.0, 3.0, float(angle))
            blob = image.make_blob("png")
        reference = np.asarray(Image.open(io.BytesIO(blob)).convert("L"), dtype=int)
        np.testing.assert_array_equal(ours[k], reference, err_msg=f"digit {k}, angle {angle}")
