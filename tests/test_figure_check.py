"""The figure audit: unlabelled axes and text too small to read at the page's width."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mgs_teach import figure_check, plots  # noqa: E402


def test_audit_finds_unlabelled_axes_and_accepts_labelled_ones():
    fig, (a, b) = plt.subplots(1, 2, sharey=True)
    a.plot([1, 2], [3, 4])
    b.plot([1, 2], [3, 4])
    a.set(title="left", xlabel="step", ylabel="loss")
    b.set(title="right")  # shares the left y-label; its own x-axis has none
    assert figure_check.audit(fig) == ["'right': numbers on the x-axis but no x-label"]
    b.set_xlabel("step")
    image = fig.add_axes((0.8, 0.8, 0.1, 0.1))
    image.imshow(np.eye(3))
    image.axis("off")  # a picture, not a chart
    assert figure_check.audit(fig) == []
    mappable = a.imshow(np.eye(3))
    fig.colorbar(mappable, ax=b)
    assert len(figure_check.audit(fig)) == 1  # the colour bar has no label
    plt.close("all")


def test_audit_flags_text_too_small_at_the_pages_width():
    plots.style()
    wide, axes = plt.subplots(1, 3, figsize=(15, 4))
    for ax in axes:
        ax.plot([0, 1], [0, 1])
        ax.set(xlabel="epoch", ylabel="tr K")
    assert any("px tall at the page's width" in p for p in figure_check.audit(wide))
    stacked, axes = plt.subplots(3, 1, figsize=(7, 9))
    for ax in axes:
        ax.plot([0, 1], [0, 1], label="a line")
        ax.set(xlabel="epoch", ylabel="tr K")
        ax.legend(fontsize=9)
    assert figure_check.audit(stacked) == []
    tiny, ax = plt.subplots(figsize=(5, 4))
    ax.plot([0, 1], [0, 1])
    ax.set(xlabel="epoch", ylabel="tr K")
    ax.text(0.5, 0.5, "a footnote", fontsize=4)  # small even without scaling
    assert any("'a footnote'" in p for p in figure_check.audit(tiny))
    plt.close("all")


def test_the_audit_is_importable_from_plots_too():
    for name in figure_check.__all__:
        assert getattr(plots, name) is getattr(figure_check, name)
