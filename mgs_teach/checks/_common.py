"""The self-checks' harness: a check is data (cases, a reference, hints), run by :func:`check`.

A check calls the student's function on a few fixed cases, compares each answer with the
expected one, and stops at the first wrong answer with the most specific hint it has:

1. the answer has the wrong shape (``shape_hint``);
2. it matches a known wrong answer (``diagnoses``: a wrong formula and the hint for it);
3. it shows a known symptom (``symptoms``: a test on the answer, such as "not finite");
4. otherwise the general ``hint``.

Hints never contain the expected numbers. Every check prints one verdict line and returns
``True`` or ``False``.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

#: A hint: a sentence, or ``hint(case, answer)``, a function of the failing case and answer.
Hint = str | Callable[["Case", Any], str]


@dataclasses.dataclass(frozen=True)
class Case:
    """One test case: the arguments, the expected answer and, optionally, a name and tolerances.

    ``label`` names the case in hints (for example "a singular kernel"); ``rtol`` and
    ``atol`` override the check's tolerances for this case.
    """

    args: tuple
    expected: Any
    label: str = ""
    rtol: float | None = None
    atol: float | None = None


def _report(ok: bool, hint: str, *, what: str = "") -> bool:
    """Print a verdict (and a hint if wrong); return ``ok``."""
    prefix = f"{what}: " if what else ""
    if ok:
        print(f"✅ {prefix}correct.")
    else:
        print(f"❌ {prefix}not yet. Hint: {hint}")
    return bool(ok)


def _close(a: Any, b: Any, rtol: float = 1e-4, atol: float = 1e-6) -> bool:
    """Shape-aware closeness that never raises on a malformed answer."""
    try:
        a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    except (TypeError, ValueError):
        return False
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol))


def _call(fn: Callable[..., Any], *args: Any) -> Any:
    """Call a student's function; any exception becomes ``None`` (a wrong answer)."""
    try:
        return fn(*args)
    except Exception as err:  # noqa: BLE001 - a student's bug is an answer, not a crash
        print(f"   (your function raised {type(err).__name__}: {err})")
        return None


def _shape(x: Any) -> tuple[int, ...] | None:
    """The shape of a student's answer, or ``None`` for ragged or strange objects."""
    try:
        return np.shape(x)
    except (TypeError, ValueError):
        return None


def _number(x: Any) -> float | None:
    """A student's answer as one float (``float(x)`` works), or ``None``."""
    if isinstance(x, bool | np.bool_):
        return None
    try:
        return float(x)
    except (TypeError, ValueError, OverflowError):
        return None


def _text(hint: Hint, case: Case, got: Any) -> str:
    return hint(case, got) if callable(hint) else hint


def check(
    what: str,
    fn: Callable[..., Any],
    cases: Iterable[Case],
    *,
    hint: Hint,
    shape_hint: Hint | None = None,
    diagnoses: Sequence[tuple[Callable[..., Any], Hint]] = (),
    symptoms: Sequence[tuple[Callable[..., bool], Hint]] = (),
    compare: Callable[[Any, Case], bool] | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-7,
) -> bool:
    """Run a student's ``fn`` on every case; print a verdict with the first hint that applies.

    Parameters
    ----------
    what : str
        The check's name, printed with the verdict.
    fn : callable
        The student's function. It gets a deep copy of each case's ``args``, so an answer that
        writes into its inputs cannot spoil the next case.
    cases : iterable of Case
    hint : str or callable
        The general hint, for a wrong answer that no diagnosis or symptom explains.
    shape_hint : str or callable, optional
        When given, an answer must have the shape of the expected one (a scalar for a number);
        this is the hint when it does not, or when ``fn`` raised.
    diagnoses : sequence of (wrong, hint)
        ``wrong(*args)`` computes a known wrong answer (a dropped factor, the opposite sign);
        an answer close to it gets its hint. ``wrong`` may return ``None`` to pass.
    symptoms : sequence of (test, hint)
        ``test(answer, *args)`` is true for a known kind of wrong answer (not finite, not a
        pair, one of two parts wrong). Tried in order, after the diagnoses; a test that
        raises does not match.
    compare : callable, optional
        ``compare(answer, case)``: whether the answer is right (raising counts as wrong). By
        default, whether it is close to ``case.expected`` within the tolerances, in shape and
        value.
    rtol, atol : float
        Default tolerances, used for the comparison and the diagnoses.

    Returns
    -------
    bool
        Whether every case was answered right.
    """
    for case in cases:
        got = _call(fn, *copy.deepcopy(case.args))
        if shape_hint is not None and (got is None or _shape(got) != np.shape(case.expected)):
            return _report(False, _text(shape_hint, case, got), what=what)
        rt = rtol if case.rtol is None else case.rtol
        at = atol if case.atol is None else case.atol
        try:
            right = compare(got, case) if compare else _close(got, case.expected, rt, at)
        except Exception:  # noqa: BLE001 - a malformed answer is a wrong answer
            right = False
        if right:
            continue
        for wrong, why in diagnoses if got is not None else ():
            try:
                answer = wrong(*case.args)
            except Exception:  # noqa: BLE001 - a diagnosis that cannot be computed does not match
                answer = None
            if answer is not None and _close(got, answer, rt, at):
                return _report(False, _text(why, case, got), what=what)
        for test, why in symptoms:
            try:
                matched = bool(test(got, *case.args))
            except Exception:  # noqa: BLE001 - a strange answer has no symptom
                matched = False
            if matched:
                return _report(False, _text(why, case, got), what=what)
        return _report(False, _text(hint, case, got), what=what)
    return _report(True, "", what=what)
