"""One figure style for the whole book: colour-blind safe, labelled, readable.

Call :func:`style` once at the top of a chapter. Colours come from the Okabe-Ito palette,
which stays distinguishable under the common forms of colour blindness; sequential maps are
``cividis`` (perceptually uniform and colour-blind safe) and diverging maps ``RdBu_r``.
"""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from cycler import cycler

__all__ = ["OKABE_ITO", "SEQUENTIAL", "DIVERGING", "style", "kernel_heatmap"]

OKABE_ITO = [
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#F0E442",  # yellow
    "#000000",  # black
]
SEQUENTIAL = "cividis"
DIVERGING = "RdBu_r"


def style() -> None:
    """Set the book's matplotlib defaults (colours, sizes, grid)."""
    mpl.rcParams.update(
        {
            "axes.prop_cycle": cycler(color=OKABE_ITO),
            "image.cmap": SEQUENTIAL,
            "figure.figsize": (6.4, 4.0),
            "figure.dpi": 100,
            "savefig.dpi": 150,
            "font.size": 11,
            "axes.titlesize": 12,
            "axes.labelsize": 11,
            "legend.fontsize": 10,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    )


def kernel_heatmap(
    kernel: np.ndarray,
    *,
    ax: plt.Axes | None = None,
    title: str = "",
    label: str = "kernel entry",
    diverging: bool = False,
    boundaries: list[int] | None = None,
) -> plt.Axes:
    """Draw a kernel matrix as a heat map with a labelled colour bar.

    Parameters
    ----------
    kernel : array, shape ``(n, n)``
    diverging : bool
        Centre the colour map on zero (for kernels with negative entries).
    boundaries : list of int, optional
        Row/column indices where a group (for example a class) starts; drawn as lines.
    """
    kernel = np.asarray(kernel)
    ax = ax or plt.gca()
    if diverging:
        vmax = float(np.max(np.abs(kernel)))
        im = ax.imshow(kernel, cmap=DIVERGING, vmin=-vmax, vmax=vmax)
    else:
        im = ax.imshow(kernel, cmap=SEQUENTIAL)
    for b in boundaries or []:
        ax.axhline(b - 0.5, color="white", lw=1)
        ax.axvline(b - 0.5, color="white", lw=1)
    ax.figure.colorbar(im, ax=ax, label=label, fraction=0.046, pad=0.04)
    ax.set_title(title)
    ax.set_xlabel("row index i·C + c")
    ax.set_ylabel("row index j·C + d")
    ax.grid(False)
    return ax
