"""The MGS explorer builds without a browser, retrains on every slider change, and its
static stand-in draws one panel per setting."""

from __future__ import annotations

from collections import OrderedDict

import matplotlib

matplotlib.use("Agg")

import ipywidgets as W  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from mgs_teach import widgets  # noqa: E402
from mgs_teach.train import compiled_step  # noqa: E402

SMALL = dict(epochs=6, n_records=3, n_train=64, n_test=100, batch_size=16)


@pytest.fixture(scope="module")
def box():
    b = widgets.explorer(**SMALL)
    yield b
    plt.close("all")


def test_explorer_is_a_widget_with_sliders_and_an_output(box):
    assert isinstance(box, W.VBox)
    assert box.output in box.children and isinstance(box.output, W.Output)
    assert set(box.sliders) == {"strength", "label_noise", "width", "learning_rate"}
    assert box.state["n_fits"] == 1 and box.state["fit"] is not None


def test_sliders_have_sensible_ranges(box):
    s = box.sliders
    assert all(not sl.continuous_update for sl in s.values())
    strengths = [v for _, v in s["strength"].options]
    assert strengths[0] == 0.0 and len(strengths) >= 5
    positive = np.array(strengths[1:])
    assert np.all(np.diff(np.log10(positive)) > 0)  # log spaced, increasing
    assert positive.max() / positive.min() >= 100
    assert s["label_noise"].min == 0.0 and 0.3 <= s["label_noise"].max <= 0.5
    assert s["width"].min >= 2 and s["width"].max >= 64
    assert 10 ** s["learning_rate"].min <= 0.05 and 10 ** s["learning_rate"].max >= 0.5


@pytest.mark.parametrize(
    ("name", "value"),
    [("strength", 1e-2), ("label_noise", 0.3), ("learning_rate", 0.1), ("width", 16)],
)
def test_changing_a_slider_retrains(box, name, value):
    before_n, before = box.state["n_fits"], box.state["fit"].history.copy()
    before_title = box.state["title"]
    box.sliders[name].value = value
    assert box.state["n_fits"] == before_n + 1
    after = box.state["fit"].history
    assert not np.allclose(before[["test_loss", "trace"]], after[["test_loss", "trace"]])
    assert box.state["title"] != before_title


def test_fit_is_deterministic_and_the_penalty_lowers_the_trace():
    a = widgets.fit(0.0, 0.1, 16, 0.3, **SMALL)
    b = widgets.fit(0.0, 0.1, 16, 0.3, **SMALL)
    c = widgets.fit(3e-3, 0.1, 16, 0.3, **SMALL)
    cols = ["epoch", "train_loss", "test_loss", "trace", "test_acc"]
    np.testing.assert_allclose(a.history[cols], b.history[cols])
    assert c.final["trace"] < a.final["trace"]
    assert a.status == "finished"


def test_only_a_new_shape_compiles():
    widgets.fit(0.0, 0.1, 24, 0.3, **SMALL)
    assert not widgets.compiles(24, **SMALL)  # strength, noise and rate are data
    assert widgets.compiles(40, **SMALL)  # a new width is a new program


def test_the_record_of_compiled_shapes_is_bounded(monkeypatch):
    """Like the cache of compiled steps, the record keeps the newest shapes only."""
    seen = OrderedDict((("old", i), None) for i in range(40))
    monkeypatch.setattr(widgets, "_SEEN", seen)
    widgets.fit(0.0, 0.1, 24, 0.3, **SMALL)
    assert len(seen) == compiled_step.cache_info().maxsize
    assert ("old", 0) not in seen and ("old", 39) in seen
    assert not widgets.compiles(24, **SMALL)


def test_the_explorer_says_what_it_is_doing(box):
    box.sliders["width"].value = 72
    assert "compiled first" in box.status.value
    box.sliders["strength"].value = 1e-3
    assert box.status.value.startswith("retrained in") and "compiled" not in box.status.value


def test_fit_rejects_bad_settings():
    with pytest.raises(ValueError):
        widgets.fit(-1.0, 0.1, 16, 0.3, **SMALL)


def test_static_grid_has_one_panel_per_setting():
    fig = widgets.static_grid((0.0, 1e-3, 1e-2), (0.0, 0.2), width=16, **SMALL)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert len(panels) == 6
    assert all("tr K" in ax.get_title() and "acc" in ax.get_title() for ax in panels)
    plt.close(fig)
