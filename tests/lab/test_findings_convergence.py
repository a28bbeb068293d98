"""The paper-units regression findings on crafted histories whose answers are known."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from mgs_teach.lab.findings import convergence as C
from mgs_teach.lab.plans import TABLE_METHODS

STEPS = 10


def run(method, noise, seed, final=15.0, diverge=False, blow_up=False, lam=10.0, model="lenet5"):
    """One crafted history: the test MSE falls from 100 to ``final`` (px²) and stays, or it
    diverges after step 3, or it falls to ``final`` / 2 and rises to ``final`` (blow-up)."""
    curve = np.r_[np.linspace(100, final, STEPS // 2), [final] * (STEPS - STEPS // 2)]
    if blow_up:
        curve[STEPS // 2] = final / 2
    steps = np.arange(STEPS if not diverge else 3)
    return pd.DataFrame(dict(model=model, learning_rate=0.01, target_noise=noise,
                             regulariser=TABLE_METHODS[method], strength=0.0, seed=seed,
                             step=steps, lr=0.01, test_loss=curve[steps],
                             lambda_max=lam, batch_size=16,
                             status="diverged" if diverge else "finished"))  # fmt: skip


def results(frames, learning_rate=0.01):
    plan = SimpleNamespace(name="crafted", tables=(SimpleNamespace(name="table2"),),
                           mse_unit=1.0, learning_rate=learning_rate)  # fmt: skip
    return {"plan": plan, "table2": pd.concat(frames, ignore_index=True)}


BASE = {0.0: 17.0, 30.0: 18.0}


def the_papers_regime():
    """Under noise the unregularised network diverges in 2 of 3 runs; MGS and Dropout converge."""
    frames = []
    for noise in (0.0, 30.0):
        for seed in range(3):
            frames.append(run("Unregularised", noise, seed, diverge=noise > 0 and seed < 2))
            frames.append(run("Dropout", noise, seed, final=16.0))
            frames.append(run("Weight", noise, seed, final=40.0, blow_up=True))
            frames.append(run("Loss grad.", noise, seed, diverge=True))
            frames.append(run("MGS", noise, seed, final=14.0))
    return results(frames)


def test_who_converges_and_how_mgs_ranks():
    found = C.findings(the_papers_regime(), None, BASE)
    texts = found.texts()
    assert texts["converge_table2"] == (
        "Dropout 6 of 6, MGS 6 of 6, Unregularised 4 of 6, Weight 0 of 6 and Loss grad. 0 of 6"
    )
    assert texts["first_methods"] == "MGS at 2 of 2 entries"
    assert texts["unreg_table2"] == "1 of 3"
    assert texts["mgs_learned_table2"] == "6 of 6"  # 14 px² beats the average face's 17 and 18
    assert texts["mgs_rank"] == "1st at 2 of 2 entries" and texts["mgs_first"] == "2 of 2"
    assert texts["regime"] == "holds" and texts["regime_where"] == "LeNet-5 at noise 30"
    assert texts["baseline"] == "17.0 and 18.0" and texts["lr"] == "0.01"


def test_a_method_that_converges_less_often_ranks_below_whatever_its_error():
    frames = [run("MGS", 30.0, 0, final=13.0), run("MGS", 30.0, 1, diverge=True),
              run("Dropout", 30.0, 0, final=16.0), run("Dropout", 30.0, 1, final=16.0),
              run("Unregularised", 30.0, 0, final=12.0),
              run("Unregularised", 30.0, 1, final=12.0)]  # fmt: skip
    found = C.findings(results(frames), None, BASE)
    assert found.texts()["mgs_rank"] == "3rd at 1 of 1 entries"
    # both converged in every run; the unregularised network's 12 px² is below Dropout's 16
    assert found.texts()["first_methods"] == "Unregularised at 1 of 1 entries"
    # the unregularised network converged and is the best that did: the regime is absent
    assert found.texts()["regime"] == "does not hold"


def test_a_late_rise_or_a_lower_rival_puts_the_unregularised_network_in_the_regime():
    rise = [run("Unregularised", 30.0, 0, blow_up=True, final=15.0), run("MGS", 30.0, 0)]
    # final 15 against a lowest of 7.5: more than 20 % above, and 15 <= 1.5 * 7.5 is false:
    # the run counts as not converged too
    assert C.findings(results(rise), None, BASE).texts()["regime"] == "holds"
    beaten = [run("Unregularised", 30.0, 0, final=16.0), run("MGS", 30.0, 0, final=14.0)]
    assert C.findings(results(beaten), None, BASE).texts()["regime"] == "holds"


def test_the_onset_check_finds_the_first_step_past_the_limit():
    lam = 16 * 30 / (2 * 0.01)  # eta S = 1 at lambda_max = lam
    crossing = run("Unregularised", 0.0, 0, diverge=True, lam=lam)
    crossing.loc[crossing["step"] == 2, "lambda_max"] = 3 * lam  # eta S = 3 at step 2
    calm = run("MGS", 0.0, 0, lam=lam / 2)
    found = C.findings(results([calm]), pd.concat([crossing, calm]), BASE)
    texts = found.texts()
    assert texts["onset_crossed"] == "1 of 1" and texts["onset_step"] == "2"
    assert texts["onset_calm_past"] == "0 of 1" and texts["stability"] == "holds"
    silent = run("Unregularised", 0.0, 0, diverge=True, lam=lam)  # diverges below the limit
    texts = C.findings(results([calm]), pd.concat([silent, calm]), BASE).texts()
    assert texts["onset_crossed"] == "0 of 1" and texts["stability"] == "does not hold"


def test_the_frame_puts_the_papers_entries_under_ours():
    frame = C.findings(the_papers_regime(), None, BASE).frame()
    assert list(frame.columns) == ["Unregularised", "Dropout", "Weight", "Loss grad.", "MGS"]
    ours = frame.loc[("LeNet-5", "30", "this book")]
    assert ours["MGS"] == "14.0 ± 0.0 (14.0), 3/3"  # 3 of 3 runs converged
    assert ours["Loss grad."] == "0/3"
    assert frame.loc[("LeNet-5", "30", "paper"), "MGS"] == "17.8 ± 2.0 (16.9)"  # Table 2
