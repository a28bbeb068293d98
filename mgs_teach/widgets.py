r"""An interactive explorer of the MGS trace penalty on the two-circles problem.

::

    from mgs_teach import widgets
    widgets.explorer()            # sliders: strength, label noise, width, learning rate

Every slider change retrains a small fully connected network with mini-batch SGD on
:math:`L + \lambda \operatorname{tr} K` (``tr K`` on the current batch) and redraws the
decision boundary and the curves of :math:`\operatorname{tr} K` and test accuracy.

The training is the book's reference loop (:func:`mgs_teach.train.train`): a compiled
step per network shape, cached, in which the strength, the learning rate and the data are
numbers, not constants. Moving those sliders reuses the compiled step and a retrain takes
about a second; a new width compiles once (a few seconds, and the explorer says so). Widgets
need a live kernel; :func:`static_grid` draws the same panels for a static page.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from flax import nnx

from mgs_teach import plots
from mgs_teach.data import two_circles_task
from mgs_teach.models import FCN, functional
from mgs_teach.penalties import Regulariser
from mgs_teach.records import TrainingDiverged
from mgs_teach.train import Config, compile_key, compiled_step, train

__all__ = ["STRENGTHS", "Fit", "compiles", "explorer", "fit", "fit_and_plot", "static_grid"]

#: Penalty strengths offered by the explorer's slider: 0, then a log scale.
STRENGTHS = (0.0, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2)


@dataclasses.dataclass
class Fit:
    """One training run of :func:`fit`.

    Attributes
    ----------
    history : pandas.DataFrame
        One row per record: ``epoch, train_loss, trace, test_acc`` and the rest of
        :func:`mgs_teach.records.history` (``trace`` on a fixed monitoring batch of training
        inputs; ``train_loss`` the mean mini-batch loss since the previous record).
    apply_fn : callable
        ``apply_fn(params, x) -> logits``.
    params : dict
    data : tuple
        ``(x_train, y_train_noisy, x_test, y_test_clean)``.
    seconds : float
        Wall time of the training (compilation included when it happened).
    status : str
        ``"finished"`` or ``"diverged"`` (:class:`mgs_teach.records.Run`).
    """

    history: pd.DataFrame
    apply_fn: Any
    params: Any
    data: tuple
    seconds: float
    status: str = "finished"

    @property
    def final(self) -> pd.Series:
        """The last record."""
        return self.history.iloc[-1]


@dataclasses.dataclass(frozen=True)
class _Network:
    """The explorer's network, a value: equal shapes share the compiled step."""

    depth: int
    width: int

    def __call__(self, dropout: float = 0.0, rngs: nnx.Rngs | None = None) -> nnx.Module:
        return FCN(2, 2, depth=self.depth, width=self.width, dropout=dropout,
                   rngs=rngs if rngs is not None else nnx.Rngs(0))  # fmt: skip


def _parts(strength: float, learning_rate: float, depth: int, width: int, epochs: int,
           batch_size: int, n_records: int) -> tuple[Callable, Regulariser, Config]:  # fmt: skip
    reg = Regulariser("mgs_trace", float(strength))
    config = Config(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                    lr_decay=1.0, n_records=n_records, monitor_size=batch_size,
                    metrics_in_float64=False)  # fmt: skip
    return _Network(depth, int(width)), reg, config


def compiles(width: int, depth: int = 2, **kwargs: Any) -> bool:
    """Whether :func:`fit` with this shape will compile (it has not run at this shape yet)."""
    get = kwargs.get
    model, reg, config = _parts(0.0, 0.3, depth, width, get("epochs", 150),
                                get("batch_size", 32), get("n_records", 30))  # fmt: skip
    return (model, *compile_key(reg, config), get("n_train", 192)) not in _SEEN


#: The shapes :func:`fit` compiled, oldest first; bounded like the cache of compiled steps.
_SEEN: OrderedDict = OrderedDict()


