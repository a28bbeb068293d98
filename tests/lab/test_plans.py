"""The plans are literal frozen values with the sizes the chapters promise; names map to
plans at one registry (``plans_for``)."""

import dataclasses

import pytest

from mgs_teach.lab import plan as P
from mgs_teach.lab import plans
from mgs_teach.lab.experiment import Experiment

from .helpers import SMOKE


def test_plans_are_frozen_values():
    for plan in plans.PLANS.values():
        with pytest.raises(dataclasses.FrozenInstanceError):
            plan.n_records = 1  # type: ignore[misc]
        with pytest.raises(dataclasses.FrozenInstanceError):
            plan.tables[0].epochs = 1  # type: ignore[misc]
        assert hash(plan) == hash(dataclasses.replace(plan))
    assert set(plans.PLANS) == {"quick", "cpu", "paper"}


def test_the_cpu_plan_tests_the_claim_at_the_papers_networks():
    cpu = plans.CPU
    by_name = {t.name: t for t in cpu.tables}
    assert {t.model.name for t in cpu.tables} == {"lenet5", "fcn-6x300"}
    for table in cpu.tables:
        assert table.n_train == 3000 and table.runs >= 3
        assert table.noises == (0.0, 0.3, 0.6, 0.8)
    assert by_name["table1"].trace_method == "hutchinson" and cpu.trace_check is not None
    tuned = {name for name, _ in cpu.tuning.candidates}
    assert tuned == {"dropout", "weight_decay", "param_gradient", "mgs_trace"}
    assert cpu.source == "offline"


def test_the_paper_plan_has_the_papers_sizes():
    paper = plans.PAPER
    for table in paper.tables:
        assert (table.epochs, table.runs, table.n_train) == (400, 10, 3000)
    assert (paper.tuning.epochs, paper.tuning.runs, paper.tuning.label_noise) == (100, 5, 0.5)
    assert paper.figure3.model.kind == "alexnet"
    assert paper.figure3.regularisers == plans.FIGURE3_REGULARISERS
    axes = [axis for axis, _ in paper.figure4.changes]
    assert axes == ["n_train", "label_noise", "batch_size", "learning_rate", "epochs"]
    assert paper.n_records == 100


def test_grids_use_the_tuned_strengths_and_change_one_setting_at_a_time():
    best = {"lenet5": {"mgs_trace": 1e-4, "dropout": 0.1}}
    grids = plans.PAPER.grids(best)
    table1 = grids["table1"]
    assert all(isinstance(e, Experiment) for g in grids.values() for e in g)
    assert {e.regulariser.name for e in table1} == set(plans.TABLE_METHODS.values())
    assert {e.regulariser.strength for e in table1 if e.regulariser.name == "mgs_trace"} == {1e-4}
    assert sorted({e.data.label_noise for e in table1}) == [0.0, 0.3, 0.6, 0.8]
    middle = grids["figure4"][0]
    for e in grids["figure4"]:
        changed = [f for f in ("n_train", "label_noise", "batch_size", "learning_rate", "epochs")
                   if _get(e, f) != _get(middle.replace(regulariser=e.regulariser), f)]  # fmt: skip
        assert len(changed) <= 1
    check = plans.CPU.grids({})["trace_check"]
    assert [e.regulariser.method for e in check] == ["auto", "hutchinson"]


def _get(e, field):
    for part in (e.data, e.config):
        if hasattr(part, field):
            return getattr(part, field)
    raise AttributeError(field)


def test_every_network_is_tuned_once_with_the_methods_it_uses():
    bases = plans.PAPER.tuning_bases()
    assert set(bases) == {"lenet5", "fcn-6x300", "alexnet"}
    assert set(bases["alexnet"][1]) == set(plans.FIGURE3_REGULARISERS) - {"none"}
    base, _, options = plans.CPU.tuning_bases()["lenet5"]
    assert options["mgs_trace"] == {"method": "hutchinson"}  # tuned as it trains
    assert options["dropout"] == {}
    assert base.data.label_noise == 0.5 and base.config.epochs == plans.CPU.tuning.epochs
    table1 = plans.CPU.grids({})["table1"]
    assert {e.regulariser.method for e in table1 if e.regulariser.name == "mgs_trace"} == {
        "hutchinson"
    }
    assert {e.regulariser.method for e in table1 if e.regulariser.name != "mgs_trace"} == {"auto"}


