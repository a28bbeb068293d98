"""Self-checks for the chapter \"MGS on corrupted MNIST\".

Every check is data for :func:`mgs_teach.checks._common.check`: fixed cases, the expected
answers computed here, and hints for the usual mistakes. The hints never contain the
expected values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from mgs_teach.checks._common import Case, _close, _number, _report, check

__all__ = [
    "memoriser_accuracy",
    "noise_threshold",
    "paper_aggregate",
    "scenario_winners",
    "survivor_at_80",
]


# ------------------------------------------------------------------- aggregation


def _histories(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n_seeds, n_steps = int(rng.integers(2, 5)), int(rng.integers(7, 12))
    rows = []
    for s in range(n_seeds):
        curve = (
            0.5 + 0.3 * np.sin(np.linspace(0, 2.5, n_steps)) + 0.05 * rng.standard_normal(n_steps)
        )
        rows += [dict(seed=s, step=10 * t, test_acc=a) for t, a in enumerate(curve)]
    frame = pd.DataFrame(rows)
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)  # shuffled rows


def _reference(frame: pd.DataFrame, last: int) -> tuple[float, float, float]:
    frame = frame.sort_values(["seed", "step"])
    finals = frame.groupby("seed")["test_acc"].apply(lambda a: a.tail(last).mean())
    curve = frame.groupby("step")["test_acc"].mean()
    return float(finals.mean()), float(finals.std(ddof=1)), float(curve.max())


def paper_aggregate(fn: Callable[[pd.DataFrame, int], Any]) -> bool:
    """Check ``fn(frame, last) -> (final, sd, max)``, the paper's aggregation.

    ``frame`` has columns ``seed, step, test_acc`` in no particular order.
    """
    frames = [(_histories(0), 5), (_histories(1), 3), (_histories(2), 5)]
    cases = [Case((frame, last), _reference(frame, last)) for frame, last in frames]

    def triple(got):
        final, sd, best = (_number(v) for v in got)
        return final, sd, best

    def part_wrong(i):
        return lambda got, frame, last: not _close(triple(got)[i], _reference(frame, last)[i])

    def unsorted_tails(got, frame, last):
        tails = frame.groupby("seed")["test_acc"].apply(lambda a, n=last: a.tail(n).mean())
        return part_wrong(0)(got, frame, last) and _close(triple(got)[0], tails.mean())

    return check(
        "paper aggregation", fn, cases,
        compare=lambda got, case: all(_close(g, e) for g, e in zip(triple(got), case.expected)),
        symptoms=[
            (lambda got, *_: None in triple(got), "return three numbers: (final, sd, max)."),
            (unsorted_tails, "sort each run by step before taking its last records."),
            (part_wrong(0), "a run's final value is the mean of its last `last` records; then "
                            "average over runs."),
            (part_wrong(1),
             "sd is the sample standard deviation (ddof=1) of the runs' final values."),
        ],
        hint="max is taken on the curve averaged over runs at each step, not over the "
             "individual runs.",
    )  # fmt: skip


# ------------------------------------------------------------------- label noise


def memoriser_accuracy(fn: Callable[[float, int], Any], convention: str = "uniform") -> bool:
    """Check ``fn(p, n_classes)``: expected clean test accuracy of a perfect memoriser.

    The memoriser reproduces, for every test image, the label its training twin was given.
    With ``convention="uniform"`` (the book's), a fraction ``p`` of labels was redrawn
    uniformly over all classes, the true one included; with ``"other"``, sent to one of the
    other classes.
    """
    uniform = convention == "uniform"
    cases = [Case((p, c), 1.0 - p + p / c if uniform else 1.0 - p)
             for p, c in ((0.0, 10), (0.3, 10), (0.8, 10), (0.5, 2), (0.6, 3))]  # fmt: skip
    return check(
        f"memoriser accuracy ({convention} noise)", fn, cases,
        diagnoses=[(lambda p, c: 1.0 - p if uniform else 1.0 - p + p / c,
                    "a redrawn label can land on the true class again, with chance 1 / C."
                    if uniform else
                    "a flipped label is never the true class: flips go to one of the "
                    "*other* classes.")],
        hint="a test prediction is right exactly when the memorised label is the true one.",
        rtol=1e-9, atol=1e-9,
    )  # fmt: skip


def noise_threshold(value: Any, n_classes: int = 10) -> bool:
    """Check the noise rate above which the true class stops being the most common label,
    when every corrupted label goes to one of the *other* classes (``"other"`` noise)."""
    expected = (n_classes - 1) / n_classes
    return check(
        "noise threshold", lambda: value, [Case((), expected)],
        compare=lambda got, case: _close(_number(got), case.expected, rtol=1e-6),
        symptoms=[
            (lambda got: _number(got) is None, "give a fraction between 0 and 1."),
            (lambda got: _number(got) > 1.0 and _close(_number(got) / 100, expected),
             "give a fraction, not a percentage."),
            (lambda got: _close(_number(got), 0.5),
             "the true class does not need a majority, only more votes than each other class "
             "separately."),
        ],
        hint="solve 1 - p = p / (C - 1) for p: the true class against ONE other class.",
    )  # fmt: skip


# ---------------------------------------------------------------- the prediction

_METHODS = {"unregularised": "none", "none": "none", "dropout": "dropout",
            "weight": "weight_decay", "weight_decay": "weight_decay",
            "weight decay": "weight_decay",
            "loss grad.": "param_gradient", "loss grad": "param_gradient",
            "param_gradient": "param_gradient", "input_gradient": "param_gradient",
            "mgs": "mgs_trace", "mgs_trace": "mgs_trace", "mgs_logdet": "mgs_trace"}  # fmt: skip


def survivor_at_80(answer: Any) -> bool:
    """Check the prediction of the method that keeps the best accuracy at 80 % noise.

    Judged against the paper's Table 1 (LeNet-5, 3,000 samples): a name from
    ``Unregularised, Dropout, Weight, Loss grad., MGS`` (or a regulariser name).
    """
    what = "prediction"
    key = _METHODS.get(str(answer).strip().lower()) if isinstance(answer, str) else None
    if key is None:
        return _report(False, "answer with one of 'Unregularised', 'Dropout', 'Weight', "
                       "'Loss grad.', 'MGS'.", what=what)  # fmt: skip
    hints = {
        "none": "without regularisation the network memorises the 80 % wrong labels.",
        "dropout": "dropout slows memorisation but does not stop it when most labels are wrong.",
        "weight_decay": "a decay strong enough to resist the noise also stops learning.",
        "param_gradient": "the loss-gradient penalty fades as the network fits the training "
                          "labels, wrong ones included (the gradient it penalises vanishes).",
    }  # fmt: skip
    return _report(key == "mgs_trace", hints.get(key, ""), what=what)


# ------------------------------------------------------------------- the test bench


def _bench_table(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    regs = ["none", "dropout", "weight_decay", "param_gradient", "mgs_trace"]
    rows = [dict(n_train=n, label_noise=p, regulariser=r, final=float(rng.uniform(0.1, 0.9)))
            for n in (250, 1000) for p in (0.0, 0.4, 0.8) for r in regs]  # fmt: skip
    frame = pd.DataFrame(rows)
    frame.loc[int(rng.integers(len(frame))), "final"] = np.nan  # a method whose runs diverged
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def _winners(frame: pd.DataFrame) -> pd.Series:
    finals = frame.set_index(["n_train", "label_noise", "regulariser"])["final"]
    return finals.groupby(["n_train", "label_noise"]).idxmax().map(lambda k: k[-1])


def scenario_winners(fn: Callable[[pd.DataFrame], Any]) -> bool:
    """Check ``fn(table) -> pandas.Series``: the best method of every test-bench scenario.

    ``table`` has columns ``n_train, label_noise, regulariser, final`` (rows in no order; a
    ``final`` is NaN where every run of a method diverged). The answer is indexed by
    ``(n_train, label_noise)`` and holds the regulariser with the highest ``final``.
    """
    cases = [Case((_bench_table(s),), _winners(_bench_table(s))) for s in range(3)]

    def as_series(got: Any) -> pd.Series | None:
        if not isinstance(got, pd.Series) or got.index.nlevels != 2:
            return None
        return got.sort_index()

    def same(got: Any, case: Case) -> bool:
        s = as_series(got)
        return s is not None and s.to_dict() == case.expected.sort_index().to_dict()

    def lowest(frame: pd.DataFrame) -> pd.Series:
        finals = frame.set_index(["n_train", "label_noise", "regulariser"])["final"]
        return finals.groupby(["n_train", "label_noise"]).idxmin().map(lambda k: k[-1])

    return check(
        "scenario winners", fn, cases, compare=same,
        symptoms=[
            (lambda got, *_: as_series(got) is None,
             "return a pandas Series indexed by (n_train, label_noise): group by both columns."),
            (lambda got, frame: same(got, Case((), lowest(frame))),
             "the winner has the highest final accuracy, not the lowest."),
            (lambda got, *_: as_series(got) is not None
             and as_series(got).map(lambda v: not isinstance(v, str)).any(),
             "each entry is the regulariser's name, not its accuracy or its row number."),
        ],
        hint="group by the scenario (n_train, label_noise) and take the regulariser of the "
             "largest final in each group; a NaN final (every run diverged) never wins.",
    )  # fmt: skip
