"""The NTK chapter's findings, on crafted measurements whose verdicts are known."""

import numpy as np
import pandas as pd
import pytest

from mgs_teach.lab.findings import ntk as N


def lazy(errors, drift=None, seeds=2):
    """Crafted width-sweep records: ``errors[width]`` is the error at each step (steps 50,
    100, ...), the same for every seed; the drift is the error unless given."""
    rows = []
    for width, curve in errors.items():
        for seed in range(seeds):
            for i, e in enumerate(curve):
                d = e if drift is None else drift[width][i]
                rows.append(dict(width=width, seed=seed, step=50 * (i + 1), error=e, drift=d))
    return pd.DataFrame(rows)


def band(break_at=None, steps=(0, 10, 20, 30), slowest_last=True, trace=(10.0, 12.0)):
    """A crafted band run with three bands, fastest first, in the order of their speed until
    the record ``break_at`` (index), where the fastest band keeps the most energy."""
    measured = np.array([[1.0, 1.0, 1.0]] + [[0.1 / t, 0.5 / t, 0.9] for t in range(1, 4)])
    if break_at is not None:
        measured[break_at:, 0] = 0.6  # above the middle band, below the slowest
    if not slowest_last:
        measured[-1] = [0.1, 0.9, 0.5]
    return dict(
        steps=np.array(steps),
        measured=measured,
        values=np.array([trace[0], 0.0]),
        trace_end=trace[1],
    )


def spectrum(mgs_top=0.4, mgs_tail=0.97, wd=(0.75, 0.73, 0.2)):
    """Final spectra: the unregularised run's, and each penalty's strongest scaled per band."""
    base = np.r_[100.0, np.full(9, 20.0), np.full(30, 1.0)]  # λ_1, λ_2..10, the tail

    def scaled(top, mid, tail):
        return np.r_[base[:1] * top, base[1:10] * mid, base[10:] * tail]

    rows = {("none", 0.0): base, ("weight decay", 0.1): base, ("weight decay", 1.0):
            scaled(wd[0], wd[1], wd[2]), ("MGS trace", 1e-4): base,
            ("MGS trace", 1e-3): scaled(mgs_top, 0.9, mgs_tail)}  # fmt: skip
    frame = pd.DataFrame({k: N.spectrum_summary(np.sort(v)[::-1]) for k, v in rows.items()}).T
    frame.index = pd.MultiIndex.from_tuples(frame.index, names=["method", "strength"])
    return frame


LAZY = {16: [0.5, 0.6], 64: [0.05, 0.2]}  # the start described at 64, no whole run


def found(errors=LAZY, bands=None, roughness=None, spec=None, **kw):
    bands = bands or {"two circles": band(break_at=3), "MNIST digits": band()}
    roughness = np.arange(16.0) if roughness is None else roughness
    spec = spectrum() if spec is None else spec
    return N.ntk_findings(1e-14, lazy(errors, **kw), bands, roughness, spec)


def test_the_start_reproduced_and_the_whole_run_not():
    f = found()
    t = f.texts()
    assert t["early_step"] == "50" and t["last_step"] == "100"
    assert t["early_range"] == "50 % at width 16 to 5 % at width 64"
    assert t["early_trend"] == "falls with every increase of the width"
    assert t["late_verdict"] == "above 10 % at every width"
    assert t["whole_run"] == "At these widths it does not describe a whole run of 100 steps"
    assert t["within"] == "at no record for width 16 and through step 50 at width 64"
    assert t["within_trend"] == "the wider the network, the longer it lasts"
    assert t["drift_rho"] == "1.00" and t["n_records"] == "8"
    assert "kernel gradient descent predicts the start of training" in t["reproduced"]
    assert "kernel gradient descent over a whole run" in t["not_reproduced"]
    assert "20 % at best" in t["not_reproduced"]
    assert t["why_not"].startswith("the kernel moves") and "Spearman 1.00" in t["why_not"]


def test_a_width_that_stays_within_the_threshold_is_named():
    t = found({16: [0.5, 0.6], 64: [0.05, 0.08], 256: [0.01, 0.02]}).texts()
    assert t["late_verdict"] == "below 10 % at widths 64 and 256"
    assert t["whole_run"] == "It describes a whole run of 100 steps only at widths 64 and 256"
    assert "over a whole run" not in t["not_reproduced"]


def test_an_early_error_that_does_not_fall_is_not_reproduced():
    f = found({16: [0.05, 0.6], 64: [0.2, 0.3]})
    t = f.texts()
    assert not f.early_falls and not f.start_described
    assert t["early_trend"] == "does not fall steadily with the width"
    assert "predicts the start" in t["not_reproduced"]
    assert "predicts the start" not in t["reproduced"]
    assert t["late_grows"] == "grows from the first record to the last at every width"
    assert t["within_trend"] == "it does not last longer in every wider network"


def test_a_drift_unrelated_to_the_error_gives_no_diagnosis():
    drift = {16: [0.1, 0.2], 64: [0.3, 0.4]}  # ranked against the errors
    t = found(drift=drift).texts()
    assert t["why_not"].startswith("we don't know yet")


