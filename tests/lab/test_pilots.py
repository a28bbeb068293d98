"""The regression pilot: its grid, its table and what it says."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mgs_teach.lab import pilots
from mgs_teach.lab.plans import REGRESSION_CPU
from mgs_teach.records import record_steps


def test_the_pilot_grid_covers_every_setting_in_the_papers_units():
    spec = pilots.REGRESSION_PILOT
    grid = pilots.pilot_grid()
    assert len(grid) == (len(REGRESSION_CPU.tables) * len(spec.learning_rates)
                         * len(spec.noises) * len(spec.methods))  # fmt: skip
    assert {e.config.learning_rate for e in grid} == {0.1, 0.01}  # the paper's and a tenth
    assert {e.data.targets for e in grid} == {"pixels"} and {e.data.n_train for e in grid} == {642}
    assert {e.config.batch_size for e in grid} == {128} and {e.config.epochs for e in grid} == {50}
    assert len({e.key for e in grid}) == len(grid)
    onset = pilots.pilot_grid(onset=True)
    assert [e.regulariser for e in onset] == [e.regulariser for e in grid]
    for e in onset[:2]:
        steps = e.config.epochs * (e.data.n_train // e.config.batch_size + 1)
        recorded = record_steps(steps, e.config.n_records)
        assert len(recorded) >= steps  # every step of the onset is recorded


def crafted(lr, regulariser, strength, seed, diverge=False, final=20.0):
    steps = np.arange(3 if diverge else 8)
    return pd.DataFrame(dict(model="fcn-6x300", learning_rate=lr, target_noise=0.0,
                             regulariser=regulariser, strength=strength, seed=seed, step=steps,
                             lr=lr, test_loss=np.r_[60.0, 40.0, [final] * 6][steps], lambda_max=1.0,
                             batch_size=16,
                             status="diverged" if diverge else "finished"))  # fmt: skip


def test_the_pilot_says_which_settings_converge_at_each_rate():
    frames = [crafted(0.1, r, s, seed, diverge=True) for r, s in (("none", 0.0),
              ("mgs_trace", 1e-3)) for seed in (0, 1)]  # fmt: skip
    frames += [
        crafted(0.01, "none", 0.0, 0, diverge=True),
        crafted(0.01, "none", 0.0, 1),
        crafted(0.01, "mgs_trace", 1e-3, 0),
        crafted(0.01, "mgs_trace", 1e-3, 1),
    ]
    table = pilots.pilot_table(pd.concat(frames), baselines={0.0: 17.0})
    texts = pilots.pilot_texts(table)
    assert texts["diverged_0.1"] == "4 of 4 runs" and texts["converged_0.1"] == "none"
    assert texts["unreg_0.01"] == "1 of 2" and texts["diverged_0.01"] == "1 of 4 runs"
    # a final of 20 is within twice the average face's 17: converged
    assert texts["converged_0.01"] == "MGS 0.001 (the FCN)"
    row = table[(table["learning_rate"] == 0.01) & (table["regulariser"] == "mgs_trace")].iloc[0]
    assert (row["runs"], row["converged"], row["learned"]) == (2, 2, 0)
