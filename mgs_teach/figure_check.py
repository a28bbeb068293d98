"""What a reader would miss in a figure, checked as the book's notebooks display it.

:func:`audit` lists a figure's unlabelled axes and its text too small to read on the page.
:func:`audit_displayed_figures`, which :func:`mgs_teach.plots.style` calls, has IPython run
it on every figure a notebook displays: each problem becomes a ``figure check:`` line on
stderr, which the book's tests look for.
"""

from __future__ import annotations

import importlib
import sys

import matplotlib as mpl
import matplotlib.pyplot as plt

__all__ = ["MIN_TEXT_PX", "PAGE_WIDTH_PX", "audit", "audit_displayed_figures"]

#: Width of the book's content column, in pixels: a wider figure is shown scaled down to it.
PAGE_WIDTH_PX = 690
#: Smallest height of text, in pixels on the page, that a reader can still read.
MIN_TEXT_PX = 8.0


def audit(fig: plt.Figure) -> list[str]:
    """What a reader would miss in a figure: unlabelled axes, and text too small to read.

    An axis counts if its tick labels are visible; a label on any axes that shares it (as
    in ``plt.subplots(sharey=True)``) is enough. Polar and 3-d axes and axes switched off
    (images, legends) are not checked for labels. Colour bars are axes too: label them.

    Legibility: the page shows a figure at its pixel width (``figwidth * dpi``) or, if wider
    than the content column (:data:`PAGE_WIDTH_PX`), scaled down to it. Every visible text
    (ticks, labels, titles, legends, annotations) must then be at least :data:`MIN_TEXT_PX`
    pixels tall: a wide, many-panel figure with a long legend fails, and should stack its
    panels or enlarge its fonts.

    Returns
    -------
    list of str
        One line per problem; empty when the figure is fine.
    """
    fig.draw_without_rendering()  # tick labels get their text when drawn
    problems = []
    scale = min(1.0, PAGE_WIDTH_PX / (fig.get_figwidth() * fig.dpi))
    small: dict[float, str] = {}
    for text in fig.findobj(mpl.text.Text):
        if (
            not (text.get_visible() and text.get_text().strip())
            or text.axes is not None
            and (not text.axes.get_visible())
        ):
            continue
        px = text.get_fontsize() * fig.dpi / 72 * scale
        if px < MIN_TEXT_PX:
            small.setdefault(round(px, 1), text.get_text().strip()[:30])
    if small:
        px = min(small)
        problems.append(
            f"text such as {small[px]!r} would be {px:.1f} px tall at the page's width "
            f"({PAGE_WIDTH_PX} px for a {fig.get_figwidth():.1f}-inch figure): stack the panels "
            f"or enlarge the fonts (at least {MIN_TEXT_PX:g} px)"
        )
    for ax in fig.axes:
        if not (ax.get_visible() and ax.axison) or ax.name != "rectilinear":
            continue
        name = ax.get_title() or ax.get_label() or f"axes {fig.axes.index(ax)}"
        for axis in ("x", "y"):
            ticks = getattr(ax, f"get_{axis}ticklabels")()
            if not any(t.get_visible() and t.get_text() for t in ticks):
                continue
            group = getattr(ax, f"get_shared_{axis}_axes")().get_siblings(ax)
            if not any(getattr(a, f"get_{axis}label")() for a in group):
                problems.append(f"{name!r}: numbers on the {axis}-axis but no {axis}-label")
    return problems


def audit_displayed_figures() -> None:
    """Wrap IPython's PNG formatter for figures with :func:`audit`.

    The inline backend registers that formatter when its module is first imported, which
    matplotlib does lazily, at the first figure; so the module is imported here, and the
    wrapper is checked again before every cell in case anything registers a new formatter.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return
    ip = get_ipython()
    if ip is None or getattr(ip, "_mgs_audit", False):
        return
    from matplotlib.figure import Figure

    backend = mpl.rcParams["backend"]
    if isinstance(backend, str) and backend.startswith("module://"):
        importlib.import_module(backend.removeprefix("module://"))

    def wrap(*_: object) -> None:
        formatter = ip.display_formatter.formatters["image/png"]
        try:
            original = formatter.lookup_by_type(Figure)
        except KeyError:
            return
        if getattr(original, "audited", False):
            return

        def png(fig: Figure, *args: object, **kwargs: object) -> object:
            for problem in audit(fig):
                print(f"figure check: {problem}", file=sys.stderr)
            return original(fig, *args, **kwargs)

        png.audited = True
        formatter.for_type(Figure, png)

    ip.events.register("pre_run_cell", wrap)
    ip._mgs_audit = True
    wrap()
