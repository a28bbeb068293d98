"""One tuner: the candidates as experiments, one selection rule (pure), and ``tune``, which
trains what is missing and applies the same rule."""

import numpy as np
import pandas as pd
import pytest

from mgs_teach.lab import engine, plans
from mgs_teach.lab.store import Store
from mgs_teach.lab.tuner import (
    SELECTION_RULE,
    plan_tuning,
    select,
    tune,
    tuning_grid,
    tuning_order,
)
from mgs_teach.penalties import regulariser

from .helpers import BASE

CANDIDATES = {"weight_decay": [1e-3, 1e-2, 1e-1], "mgs_trace": [1e-4, 1e-3]}


def fake_runs(grid, finals, seeds=(0, 1)):
    """Runs of a tuning grid whose every record has the given (accuracy, loss), or that
    diverged (``None``)."""
    rows = []
    for e, final in zip(grid, finals):
        for seed in seeds:
            acc, loss = final or (0.0, 0.0)
            status = "finished" if final else "diverged"
            rows += [dict(key=e.key, seed=seed, step=t, test_acc=acc, test_loss=loss,
                          status=status) for t in range(6)]  # fmt: skip
    return pd.DataFrame(rows)


def test_the_tuning_grid_is_the_base_with_each_candidate_on_validation_data():
    base = BASE.replace(regulariser=regulariser("mgs_trace", 0.0, method="hutchinson"))
    grid = tuning_grid(base, CANDIDATES, 16, {"weight_decay": {"jitter": 1e-2}})
    assert [(e.regulariser.name, e.regulariser.strength) for e in grid] == [
        (r, s) for r, values in CANDIDATES.items() for s in values]  # fmt: skip
    assert all(e.data.n_val == 16 for e in grid)
    assert {e.regulariser.method for e in grid if e.regulariser.name == "mgs_trace"} == {
        "hutchinson"}  # the base's options are kept  # fmt: skip
    assert {e.regulariser.jitter for e in grid if e.regulariser.name == "weight_decay"} == {1e-2}


def test_select_takes_the_best_final_validation_accuracy_ties_to_the_lower_loss():
    grid = tuning_grid(BASE, CANDIDATES, 16)
    finals = [(0.6, 1.0), (0.7, 0.9), (0.7, 0.8), (0.9, 0.1), None]  # the best one diverged
    best, table = select(grid, fake_runs(grid, finals), [0, 1])
    assert best == {"weight_decay": 1e-1, "mgs_trace": 1e-4}
    assert table["best"].tolist() == [False, False, True, True, False]
    assert table["diverged"].tolist() == [False] * 4 + [True]
    assert table.loc[4, "val_acc"] == -np.inf and table.loc[4, "val_loss"] == np.inf
    assert table.loc[0, "val_acc"] == pytest.approx(0.6)
    assert list(table.columns) == ["regulariser", "strength", "val_acc", "val_loss", "diverged",
                                   "best"]  # fmt: skip


def test_select_ranks_a_regression_by_its_validation_loss_alone():
    grid = tuning_grid(BASE, {"weight_decay": [1e-3, 1e-2]}, 16)
    runs = fake_runs(grid, [(0.0, 0.5), (0.0, 0.4)]).assign(test_acc=np.nan)
    best, table = select(grid, runs, [0, 1])
    assert best == {"weight_decay": 1e-2} and table["best"].tolist() == [False, True]


def test_a_strength_whose_runs_partly_diverged_loses():
    grid = tuning_grid(BASE, {"weight_decay": [1e-3, 1e-2]}, 16)
    runs = fake_runs(grid, [(0.6, 1.0), (0.9, 0.1)])
    runs.loc[(runs["key"] == grid[1].key) & (runs["seed"] == 1), "status"] = "diverged"
    assert select(grid, runs, [0, 1])[0] == {"weight_decay": 1e-3}
    assert "highest final validation accuracy" in SELECTION_RULE


def test_tune_picks_the_highest_final_validation_accuracy(tmp_path, monkeypatch):
    """``tune`` trains the candidates and applies :func:`select` to their stored runs; a
    second call trains nothing and chooses the same."""
    # long enough to learn the circles (about 0.68 on noisy validation labels); a weight
    # decay of 3 holds the network near constant (below 0.5)
    base = BASE.replace(epochs=30, width=32, depth=2, learning_rate=0.5)
    candidates = {"weight_decay": [1e-4, 3.0], "mgs_trace": [1e-4]}
    best, table = tune(base, candidates, [0, 1], tmp_path, n_val=32, progress=False)
    assert table["best"].sum() == 2
    wd = table[table["regulariser"] == "weight_decay"].set_index("strength")
    assert best["weight_decay"] == 1e-4 and wd.loc[1e-4, "val_acc"] > wd.loc[3.0, "val_acc"] + 0.1
    assert best["mgs_trace"] == 1e-4
    runs = Store(tmp_path).read_all()
    assert (runs["n_val"] == 32).all()  # evaluated on validation data, not the test set

    grid = tuning_grid(base, candidates, 32)
    again = select(grid, Store(tmp_path).read_grid(grid, [0, 1]), [0, 1])
    assert again[0] == best
    pd.testing.assert_frame_equal(again[1], table)

    def no_training(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(engine, "train_runs", no_training)
    stored = tune(base, candidates, [0, 1], Store(tmp_path), n_val=32, progress=False)
    assert stored[0] == best
    pd.testing.assert_frame_equal(stored[1], table)


def test_every_network_of_a_plan_is_tuned_in_the_order_of_its_first_grid():
    assert tuning_order(plans.PAPER) == ["lenet5", "fcn-6x300", "alexnet"]
    assert tuning_order(plans.CPU) == ["lenet5", "fcn-6x300"]
    tuned = plan_tuning(plans.CPU)
    assert set(tuned) == {"lenet5", "fcn-6x300"}
    base, grid = tuned["lenet5"]
    assert base.data.label_noise == 0.5 and base.data.n_val == 0
    assert all(e.data.n_val == plans.CPU.tuning.n_val for e in grid)
    n = sum(len(values) for _, values in plans.CPU.tuning.candidates)
    assert len(grid) == n
