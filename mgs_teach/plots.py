"""One figure style for the whole book: colour-blind safe, labelled, readable.

Call :func:`style` once at the top of a chapter. Colours come from the Okabe-Ito palette,
which stays distinguishable under the common forms of colour blindness; sequential maps are
``cividis`` (perceptually uniform and colour-blind safe) and diverging maps ``RdBu_r``.

In a notebook, :func:`style` also has every figure checked by
:func:`~mgs_teach.figure_check.audit` as it is displayed: an axis that shows numbers without
a label gets a ``figure check:`` line on stderr, which the book's tests look for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np

from mgs_teach.figure_check import (  # noqa: F401  (all but the last are re-exported)
    MIN_TEXT_PX,
    PAGE_WIDTH_PX,
    audit,
    audit_displayed_figures,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd

__all__ = [
    "DIVERGING",
    "METRIC_LABELS",
    "OKABE_ITO",
    "SEQUENTIAL",
    "decision_boundary",
    "history",
    "kernel_heatmap",
    "radar",
    "scenario_heatmaps",
    "style",
]

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
            "axes.prop_cycle": mpl.cycler(color=OKABE_ITO),
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
    audit_displayed_figures()


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
    ax.set_xlabel("column j·C + d (sample j, output d)")
    ax.set_ylabel("row i·C + c (sample i, output c)")
    ax.grid(False)
    return ax


METRIC_LABELS = {
    "trace": r"tr $K$ (monitoring batch)",
    "logdet": r"log det $K$ (monitoring batch)",
    "test_acc": "test accuracy",
    "test_loss": "test loss (cross-entropy)",
    "train_loss": "train loss (cross-entropy)",
    "lr": "learning rate",
}


def history(
    frame: pd.DataFrame,
    metrics: tuple[str, ...] = ("trace", "logdet", "test_acc"),
    *,
    by: str = "regulariser",
    x: str = "epoch",
    axes: np.ndarray | None = None,
    logy: tuple[str, ...] = ("trace",),
    band: bool = False,
    legend: bool = True,
) -> np.ndarray:
    """Plot training histories, one panel per metric and one line per value of ``by``.

    Parameters
    ----------
    frame : pandas.DataFrame
        Tidy history, for example several :class:`mgs_teach.records.Run` histories concatenated.
    metrics : tuple of str
        Columns to plot, one panel each.
    by : str
        Column whose values become the lines (and the legend).
    x : str
        Column on the horizontal axis.
    logy : tuple of str
        Metrics drawn on a logarithmic axis; their axis label says "log scale".
    band : bool
        Shade one standard error of the mean over runs (``seed``) around each line.
    legend : bool
        Draw the legend: below the panels, outside them, when the figure uses the
        constrained layout (so that many entries never cover the curves), else in the last
        panel.

    Returns
    -------
    array of matplotlib Axes
    """
    if axes is None:
        _, axes = plt.subplots(1, len(metrics), figsize=(min(9.0, 3.2 * len(metrics)), 3.6),
                               layout="constrained")  # fmt: skip
    axes = np.atleast_1d(axes)
    groups = list(frame.groupby(by, sort=False))
    for i, (name, group) in enumerate(groups):
        values = group.replace([np.inf, -np.inf], np.nan)
        stats = values.groupby(x)[list(metrics)]
        mean = stats.mean(numeric_only=True)
        style_ = dict(color=OKABE_ITO[i % len(OKABE_ITO)], ls=["-", "--", ":"][i // len(OKABE_ITO)])
        for ax, metric in zip(axes, metrics):
            ax.plot(mean.index, mean[metric], label=str(name), lw=1.6, **style_)
            if band and "seed" in group and group["seed"].nunique() > 1:
                se = stats.std()[metric] / np.sqrt(stats.count()[metric])
                ax.fill_between(mean.index, mean[metric] - se, mean[metric] + se,
                                color=style_["color"], alpha=0.18, lw=0)  # fmt: skip
    for ax, metric in zip(axes, metrics):
        label = METRIC_LABELS.get(metric, metric)
        if metric in logy:
            ax.set_yscale("log")
            label = label[:-1] + ", log scale)" if label.endswith(")") else label + " (log scale)"
        ax.set(xlabel=x, ylabel=label)
    if legend:
        fig = axes[0].figure
        engine = fig.get_layout_engine()
        if engine is not None and type(engine).__name__ == "ConstrainedLayoutEngine":
            handles, labels = axes[0].get_legend_handles_labels()
            fig.legend(handles, labels, loc="outside lower center", fontsize=9,
                       ncols=min(len(labels), 5), frameon=False)  # fmt: skip
        else:
            axes[-1].legend(fontsize=8, loc="best")
    return axes


def decision_boundary(
    apply_fn: Callable,
    params: object,
    x: np.ndarray,
    y: np.ndarray,
    *,
    ax: plt.Axes | None = None,
    title: str = "",
    resolution: int = 120,
    margin: float = 0.3,
) -> plt.Axes:
    """Shade a 2-D binary classifier's predicted probability and overlay the data.

    Parameters
    ----------
    apply_fn : callable
        ``apply_fn(params, x) -> (B, 2)`` logits.
    x : array, shape ``(n, 2)``
    y : int array, shape ``(n,)``
        Labels as trained on (noisy labels show as the colour of the marker).
    """
    ax = ax or plt.gca()
    lo, hi = x.min(0) - margin, x.max(0) + margin
    g1, g2 = np.meshgrid(
        np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution)
    )
    grid = np.column_stack([g1.ravel(), g2.ravel()]).astype(np.float32)
    logits = np.asarray(apply_fn(params, grid))
    prob = np.exp(logits[:, 1] - np.logaddexp(logits[:, 0], logits[:, 1])).reshape(g1.shape)
    ax.contourf(g1, g2, prob, levels=np.linspace(0, 1, 11), cmap=DIVERGING, alpha=0.6)
    ax.contour(g1, g2, prob, levels=[0.5], colors="k", linewidths=1.2)
    ax.scatter(x[:, 0], x[:, 1], c=np.asarray(y), cmap=DIVERGING, vmin=-0.3, vmax=1.3, s=9,
               edgecolor="k", linewidth=0.3)  # fmt: skip
    ax.set(title=title, xticks=[], yticks=[], aspect="equal")
    ax.grid(False)
    return ax


def radar(
    values: pd.DataFrame,
    *,
    ax: plt.Axes | None = None,
    title: str = "",
    limits: tuple[float, float] = (0.0, 1.0),
    fill: bool = True,
    label: str = "",
) -> plt.Axes:
    """A radar (spider) chart: one closed polygon per row, one spoke per column.

    Used for the paper's Figure 4: each spoke is a training scenario (for example "label
    noise 80 %"), each polygon a regulariser, the radius its test accuracy. A larger, rounder
    polygon is a method that is good *and* robust to the change of scenario.

    Parameters
    ----------
    values : pandas.DataFrame
        Rows are the series (their index becomes the legend), columns the spokes (their
        names become the spoke labels). Missing values are drawn at the inner limit.
    ax : matplotlib Axes, optional
        A *polar* axes; a new one is made if omitted.
    title : str
    limits : (float, float)
        Radial range.
    fill : bool
        Shade each polygon lightly.
    label : str
        What the radius measures (for example "final test accuracy"); written under the
        chart as "radius: ...", since the radial numbers have no axis label of their own.

    Returns
    -------
    matplotlib Axes (polar)
    """
    labels = [str(c) for c in values.columns]
    if len(labels) < 3:
        raise ValueError(f"a radar chart needs at least 3 spokes, got {len(labels)}")
    if ax is None:
        _, ax = plt.subplots(subplot_kw={"projection": "polar"}, figsize=(5.2, 5.2))
    angles = np.linspace(0, 2 * np.pi, len(labels), endpoint=False)
    closed = np.append(angles, angles[0])
    for i, (name, row) in enumerate(values.iterrows()):
        r = np.nan_to_num(row.to_numpy(dtype=float), nan=limits[0])
        r = np.append(r, r[0])
        color = OKABE_ITO[i % len(OKABE_ITO)]
        ax.plot(closed, r, color=color, lw=1.8, label=str(name), marker="o", ms=3)
        if fill:
            ax.fill(closed, r, color=color, alpha=0.08)
    ax.set_xticks(angles, labels, fontsize=8)
    ax.set_ylim(*limits)
    ax.set_rlabel_position(np.degrees(angles[1]) / 2)  # radial labels between two spokes
    ax.tick_params(axis="y", labelsize=7)
    ax.set_title(title)
    if label:
        ax.set_xlabel(f"radius: {label}", fontsize=9, labelpad=12)
    ax.legend(fontsize=8, loc="upper right", bbox_to_anchor=(1.35, 1.1))
    return ax


def scenario_heatmaps(
    panels: dict[str, pd.DataFrame],
    *,
    label: str,
    limits: tuple[float, float] | None = None,
    diverging: bool = False,
    fmt: str = "{:.0f}",
    ncols: int = 3,
    title: str = "",
) -> plt.Figure:
    """One annotated heat map per panel over the same scenario grid, with one colour bar.

    Used for the paper's test bench (Appendix F): each panel is a method, its rows training
    sizes and its columns label-noise levels, each cell a final test accuracy (or its
    difference to another method's).

    Parameters
    ----------
    panels : dict of str to pandas.DataFrame
        Panel title -> table (index: the rows' labels, columns: the columns' labels); every
        table has the same index and columns. NaN cells are left blank.
    label : str
        What the colour means (the colour bar's label).
    limits : (float, float), optional
        Colour range; by default the range of every value (symmetric about 0 if
        ``diverging``).
    diverging : bool
        A diverging map centred on 0 (:data:`DIVERGING`), for differences.
    fmt : str
        Format of each cell's annotation.
    ncols : int
        Panels per row; the figure stays 8 inches wide so that its text is legible.
    title : str

    Returns
    -------
    matplotlib Figure
    """
    if not panels:
        raise ValueError("scenario_heatmaps needs at least one panel")
    first = next(iter(panels.values()))
    for name, table in panels.items():
        if list(table.index) != list(first.index) or list(table.columns) != list(first.columns):
            raise ValueError(f"panel {name!r} has other rows or columns than the first panel")
    values = np.concatenate([t.to_numpy(dtype=float).ravel() for t in panels.values()])
    if limits is None:
        finite = values[np.isfinite(values)]
        lo, hi = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
        limits = (-max(abs(lo), abs(hi)), max(abs(lo), abs(hi))) if diverging else (lo, hi)
    ncols = min(ncols, len(panels))
    nrows = -(-len(panels) // ncols)
    height = 0.35 + nrows * (0.42 * len(first) + 1.2)
    fig, axes = plt.subplots(nrows, ncols, figsize=(8.0, height), squeeze=False, sharex=True,
                             sharey=True, layout="constrained")  # fmt: skip
    cmap = mpl.colormaps[DIVERGING if diverging else SEQUENTIAL]
    norm = mpl.colors.Normalize(*limits)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, (name, table) in zip(axes.flat, panels.items()):
        data = table.to_numpy(dtype=float)
        image = ax.imshow(data, cmap=cmap, norm=norm, aspect="auto")
        for (i, j), v in np.ndenumerate(data):
            if np.isfinite(v):
                dark = np.mean(cmap(norm(v))[:3]) < 0.5
                text = fmt.format(v)
                if not text.lstrip("+-").strip("0.%"):  # no "-0" for a value that rounds to 0
                    text = fmt.format(0.0)
                ax.text(j, i, text, ha="center", va="center", fontsize=8,
                        color="white" if dark else "black")  # fmt: skip
        ax.set_xticks(range(data.shape[1]), [str(c) for c in table.columns], fontsize=8)
        ax.set_yticks(range(data.shape[0]), [str(r) for r in table.index], fontsize=8)
        ax.set_title(name, fontsize=10)
        ax.grid(False)
    for ax in axes[-1]:
        ax.set_xlabel(first.columns.name or "", fontsize=9)
    for ax in axes[:, 0]:
        ax.set_ylabel(first.index.name or "", fontsize=9)
    bar = fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8)
    bar.set_label(label, fontsize=9)
    bar.ax.tick_params(labelsize=8)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig
