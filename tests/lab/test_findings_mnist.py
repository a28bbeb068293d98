"""The MNIST chapter's findings: computed from crafted runs, then from the committed ones."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mgs_teach import paper
from mgs_teach.lab import summaries
from mgs_teach.lab.findings import figure3 as F3
from mgs_teach.lab.findings import figure4 as F4
from mgs_teach.lab.findings import long_training as LT
from mgs_teach.lab.findings import mnist as F

METHODS = ["none", "dropout", "weight_decay", "param_gradient", "mgs_trace"]
NOISES = [0.0, 0.3, 0.6, 0.8]


def history(noise, reg, acc, seed, *, growth=1.0, n_train=100, diverged=False, steps=6):
    """One run: a flat test accuracy ``acc`` and tr K growing by ``exp(growth)``."""
    step = np.arange(steps)
    return pd.DataFrame(dict(
        step=step, epoch=step.astype(float), test_acc=acc, train_loss=0.5 + 0.1 * seed,
        trace=100 * np.exp(growth * step / (steps - 1)), label_noise=noise, regulariser=reg,
        seed=seed, n_train=n_train, model="fcn", epochs=steps, key=f"{reg}-{noise}-{n_train}",
        status="diverged" if diverged else "finished"))  # fmt: skip


def table_runs(
    acc, growth=lambda p, r: 1 + METHODS.index(r) / 10, diverged=(), n_train=100, seeds=2
):
    """Runs of every method and noise level: ``acc(p, r)`` is the accuracy of both seeds
    (plus and minus 0.001); ``diverged`` holds the ``(p, r, seed)`` that diverged."""
    frames = [history(p, r, acc(p, r) + (0.001 if s else -0.001), s, growth=growth(p, r),
                      n_train=n_train, diverged=(p, r, s) in diverged)
              for p in NOISES for r in METHODS for s in range(seeds)]  # fmt: skip
    return pd.concat(frames, ignore_index=True)


BASE = {"none": 0.50, "dropout": 0.70, "weight_decay": 0.60, "param_gradient": 0.80,
        "mgs_trace": 0.75}  # fmt: skip


def lg_wins(p, r):
    """Accuracy falling with noise; Loss grad. first, MGS second, at every level."""
    return BASE[r] - 0.3 * p


def test_mgs_second_behind_loss_grad_says_second_and_names_the_winner():
    f = F.mnist_findings({"table1": table_runs(lg_wins)})
    t = f.texts()
    assert list(f.verdicts["mgs_rank"]) == [2, 2, 2, 2]
    assert t["table1_ranks"] == "2nd of 5 at 0, 30, 60 and 80 %"
    assert t["table1_winners"] == "Loss grad. at 0, 30, 60 and 80 %"
    assert t["table1_behind"] == "5.00 points"
    assert t["mgs_best"] == "0 of 4" and t["mgs_best_where"] == "no entry"
    # 5 points apart with runs 0.14 points apart: the gap is not within the noise
    assert t["close"] == "0 of 4"


def test_mgs_best_everywhere_and_a_method_whose_runs_all_diverged_ranks_last():
    acc = lambda p, r: {**BASE, "mgs_trace": 0.9}[r] - 0.3 * p
    runs = table_runs(acc, diverged={(0.0, "param_gradient", 0), (0.0, "param_gradient", 1)})
    f = F.mnist_findings({"fcn_table": runs})
    t = f.texts()
    assert t["fcn_table_ranks"] == "1st of 5 at 0, 30, 60 and 80 %"
    assert t["mgs_best_where"] == "every noise level of Table D.2"
    assert t["fcn_table_lead"] == "10.00 to 20.00 points"
    at0 = f.verdicts.iloc[0]
    assert at0["methods"] == 5 and at0["mgs_margin"] == pytest.approx(100 * (0.9 - 0.7))
    assert t["div_method"] == "Loss grad." and t["div_levels"] == "0 %"
    assert t["div_sentence"] == "Loss grad. diverged at 0 % noise in 2 of 2 of its table runs."
    assert "(2 of 2 in Table D.2); no other run diverged." in t["div_paragraph"]
    assert t["div_why"].startswith("we don't know yet")
    assert t["div_why_sentence"].startswith("Why Loss grad. diverges, we don't know yet")


def test_the_papers_tables_give_mgs_seven_of_eight_entries_and_dropout_the_other():
    v = F.rank_verdicts({n: paper.frame(n) for n in paper.TABLES})
    assert int((v["mgs_rank"] == 1).sum()) == 7
    miss = v[v["mgs_rank"] > 1].iloc[0]
    assert (miss["table"], miss["label_noise"], miss["best"]) == ("table1", 0.0, "Dropout")
    t = F.mnist_findings({"table1": table_runs(lg_wins), "fcn_table": table_runs(lg_wins)}).texts()
    assert t["paper_mgs_best"] == "7 of 8"
    assert t["paper_exceptions"] == "at 0 % of Table 1, where Dropout has 95.8 and MGS 95.2"
    assert t["paper_max_sd"] == "Loss grad.'s 74.9 ± 22.0 at 0 % of Table D.2"


def test_a_positive_pooled_correlation_is_said_against_the_papers_sign():
    # within each noise level, slower growth goes with higher accuracy (the paper's sign);
    # across levels, noise slows the growth and lowers the accuracy: pooled, the sign flips
    growth = lambda p, r: 10 * (1 - p) + (1 - BASE[r])
    c = F.growth_correlations({"table1": table_runs(lg_wins, growth)},
                              {"table1": F.entries(table_runs(lg_wins, growth))})  # fmt: skip
    row = c.iloc[0]
    assert row["rho"] > 0 and row["rho_noise"] < 0
    assert all(r == pytest.approx(-1.0) for r in row["within"].values())
    assert (row["slower"], row["regularised"]) == (16, 16)
    t = F.mnist_findings({"table1": table_runs(lg_wins, growth)}).texts()
    assert t["rho_sign"] == "positive in Table 1, against the paper's negative sign"
    assert t["within_negative"] == "4 of 4" and t["table1_rho"].startswith("+")


def test_the_papers_sign_is_said_when_it_holds():
    growth = lambda p, r: 1 - BASE[r] + p  # lower accuracy, faster growth, everywhere
    t = F.mnist_findings({"table1": table_runs(lg_wins, growth)}).texts()
    assert t["rho_sign"] == "negative in Table 1, the paper's sign"
    both = {"table1": table_runs(lg_wins, growth), "fcn_table": table_runs(lg_wins, growth)}
    assert F.mnist_findings(both).texts()["rho_sign"] == "negative in both tables, the paper's sign"


def bench_runs(acc, diverged=()):
    return pd.concat([table_runs(acc, diverged=diverged, n_train=n) for n in (250, 1000)])


def test_the_bench_says_which_method_does_not_fall_with_noise_and_where():
    acc = lambda p, r: 0.4 + 0.3 * p if r == "param_gradient" and p < 0.5 else lg_wins(p, r)
    dead = {(0.0, "param_gradient", s) for s in (0, 1)}
    bench = {"testbench": pd.concat([table_runs(acc, n_train=250),
                                     table_runs(acc, diverged=dead, n_train=1000)])}  # fmt: skip
    f = F.mnist_findings({"table1": table_runs(lg_wins)}, bench)
    t = f.texts()
    assert t["tb_falling"] == "Unregularised, Dropout, Weight and MGS"
    assert t["tb_panels"] == "in the panels of Unregularised, Dropout, Weight and MGS"
    rises = t["tb_not_falling"]
    assert rises.startswith("Loss grad.'s final rises with the noise at 250 samples from 0 to 60 %")
    assert "(40.0 → 49.0 → 62.0 %)" in rises and "at 1,000 samples from 30 to 60 %" in rises
    assert rises.endswith("every run diverged at 1,000 samples, 0 %")
    assert ("on the test bench in 0 of 2 at 250 samples and 2 of 2 at 1,000 samples, that is "
            "2 of 2 at 1,000 samples and more") in t["div_paragraph"]  # fmt: skip
    assert t["div_sentence"] == (
        "Loss grad. diverged at 0 % noise in 0 of 2 of its table runs "
        "and 2 of 2 at 1,000 samples and more on the test bench."
    )
    assert t["tb_mgs_best"] == "4 of 8"  # where Loss grad. is low or diverged


def test_a_bench_where_every_method_falls_says_every_panel():
    f = F.mnist_findings({"table1": table_runs(lg_wins)}, {"testbench": bench_runs(lg_wins)})
    assert f.texts()["tb_panels"] == "in every panel"
    assert f.monotone["rises"].map(len).sum() == 0


def test_the_cost_of_a_penalised_step_and_the_trace_check():
    speeds = [("none", "sequential", 1, 300.0), ("mgs_trace", "sequential", 1, 100.0),
              ("none", "batched", 1, 400.0), ("mgs_trace", "batched", 1, 100.0),
              ("none", "batched", 8, 300.0), ("mgs_trace", "batched", 8, 100.0)]  # fmt: skip
    rows = [dict(model="lenet5", penalty=p, engine=e, runs=r, steps_per_s_per_run=v)
            for p, e, r, v in speeds]  # fmt: skip
    exact = history(0.6, "mgs_trace", 0.8, 0).assign(method="auto")
    estimate = history(0.6, "mgs_trace", 0.81, 0, growth=1.1).assign(method="hutchinson")
    check = pd.concat([exact, estimate])
    t = F.mnist_findings(
        {"table1": table_runs(lg_wins), "trace_check": check}, cost_rows=rows
    ).texts()
    assert t["cost_sequential"] == "3.0" and t["cost_batched"] == "3.0 to 4.0"
    assert t["cost"] == ("measures a LeNet-5 step with it at 3.0 plain steps in the sequential "
                         "loop (1 run) and 3.0 to 4.0 plain steps in the batched engine "
                         "(1 and 8 runs)")  # fmt: skip
    assert t["trace_acc_gap"] == "1.0" and t["trace_sentence"].startswith("The two runs end 1.0")
    # an engine without its penalised row is not measured, not a KeyError
    half = F.mnist_findings({"table1": table_runs(lg_wins)}, cost_rows=rows[:3]).texts()
    assert half["cost_batched"] == "not measured" and half["cost_sequential"] == "3.0"
    assert half["cost"].endswith("plain steps in the sequential loop (1 run) and is not "
                                 "measured in the batched engine")  # fmt: skip


@pytest.fixture(scope="module")
def committed():
    cpu = summaries.load_mnist_results(summaries.results_dir("mnist-cpu"))
    bench = summaries.load_part_results(summaries.results_dir("testbench-cpu"))
    rows = json.loads((summaries.results_dir("bench") / "training-cpu.json").read_text())
    return cpu, bench, F.mnist_findings(cpu, bench, rows)


def test_the_committed_results_agree_with_their_own_summaries(committed):
    cpu, bench, f = committed
    summary = json.loads((summaries.results_dir("mnist-cpu") / "summary.json").read_text())
    for row in f.verdicts.itertuples():
        cells = summary["tables"][row.table]["entries"][f"{row.label_noise:.0%}"]
        finals = {m: -np.inf if e["final"] is None else e["final"] for m, e in cells.items()}
        order = sorted(finals, key=finals.get, reverse=True)
        assert row.mgs_rank == order.index("MGS") + 1 and row.best == order[0]
    diverged = sum(e["diverged"] for t in summary["tables"].values()
                   for c in t["entries"].values() for e in c.values())  # fmt: skip
    bench_summary = json.loads(
        (summaries.results_dir("testbench-cpu") / "summary.json").read_text()
    )
    diverged += sum(e["diverged"] for s in bench_summary["entries"].values()
                    for c in s.values() for e in c.values())  # fmt: skip
    assert f.divergence["diverged"].sum() == diverged == len(f.diverged)
    texts = f.texts()
    assert all(isinstance(v, str) and v for v in texts.values())
    assert "nan" not in " ".join(texts.values())


def test_ties_share_a_rank_and_a_method_whose_runs_all_diverged_ranks_last():
    tie = {**BASE, "mgs_trace": 0.80}  # MGS ties with Loss grad. for the best final
    v = F.mnist_findings({"table1": table_runs(lambda p, r: tie[r])}).verdicts
    assert list(v["mgs_rank"]) == [1, 1, 1, 1]
    second = {**BASE, "dropout": 0.75}  # MGS ties with Dropout behind Loss grad.
    v = F.mnist_findings({"table1": table_runs(lambda p, r: second[r])}).verdicts
    assert list(v["mgs_rank"]) == [2, 2, 2, 2]
    dead = {(p, "mgs_trace", s) for p in NOISES for s in range(2)}
    v = F.mnist_findings({"table1": table_runs(lg_wins, diverged=dead)}).verdicts
    assert list(v["mgs_rank"]) == [5, 5, 5, 5]


def test_figure3_leaves_out_noise_levels_without_a_finished_unregularised_run():
    dead = {(0.6, "none", s) for s in range(2)}
    growth = lambda p, r: 1 - BASE[r] + p
    c = F.mnist_findings({"table1": table_runs(lg_wins, growth, diverged=dead)}).correlations
    assert (c.iloc[0]["slower"], c.iloc[0]["regularised"]) == (12, 12)


def test_the_close_sentence_is_chosen_by_the_counts_and_says_the_runs():
    t = F.mnist_findings({"table1": table_runs(lg_wins, seeds=3)}).texts()
    assert t["runs"] == "3" and t["close"] == "0 of 4"
    assert t["close_sentence"].startswith("At every table entry, MGS and the best other")
    near = {**BASE, "mgs_trace": 0.8 + 1e-4}  # far closer than the 0.14-point spread
    t = F.mnist_findings({"table1": table_runs(lambda p, r: near[r])}).texts()
    assert t["close_sentence"] == (
        "MGS and the best other method are less than one standard deviation of their runs "
        "apart at every one of the 4 table entries, too close for 2 runs to order them."
    )


def test_bench_rows_of_the_diverging_method_without_divergence_are_said():
    dead = {(0.0, "param_gradient", s) for s in range(2)}
    f = F.mnist_findings({"table1": table_runs(lg_wins, diverged=dead)},
                         {"testbench": bench_runs(lg_wins)})  # fmt: skip
    t = f.texts()
    assert t["div_sentence"] == (
        "Loss grad. diverged at 0 % noise in 2 of 2 of its table runs "
        "and none of its 4 runs at those levels on the test bench."
    )
    assert t["epochs"] == "6" and t["tb_epochs"] == "6"


CHAPTER = Path(__file__).resolve().parents[2] / "book" / "mnist.ipynb"


def cited_names():
    """The ``mnist_`` names the chapter's markdown cites, less those its code glues itself."""
    cells = json.loads(CHAPTER.read_text())["cells"]
    text = lambda kind: "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == kind)
    cited = set(re.findall(r"\{glue:text\}`mnist_(\w+)`", text("markdown")))
    code = text("code")
    own = set(re.findall(r'glue\(\s*"mnist_(\w+)"', code))
    for literal in re.findall(r"glue_all\(\{(.*?)\},\s*prefix=\"mnist_\"", code, re.S):
        own |= set(re.findall(r'"(\w+)":', literal))
    assert cited and own, "the chapter cites glued names and glues some itself"
    return {n for n in cited - own if not n.startswith(PARTS)}


