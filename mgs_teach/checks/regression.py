"""Self-checks for the chapter "Regression: keypoints on blurred faces".

Every check is data for :func:`mgs_teach.checks._common.check`: fixed cases, the expected
answers computed here, and hints for the usual mistakes. The hints never contain the
expected values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from mgs_teach.checks._common import Case, _close, _number, check
from mgs_teach.faces import KAGGLE_SIZE, KEYPOINTS

__all__ = ["error_aggregate", "mirror_keypoints", "noise_floor", "trace_passes"]


# ------------------------------------------------------------------- the noise floor


def _floor(noise: float) -> float:
    return (noise / (KAGGLE_SIZE / 2)) ** 2


def noise_floor(fn: Callable[[float], Any]) -> bool:
    """Check ``fn(noise) -> float``: the training MSE, on the scaled targets, of a network that
    predicts every keypoint exactly, when the training targets carry Gaussian noise of
    standard deviation ``noise`` pixels of a 96-pixel image."""
    cases = [Case((s,), _floor(s)) for s in (0.0, 10.0, 15.0, 30.0)]
    return check(
        "noise floor", fn, cases, rtol=1e-6, atol=1e-12,
        diagnoses=[
            (lambda s: s / (KAGGLE_SIZE / 2), "an MSE is a mean of squares: square the scale."),
            (lambda s: (s / KAGGLE_SIZE) ** 2,
             "the targets are scaled by half the image side (they run from -1 to 1), not by "
             "the whole side."),
            (lambda s: s**2, "the network sees scaled targets: divide the pixel scale by the "
                             "scaling of the coordinates first."),
        ],
        hint="the prediction is the clean target, so the error is the noise itself: its mean "
             "square is its variance, in the units of the scaled targets.",
    )  # fmt: skip


# ------------------------------------------------------------------- the cost of tr K


def trace_passes(fn: Callable[[int, str, int], Any]) -> bool:
    """Check ``fn(n_outputs, method, probes) -> int``: how many backward passes through the
    network one evaluation of the penalty's tr K costs on a batch, with ``method`` either
    ``"exact"`` (the structured trace) or ``"hutchinson"`` (``probes`` random probes)."""
    cases = [Case((c, m, k), c if m == "exact" else k)
             for c, m, k in ((10, "exact", 1), (30, "exact", 4), (30, "hutchinson", 1),
                             (30, "hutchinson", 4), (1, "exact", 2))]  # fmt: skip

    def per_sample(c, m, k, batch=32):
        return batch * (c if m == "exact" else k)

    return check(
        "backward passes", fn, cases, compare=lambda got, case: _number(got) == case.expected,
        diagnoses=[(lambda c, m, k: c * k if k > 1 else None,
                    "the exact trace does not use probes, and the estimate does not loop over "
                    "the outputs.")],
        symptoms=[
            (lambda got, c, m, k: m == "hutchinson" and _number(got) == c,
             "a Hutchinson probe mixes all C outputs into one backward pass: its cost is the "
             "number of probes."),
            (lambda got, c, m, k: _number(got) == per_sample(c, m, k),
             "one backward pass serves the whole batch (each sample's gradient is kept "
             "separately): do not multiply by the batch size."),
        ],
        hint="the exact trace needs the gradient of every output, each from its own backward "
             "pass over the batch; a probe needs one.",
    )  # fmt: skip


# ------------------------------------------------------------------- mirrored faces

_LR = {k: k.replace("left", "@").replace("right", "left").replace("@", "right") for k in KEYPOINTS}


def _mirror(y: np.ndarray, size: int) -> np.ndarray:
    y = np.asarray(y, dtype=float).reshape(len(y), len(KEYPOINTS), 2)
    out = np.empty_like(y)
    index = {k: i for i, k in enumerate(KEYPOINTS)}
    for k, i in index.items():
        out[:, index[_LR[k]], 0] = size - y[:, i, 0]
        out[:, index[_LR[k]], 1] = y[:, i, 1]
    return out.reshape(len(y), -1)


def mirror_keypoints(fn: Callable[[np.ndarray, int], Any]) -> bool:
    """Check ``fn(keypoints, size) -> keypoints``: the keypoints of the faces flipped left to
    right (``images[:, :, ::-1]``), in Kaggle's layout (``(n, 30)``, x then y of each of
    :data:`mgs_teach.faces.KEYPOINTS`, pixel coordinates from 0 to ``size``)."""
    rng = np.random.default_rng(0)
    cases = [
        Case((y, s), _mirror(y, s))
        for y, s in ((rng.uniform(5, 43, (3, 30)), 48), (rng.uniform(5, 91, (2, 30)), 96))
    ]

    def no_swap(y, size):
        out = np.asarray(y, dtype=float).copy()
        out[:, 0::2] = size - out[:, 0::2]
        return out

    def off_by_one(y, size):
        return _mirror(y, size - 1)

    return check(
        "mirrored keypoints", fn, cases, rtol=1e-9, atol=1e-9,
        shape_hint="return an array of the same shape, (n, 30).",
        diagnoses=[
            (no_swap, "after the flip, the subject's left eye is where the right one was: "
                      "swap every left keypoint with its right partner."),
            (off_by_one, "coordinates run over the pixels' edges, from 0 to size: a mirror "
                         "maps x to size - x, not size - 1 - x."),
            (lambda y, size: np.asarray(y, dtype=float), "flip the x coordinates."),
        ],
        hint="mirror x to size - x, keep y, and give each left keypoint the right one's place "
             "(names without a side, such as the nose tip, stay where they are).",
    )  # fmt: skip


# ------------------------------------------------------------------- aggregating an error


def _histories(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n_seeds, n_steps = int(rng.integers(2, 5)), int(rng.integers(7, 12))
    rows = []
    for s in range(n_seeds):
        curve = 40 * np.exp(-np.linspace(0, 3, n_steps)) + 10 + np.linspace(0, 6, n_steps)
        curve = curve + rng.normal(0, 1.0, n_steps)
        rows += [dict(seed=s, step=10 * t, test_mse=v) for t, v in enumerate(curve)]
    return pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)


def _aggregate(frame: pd.DataFrame, last: int) -> tuple[float, float, float]:
    frame = frame.sort_values(["seed", "step"])
    finals = frame.groupby("seed")["test_mse"].apply(lambda a: a.tail(last).mean())
    curve = frame.groupby("step")["test_mse"].mean()
    return float(finals.mean()), float(finals.std(ddof=1)), float(curve.min())


def error_aggregate(fn: Callable[[pd.DataFrame, int], Any]) -> bool:
    """Check ``fn(frame, last) -> (final, sd, lowest)``: the paper's aggregation for an error.

    ``frame`` has columns ``seed, step, test_mse`` in no particular order; *lowest* is the
    minimum over steps of the run-averaged curve (the number in parentheses of Table 2).
    """
    frames = [(_histories(s), last) for s, last in ((0, 5), (1, 3), (2, 5))]
    cases = [Case((f, last), _aggregate(f, last)) for f, last in frames]

    def triple(got):
        try:
            values = tuple(_number(v) for v in got)
        except TypeError:  # not a sequence
            return (None, None, None)
        return values if len(values) == 3 else (None, None, None)

    def part(i):
        return lambda got, f, last: not _close(triple(got)[i], _aggregate(f, last)[i])

    def maximum(got, f, last):
        return _close(triple(got)[2], f.groupby("step")["test_mse"].mean().max())

    def min_of_runs(got, f, last):
        return _close(triple(got)[2], f["test_mse"].min())

    return check(
        "error aggregation", fn, cases,
        compare=lambda got, case: all(_close(g, e) for g, e in zip(triple(got), case.expected)),
        symptoms=[
            (lambda got, *_: None in triple(got), "return three numbers: (final, sd, lowest)."),
            (maximum, "for an error the best point is the lowest one: take the minimum of the "
                      "run-averaged curve, not its maximum."),
            (min_of_runs, "average the runs at each step first, then take the minimum over "
                          "steps (not the minimum over every run's records)."),
            (part(0), "a run's final value is the mean of its last `last` records, after "
                      "sorting by step; then average over runs."),
            (part(1), "sd is the sample standard deviation (ddof=1) of the runs' finals."),
        ],
        hint="the same aggregation as for accuracy, with the minimum in place of the maximum.",
    )  # fmt: skip
