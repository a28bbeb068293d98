"""Figure 3's findings on crafted curves whose answers are known."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mgs_teach.lab.findings import figure3 as F
from mgs_teach.lab.findings import spearman
from mgs_teach.lab.plan import FIGURE3_REGULARISERS

EPOCHS = np.arange(1.0, 31.0)


def history(reg, acc, log_trace, seed=0, logdet=None):
    """One crafted run: accuracy (percent) and log tr K per epoch."""
    n = len(EPOCHS)
    return pd.DataFrame(dict(regulariser=reg, seed=seed, step=np.arange(n), epoch=EPOCHS,
                             test_acc=np.asarray(acc) / 100, trace=np.exp(log_trace),
                             logdet=np.zeros(n) if logdet is None else logdet,
                             train_loss=1.0, status="finished"))  # fmt: skip


def peaked(peak_at=10, top=80.0, fall=10.0):
    """Accuracy rising to ``top`` at epoch ``peak_at``, then falling by ``fall`` at the end."""
    rise = np.minimum(EPOCHS / peak_at, 1.0) * top
    return rise - np.clip(EPOCHS - peak_at, 0, None) / (EPOCHS[-1] - peak_at) * fall


def plateau_trace(peak_at=10, flat=True):
    """log tr K: fast growth, flat within 2 epochs of the peak (if ``flat``), then fast again."""
    rate = np.where(np.abs(EPOCHS - peak_at) <= 2, 0.0 if flat else 0.2, 0.2)
    return np.cumsum(rate)


def figure(none_flat=True, dropout_gaps=True, mgs_fall=0.5):
    frames = [history("none", peaked(), plateau_trace(flat=none_flat))]
    wd_trace = np.where(EPOCHS > 15, (EPOCHS - 15) * 0.1, 0.0)
    frames.append(history("weight_decay", peaked(15, 85.0, 8.0), wd_trace))
    gaps = np.where(EPOCHS % 3 == 0, -np.inf, 1.0) if dropout_gaps else None
    frames.append(history("dropout", peaked(12, 82.0, 4.0), np.linspace(0, 1, 30), logdet=gaps))
    frames.append(history("mgs_trace", peaked(20, 86.0, mgs_fall), np.linspace(0, 0.2, 30)))
    return pd.concat(frames, ignore_index=True)


def test_the_papers_observations_hold_on_curves_drawn_to_show_them():
    c = F.curves(figure())
    obs = F.observations(c, F.growths(c))
    assert obs["holds"].to_dict() == {"plateau": True, "weight": True, "gaps": True,
                                      "stable": True}  # fmt: skip


def test_each_observation_fails_when_its_curve_lacks_it():
    c = F.curves(figure(none_flat=False, dropout_gaps=False, mgs_fall=6.0))
    obs = F.observations(c, F.growths(c))
    assert obs["holds"].to_dict() == {"plateau": False, "weight": True, "gaps": False,
                                      "stable": False}  # fmt: skip


def test_growths_are_the_log_ratio_of_tr_k_and_the_difference_of_log_det():
    c = F.curves(history("none", peaked(), 0.1 * EPOCHS, logdet=2 * EPOCHS))
    g = F.growths(c).loc["none"]
    assert g["trace_growth"] == pytest.approx(0.1 * 29)
    assert g["logdet_growth"] == pytest.approx(2 * 29)
    assert g["peak_epoch"] == 10 and g["drop"] == pytest.approx(80 - peaked()[-5:].mean())


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.floats(-5, 5), min_size=3, max_size=6, unique=True),
    st.lists(st.floats(-5, 5), min_size=6, max_size=6, unique=True),
)
def test_the_exact_chance_level_counts_every_pairing(x, y):
    y = y[: len(x)]
    observed = spearman(x, y)
    as_low = [spearman(x, order) <= observed + 1e-12 for order in itertools.permutations(y)]
    assert F.exact_p(np.array(x), np.array(y)) == pytest.approx(np.mean(as_low))


def test_slower_growth_with_better_accuracy_is_the_papers_sign_and_rarely_chance():
    frames = [history(r, peaked(10, 60.0 + 3 * i, 1.0), (1.0 - 0.1 * i) * EPOCHS / 30)
              for i, r in enumerate(FIGURE3_REGULARISERS)]  # fmt: skip
    found = F.figure3_findings(pd.concat(frames, ignore_index=True))
    assert found.rho["trace"] == pytest.approx(-1.0)
    assert found.p["trace"] == pytest.approx(1 / math.factorial(9))
    assert found.per_seed["trace"] == [pytest.approx(-1.0)]


def test_exact_p_refuses_too_many_pairs():
    with pytest.raises(ValueError, match="3 to 10 pairs"):
        F.exact_p(np.arange(11.0), np.arange(11.0))


def test_the_glued_verdicts_say_what_the_rules_computed():
    runs = figure()
    runs = pd.concat([runs, runs.assign(seed=1)], ignore_index=True)
    texts = F.figure3_findings(runs).texts()
    assert texts["held"] == "4 of 4" and texts["regularisers"] == "4"
    assert texts["obs_gaps"].startswith("yes: 33 % of dropout's records have a singular kernel")
    assert texts["obs_stable"].startswith("yes: MGS ends 0.4 points below its peak, and no other")
    assert texts["order"].startswith("MGS (85.6 %), Dropout (78.4 %), Weight (78.1 %)")
    assert texts["sign_trace"] in ("the paper's sign", "the opposite of the paper's sign")


def test_the_plateau_is_where_growth_is_slowest_and_growth_picks_up_after_the_top():
    g = F.curves(history("none", peaked(), plateau_trace()))
    found = F.plateau(g)
    assert found["meets"] and found["slowest"] == pytest.approx(0.0)
    assert found["top"] == (10.0, 14.0)  # within 2 points of the peak of 80 at epoch 10
    assert found["across"] == pytest.approx(0.1) and found["after"] == pytest.approx(0.2)
    steady = F.plateau(F.curves(history("none", peaked(), 0.2 * EPOCHS)))
    assert steady["across"] == pytest.approx(steady["after"])  # no pick-up: no plateau