def test_band_order_and_the_slowest_band():
    f = found()
    t = f.texts()
    assert [b.ordered_until for b in f.bands] == [20, 30]
    assert t["bands_order"] == ("through step 20 of 30 on two circles and through all 30 steps "
                                "on MNIST digits")  # fmt: skip
    assert t["slowest_verdict"] == "in every run"
    assert "it breaks after step 20 on two circles" in t["not_reproduced"]
    assert t["trace_verdict"] == "grows during training"
    assert t["trace_growth"].startswith("from 10 to 12 on two circles")
    t = found(bands={"two circles": band(), "MNIST digits": band(slowest_last=False)}).texts()
    assert t["slowest_verdict"] == "only on two circles"
    assert "large eigenvalue are learnt first" in t["not_reproduced"]
    assert "it breaks after step 20 on MNIST digits" in t["not_reproduced"]  # 0.9 before 0.5


def test_everything_reproduced_says_so():
    t = found({16: [0.05, 0.09], 64: [0.01, 0.02]},
              bands={"two circles": band()}).texts()  # fmt: skip
    assert t["not_reproduced"] == "nothing at these sizes"
    assert t["why_not"] == "nothing to explain"


def test_roughness_verdicts():
    t = found().texts()
    assert t["roughness_rho"] == "1.00" and t["roughness_order"] == "a strict order"
    assert t["roughness_verdict"] == "grows down the spectrum"
    t = found(roughness=np.r_[1.0, 0.5, np.arange(2.0, 16.0)]).texts()
    assert t["roughness_order"] == "a trend, not a strict order"
    t = found(roughness=np.arange(16.0)[::-1]).texts()
    assert t["roughness_verdict"] == "does not grow clearly down the spectrum"
    assert "they are the smooth directions" in t["not_reproduced"]


def test_spectrum_verdicts():
    f = found()
    t = f.texts()
    assert t["mgs_strength"] == "0.001" and t["wd_strength"] == "1"
    assert t["mgs_ratios"] == "λ_1 ×0.40, λ_10 ×0.90, λ_25 ×0.97"
    assert t["mgs_top"] == "cuts λ_1 by a larger factor than λ_10"
    assert t["mgs_tail"] == "leaves the tail almost as it was (λ_25 within 10 %)"
    assert t["wd_shape"].startswith("shrinks λ_1 and λ_10 by more similar factors")
    assert t["wd_shape"].endswith("and the tail (λ_25) by more")
    t = found(spec=spectrum(mgs_top=1.0, mgs_tail=0.5)).texts()
    assert t["mgs_top"] == "does not cut λ_1 by more than λ_10"
    assert t["mgs_tail"] == "moves the tail too"


def test_helpers():
    names, bands = N.speed_bands(np.array([0.5, 0.05, 0.04, 1e-4]))
    assert names == ["ηλ ≥ 0.1 (1 modes)", "0.01 ≤ ηλ < 0.1 (2 modes)", "ηλ < 0.001 (1 modes)"]
    assert [b.tolist() for b in bands] == [[0], [1, 2], [3]]
    assert N.ordered_until([0, 5, 10], np.array([[1, 1], [0.5, 0.6], [0.7, 0.6]])) == 5
    assert N.ordered_until([0, 5], np.array([[1, 1], [0.9, 0.6]])) == 0
    flat = N.spectrum_summary(np.ones(30))
    assert flat["effective rank"] == pytest.approx(30)
    assert flat["λ_1 / tr K"] == pytest.approx(1 / 30)
    within = N.last_within(lazy({16: [0.05, 0.2], 64: [0.01, 0.05]}))
    assert within.to_dict() == {16: 50, 64: 100}
    assert N.last_within(lazy({16: [0.2, 0.05]})).to_dict() == {16: 0}
    table = N.lazy_table(lazy(LAZY))
    assert table.loc[64, ("error", 100)] == pytest.approx(0.2)


def test_a_curve_that_leaves_the_threshold_and_comes_back_holds_only_until_it_leaves():
    # below at 50 and 100, above at 150, below again at 200 and 250: it held through 100
    errors = {16: [0.05, 0.06, 0.3, 0.05, 0.04], 64: [0.01, 0.02, 0.03, 0.04, 0.05]}
    assert N.last_within(lazy(errors)).to_dict() == {16: 100, 64: 250}
    # exactly at the threshold is not below it; the seeds' mean decides, not each seed
    rows = lazy({16: [0.05, 0.1, 0.05]})
    assert N.last_within(rows).to_dict() == {16: 50}
    rows.loc[(rows.seed == 0) & (rows.step == 100), "error"] = 0.15  # mean (0.15 + 0.1) / 2
    assert N.last_within(rows).to_dict() == {16: 50}
    rows.loc[(rows.seed == 1) & (rows.step == 100), "error"] = 0.0  # mean 0.075
    assert N.last_within(rows).to_dict() == {16: 150}
    t = found(errors).texts()
    assert t["within"] == "through step 100 at width 16 and through step 250 at width 64"
    assert t["late_verdict"] == "below 10 % at widths 16 and 64"  # the last record, as before


def test_an_order_that_breaks_and_comes_back_holds_only_until_it_breaks():
    measured = np.array([[1, 1, 1], [0.2, 0.5, 0.9], [0.6, 0.4, 0.9], [0.1, 0.3, 0.8]])
    assert N.ordered_until([0, 10, 20, 30], measured) == 10
    run = dict(steps=np.array([0, 10, 20, 30]), measured=measured, values=np.ones(2),
               trace_end=3.0)  # fmt: skip
    b = N.band_run("two circles", run)
    assert b.ordered_until == 10 and not b.ordered_throughout
