import dataclasses

import optax
import pytest

from mgs_teach import penalties, regularisers
from mgs_teach.penalties import regulariser
from mgs_teach.regularisers import LOSS_TERMS, NAMES, REGULARISERS, Family, cyclical_schedule, sgd


def test_names_and_loss_terms_come_from_the_registry():
    assert NAMES == ("none", "weight_decay", "dropout", "adam", "cyclical_lr", "input_gradient",
                     "param_gradient", "mgs_trace", "mgs_logdet")  # fmt: skip
    assert LOSS_TERMS == ("weight_decay", "input_gradient", "param_gradient", "mgs_trace",
                          "mgs_logdet")  # fmt: skip
    assert tuple(REGULARISERS) == NAMES
    assert all(isinstance(f, Family) for f in REGULARISERS.values())


def test_penalties_re_exports_the_registry():
    for name in regularisers.__all__:
        if name != "Options":
            assert getattr(penalties, name) is getattr(regularisers, name), name


def test_every_family_is_made_of_module_level_functions():
    """Families hold shared functions, never per-call lambdas or partials, so that two
    regularisers built alike are alike."""
    for name, family in REGULARISERS.items():
        for field in dataclasses.fields(family):
            value = getattr(family, field.name)
            if callable(value):
                assert value.__name__ != "<lambda>", (name, field.name)
                assert "<locals>" not in value.__qualname__, (name, field.name)


def test_only_the_optimiser_families_change_the_optimiser():
    for name, family in REGULARISERS.items():
        assert (family.transform is optax.adam) == (name == "adam")
        assert (family.transform is sgd) == (name != "adam")


def test_the_kernel_a_step_evaluates_is_the_familys_answer():
    """The budget times a step by its family's kernel: the trace's own method, the exact
    structured kernel for the log-determinant, and none for the rest."""
    for method in ("structured", "hutchinson", "auto"):
        reg = regulariser("mgs_trace", 1e-3, method=method)
        assert reg.family.kernel(reg) == method
    assert REGULARISERS["mgs_logdet"].kernel(regulariser("mgs_logdet", 1e-3)) == "structured"
    assert {n for n, f in REGULARISERS.items() if f.kernel(regulariser(n, 0.1)) is None} == (
        set(REGULARISERS) - {"mgs_trace", "mgs_logdet"})  # fmt: skip


def test_strength_checks():
    REGULARISERS["dropout"].check(0.99)
    with pytest.raises(ValueError, match="below 1"):
        REGULARISERS["dropout"].check(1.0)
    REGULARISERS["adam"].check(1e-3)
    with pytest.raises(ValueError, match="adam needs a positive strength"):
        REGULARISERS["adam"].check(0.0)
    REGULARISERS["none"].check(1e9)


def test_cyclical_schedule_rejects_bad_arguments():
    with pytest.raises(ValueError, match="ratio >= 0"):
        cyclical_schedule(0.1, -1.0, 10)
    with pytest.raises(ValueError, match="period >= 1"):
        cyclical_schedule(0.1, 1.0, 0)
