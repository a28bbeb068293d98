"""Runs are aggregated the paper's way (Appendix D.1)."""

import numpy as np
import pandas as pd
import pytest

from mgs_teach.lab.aggregate import entry, summarise


def test_summarise_the_papers_way():
    rows = []
    for seed, offset in [(0, 0.0), (1, 0.2)]:
        curve = [0.1, 0.9, 0.5, 0.5, 0.5, 0.5, 0.5]  # peaks early, then overfits
        rows += [dict(step=t, seed=seed, test_acc=v + offset, method="m", status="finished")
                 for t, v in enumerate(curve)]  # fmt: skip
    rows.append(dict(step=0, seed=2, test_acc=0.0, method="m", status="diverged"))
    table = summarise(pd.DataFrame(rows), ["method"])
    row = table.iloc[0]
    assert row["runs"] == 2  # the diverged run is left out
    assert row["final"] == pytest.approx(0.6)  # finals 0.5 and 0.7 (mean of last 5)
    assert row["sd"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert row["max"] == pytest.approx(1.0)  # max of the run-averaged curve: (0.9 + 1.1) / 2
    assert row["diverged"] == 1


def test_summarise_takes_the_lowest_point_for_an_error():
    rows = [dict(seed=s, step=t, test_loss=v, status="finished")
            for s, curve in enumerate([[3.0, 1.0, 2.0], [5.0, 1.0, 4.0]])
            for t, v in enumerate(curve)]  # fmt: skip
    table = summarise(pd.DataFrame(rows), ["status"], metric="test_loss", last=1, best="min")
    assert table["final"].iloc[0] == pytest.approx(3.0) and table["max"].iloc[0] == 1.0


def test_a_summary_entry_is_scaled_rounded_and_null_where_every_run_diverged():
    rows = pd.DataFrame([dict(m="a", seed=0, step=0, test_acc=0.12344, status="finished"),
                         dict(m="b", seed=0, step=0, test_acc=0.9, status="diverged")])  # fmt: skip
    a, b = summarise(rows, ["m"]).itertuples()
    assert entry(a, 100.0) == dict(final=12.34, sd=None, max=12.34, runs=1, diverged=0)
    assert entry(b, 100.0) == dict(final=None, sd=None, max=None, runs=0, diverged=1)
