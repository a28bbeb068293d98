"""The self-checks' harness, ``mgs_teach.checks._common.check``."""

import numpy as np
import pytest

from mgs_teach.checks._common import Case, _number, check

CASES = [Case((np.arange(3.0),), 2 * np.arange(3.0)), Case((np.ones(4),), 2 * np.ones(4))]
HINTS = dict(
    hint="general",
    shape_hint=lambda case, got: f"shape {np.shape(case.expected)}",
    diagnoses=[(lambda x: x, "you forgot the factor"), (lambda x: None, "never")],
    symptoms=[(lambda got, x: not np.all(np.isfinite(got)), "not finite")],
)


def verdict(fn, capsys, **kw):
    ok = check("double", fn, CASES, **{**HINTS, **kw})
    out = capsys.readouterr().out
    assert out.count("\n") >= 1 and ("✅" in out) == ok and ("❌" in out) != ok
    return ok, out


@pytest.mark.parametrize(
    ("fn", "hint"),
    [
        (lambda x: x, "you forgot the factor"),  # a diagnosis
        (lambda x: 2 * x[:-1], "shape (3,)"),  # the wrong shape
        (lambda x: None, "shape (3,)"),
        (lambda x: 1 / 0, "shape (3,)"),  # raised
        (lambda x: np.full_like(x, np.inf), "not finite"),  # a symptom
        (lambda x: 3 * x, "general"),
    ],
)
def test_first_applicable_hint(fn, hint, capsys):
    ok, out = verdict(fn, capsys)
    assert not ok and f"Hint: {hint}" in out and "never" not in out


def test_right_answers_pass_and_inputs_are_copied(capsys):
    def doubles_in_place(x):
        x *= 2  # writes into its input: the case must not change
        return x

    assert verdict(doubles_in_place, capsys)[0]
    assert np.array_equal(CASES[0].args[0], np.arange(3.0))


def test_stops_at_the_first_wrong_case(capsys):
    calls = []

    def right_once(x):
        calls.append(len(x))
        return 2 * x if len(calls) == 1 else x

    ok, out = verdict(right_once, capsys)
    assert not ok and calls == [3, 4] and "forgot the factor" in out


def test_tolerances_per_case_and_custom_comparison(capsys):
    loose = [Case((1.0,), 2.0, rtol=0.1)]
    assert check("t", lambda x: 2.05, loose, hint="h")
    assert not check("t", lambda x: 2.05, [Case((1.0,), 2.0)], hint="h")
    # a comparison that raises on a malformed answer is a wrong answer, not a crash
    ok = check("t", lambda x: "two", [Case((1.0,), 2.0)], hint="h",
               compare=lambda got, case: got + 0 == case.expected)  # fmt: skip
    assert not ok and "Hint: h" in capsys.readouterr().out


def test_a_diagnosis_that_raises_does_not_match(capsys):
    ok = check("t", lambda x: 3.0, [Case((1.0,), 2.0)], hint="general",
               diagnoses=[(lambda x: 1 / 0, "never"), (lambda x: 3.0, "the factor")])  # fmt: skip
    assert not ok and "Hint: the factor" in capsys.readouterr().out


def test_number():
    assert _number(np.float32(1.5)) == 1.5 and _number("2") == 2.0
    assert _number(True) is None and _number([1, 2]) is None and _number(None) is None
