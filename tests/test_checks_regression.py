"""The self-checks of "Regression: keypoints on blurred faces" accept right answers, reject
the usual wrong ones with their hints, survive malformed ones, and never print the answer."""

import numpy as np
import pytest

from mgs_teach import checks
from mgs_teach.checks import regression as R
from mgs_teach.faces import KEYPOINTS


def raises(*args):
    raise RuntimeError("student bug")


def mirror_ok(y, size):
    points = np.asarray(y, dtype=float).reshape(len(y), 15, 2)
    index = {k: i for i, k in enumerate(KEYPOINTS)}
    out = np.empty_like(points)
    for k, i in index.items():
        j = index[k.replace("left", "#").replace("right", "left").replace("#", "right")]
        out[:, j] = np.stack([size - points[:, i, 0], points[:, i, 1]], -1)
    return out.reshape(len(y), -1)


def aggregate_ok(frame, last):
    frame = frame.sort_values(["seed", "step"])
    finals = frame.groupby("seed")["test_mse"].apply(lambda a: a.tail(last).mean())
    return finals.mean(), finals.std(ddof=1), frame.groupby("step")["test_mse"].mean().min()


def aggregate_max(frame, last):
    final, sd, _ = aggregate_ok(frame, last)
    return final, sd, frame.groupby("step")["test_mse"].mean().max()


def aggregate_min_of_runs(frame, last):
    final, sd, _ = aggregate_ok(frame, last)
    return final, sd, frame["test_mse"].min()


def test_right_answers_pass(capsys):
    assert checks.noise_floor(lambda s: (s / 48) ** 2)
    assert checks.trace_passes(lambda c, m, k=1: c if m == "exact" else k)
    assert checks.mirror_keypoints(mirror_ok)
    assert checks.error_aggregate(aggregate_ok)
    assert capsys.readouterr().out.count("✅") == 4


@pytest.mark.parametrize("check, wrong, hint", [
    (checks.noise_floor, lambda s: s / 48, "square the scale"),
    (checks.noise_floor, lambda s: (s / 96) ** 2, "half the image side"),
    (checks.noise_floor, lambda s: s**2, "divide the pixel scale"),
    (checks.noise_floor, raises, "its variance"),
    (checks.trace_passes, lambda c, m, k: c, "number of probes"),
    (checks.trace_passes, lambda c, m, k: c * k, "does not use probes"),
    (checks.trace_passes, lambda c, m, k: 32 * (c if m == "exact" else k), "batch size"),
    (checks.mirror_keypoints, lambda y, s: np.where(np.arange(30) % 2 == 0, s - y, y),
     "swap every left keypoint"),
    (checks.mirror_keypoints, lambda y, s: mirror_ok(y, s - 1), "size - x"),
    (checks.mirror_keypoints, lambda y, s: np.asarray(y)[:1], "same shape"),
    (checks.mirror_keypoints, raises, "same shape"),
    (checks.error_aggregate, aggregate_max, "lowest one"),
    (checks.error_aggregate, aggregate_min_of_runs, "average the runs at each step first"),
    (checks.error_aggregate, lambda f, last: 1.0, "three numbers"),
])  # fmt: skip
def test_wrong_answers_get_their_hint(check, wrong, hint, capsys):
    assert not check(wrong)
    out = capsys.readouterr().out
    assert "❌" in out and hint in out


def test_exported():
    assert set(R.__all__) == {"noise_floor", "trace_passes", "mirror_keypoints",
                              "error_aggregate"}  # fmt: skip
    assert set(R.__all__) <= set(checks.__all__)
