"""The late-collapse test on crafted curves whose answers are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mgs_teach.lab.findings import long_training as L

EPOCHS = np.linspace(100 / 35, 100, 35)


def history(reg, acc, noise=0.8, seed=0, status="finished"):
    return pd.DataFrame(dict(label_noise=noise, regulariser=reg, seed=seed,
                             step=np.arange(len(EPOCHS)), epoch=EPOCHS,
                             test_acc=np.asarray(acc) / 100, status=status))  # fmt: skip


def test_a_fall_after_the_short_tables_is_a_late_collapse_and_a_flat_curve_a_plateau():
    collapse = np.where(EPOCHS <= 40, 60.0, 60.0 - (EPOCHS - 40) * 0.7)  # 18 at epoch 100
    early = np.where(EPOCHS <= 10, 70.0, 40.0)  # falls before epoch 35: not late
    runs = pd.concat([history("param_gradient", collapse, seed=s) for s in range(2)]
                     + [history("mgs_trace", np.full(35, 70.0)), history("none", early),
                        history("none", np.zeros(35), seed=1, status="diverged")])  # fmt: skip
    found = L.late_collapse(runs, short_epochs=35).set_index("method")
    lg, mgs, none = found.loc["Loss grad."], found.loc["MGS"], found.loc["Unregularised"]
    assert lg["late_collapse"] and not lg["plateau"]
    assert lg["short"] == pytest.approx(60.0) and lg["final"] == pytest.approx(collapse[-5:].mean())
    assert mgs["plateau"] and not mgs["late_collapse"]
    assert not none["late_collapse"] and not none["plateau"] and none["runs"] == 1
    assert lg["runs"] == 2


def test_the_glued_phrases_name_the_collapse_and_the_plateau():
    collapse = np.where(EPOCHS <= 40, 60.0, 60.0 - (EPOCHS - 40) * 0.7)
    runs = pd.concat([history("param_gradient", collapse), history("mgs_trace", np.full(35, 70.0))])
    texts = L.texts(L.late_collapse(runs, short_epochs=35), 35)
    assert (
        texts["collapses"]
        == f"Loss grad. at 80 % (from 60.0 % at epoch 35 to {collapse[-5:].mean():.1f} %)"
    )
    assert texts["mgs_plateaus"] == "1 of 1"
    assert texts["mgs_rank"] == "1st at 80 % (first: MGS)"
    assert texts["lossgrad_curves"].startswith("at 80 % noise, 60.0 % at epoch 35, 60.0 % at its")
