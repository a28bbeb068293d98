"""Shared helpers of the self-checks: a verdict printer and tolerant comparisons."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


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
