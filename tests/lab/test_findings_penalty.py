"""The MGS penalty chapter's findings, on crafted runs whose verdicts are known."""

import numpy as np
import pandas as pd
import pytest

from mgs_teach.lab.findings import penalty as P


def chain(param=(0.6, 0.01, 1e-4), trace=(2500.0, 10000.0, 30000.0), out=(0.01, 1e-3, 3e-4)):
    """Three records of an unpenalised run: the bounds from the trace and output gradient."""
    rows = []
    for step, p, t, g in zip((0, 4000, 8000), param, trace, out):
        rows.append({"step": step, "train_loss": 0.7 * g / 0.01, "param_grad_sq": p,
                     "quadratic": p, "lambda_bound": 0.3 * t * g, "trace_bound": t * g,
                     "trace": t, "output_grad_sq": g})  # fmt: skip
    return pd.DataFrame(rows)


def grid(strong_spread=1e-4, strong_trace=64.0, moderate_acc=0.976, strong_acc=(0.496, 0.504)):
    rows = []
    for noise, traces, accs, conf in (
        (0.0, (8800.0, 520.0, strong_trace), (0.99, 0.988, strong_acc[0]), (0.99, 0.9, 0.5)),
        (0.2, (980.0, 250.0, strong_trace), (0.952, moderate_acc, strong_acc[1]), (0.8, 0.7, 0.5)),
    ):
        for s, tr, acc, c in zip((0.0, 3e-4, 3e-3), traces, accs, conf):
            rows.append({"noise": noise, "strength": s, "tr K": tr, "test accuracy": acc,
                         "confidence": c, "spread": strong_spread if s == 3e-3 else 0.3,
                         "majority": 0.504})  # fmt: skip
    return pd.DataFrame(rows)


FLIPPED = {"labels": 6, "fitted at start": 3, "fitted at end": 5}


def found(ch=None, flipped=FLIPPED, gr=None):
    return P.penalty_findings(chain() if ch is None else ch, flipped,
                              grid() if gr is None else gr, 64)  # fmt: skip


def test_the_chain_and_its_widening_gap():
    t = found().texts()
    assert t["chain_holds"] == "at every one of the 3 records"
    assert t["gap"] == "from ×42 at the first record to ×90,000 at the last"
    assert t["gap_verdict"] == "widens"
    assert t["param_factor"] == "×0.00017" and t["output_factor"] == "×0.03"
    assert t["trace_factor"] == "×12" and t["trace_verdict"] == "grows"
    assert t["loss_factor"] == "×0.03"


def test_a_broken_chain_and_a_narrowing_gap_say_so():
    ch = chain(param=(0.6, 0.01, 0.01))
    ch.loc[1, "quadratic"] = 0.02  # the equality fails at one record
    t = found(ch).texts()
    assert t["chain_holds"] == "at only 2 of the 3 records"
    assert P.chain_holds(ch).tolist() == [True, False, True]
    t = found(chain(param=(0.01, 0.1, 9.0))).texts()
    assert t["gap_verdict"] == "does not widen"


def test_a_kernel_that_shrinks_does_not_grow():
    assert found(chain(trace=(3000.0, 2000.0, 1000.0))).texts()["trace_verdict"] == "does not grow"


def test_memorising_needs_most_flipped_labels_and_more_than_at_the_start():
    t = found().texts()
    assert t["memorise_verdict"] == "while the network memorises the flipped labels"
    assert t["flipped"] == ("5 of its 6 flipped training labels at the last record, against 3 "
                            "at the start")  # fmt: skip
    for end in (3, 2):  # no more than at the start, or not most
        t = found(flipped={**FLIPPED, "fitted at end": end}).texts()
        assert t["memorise_verdict"].startswith("although the network does not memorise")


def test_the_grid():
    t = found().texts()
    assert t["grid_trace"] == "lowers tr K"
    assert t["grid_trace_values"] == "8,800 → 520 → 64 at noise 0; 980 → 250 → 64 at noise 0.2"
    assert t["grid_soft"] == "softens the prediction"
    assert t["grid_confidence"] == "0.99 to 0.90 at noise 0 and from 0.80 to 0.70 at noise 0.2"
    assert t["grid_moderate"] == "raises the test accuracy, from 95.2 % to 97.6 %"
    assert t["grid_collapse"] == "collapses to a constant"
    assert t["grid_floor_verdict"] == "is the floor" and t["grid_floor"] == "64"
    assert t["grid_guess"] == "that of guessing one class"
    assert t["grid_strong_acc"] == "49.6 % and 50.4 %"


def test_a_grid_that_does_not_collapse_says_so():
    t = found(gr=grid(strong_spread=0.2, strong_trace=300.0, moderate_acc=0.9,
                      strong_acc=(0.8, 0.85))).texts()  # fmt: skip
    assert t["grid_collapse"] == "does not collapse to a constant"
    assert t["grid_floor_verdict"] == "stays above the floor"
    assert t["grid_guess"] == "not that of guessing one class"
    assert t["grid_moderate"].startswith("does not raise the test accuracy")
    g = grid()
    g.loc[(g.noise == 0.2) & (g.strength == 3e-3), "tr K"] = 999.0
    assert found(gr=g).texts()["grid_trace"] == "does not lower tr K in every row"


def test_factors():
    f = P.chain_factors(chain())
    assert list(f.index) == list(P.QUANTITIES.values())
    assert f.loc["tr K", "factor"] == pytest.approx(12.0)
    assert np.all(f["factor"] == f["last"] / f["first"])