def test_the_test_benches_have_the_planned_grids_and_keep_the_tuned_strengths():
    cpu, paper = plans.CPU.testbench, plans.PAPER.testbench
    assert cpu.model == plans.FCN and len(cpu.sizes) == 4 and len(cpu.noises) == 5
    assert cpu.runs >= 3 and max(cpu.sizes) <= 3000  # the offline digits' training pool
    assert len(paper.sizes) * len(paper.noises) == 143  # the paper's count of scenarios
    assert (min(paper.sizes), max(paper.sizes)) == (250, 9000)
    assert (min(paper.noises), max(paper.noises)) == (0.0, 1.0)
    assert (paper.epochs, paper.runs) == (400, 10) and plans.PAPER.source == "auto"
    best = {"fcn-6x300": {"mgs_trace": 3e-5, "dropout": 0.5}}
    grid = plans.CPU.part("testbench", best)
    assert len(grid) == 4 * 5 * len(plans.TABLE_METHODS)
    assert {(e.data.n_train, e.data.label_noise) for e in grid} == {
        (n, p) for n in cpu.sizes for p in cpu.noises
    }
    strengths = {e.regulariser.name: e.regulariser.strength for e in grid}
    assert strengths["mgs_trace"] == 3e-5 and strengths["dropout"] == 0.5
    assert strengths["none"] == 0.0
    assert {e.config.epochs for e in grid} == {cpu.epochs}
    assert "testbench" not in plans.CPU.grids(best)  # its own command, not the tables'


def test_the_regression_plans_have_the_papers_protocol():
    paper, cpu = plans.REGRESSION_PAPER, plans.REGRESSION_CPU
    assert set(plans.REGRESSION_PLANS) == {"quick", "cpu", "cpu-scaled", "paper"}
    for plan in (paper, cpu):
        assert plan.task == "faces" and plan.batch_size == 128
        assert (plan.tuning.label_noise, plan.tuning.epochs) == (15.0, 50)
        # the paper's targets and training share: 30 % of Kaggle's 2,140 complete faces
        assert plan.face_targets == "pixels" and plan.mse_unit == 1.0
        assert all(t.n_train == 642 for t in plan.tables)
        assert plan.tuning.n_train + plan.tuning.n_val == 642
        assert {t.model.kind for t in plan.tables} == {"lenet5", "fcn"}
        for t in plan.tables:
            assert t.noises == plans.REGRESSION_NOISES == (0.0, 10.0, 20.0, 30.0)
            assert t.model.d_out == 30 and t.model.d_in == plan.image_size**2
    assert paper.learning_rate == 0.1  # the paper's; the cpu plan's comes from the pilot
    # Kaggle's 2,140 complete faces hold the paper plan's training and test faces
    assert 2140 - paper.n_test >= max(t.n_train for t in paper.tables)
    scaled = plans.REGRESSION_CPU_SCALED
    assert scaled.face_targets == "scaled" and scaled.mse_unit == (96 / 2) ** 2
    assert paper.image_size == 96
    assert {t.model.kind: t.epochs for t in paper.tables} == {"lenet5": 50, "fcn": 400}
    assert all(t.runs == 10 and t.trace_method == "auto" for t in paper.tables)
    grid = cpu.grids({"lenet5": {"mgs_trace": 1e-5}})["table2"]
    assert {e.data.target_noise for e in grid} == set(plans.REGRESSION_NOISES)
    assert all(e.data.loss == "mse" and e.config.batch_size == 128 for e in grid)
    mgs = [e for e in grid if e.regulariser.name == "mgs_trace"]
    assert {(e.regulariser.strength, e.regulariser.method) for e in mgs} == {(1e-5, "hutchinson")}


def test_a_plan_without_a_test_bench_says_so():
    with pytest.raises(ValueError, match="no test bench"):
        dataclasses.replace(SMOKE, testbench=None).part("testbench", {})


def test_plans_are_found_by_task():
    assert plans.plans_for() is plans.plans_for("mnist") is plans.PLANS
    assert plans.plans_for("faces") is plans.plans_for("regression") is plans.REGRESSION_PLANS
    for task in ("cifar", "", "MNIST"):
        with pytest.raises(ValueError, match=f"unknown task {task!r}; choose mnist or regression"):
            plans.plans_for(task)


def test_every_plan_gives_a_regulariser_the_same_options():
    assert P.plan_options("mgs_trace", "hutchinson") == {"method": "hutchinson"}
    assert P.plan_options("mgs_trace") == {"method": "auto"}
    assert P.plan_options("cyclical_lr") == {"cycle_steps": 300}
    assert P.plan_options("dropout", "hutchinson") == {}
    assert plans.TABLE_METHODS is P.TABLE_METHODS and dict(P.CANDIDATES)["mgs_trace"]


def test_the_paper_plan_tunes_on_the_papers_6000_samples_only_where_the_full_mnist_is():
    full = plans.PAPER.for_source("full")
    assert (full.tuning.n_train, full.tuning.n_val) == (6000, 1500)
    assert full.tuning.candidates == plans.PAPER.tuning.candidates
    data = {base.data for base, _, _ in full.tuning_bases().values()}
    assert {(d.n_train, d.label_noise) for d in data} == {(6000, 0.5)}
    assert full.grids({}) == plans.PAPER.grids({})  # only the tuning changes
    assert plans.PAPER.for_source("offline") is plans.PAPER  # 3,000 digits: 2,250 + 750
    assert plans.CPU.for_source("full") is plans.CPU  # the cpu plan has no full sizes


def test_an_own_part_without_its_grid_is_refused():
    with pytest.raises(ValueError, match=r"no grid for its own parts \['figure3'\]"):
        dataclasses.replace(SMOKE, own=("figure3",))
