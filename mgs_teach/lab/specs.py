"""Specs: values that say which network and which data a run uses, and build them.

- :class:`ModelSpec` builds a network, ``spec(dropout=rate, rngs=nnx.Rngs(seed))``;
- :class:`DataSpec` loads two circles or blurred MNIST with label noise, one seed at a time;
- :class:`FacesSpec` loads the regression benchmark's faces with noisy keypoints.

They are frozen dataclasses, so they compare and hash by value: a spec is a valid key of a
compiled program's cache, and two equal specs train with the same program.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from flax import nnx

from mgs_teach import data as D
from mgs_teach import faces
from mgs_teach.models import FCN, AlexNet, LeNet5

__all__ = ["ACTIVATIONS", "NETWORKS", "TASKS", "DataSpec", "FacesSpec", "ModelSpec", "mnist_pool"]

#: The FCN's nonlinearities, by name.
ACTIVATIONS: dict[str, Callable] = {"relu": jax.nn.relu, "gelu": jax.nn.gelu, "tanh": jax.nn.tanh}


def _fcn(spec: ModelSpec, dropout: float, rngs: nnx.Rngs) -> nnx.Module:
    return FCN(spec.d_in, spec.d_out, depth=spec.depth, width=spec.width,
               activation=ACTIVATIONS[spec.activation], dropout=dropout, rngs=rngs)  # fmt: skip


def _lenet5(spec: ModelSpec, dropout: float, rngs: nnx.Rngs) -> nnx.Module:
    return LeNet5(spec.d_out, side=spec.side, dropout=dropout, rngs=rngs)


def _alexnet(spec: ModelSpec, dropout: float, rngs: nnx.Rngs) -> nnx.Module:
    return AlexNet(spec.d_out, dropout=dropout, rngs=rngs)


def _as_ints(spec: Any, *names: str) -> None:
    """Counts given as integral floats become ints, so that equal specs print (and name their
    results) alike: ``n_train=48.0`` is ``n_train=48``."""
    for name in names:
        value = getattr(spec, name)
        if isinstance(value, float) and value.is_integer():
            object.__setattr__(spec, name, int(value))


#: What each :attr:`ModelSpec.kind` builds: ``builder(spec, dropout, rngs) -> module``.
NETWORKS = {"fcn": _fcn, "lenet5": _lenet5, "alexnet": _alexnet}


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Which network: a value that builds it, ``spec(dropout=rate, rngs=nnx.Rngs(seed))``.

    Attributes
    ----------
    kind : {"fcn", "lenet5", "alexnet"}
    d_in, d_out : int
        Inputs (flattened) and outputs; LeNet-5 takes square images of ``d_in`` pixels
        (``28 x 28`` by default), AlexNet 28 x 28 ones.
    depth, width : int
        Hidden layers of the FCN (the paper's 6 x 300 by default).
    activation : {"relu", "gelu", "tanh"}
        The FCN's nonlinearity.
    """

    kind: str
    d_in: int = 784
    d_out: int = 10
    depth: int = 6
    width: int = 300
    activation: str = "relu"

    def __post_init__(self) -> None:
        _as_ints(self, "d_in", "d_out", "depth", "width")
        if self.kind not in NETWORKS:
            raise ValueError(f"unknown model {self.kind!r}; choose fcn, lenet5 or alexnet")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; choose {list(ACTIVATIONS)}")

    def __call__(self, dropout: float = 0.0, rngs: nnx.Rngs | None = None) -> nnx.Module:
        return NETWORKS[self.kind](self, dropout, rngs if rngs is not None else nnx.Rngs(0))

    @property
    def side(self) -> int:
        """Side of the convolutional networks' square images: ``sqrt(d_in)``."""
        side = round(self.d_in**0.5)
        if side * side != self.d_in:
            raise ValueError(f"a convolutional network needs d_in = side**2, got {self.d_in}")
        return side

    @property
    def name(self) -> str:
        """A short name: ``fcn-6x300``, ``lenet5`` or ``alexnet``."""
        if self.kind != "fcn":
            return self.kind
        act = "" if self.activation == "relu" else f"-{self.activation}"
        return f"fcn-{self.depth}x{self.width}{act}"


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """Which data: the task, its size, its label noise, and what the runs are evaluated on.

    Attributes
    ----------
    task : {"mnist", "two_circles"}
        Motion-blurred MNIST (:func:`mgs_teach.mnist.corrupted_mnist`) or two noisy circles
        (:func:`mgs_teach.data.two_circles`).
    n_train : int
        Training samples, drawn afresh for every seed (stratified for MNIST).
    label_noise : float
        Fraction of training labels corrupted.
    noise : {"uniform", "other"}
        How they are corrupted (:func:`mgs_teach.corruptions.flip_labels`).
    n_val : int
        If positive, the runs are evaluated on ``n_val`` further samples drawn from the same
        noisy source (labels as noisy as the training labels), never on the test set: the
        data of :func:`tune`.
    source : {"offline", "full", "auto"}
        MNIST source (:func:`mgs_teach.mnist.load_mnist`).
    blur : bool
        MNIST-C's motion blur on every MNIST image.
    n_test : int
        Test points of the two circles (clean labels).
    circle_noise : float
        Standard deviation of the Gaussian noise on the two circles.
    """

    task: str
    n_train: int
    label_noise: float = 0.0
    noise: str = "uniform"
    n_val: int = 0
    source: str = "offline"
    blur: bool = True
    n_test: int = 1000
    circle_noise: float = 0.1

    def __post_init__(self) -> None:
        _as_ints(self, "n_train", "n_val", "n_test")
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; choose one of {', '.join(TASKS)}")
        if not 0 <= self.label_noise <= 1:
            raise ValueError(f"label_noise must lie in [0, 1], got {self.label_noise}")
        if self.noise not in D.NOISE_CONVENTIONS:
            raise ValueError(f"unknown noise convention {self.noise!r}")
        if self.n_train < 1 or self.n_val < 0:
            raise ValueError(f"need n_train >= 1 and n_val >= 0, got {self.n_train}, {self.n_val}")

    #: The loss of the task.
    loss = "cross_entropy"

    @property
    def noise_level(self) -> float:
        """The data's noise, as file names show it: the label noise."""
        return self.label_noise

    def program_part(self) -> DataSpec:
        """This spec with its data-valued field (the label noise) fixed, for programs."""
        return dataclasses.replace(self, label_noise=0.0)

    def load(self, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(x_train, y_train, x_eval, y_eval)`` of one seed: the evaluation set is the test
        set, or the validation set if ``n_val > 0``. The MNIST test set is the same array for
        every seed."""
        return TASKS[self.task](self, seed)


def _split(spec: DataSpec, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The validation part of ``(x, y)``, whose first ``n_train`` samples are for training."""
    return x[spec.n_train : spec.n_train + spec.n_val], y[spec.n_train : spec.n_train + spec.n_val]


def _two_circles(spec: DataSpec, seed: int) -> tuple[np.ndarray, ...]:
    n = spec.n_train + spec.n_val
    x, y = D.two_circles(n + spec.n_test, noise=spec.circle_noise, seed=seed)
    y_noisy = D.flip_labels(y[:n], spec.label_noise, n_classes=2, seed=seed + 1,
                            convention=spec.noise)  # fmt: skip
    if spec.n_val:
        return (x[: spec.n_train], y_noisy[: spec.n_train], *_split(spec, x[:n], y_noisy))
    return x[:n], y_noisy, x[n:], y[n:]


def _mnist(spec: DataSpec, seed: int) -> tuple[np.ndarray, ...]:
    x_tr, y_tr, x_te, y_te = D.corrupted_mnist(
        spec.n_train + spec.n_val, label_noise=spec.label_noise, convention=spec.noise,
        blur=spec.blur, seed=seed, data=mnist_pool(spec.source))  # fmt: skip
    if spec.n_val:
        return (x_tr[: spec.n_train], y_tr[: spec.n_train], *_split(spec, x_tr, y_tr))
    return x_tr, y_tr, x_te, y_te


#: The registry of tasks: a :class:`DataSpec`'s ``task`` (a name in its JSON) and the
#: function that draws its data, ``load(spec, seed)``.
TASKS: dict[str, Callable[[DataSpec, int], tuple[np.ndarray, ...]]] = {
    "two_circles": _two_circles,
    "mnist": _mnist,
}


@dataclasses.dataclass(frozen=True)
class FacesSpec:
    """The regression benchmark's data: blurred faces with 15 keypoints, noisy targets.

    The targets are the 30 keypoint coordinates, regressed with an MSE loss (:attr:`loss`):
    ``targets="scaled"`` scales them to ``[-1, 1]`` (pixel / (size / 2) - 1);
    ``targets="pixels"`` keeps them in pixels of a 96-pixel image, the paper's unit (Kaggle's
    coordinates, which the paper trains on). :attr:`mse_unit` turns an MSE into squared
    pixels of a 96-pixel image.

    Attributes
    ----------
    n_train : int
    target_noise : float
        Gaussian noise on every training coordinate, in pixels of a 96-pixel image (the
        paper's tables: 0, 10, 20, 30), scaled to ``size``
        (:func:`mgs_teach.faces.corrupted_faces`).
    n_val : int
        If positive, the runs are evaluated on ``n_val`` further faces with targets as noisy
        as the training ones (the data of :func:`mgs_teach.lab.tuner.tune`).
    n_test : int
        Test faces (exact targets), the same for every seed.
    size : int
        Side of the images in pixels.
    blur : bool
        Motion blur (MNIST-C's, scaled to the image size).
    source : str
        ``"procedural"`` (:func:`mgs_teach.faces.keypoint_faces`) or the path of Kaggle's
        ``training.csv`` (:func:`mgs_teach.faces.load_kaggle_csv`).
    targets : {"scaled", "pixels"}
        The targets' unit: scaled to ``[-1, 1]``, or pixels of a 96-pixel image.
    task : str
        Always ``"faces"`` (it names the task in files, as :class:`DataSpec`'s does).
    """

    n_train: int
    target_noise: float = 0.0
    n_val: int = 0
    n_test: int = 500
    size: int = 48
    blur: bool = True
    source: str = "procedural"
    targets: str = "scaled"
    task: str = "faces"

    #: The loss of the task.
    loss = "mse"
    #: One unit of MSE on the scaled targets, in squared pixels of a 96-pixel image.
    PIXEL_MSE = (96 / 2) ** 2

    def __post_init__(self) -> None:
        _as_ints(self, "n_train", "n_val", "n_test", "size")
        if self.task != "faces":
            raise ValueError(f"a FacesSpec's task is 'faces', got {self.task!r}")
        if self.n_train < 1 or self.n_val < 0 or self.n_test < 1:
            raise ValueError(f"need n_train, n_test >= 1 and n_val >= 0, got {self.n_train}, "
                             f"{self.n_test}, {self.n_val}")  # fmt: skip
        if not self.target_noise >= 0:
            raise ValueError(f"target_noise must be >= 0, got {self.target_noise}")
        if self.size < 16:
            raise ValueError(f"size must be at least 16, got {self.size}")
        if self.targets not in ("scaled", "pixels"):
            raise ValueError(f"targets must be 'scaled' or 'pixels', got {self.targets!r}")

    @property
    def mse_unit(self) -> float:
        """Squared pixels of a 96-pixel image in one unit of this task's MSE."""
        return self.PIXEL_MSE if self.targets == "scaled" else 1.0

    @property
    def noise_level(self) -> float:
        """The data's noise, as file names show it: the target noise."""
        return self.target_noise

    def program_part(self) -> FacesSpec:
        """This spec with its data-valued field (the target noise) fixed, for programs."""
        return dataclasses.replace(self, target_noise=0.0)

    def load(self, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(x_train, y_train, x_eval, y_eval)`` of one seed, targets in :attr:`targets`."""
        pool = None
        if self.source != "procedural":
            pool = faces.kaggle_pool(self.source, self.size, self.blur)
        n = self.n_train + self.n_val
        x_tr, y_tr, x_te, y_te = faces.corrupted_faces(
            n, self.n_test, target_noise=self.target_noise, size=self.size, blur=self.blur,
            seed=seed, pool=pool)  # fmt: skip
        half = self.size / 2  # float32 arrays stay float32
        if self.targets == "scaled":
            y_tr, y_te = y_tr / half - 1.0, y_te / half - 1.0
        else:  # pixels of a 96-pixel image
            to_96 = faces.KAGGLE_SIZE / self.size
            y_tr, y_te = y_tr * to_96, y_te * to_96
        if self.n_val:
            k = self.n_train
            return x_tr[:k], y_tr[:k], x_tr[k:], y_tr[k:]
        return x_tr, y_tr, x_te, y_te


@functools.lru_cache(maxsize=3)
def mnist_pool(source: str) -> D.MNIST:
    """MNIST loaded once per process and source (``"auto"`` resolves to what it found)."""
    return D.load_mnist(source)