def fit(
    strength: float,
    label_noise: float = 0.2,
    width: int = 32,
    learning_rate: float = 0.3,
    *,
    depth: int = 2,
    epochs: int = 150,
    n_train: int = 192,
    n_test: int = 500,
    batch_size: int = 32,
    n_records: int = 30,
    seed: int = 0,
) -> Fit:
    """Train the two-circles FCN with the MGS trace penalty; return its :class:`Fit`.

    Plain mini-batch SGD at a constant learning rate on ``cross_entropy + strength * tr K``
    of the current batch, from the same initialisation (``seed``) for every setting, so runs
    differ only by the arguments.
    """
    if not strength >= 0 or not learning_rate > 0 or not 0 <= label_noise <= 1:
        raise ValueError(
            f"need strength >= 0, learning_rate > 0, 0 <= label_noise <= 1; got {strength}, "
            f"{learning_rate}, {label_noise}"
        )
    model, reg, config = _parts(strength, learning_rate, depth, width, epochs, batch_size,
                                n_records)  # fmt: skip
    data = two_circles_task(n_train, n_test, label_noise=label_noise, seed=seed)
    start = time.perf_counter()
    with warnings.catch_warnings():  # a diverged fit says so in its status
        warnings.simplefilter("ignore", TrainingDiverged)
        run = train(model, data, reg, config, seed=seed, progress=False)
    seconds = time.perf_counter() - start
    _SEEN.pop(key := (model, *compile_key(reg, config), n_train), None)  # the newest last
    _SEEN[key] = None
    while len(_SEEN) > compiled_step.cache_info().maxsize:
        _SEEN.popitem(last=False)
    apply_fn = functional(model(rngs=nnx.Rngs(seed)))[0]
    return Fit(run.history, apply_fn, run.params, data, seconds, run.status)


def _title(strength: float, result: Fit) -> str:
    last = result.final
    return f"λ = {strength:g}: tr K = {last['trace']:.3g}, test acc = {last['test_acc']:.3f}"


def fit_and_plot(
    strength: float,
    label_noise: float = 0.2,
    width: int = 32,
    learning_rate: float = 0.3,
    **kwargs: Any,
) -> tuple[plt.Figure, Fit]:
    """Retrain once (:func:`fit`) and draw one figure: boundary, tr K and test accuracy.

    Returns
    -------
    figure, Fit
        The figure's suptitle (``figure._suptitle``) names the final tr K and test accuracy.
    """
    result = fit(strength, label_noise, width, learning_rate, **kwargs)
    if result.status != "finished":
        fig, ax = plt.subplots(figsize=(6, 2))
        ax.text(0.5, 0.5, "training diverged: lower the learning rate or the strength",
                ha="center", va="center")  # fmt: skip
        ax.set_axis_off()
        fig.suptitle(f"λ = {strength:g}: diverged")
        return fig, result
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.4), layout="constrained")
    x_tr, y_tr = result.data[:2]
    plots.decision_boundary(result.apply_fn, result.params, x_tr, y_tr, ax=axes[0],
                            title="decision boundary (noisy training labels)")  # fmt: skip
    h = result.history
    axes[1].plot(h["epoch"], h["trace"], color=plots.OKABE_ITO[0], lw=1.8)
    axes[1].set(yscale="log", xlabel="epoch", ylabel=r"tr $K$ (monitoring batch, log scale)",
                title=r"MGS trace over training")  # fmt: skip
    axes[2].plot(h["epoch"], h["test_acc"], color=plots.OKABE_ITO[2], lw=1.8)
    axes[2].set(xlabel="epoch", ylabel="test accuracy (clean labels)", ylim=(0.4, 1.02),
                title="test accuracy over training")  # fmt: skip
    fig.suptitle(_title(strength, result) + f"  (width {width}, label noise {label_noise:g}, "
                 f"lr {learning_rate:g})")  # fmt: skip
    return fig, result