#: Prefixes of the names the chapter glues from the findings of the cpu plan's own parts.
PARTS = ("f3_", "f4_", "lt_")


def test_every_name_the_chapter_cites_from_the_parts_comes_from_their_findings():
    """``mnist_f3_*``, ``mnist_f4_*`` and ``mnist_lt_*``: the texts and rules of
    findings.figure3, findings.figure4 and findings.long_training on the committed parts."""
    cells = json.loads(CHAPTER.read_text())["cells"]
    markdown = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    cited = set(re.findall(r"\{glue:text\}`mnist_((?:f3|f4|lt)_\w+)`", markdown))
    load = lambda name: summaries.load_part_results(summaries.results_dir(f"{name}-cpu"))  # noqa: E731
    fig3, long, fig4 = load("figure3"), load("long_fcn"), load("figure4")
    finals = F4.spoke_finals(fig4["figure4"], F4.middle(fig4["plan"]))
    lt = LT.late_collapse(long["long_fcn"], short_epochs=35)
    glued = ({f"f3_{k}" for k in F3.figure3_findings(fig3["figure3"]).texts()}
             | {f"f3_rule_{k}" for k in F3.RULES} | {"f3_runs", "f4_spokes"}
             | {f"f4_{k}" for k in F4.texts(F4.robustness(finals), finals)}
             | {f"lt_{k}" for k in LT.texts(lt, 35)}
             | {f"lt_rule_{k}" for k in LT.RULES})  # fmt: skip
    assert cited and cited <= glued, sorted(cited - glued)


def test_every_name_the_chapter_cites_comes_from_texts_on_committed_results(committed):
    assert cited_names() <= set(committed[2].texts())


@pytest.mark.parametrize("bench", [False, True])
def test_every_name_the_chapter_cites_comes_from_texts_without_divergence_cost_or_bench(bench):
    tb = {"testbench": bench_runs(lg_wins)} if bench else None
    f = F.mnist_findings({"fcn_table": table_runs(lg_wins)}, tb, cost_rows=None)
    t = f.texts()
    assert cited_names() <= set(t)
    assert all(isinstance(v, str) and v for v in t.values())
    assert t["div_method"] == "no method" and t["div_sentence"].startswith("No run diverged")
    assert t["cost_sequential"] == "not measured" and "not measure" in t["cost"]
    assert t["table1_ranks"] == "not measured" and t["table1_rho"] == "not measured"
    assert t["trace_acc_gap"] == "not measured"
    assert (t["tb_mgs_best"] == "not measured") is not bench
