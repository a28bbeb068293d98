import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from mgs_teach import plots  # noqa: E402


def test_history_draws_one_line_per_group_per_metric():
    frame = pd.DataFrame({
        "epoch": [0, 1, 0, 1], "trace": [1.0, 2.0, 1.0, 1.5], "test_acc": [0.5, 0.7, 0.5, 0.8],
        "regulariser": ["none", "none", "mgs_trace", "mgs_trace"],
    })  # fmt: skip
    axes = plots.history(frame, ("trace", "test_acc"))
    assert len(axes) == 2
    assert [len(ax.lines) for ax in axes] == [2, 2]
    assert axes[0].get_yscale() == "log" and axes[0].get_ylabel().startswith("tr")
    assert axes[0].get_ylabel().endswith(", log scale)")  # a log axis says so
    assert "log" not in axes[1].get_ylabel() and axes[1].get_xlabel() == "epoch"
    assert plots.audit(axes[0].figure) == []
    # the legend sits outside the panels, on the figure (constrained layout)
    assert axes[-1].get_legend() is None and len(axes[0].figure.legends) == 1
    texts = [t.get_text() for t in axes[0].figure.legends[0].get_texts()]
    assert texts == ["none", "mgs_trace"]
    plt.close("all")


def test_decision_boundary_shades_the_predicted_probability():
    x = np.array([[0.0, 0.0], [1.0, 1.0]], dtype=np.float32)

    def apply_fn(params, x):  # class 1 where x1 > 0.5
        return jnp.stack([jnp.zeros(len(x)), 20 * (x[:, 0] - 0.5)], axis=1)

    ax = plots.decision_boundary(apply_fn, None, x, np.array([0, 1]), title="t", resolution=20)
    assert ax.get_title() == "t" and len(ax.collections) >= 3
    plt.close("all")


def test_radar_draws_one_closed_polygon_per_row_and_one_spoke_per_column():
    values = pd.DataFrame({"n 1000": [0.5, 0.7], "noise 80%": [0.2, 0.6], "batch 16": [0.4, 0.8],
                           "lr 0.3": [np.nan, 0.9]}, index=["none", "mgs_trace"])  # fmt: skip
    ax = plots.radar(values, title="robustness")
    assert ax.name == "polar" and ax.get_title() == "robustness"
    assert len(ax.lines) == 2 and all(len(line.get_xdata()) == 5 for line in ax.lines)
    assert [t.get_text() for t in ax.get_xticklabels()] == list(values.columns)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["none", "mgs_trace"]
    assert ax.lines[0].get_ydata()[3] == 0.0  # a missing value sits at the inner limit
    assert ax.get_xlabel() == ""  # no label unless asked for
    labelled = plots.radar(values, label="test accuracy")
    assert labelled.get_xlabel() == "radius: test accuracy"
    with pytest.raises(ValueError, match="3 spokes"):
        plots.radar(values.iloc[:, :2])
    plt.close("all")


def test_kernel_heatmap_labels_rows_columns_and_colour_bar():
    fig, ax = plt.subplots()
    plots.kernel_heatmap(np.eye(4) - 0.5, ax=ax, label="$K_{ij}$", diverging=True)
    assert ax.get_ylabel().startswith("row") and ax.get_xlabel().startswith("column")
    assert fig.axes[1].get_ylabel() == "$K_{ij}$"  # the colour bar
    assert plots.audit(fig) == []
    plt.close("all")


def test_style_checks_every_figure_a_notebook_displays(capsys):
    from IPython.core.interactiveshell import InteractiveShell
    from matplotlib.figure import Figure

    shell = InteractiveShell.instance()
    formatter = shell.display_formatter.formatters["image/png"]
    formatter.for_type(Figure, lambda fig: b"png")  # what the inline backend registers
    try:
        plots.style()
        fig, ax = plt.subplots()
        ax.plot([1, 2], [3, 4])
        assert formatter(fig) == b"png"
        assert "figure check: " in capsys.readouterr().err
        ax.set(xlabel="x", ylabel="y")
        formatter(fig)
        assert capsys.readouterr().err == ""
    finally:
        InteractiveShell.clear_instance()
        plt.close("all")


def test_scenario_heatmaps_are_legible_and_refuse_mismatched_panels():
    rows = pd.Index([250, 500, 1000], name="training samples")
    cols = pd.Index(["0%", "40%", "80%"], name="label noise")
    rng = np.random.default_rng(0)
    methods = ("none", "dropout", "weight_decay", "param_gradient", "mgs_trace")
    panels = {m: pd.DataFrame(rng.uniform(10, 90, (3, 3)), index=rows, columns=cols)
              for m in methods}  # fmt: skip
    panels["none"].iloc[0, 0] = np.nan  # a scenario whose runs all diverged: left blank
    fig = plots.scenario_heatmaps(panels, label="final test accuracy (%)")
    assert plots.audit(fig) == []
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert len(texts) == 5 * 9 - 1 and "nan" not in texts
    assert sum(ax.get_visible() for ax in fig.axes) == 5 + 1  # five panels and a colour bar
    diff = plots.scenario_heatmaps(panels, label="difference", diverging=True)
    lo, hi = diff.axes[0].images[0].get_clim()
    assert lo == -hi
    bad = dict(panels, mgs_trace=panels["mgs_trace"].iloc[:2])
    with pytest.raises(ValueError, match="other rows or columns"):
        plots.scenario_heatmaps(bad, label="x")
    plt.close("all")