def explorer(
    strength: float = 3e-4,
    label_noise: float = 0.2,
    width: int = 32,
    learning_rate: float = 0.3,
    **kwargs: Any,
) -> Any:
    """Sliders for strength, label noise, width and learning rate, and a live figure.

    Every change (on release: ``continuous_update=False``) retrains via :func:`fit_and_plot`
    and replaces the figure. Extra keyword arguments go to :func:`fit`.

    Returns
    -------
    ipywidgets.VBox
        Its ``children`` are a box of sliders and an ``Output``. For scripting and tests it
        also carries ``sliders`` (dict name -> slider), ``output`` and ``state`` (dict with
        the latest ``fit``, ``title`` and the number of retrains ``n_fits``).
    """
    import ipywidgets as W

    _colab_widget_manager(W.__version__)
    common = dict(continuous_update=False, style={"description_width": "initial"})
    sliders = {
        "strength": W.SelectionSlider(
            options=[(f"{s:g}", s) for s in STRENGTHS], value=strength,
            description="penalty strength λ", **common,
        ),
        "label_noise": W.FloatSlider(
            value=label_noise, min=0.0, max=0.4, step=0.05, description="label noise", **common
        ),
        "width": W.IntSlider(value=width, min=8, max=96, step=8, description="width", **common),
        "learning_rate": W.FloatLogSlider(
            value=learning_rate, base=10, min=-2, max=0, step=0.25,
            description="learning rate", readout_format=".3g", **common,
        ),
    }  # fmt: skip
    output = W.Output()
    status = W.HTML()
    state: dict[str, Any] = {"fit": None, "title": "", "n_fits": 0}

    def redraw(_change: Any = None) -> None:
        values = {name: s.value for name, s in sliders.items()}
        new_shape = compiles(values["width"], **kwargs)
        status.value = ("<i>training: a new width, so the program is compiled first (a few "
                        "seconds)...</i>" if new_shape else "<i>training...</i>")  # fmt: skip
        # the Output's state is set, not captured (`with output:`): a captured output makes
        # nbclient send on the shell channel while it awaits the cell's reply (nbclient#312)
        try:
            fig, result = fit_and_plot(**values, **kwargs)
        except Exception as err:  # noqa: BLE001 - show, do not kill the widget
            output.outputs = ()
            output.append_stdout(f"could not train: {type(err).__name__}: {err}\n")
            status.value = ""
            return
        state.update(fit=result, title=fig._suptitle.get_text(), n_fits=state["n_fits"] + 1)
        output.outputs = ()
        output.append_display_data(fig)
        plt.close(fig)
        status.value = f"retrained in {result.seconds:.2f} s" + (
            " (compiled first)" if new_shape else ""
        )

    for s in sliders.values():
        s.observe(redraw, names="value")
    controls = W.HBox([W.VBox([sliders["strength"], sliders["label_noise"]]),
                       W.VBox([sliders["width"], sliders["learning_rate"]])])  # fmt: skip
    box = W.VBox([controls, status, output])
    box.sliders, box.output, box.state, box.status = sliders, output, state, status
    redraw()
    return box


def _colab_widget_manager(version: str) -> None:
    """In Colab, turn on the widget manager that ipywidgets 8 needs (7 works as it is)."""
    try:
        from google.colab import output  # type: ignore[import-not-found]
    except ImportError:
        return
    if int(version.split(".")[0]) >= 8:
        output.enable_custom_widget_manager()


def static_grid(
    strengths: Sequence[float] = (0.0, 3e-4, 3e-3),
    noises: Sequence[float] = (0.0, 0.2),
    *,
    width: int = 32,
    learning_rate: float = 0.3,
    **kwargs: Any,
) -> plt.Figure:
    """Decision boundaries for every (label noise, strength): rows noise, columns strength.

    Each panel's title gives the final tr K and test accuracy, as the explorer's figure does.
    Extra keyword arguments go to :func:`fit`.
    """
    n_r, n_c = len(noises), len(strengths)
    fig, axes = plt.subplots(n_r, n_c, figsize=(2.8 * n_c, 2.9 * n_r), layout="constrained",
                             squeeze=False)  # fmt: skip
    for r, noise in enumerate(noises):
        for c, s in enumerate(strengths):
            result = fit(s, noise, width, learning_rate, **kwargs)
            last = result.final
            plots.decision_boundary(
                result.apply_fn, result.params, *result.data[:2], ax=axes[r, c],
                title=f"noise {noise:g}, λ = {s:g}\ntr K = {last['trace']:.3g}, "
                f"acc = {last['test_acc']:.3f}",
            )  # fmt: skip
    fig.suptitle(f"MGS trace penalty on two circles (width {width}, lr {learning_rate:g})")
    return fig
