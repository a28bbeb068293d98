"""What each results chapter found, computed from its runs and said through myst-nb's glue.

Every results chapter reads one function of a submodule here (``findings.mnist``,
``findings.regression``, ...). It returns a small frozen value: the ranks, the gaps, which
of the paper's claims held and, for those that did not, the computed diagnosis. The
chapter hands that value's :meth:`Findings.texts` to :func:`glue_all`, and its prose and
its "What we found" box cite each entry as ``{glue:text}`name```. So no number, rank or
verdict word about the book's own runs is typed by hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["glue", "glue_all", "join_and", "number", "ordinal", "percent", "signed", "spearman"]


def number(value: float, digits: int = 2) -> str:
    """``value`` with ``digits`` significant figures and thousands separators (``1,234``)."""
    if value != value:  # NaN
        return "n/a"
    if abs(value) >= 10**digits:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def percent(value: float, digits: int = 1) -> str:
    """A fraction in [0, 1] as a percentage with ``digits`` decimals (``0.953`` -> ``95.3 %``)."""
    return f"{100 * value:.{digits}f} %"


def signed(x: float, digits: int = 2) -> str:
    """``x`` with its sign and ``digits`` decimals, a true minus sign (``-0.5`` -> ``−0.50``)."""
    return f"{x:+.{digits}f}".replace("-", "−")


def ordinal(n: int) -> str:
    """``1`` -> ``1st``, ``2`` -> ``2nd``, ``11`` -> ``11th``."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def join_and(items: Iterable[str]) -> str:
    """``"a"``, ``"a and b"``, ``"a, b and c"``; ``""`` for no items."""
    items = list(items)
    return " and ".join([", ".join(items[:-1]), items[-1]]) if len(items) > 1 else "".join(items)


def spearman(a: Any, b: Any) -> float:
    """Spearman's rank correlation of the pairs of ``a`` and ``b`` (equally long, 1-D) where
    both are known; ties share their average rank. NaN with fewer than three such pairs."""
    a, b = pd.Series(np.asarray(a, dtype=float)), pd.Series(np.asarray(b, dtype=float))
    ok = a.notna() & b.notna()
    return float(a[ok].rank().corr(b[ok].rank())) if ok.sum() > 2 else float("nan")


def glue(name: str, value: Any) -> str:
    """Glue ``str(value)`` under ``name`` for a chapter's prose (``{glue:text}`name```).

    Outside a book build (Colab, a plain kernel) myst-nb may be missing; the text is then
    only returned.

    Returns
    -------
    str
        The glued text.
    """
    text = value if isinstance(value, str) else str(value)
    try:
        from myst_nb import glue as _myst_glue
    except ImportError:  # pragma: no cover - depends on the reader's installation
        return text
    _myst_glue(name, text, display=False)
    return text


def glue_all(texts: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Glue every entry of ``texts`` (names prefixed with ``prefix``); returns what was glued."""
    return {prefix + k: glue(prefix + k, v) for k, v in texts.items()}
