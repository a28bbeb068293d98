"""The paper's experiments as values: a run is a model, data, a regulariser, a config and a seed.

An :class:`Experiment` composes four parts that each say one thing and re-declare nothing:

- :class:`ModelSpec`: which network (``make_model(dropout, rngs)``);
- :class:`DataSpec`: which task, how many samples, how much label noise, and whether the
  evaluation set is the test set or a validation set held out for tuning;
- :class:`mgs_teach.penalties.Regulariser`: the regulariser, its strength and its options;
- :class:`mgs_teach.train.Config`: how to train.

A grid is a list of experiments times a list of seeds. :func:`run_grid` trains it with the
batched engine (:mod:`mgs_teach.engine`): the runs that share a program train together, each
finished run is written to its own file atomically, a killed grid resumes without losing or
repeating a finished run (and an unfinished group resumes from its last chunk), and
``shard=(i, n)`` runs the i-th of n disjoint parts of a grid, whose results merge by
copying the folders together. :func:`tune` chooses strengths by one rule, and
:func:`summarise` aggregates as the paper does.

::

    base = Experiment(ModelSpec("lenet5"), DataSpec("mnist", 3000), regulariser("none"),
                      Config(epochs=400))
    grid = [base.replace(label_noise=p, regulariser=r) for p in (0, 0.3) for r in regs]
    runs = run_grid(grid, seeds=range(10), out="results/table1")
    table = summarise(runs, ["label_noise", "regulariser"])
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from flax import nnx
from tqdm.auto import tqdm

from mgs_teach import data as D
from mgs_teach import engine
from mgs_teach.models import FCN, AlexNet, LeNet5
from mgs_teach.penalties import Regulariser
from mgs_teach.train import Config, compile_key, program_key

__all__ = [
    "ACTIVATIONS",
    "DataSpec",
    "Experiment",
    "FacesSpec",
    "ModelSpec",
    "SELECTION_RULE",
    "load_mnist_results",
    "load_testbench_results",
    "load_runs",
    "provenance",
    "run_grid",
    "run_mnist",
    "run_testbench",
    "testbench_summary",
    "summarise",
    "tune",
]

ACTIVATIONS = {"relu": "relu", "gelu": "gelu", "tanh": "tanh"}


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
        if self.kind not in ("fcn", "lenet5", "alexnet"):
            raise ValueError(f"unknown model {self.kind!r}; choose fcn, lenet5 or alexnet")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; choose {list(ACTIVATIONS)}")

    def __call__(self, dropout: float = 0.0, rngs: nnx.Rngs | None = None) -> nnx.Module:
        import jax

        rngs = rngs if rngs is not None else nnx.Rngs(0)
        if self.kind == "lenet5":
            return LeNet5(self.d_out, side=self.side, dropout=dropout, rngs=rngs)
        if self.kind == "alexnet":
            return AlexNet(self.d_out, dropout=dropout, rngs=rngs)
        return FCN(self.d_in, self.d_out, depth=self.depth, width=self.width,
                   activation=getattr(jax.nn, self.activation), dropout=dropout,
                   rngs=rngs)  # fmt: skip

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
        Motion-blurred MNIST (:func:`mgs_teach.data.corrupted_mnist`) or two noisy circles
        (:func:`mgs_teach.data.two_circles`).
    n_train : int
        Training samples, drawn afresh for every seed (stratified for MNIST).
    label_noise : float
        Fraction of training labels corrupted.
    noise : {"uniform", "other"}
        How they are corrupted (:func:`mgs_teach.data.flip_labels`).
    n_val : int
        If positive, the runs are evaluated on ``n_val`` further samples drawn from the same
        noisy source (labels as noisy as the training labels), never on the test set: the
        data of :func:`tune`.
    source : {"offline", "full", "auto"}
        MNIST source (:func:`mgs_teach.data.load_mnist`).
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
        if self.task not in ("mnist", "two_circles"):
            raise ValueError(f"unknown task {self.task!r}; choose mnist or two_circles")
        if not 0 <= self.label_noise <= 1:
            raise ValueError(f"label_noise must lie in [0, 1], got {self.label_noise}")
        if self.noise not in D.NOISE_CONVENTIONS:
            raise ValueError(f"unknown noise convention {self.noise!r}")
        if self.n_train < 1 or self.n_val < 0:
            raise ValueError(f"need n_train >= 1 and n_val >= 0, got {self.n_train}, {self.n_val}")

    #: The loss of the task.
    loss = "cross_entropy"

    @property
    def n_classes(self) -> int:
        return 10 if self.task == "mnist" else 2

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
        if self.task == "two_circles":
            n = self.n_train + self.n_val
            x, y = D.two_circles(n + self.n_test, noise=self.circle_noise, seed=seed)
            y_noisy = D.flip_labels(y[:n], self.label_noise, n_classes=2, seed=seed + 1,
                                    convention=self.noise)  # fmt: skip
            if self.n_val:
                return (
                    x[: self.n_train],
                    y_noisy[: self.n_train],
                    x[self.n_train : n],
                    y_noisy[self.n_train :],
                )
            return x[:n], y_noisy, x[n:], y[n:]
        pool = _mnist(self.source)
        n = self.n_train + self.n_val
        x_tr, y_tr, x_te, y_te = D.corrupted_mnist(n, label_noise=self.label_noise,
                                                   convention=self.noise, blur=self.blur,
                                                   seed=seed, data=pool)  # fmt: skip
        if self.n_val:
            return (
                x_tr[: self.n_train],
                y_tr[: self.n_train],
                x_tr[self.n_train :],
                y_tr[self.n_train :],
            )
        return x_tr, y_tr, x_te, y_te


@dataclasses.dataclass(frozen=True)
class FacesSpec:
    """The regression benchmark's data: blurred faces with 15 keypoints, noisy targets.

    The targets are the 30 keypoint coordinates scaled to ``[-1, 1]`` (pixel / (size / 2)
    - 1), which the networks regress with an MSE loss (:attr:`loss`); multiply an MSE by
    :attr:`PIXEL_MSE` for pixels of a 96-pixel image, the paper's unit.

    Attributes
    ----------
    n_train : int
    target_noise : float
        Gaussian noise on every training coordinate, in pixels of a 96-pixel image (the
        paper's tables: 0, 10, 20, 30), scaled to ``size``
        (:func:`mgs_teach.faces.corrupted_faces`).
    n_val : int
        If positive, the runs are evaluated on ``n_val`` further faces with targets as noisy
        as the training ones (the data of :func:`tune`).
    n_test : int
        Test faces (exact targets), the same for every seed.
    size : int
        Side of the images in pixels.
    blur : bool
        Motion blur (MNIST-C's, scaled to the image size).
    source : str
        ``"procedural"`` (:func:`mgs_teach.faces.keypoint_faces`) or the path of Kaggle's
        ``training.csv`` (:func:`mgs_teach.faces.load_kaggle_csv`).
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
    task: str = "faces"

    #: The loss of the task.
    loss = "mse"
    #: One unit of MSE on the scaled targets, in squared pixels of a 96-pixel image.
    PIXEL_MSE = (96 / 2) ** 2

    def __post_init__(self) -> None:
        if self.task != "faces":
            raise ValueError(f"a FacesSpec's task is 'faces', got {self.task!r}")
        if self.n_train < 1 or self.n_val < 0 or self.n_test < 1:
            raise ValueError(f"need n_train, n_test >= 1 and n_val >= 0, got {self.n_train}, "
                             f"{self.n_test}, {self.n_val}")  # fmt: skip
        if not self.target_noise >= 0:
            raise ValueError(f"target_noise must be >= 0, got {self.target_noise}")
        if self.size < 16:
            raise ValueError(f"size must be at least 16, got {self.size}")

    @property
    def noise_level(self) -> float:
        """The data's noise, as file names show it: the target noise."""
        return self.target_noise

    def program_part(self) -> FacesSpec:
        """This spec with its data-valued field (the target noise) fixed, for programs."""
        return dataclasses.replace(self, target_noise=0.0)

    def load(self, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(x_train, y_train, x_eval, y_eval)`` of one seed, targets scaled to [-1, 1]."""
        from mgs_teach import faces

        pool = None
        if self.source != "procedural":
            pool = faces.kaggle_pool(self.source, self.size, self.blur)
        n = self.n_train + self.n_val
        x_tr, y_tr, x_te, y_te = faces.corrupted_faces(
            n, self.n_test, target_noise=self.target_noise, size=self.size, blur=self.blur,
            seed=seed, pool=pool)  # fmt: skip
        half = self.size / 2  # float32 arrays stay float32
        y_tr, y_te = y_tr / half - 1.0, y_te / half - 1.0
        if self.n_val:
            k = self.n_train
            return x_tr[:k], y_tr[:k], x_tr[k:], y_tr[k:]
        return x_tr, y_tr, x_te, y_te


_MNIST: dict[str, D.MNIST] = {}


def _mnist(source: str) -> D.MNIST:
    """MNIST loaded once per process (``"auto"`` resolves to what it found)."""
    if source not in _MNIST:
        _MNIST[source] = D.load_mnist(source)
    return _MNIST[source]


@dataclasses.dataclass(frozen=True)
class Experiment:
    """One experiment: a model, data, a regulariser and a training config; runs add a seed.

    Attributes
    ----------
    model : ModelSpec
    data : DataSpec or FacesSpec
    regulariser : Regulariser
    config : Config
    """

    model: ModelSpec
    data: DataSpec | FacesSpec
    regulariser: Regulariser
    config: Config

    def replace(self, **changes: Any) -> Experiment:
        """A copy with fields of any part changed, by name: ``label_noise=0.6``,
        ``regulariser="mgs_trace"`` (with ``strength=...``), ``epochs=50``, ``width=100``.

        A regulariser given by name keeps the options (cycle length, jitter, trace method)
        of the current one.
        """
        parts = {"model": self.model, "data": self.data, "config": self.config}
        reg = self.regulariser
        reg_fields = {f.name for f in dataclasses.fields(Regulariser)} - {"name"}
        mine = {k: changes.pop(k) for k in list(changes) if k in reg_fields}
        new = changes.pop("regulariser", None)
        if isinstance(new, Regulariser):
            reg = new
        elif new is not None:
            mine = {"strength": 0.0, **mine, "name": new}
        reg = dataclasses.replace(reg, **mine) if mine else reg
        for name, part in parts.items():
            fields = {f.name for f in dataclasses.fields(part)}
            mine = {k: changes.pop(k) for k in list(changes) if k in fields}
            parts[name] = dataclasses.replace(part, **mine) if mine else part
        if changes:
            raise ValueError(f"no part of an Experiment has the field(s) {sorted(changes)}")
        return Experiment(parts["model"], parts["data"], reg, parts["config"])

    @property
    def key(self) -> str:
        """A short, stable name for files: a readable prefix and a hash of every field."""
        digest = hashlib.sha1(repr(self).encode()).hexdigest()[:10]
        d, r = self.data, self.regulariser
        split = f"-val{d.n_val}" if d.n_val else ""
        return (f"{self.model.name}-{d.task}-n{d.n_train}{split}-noise{d.noise_level:g}"
                f"-{r.name}-{r.strength:g}-{digest}")  # fmt: skip

    @property
    def program(self) -> tuple:
        """What decides the compiled program: runs with equal ``program`` train together.

        Everything but the seed, the strength, the learning rate and the label or target
        noise (which are data of the program).
        """
        reg, config = program_key(self.regulariser, self.config)
        return (self.model, self.data.program_part(), reg, config)

    def fields(self) -> dict[str, Any]:
        """Every field of every part, flat (the columns :func:`run_grid` adds to histories)."""
        out = {"model": self.model.name}
        out.update({f"data_{k}" if k in ("task",) else k: v
                    for k, v in dataclasses.asdict(self.data).items()})  # fmt: skip
        out.update({k: v for k, v in dataclasses.asdict(self.regulariser).items() if k != "name"})
        out["regulariser"] = self.regulariser.name
        out.update(dataclasses.asdict(self.config))
        return out

    def to_json(self) -> dict[str, Any]:
        return {"model": dataclasses.asdict(self.model), "data": dataclasses.asdict(self.data),
                "regulariser": dataclasses.asdict(self.regulariser),
                "config": dataclasses.asdict(self.config)}  # fmt: skip

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Experiment:
        spec = FacesSpec if d["data"].get("task") == "faces" else DataSpec
        return cls(ModelSpec(**d["model"]), spec(**d["data"]),
                   Regulariser(**d["regulariser"]), Config(**d["config"]))  # fmt: skip


# ------------------------------------------------------------------------ the grid


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _csv(out: Path, experiment: Experiment, seed: int) -> Path:
    return out / experiment.key / f"seed{seed}.csv"


def shard_of(runs: Sequence[tuple[Experiment, int]], shard: tuple[int, int] | None) -> list:
    """The ``i``-th of ``n`` disjoint parts of a list of runs (``shard=(i, n)``, ``0 <= i < n``).

    Runs are ordered by program, then dealt out in turn, so that every part holds about
    ``1/n`` of every program's runs and about ``1/n`` of the work.
    """
    if shard is None:
        return list(runs)
    i, n = shard
    if not 0 <= i < n:
        raise ValueError(f"a shard is (i, n) with 0 <= i < n, got {shard}")
    ordered = sorted(runs, key=lambda r: (repr(r[0].program), r[0].key, r[1]))
    return ordered[i::n]


def run_grid(
    experiments: Sequence[Experiment],
    seeds: Iterable[int],
    out: str | Path,
    *,
    shard: tuple[int, int] | None = None,
    share: str = "auto",
    max_group: int = 64,
    progress: bool = True,
    n_records: int | None = None,
    params: dict | None = None,
) -> pd.DataFrame:
    """Train every experiment for every seed, resumably, and return all histories.

    Each finished run is written atomically to ``out/<experiment.key>/seed<k>.csv``, with the
    experiment in ``experiment.json`` beside it; runs whose file exists are read back, not
    trained again. The rest are grouped by :attr:`Experiment.program` (at most ``max_group``
    runs a group) and each group trains as one program of the engine, checkpointed in
    ``out/.checkpoints/`` at every chunk, so a group cut off mid-way resumes from its last
    chunk.

    Parameters
    ----------
    experiments : sequence of Experiment
    seeds : iterable of int
    out : path
        Results folder.
    shard : (i, n), optional
        Train only the i-th of n disjoint parts of the grid (:func:`shard_of`); the parts
        write to the same kind of folder, and merge by copying the folders together.
    share, max_group
        Passed to :func:`mgs_teach.engine.train_runs` (``max_group`` bounds memory).
    progress : bool
        One progress bar over the runs, with an estimate of the time left.
    n_records : int, optional
        Train only a prefix of every run (its first ``n_records`` records), into memory:
        nothing is read from or written to ``out``.
    params : dict, optional
        If given, filled with ``{(experiment.key, seed): final parameters}`` of the runs this
        call trains (runs read back from ``out`` have no parameters stored).

    Returns
    -------
    pandas.DataFrame
        Every run's history with the experiment's fields (:meth:`Experiment.fields`), ``key``,
        ``seed`` and ``status``. Runs that diverged are kept (their ``status`` says so) and
        left out by :func:`summarise`.

    Raises
    ------
    KeyboardInterrupt
        If interrupted; every finished run is on disk and the next call resumes.
    """
    out = Path(out)
    runs = shard_of([(e, s) for e in dict.fromkeys(experiments) for s in seeds], shard)
    todo = [r for r in runs if n_records is not None or not _csv(out, *r).exists()]
    groups: dict[tuple, list] = {}
    for run in todo:
        groups.setdefault(run[0].program, []).append(run)
    batches = [members[i : i + max_group] for members in groups.values()
               for i in range(0, len(members), max_group)]  # fmt: skip
    frames = {}
    bar = tqdm(total=len(todo), disable=not progress, bar_format=engine.BAR_FORMAT, desc="grid")
    try:
        for members in batches:
            first = members[0][0]
            bar.set_postfix_str(f"{first.model.name}, {first.regulariser.name}, "
                                f"{len(members)} runs")  # fmt: skip
            jobs = [engine.Job(e.regulariser, e.config, s, e.data.load(s)) for e, s in members]
            tag = hashlib.sha1(repr(sorted((e.key, s) for e, s in members)).encode()).hexdigest()
            ckpt = None if n_records is not None else out / ".checkpoints" / f"{tag[:16]}.pkl"
            results = engine.train_runs(first.model, jobs, share=share, checkpoint=ckpt,
                                        progress=bar, n_records=n_records,
                                        loss=first.data.loss)  # fmt: skip
            if any(r.status == "interrupted" for r in results):
                if engine.STOP.is_set():
                    raise Deadline("time limit reached")
                raise KeyboardInterrupt("grid interrupted; run the same command again to resume")
            for (e, s), r in zip(members, results):
                if params is not None:
                    params[e.key, s] = r.params
                frame = r.history.assign(status=r.status)
                if n_records is not None:
                    frames[e.key, s] = _with_fields(frame, e, s)
                    continue
                _write_atomic(out / e.key / "experiment.json", json.dumps(e.to_json(), indent=1))
                _write_atomic(_csv(out, e, s), frame.to_csv(index=False))
    finally:
        bar.close()
    rows = [frames[e.key, s] if (e.key, s) in frames else _read_run(_csv(out, e, s), e, s)
            for e, s in runs]  # fmt: skip
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def _with_fields(frame: pd.DataFrame, experiment: Experiment, seed: int) -> pd.DataFrame:
    fields = {k: v for k, v in experiment.fields().items() if k not in ("strength", "regulariser")}
    return frame.assign(**fields, key=experiment.key, seed=seed)


def _read_run(csv: Path, experiment: Experiment, seed: int) -> pd.DataFrame:
    return _with_fields(pd.read_csv(csv), experiment, seed)


def load_runs(out: str | Path) -> pd.DataFrame:
    """Every finished run under ``out``, as :func:`run_grid` returns them (for results/)."""
    frames = []
    for meta in sorted(Path(out).glob("*/experiment.json")):
        experiment = Experiment.from_json(json.loads(meta.read_text()))
        for csv in sorted(meta.parent.glob("seed*.csv")):
            frames.append(_read_run(csv, experiment, int(csv.stem[4:])))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def summarise(
    runs: pd.DataFrame,
    by: Sequence[str],
    *,
    metric: str = "test_acc",
    last: int = 5,
    include_failed: bool = False,
    best: str = "max",
) -> pd.DataFrame:
    """Aggregate runs the paper's way (Appendix D.1).

    For each group: every run's *final* value is the mean of its last ``last`` records; the
    table gives the mean and standard deviation of the finals over runs, and the *max* of
    the run-averaged curve (the curve averaged over runs at each record, then maximised).

    Parameters
    ----------
    runs : pandas.DataFrame
        From :func:`run_grid` or :func:`load_runs`.
    by : sequence of str
        Columns that define a group, e.g. ``["label_noise", "regulariser"]``.
    metric : str
    last : int
    include_failed : bool
        Also aggregate runs whose ``status`` is not ``"finished"`` (their histories stop
        where they diverged).
    best : {"max", "min"}
        The column ``max`` holds the maximum of the run-averaged curve, or its minimum with
        ``"min"`` (for an error such as the regression benchmark's MSE, where the paper's
        parenthesised number is the best, lowest, value).

    Returns
    -------
    pandas.DataFrame
        Columns ``by + [final, sd, max, runs, diverged]``: ``runs`` counts the runs
        aggregated, ``diverged`` those left out because they did not finish. A group whose
        runs all diverged keeps its row, with NaN statistics.
    """
    rows = []
    for group, frame in runs.groupby(list(by), sort=False):
        status = frame.groupby("seed")["status"].first() if "status" in frame else None
        failed = 0 if status is None else int((status != "finished").sum())
        if not include_failed and status is not None:
            frame = frame[frame["seed"].isin(status.index[status == "finished"])]
        finals = (
            frame.groupby("seed").apply(
                lambda r: r.sort_values("step")[metric].tail(last).mean(), include_groups=False
            )
            if len(frame)
            else pd.Series(dtype=float)
        )
        curve = frame.groupby("step")[metric].mean()
        group = group if isinstance(group, tuple) else (group,)
        rows.append({**dict(zip(by, group)),
                     "final": finals.mean() if len(finals) else float("nan"),
                     "sd": finals.std(ddof=1) if len(finals) > 1 else float("nan"),
                     "max": (curve.max() if best == "max" else curve.min())
                     if len(curve) else float("nan"),
                     "runs": len(finals),
                     "diverged": failed if not include_failed else 0})  # fmt: skip
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------- tuning

#: How :func:`tune` chooses, in words (the chapters print it).
SELECTION_RULE = (
    "the strength with the highest final validation accuracy (mean of the last 5 records, "
    "then over runs), ties to the lower final validation loss; a strength whose runs diverged "
    "loses. The validation samples are held out from the same noisy source as the training "
    "samples; the test set plays no part. For the regression benchmark (no accuracy): the "
    "strength with the lowest final validation MSE, on targets as noisy as the training ones."
)


def tuning_grid(
    base: Experiment,
    candidates: dict[str, Sequence[float]],
    n_val: int,
    options: dict[str, dict[str, Any]] | None = None,
) -> list[Experiment]:
    """The experiments :func:`tune` trains: ``base`` with each candidate, on validation data.

    Each regulariser keeps the options of ``base``'s (its trace method, say), updated by
    ``options[name]``.
    """
    options = options or {}
    return [base.replace(regulariser=name, strength=float(s), n_val=n_val, **options.get(name, {}))
            for name, values in candidates.items() for s in values]  # fmt: skip


def tune(
    base: Experiment,
    candidates: dict[str, Sequence[float]],
    seeds: Iterable[int],
    out: str | Path,
    *,
    n_val: int,
    options: dict[str, dict[str, Any]] | None = None,
    progress: bool = True,
    share: str = "auto",
) -> tuple[dict[str, float], pd.DataFrame]:
    """Choose every regulariser's strength by one rule (:data:`SELECTION_RULE`).

    Each candidate trains as ``base`` with that regulariser and strength, evaluated on
    ``n_val`` validation samples (``DataSpec.n_val``), resumably under ``out``.

    Why accuracy and not loss: the validation labels carry the same label noise as the
    training labels (nobody has clean labels to tune on). Under symmetric noise, accuracy on
    noisy labels is an increasing affine function of accuracy on clean labels, so it ranks
    models as clean accuracy would; cross-entropy instead punishes every confident prediction
    that contradicts a wrong label, and favours a model that has learnt little and hedges.

    Parameters
    ----------
    base : Experiment
        The tuning scenario; its regulariser's options are kept.
    candidates : dict
        ``{regulariser name: candidate strengths}``.
    seeds : iterable of int
    out : path
    n_val : int
        Validation samples.
    options : dict, optional
        ``{regulariser name: {option: value}}``, e.g. ``{"cyclical_lr": {"cycle_steps": 300}}``.
    progress, share
        As in :func:`run_grid`.

    Returns
    -------
    best : dict
        ``{regulariser: strength}``.
    table : pandas.DataFrame
        ``regulariser, strength, val_acc, val_loss, diverged, best``.
    """
    seeds = list(seeds)
    grid = tuning_grid(base, candidates, n_val, options)
    runs = run_grid(grid, seeds, out, progress=progress, share=share)
    rows = []
    for e in grid:
        frame = runs[runs["key"] == e.key]
        ok = frame[frame["status"] == "finished"]
        diverged = ok["seed"].nunique() < len(seeds)
        acc = summarise(ok, ["key"])["final"] if len(ok) else pd.Series(dtype=float)
        loss = (
            summarise(ok, ["key"], metric="test_loss")["final"]
            if len(ok)
            else pd.Series(dtype=float)
        )
        acc = acc.fillna(-np.inf)  # a regression has no accuracy
        rows.append(dict(regulariser=e.regulariser.name, strength=e.regulariser.strength,
                         val_acc=-np.inf if diverged or acc.empty else float(acc.iloc[0]),
                         val_loss=np.inf if diverged or loss.empty else float(loss.iloc[0]),
                         diverged=bool(diverged)))  # fmt: skip
    table = pd.DataFrame(rows)
    if base.data.loss == "mse":  # regression: zero-mean target noise adds a constant to the MSE
        order = table.sort_values(["val_loss"], ascending=True)
    else:
        order = table.sort_values(["val_acc", "val_loss"], ascending=[False, True])
    best_idx = order.groupby("regulariser", sort=False).head(1).index
    table["best"] = table.index.isin(best_idx)
    best = dict(zip(table.loc[best_idx, "regulariser"], table.loc[best_idx, "strength"]))
    return best, table


# ---------------------------------------------------------- the MNIST chapter's plans
#
# One definition of every grid of the chapter "MGS on corrupted MNIST" (mgs_teach.plans),
# used both by the chapter and by ``python -m mgs_teach.experiments mnist``.


class Deadline(KeyboardInterrupt):
    """The time budget of a command ran out (:data:`mgs_teach.engine.STOP` was set); what
    finished is kept, and it resumes."""


def run_mnist(
    plan: Any,
    out: str | Path,
    *,
    shard: tuple[int, int] | None = None,
    progress: bool = True,
    train: bool = True,
) -> dict[str, Any]:
    """Tune, then run every grid of an MNIST plan, resumably under ``out``.

    Each network is tuned just before the first grid that trains it, in the order of
    :meth:`MNISTPlan.grids` (the tables first), so that a time limit leaves whole tables
    rather than only tuning runs. Tuning runs go to ``out/tuning/``, the grids' runs to
    ``out/runs/``, the strengths chosen so far to ``out/best_strengths.json``.

    Parameters
    ----------
    plan : mgs_teach.plans.MNISTPlan
    out : path
    shard : (i, n), optional
        Train only the i-th of n parts of the tuning and of the grids. The grids need every
        tuning run: a shard that finds another shard's tuning runs missing stops after its
        own tuning share, with a message (run the tuning shards first, then the grid shards).
    progress : bool
    train : bool
        ``False``: only read what is stored; raise ``FileNotFoundError`` if a run is missing.

    Returns
    -------
    dict
        ``best`` (tuned strengths per network), ``tuning`` (the tuning table, with a
        ``model`` column), and one run frame per grid of :meth:`MNISTPlan.grids`.
    """
    out = Path(out)
    bases, seeds = plan.tuning_bases(), range(plan.tuning.runs)
    tuning_grids = {name: tuning_grid(base, candidates, plan.tuning.n_val, options)
                    for name, (base, candidates, options) in bases.items()
                    if candidates}  # fmt: skip
    if train and shard is not None:  # every tuning share first: the grids need all of them
        for grid in tuning_grids.values():
            run_grid(grid, seeds, out / "tuning", shard=shard, progress=progress)
        missing = [e.key for grid in tuning_grids.values() for e in grid for s in seeds
                   if not _csv(out / "tuning", e, s).exists()]  # fmt: skip
        if missing:
            raise RuntimeError(
                f"shard {shard[0]}/{shard[1]}: its tuning share is done, but "
                f"{len(missing)} tuning runs of other shards are missing; "
                "run every shard's tuning, then the shards again for the grids"
            )
    best: dict[str, dict[str, float]] = {}
    tables, done = [], set()

    def tuned(name: str) -> None:
        """Tune one network (train its missing tuning runs), once."""
        if name in done or name not in tuning_grids:
            return
        done.add(name)
        base, candidates, options = bases[name]
        if not train:
            _require(tuning_grids[name], seeds, out / "tuning")
        best[name], table = tune(base, candidates, seeds, out / "tuning",
                                 n_val=plan.tuning.n_val, options=options,
                                 progress=progress)  # fmt: skip
        tables.append(table.assign(model=name))
        if train and shard is None:  # so far: a later command reads only complete networks
            _write_atomic(out / "best_strengths.json", json.dumps(best, indent=1))

    # Each network is tuned just before its first grid, and the grids run cheapest network
    # first (plan.grids' order): a time limit that stops the plan leaves finished tables,
    # not only tuning runs.
    results: dict[str, Any] = {"best": best}
    for name, structure in plan.grids({}).items():
        for network in dict.fromkeys(e.model.name for e in structure):
            tuned(network)
        grid, runs = plan.grids(best)[name], range(plan.runs_of(name))
        if not train:
            _require(grid, runs, out / "runs")
        results[name] = run_grid(grid, runs, out / "runs", shard=shard if train else None,
                                 progress=progress)  # fmt: skip
    for network in bases:  # networks without a grid of their own (none so far)
        tuned(network)
    results["tuning"] = pd.concat(tables, ignore_index=True) if tables else None
    return results


def run_testbench(
    plan: Any,
    out: str | Path,
    tuned: str | Path,
    *,
    shard: tuple[int, int] | None = None,
    progress: bool = True,
    train: bool = True,
) -> dict[str, Any]:
    """Train a plan's test bench (Appendix F) with the strengths its tuning chose.

    The paper tunes once and keeps the strengths for the whole test bench; so does this:
    they are read from ``tuned/best_strengths.json``, written by
    ``python -m mgs_teach.experiments mnist`` for the same plan. Runs go to ``out/runs/``,
    resumably, as :func:`run_grid` writes them.

    Parameters
    ----------
    plan : mgs_teach.plans.MNISTPlan
        Its :attr:`~mgs_teach.plans.MNISTPlan.testbench` is trained.
    out : path
    tuned : path
        The results folder of the plan's MNIST command (its tuned strengths).
    shard, progress, train
        As in :func:`run_mnist`.

    Returns
    -------
    dict
        ``best`` (the strengths used) and ``testbench`` (every run's history).

    Raises
    ------
    FileNotFoundError
        If ``tuned/best_strengths.json`` is missing, or (``train=False``) a run is.
    """
    best = _tuned_strengths(plan, tuned)
    grid = plan.testbench_grid(best)
    seeds = range(plan.testbench.runs)
    if not train:
        _require(grid, seeds, Path(out) / "runs")
    runs = run_grid(grid, seeds, Path(out) / "runs", shard=shard if train else None,
                    progress=progress)  # fmt: skip
    return {"best": best, "testbench": runs}


def _entry(row: Any, scale: float) -> dict[str, Any]:
    """One summary entry from a row of :func:`summarise`: final, sd and max times ``scale``
    (``null`` where every run diverged), rounded to 2 decimals, and the runs behind them."""

    def value(v: float) -> float | None:
        return None if np.isnan(v) else round(scale * v, 2)

    return dict(final=value(row.final), sd=value(row.sd), max=value(row.max),
                runs=int(row.runs), diverged=int(row.diverged))  # fmt: skip


def _tuned_strengths(plan: Any, tuned: str | Path) -> dict[str, Any]:
    """The strengths in ``tuned/best_strengths.json``, or a FileNotFoundError that says how
    to make them."""
    path = Path(tuned) / "best_strengths.json"
    again = f"run `python -m mgs_teach.experiments mnist --plan {plan.name} --out {tuned}`"
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: the test bench keeps the strengths tuned for the tables; "
            f"{again} first"
        )
    best = json.loads(path.read_text())
    network = plan.testbench.model.name if plan.testbench is not None else None
    tuned_here = network in plan.tuning_bases() and plan.tuning_bases()[network][1]
    if network is not None and network not in best and tuned_here:
        raise FileNotFoundError(
            f"{path} has no strengths for {network} yet (its tuning did not finish): {again} "
            "again to finish it"
        )
    return best


def testbench_summary(runs: pd.DataFrame, plan: Any, best: dict[str, Any]) -> dict[str, Any]:
    """The compact summary of a test bench (``summary.json``): for each training size, noise
    level and method, the final mean, sd and max of the test accuracy in percent
    (:func:`summarise`), the runs behind them and those that diverged; plus the strengths."""
    t = plan.testbench
    table = summarise(runs, ["n_train", "label_noise", "regulariser"])
    entries: dict[str, Any] = {}
    for row in table.itertuples():
        size = entries.setdefault(str(int(row.n_train)), {})
        cell = size.setdefault(f"{row.label_noise:.0%}", {})
        cell[row.regulariser] = _entry(row, 100.0)
    return dict(plan=plan.name, model=t.model.name, epochs=t.epochs, runs=t.runs,
                strengths={r: best.get(t.model.name, {}).get(r, 0.0) for r in t.methods},
                entries=entries)  # fmt: skip


def load_testbench_results(out: str | Path) -> dict[str, Any] | None:
    """The results of ``python -m mgs_teach.experiments testbench`` stored under ``out``, read
    back without training (as :func:`load_mnist_results`), or ``None`` if not finished.
    The command keeps a copy of the strengths it used in ``out/best_strengths.json``."""
    provenance = _finished(out)
    if provenance is None:
        return None
    plan = _plans()[provenance["plan"]]
    results = run_testbench(plan, out, out, progress=False, train=False)
    return {**results, "provenance": provenance, "plan": plan}


def _finished(out: str | Path) -> dict[str, Any] | None:
    """The provenance of a command's results under ``out``, if the command finished."""
    path = Path(out) / "provenance.json"
    if not path.exists():
        return None
    provenance = json.loads(path.read_text())
    return provenance if provenance.get("status") == "finished" else None


def _require(grid: Sequence[Experiment], seeds: Iterable[int], out: Path) -> None:
    missing = [(e.key, s) for e in grid for s in seeds if not _csv(out, e, s).exists()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} runs are missing under {out}, e.g. {missing[0]}")


def load_mnist_results(out: str | Path) -> dict[str, Any] | None:
    """The results of ``python -m mgs_teach.experiments mnist`` stored under ``out``.

    Returns ``None`` when ``out/provenance.json`` is missing or says the command has not
    finished; otherwise what :func:`run_mnist` returns, read back without training, plus
    ``provenance`` and ``plan`` (the :class:`mgs_teach.plans.MNISTPlan`).
    """
    provenance = _finished(out)
    if provenance is None:
        return None
    plan = _plans(provenance.get("task", "mnist"))[provenance["plan"]]
    results = run_mnist(plan, out, progress=False, train=False)
    return {**results, "provenance": provenance, "plan": plan}


def mnist_summary(results: dict[str, Any], plan: Any) -> dict[str, Any]:
    """The compact summary of a plan's results (``summary.json``).

    For each table, noise level and method: the final mean, the sd and the max of the test
    accuracy in percent (:func:`summarise`), the runs behind them and the runs that diverged
    (``null`` statistics when every run did); plus the tuned strengths. For the regression
    plans: the test MSE in squared pixels of a 96-pixel image, with the lowest point of the
    run-averaged curve in place of the max.
    """
    from mgs_teach.plans import TABLE_METHODS

    names = {r: m for m, r in TABLE_METHODS.items()}
    tables: dict[str, Any] = {}
    faces = plan.task == "faces"
    # accuracy in percent; a regression's MSE in squared pixels of a 96-pixel image
    scale = FacesSpec.PIXEL_MSE if faces else 100.0
    noise = "target_noise" if faces else "label_noise"
    for t in plan.tables:
        table = summarise(results[t.name], [noise, "regulariser"],
                          metric="test_loss" if faces else "test_acc",
                          best="min" if faces else "max")  # fmt: skip
        entry: dict[str, Any] = {}
        for row in table.itertuples():
            level = getattr(row, noise)
            entry.setdefault(f"{level:g}" if faces else f"{level:.0%}", {})[
                names[row.regulariser]] = _entry(row, scale)  # fmt: skip
        tables[t.name] = dict(model=t.model.name, n_train=t.n_train, epochs=t.epochs,
                              runs=t.runs, entries=entry)  # fmt: skip
    out = dict(plan=plan.name, best_strengths=results["best"], tables=tables)
    if faces:
        out["unit"] = "test MSE, squared pixels of a 96-pixel image; 'max' is the lowest"
    return out


#: Cost of a step of each regulariser relative to a plain step (``none``), for
#: :func:`budget`: the ones the training benchmark does not time, measured on this project's
#: 2-core CPU (FCN 6 x 300 and LeNet-5, batch 32; the larger of the two). Dropout, weight
#: decay and the optimiser changes cost what a plain step costs; the gradient penalties
#: differentiate twice; the log-det forms and factors the kernel.
STEP_COST = {"none": 1.0, "dropout": 1.0, "weight_decay": 1.0, "adam": 1.0, "cyclical_lr": 1.0,
             "param_gradient": 2.6, "input_gradient": 2.6, "mgs_logdet": 1.5}  # fmt: skip


@functools.cache
def _flops(e: Experiment) -> float:
    from mgs_teach import bench  # bench imports this module

    return bench.step_flops(e.model, e.data.load(0), e.regulariser, e.config, e.data.loss)


def step_flops(e: Experiment) -> float:
    """Floating-point operations of one training step of one run of ``e``.

    XLA's count of the lowered step (:func:`mgs_teach.bench.step_flops`), on a few samples
    of ``e``'s data (a step's arithmetic does not depend on the size of the training set, its
    noise or its strengths). Counted once per program.
    """
    reg, config = compile_key(e.regulariser, e.config)
    n = max(e.config.batch_size, 20)
    small = dataclasses.replace(e.data.program_part(), n_train=n, n_val=0, n_test=2)
    if small.task == "mnist":
        small = dataclasses.replace(small, source="offline")  # the same shapes, no download
    return _flops(Experiment(e.model, small, reg, config))


def _trace_method(method: str) -> str:
    return "structured" if method == "auto" else method


def budget(plan: Any, rates: Sequence[dict] = (), *, peak: float | None = None,
           flops: bool = True) -> pd.DataFrame:  # fmt: skip
    """A plan's wall time estimated from the training benchmark's measured rates, and the
    least time its arithmetic allows.

    Every grid (and the tuning) is counted in optimiser steps per network and regulariser;
    each count is divided by the measured steps per second per run of the batched engine
    for that network (``none`` and ``mgs_trace`` are measured, the penalty with the trace
    method the plan trains; other regularisers scale the plain rate by :data:`STEP_COST`,
    ``mgs_logdet`` the exact trace's), at the largest measured number of runs not above
    the group's. Records and compilation are not included. The benchmark times networks on
    MNIST's 28 x 28 digits, so the regression plans' faces have no measured rate.

    Each count is also multiplied by the arithmetic of one step (:func:`step_flops`), and
    divided by ``peak``: the time that no way of running the plan can beat on a device that
    computes at most ``peak`` floating-point operations per second.

    Parameters
    ----------
    plan : mgs_teach.plans.MNISTPlan
        An MNIST plan or a regression plan.
    rates : sequence of dict
        Rows of ``python -m mgs_teach.bench training --json`` (rows without a
        ``trace_method`` timed each network's own, as :data:`mgs_teach.bench.TRAINING_MODELS`
        says).
    peak : float, optional
        The device's floating-point operations per second. Default: the largest
        ``peak_flops_per_s`` of ``rates`` (the matrix-product rate measured with them).
    flops : bool
        ``False``: leave out the arithmetic (it lowers every program once, seconds each).

    Returns
    -------
    pandas.DataFrame
        One row per part (``tuning``, a grid or ``testbench``) and network: ``runs``,
        ``run_steps`` and ``seconds`` (NaN where a network's rate was not measured); with
        ``flops``, also ``flops`` and ``floor_s`` (NaN without a peak).
    """
    from mgs_teach.bench import TRAINING_MODELS
    from mgs_teach.plans import TABLE_METHODS  # noqa: F401 - plans imports this module

    measured: dict[tuple[str, str, str], list[tuple[int, float]]] = {}
    names = {"fcn-6x300": "fcn", "lenet5": "lenet5", "alexnet": "alexnet"}
    for r in rates:
        if r["engine"] == "batched":
            method = "-"
            if r["penalty"] == "mgs_trace":
                own = TRAINING_MODELS.get(r["model"], (None,) * 5)[4]
                method = _trace_method(r.get("trace_method") or own or "auto")
            measured.setdefault((r["model"], r["penalty"], method), []).append(
                (r["runs"], r["steps_per_s_per_run"]))  # fmt: skip
    if peak is None:
        peaks = [r["peak_flops_per_s"] for r in rates if r.get("peak_flops_per_s")]
        peak = max(peaks) if peaks else float("nan")

    def rate(e: Experiment, group: int) -> float:
        reg = e.regulariser
        if e.data.task != "mnist":
            return float("nan")
        if reg.name in ("mgs_trace", "mgs_logdet"):
            method = reg.method if reg.name == "mgs_trace" else "structured"
            key = ("mgs_trace", _trace_method(method))
        else:
            key = ("none", "-")
        options = sorted(measured.get((names.get(e.model.name, e.model.name), *key), []))
        if not options:
            return float("nan")
        fit = [v for n, v in options if n <= group] or [options[0][1]]
        return fit[-1] / STEP_COST.get(reg.name, 1.0)

    parts: list[tuple[str, list[Experiment], int]] = []
    for base, candidates, options in plan.tuning_bases().values():
        parts.append(("tuning", tuning_grid(base, candidates, plan.tuning.n_val, options),
                      plan.tuning.runs))  # fmt: skip
    parts += [(name, grid, plan.runs_of(name)) for name, grid in plan.grids({}).items()]
    if plan.testbench is not None:
        parts.append(("testbench", plan.testbench_grid({}), plan.testbench.runs))
    rows = []
    for part, grid, seeds in parts:
        groups: dict[tuple, list[Experiment]] = {}
        for e in grid:
            groups.setdefault(e.program, []).append(e)
        for members in groups.values():
            e = members[0]
            n = len(members) * seeds
            steps = n * e.config.total_steps(e.data.n_train)
            row = dict(part=part, model=e.model.name, runs=n, run_steps=steps,
                       seconds=steps / rate(e, n))  # fmt: skip
            if flops:
                row["flops"] = steps * step_flops(e)
                row["floor_s"] = row["flops"] / peak
            rows.append(row)
    table = pd.DataFrame(rows)
    columns = ["runs", "run_steps", "seconds"] + (["flops", "floor_s"] if flops else [])
    # a part with one group of unknown rate has an unknown time (NaN), not a smaller one
    return (table.groupby(["part", "model"], sort=False)[columns]
            .agg(lambda v: v.sum(skipna=False)).reset_index())  # fmt: skip


def print_budget(table: pd.DataFrame, name: str) -> None:
    """Print :func:`budget`'s table and its totals: the estimated minutes of training, the
    arithmetic, and the floor it sets at the peak used."""
    shown = table.assign(flops=table["flops"] / 1e15).rename(columns={"flops": "PFLOP"})
    print(shown.to_string(index=False, na_rep="-", float_format=lambda v: f"{v:,.1f}"
                          if abs(v) < 100 else f"{v:,.0f}"))  # fmt: skip
    known = table[np.isfinite(table["seconds"])]
    missing = table[~np.isfinite(table["seconds"])]
    if len(known):
        print(f"{name}: about {known['seconds'].sum() / 60:,.1f} minutes of training at the "
              "measured rates (records and compilation not included)"
              + (", besides the parts marked '-'" if len(missing) else ""))  # fmt: skip
    if len(missing):
        parts = ", ".join(f"{r.part} ({r.model})" for r in missing.itertuples())
        parts = "any part" if len(missing) == len(table) else parts
        print(f"no measured rate for {parts}: the training benchmark times the networks on "
              "28 x 28 digits, with the trace method given by --trace-method")  # fmt: skip
    floor = table["floor_s"].sum(skipna=False)
    if np.isfinite(floor):
        flops = table["flops"].sum()
        peak = flops / floor
        print(f"arithmetic: {flops / 1e15:,.1f} PFLOP (XLA's count); at {peak / 1e12:,.1f} "
              f"TFLOP/s no engine trains it in under {floor / 60:,.1f} minutes")  # fmt: skip
        if len(known) and not len(missing):
            share = known["flops"].sum() / known["seconds"].sum() / peak
            print(f"the estimate computes at {share:.0%} of that rate")


def provenance(command: str, start: float) -> dict[str, Any]:
    """Where a stored result comes from: the command, the commit, the machine, the versions.

    Parameters
    ----------
    command : str
        The command line that made the result.
    start : float
        Its start, as ``time.time()``.
    """
    import platform
    import subprocess
    import time
    from importlib.metadata import PackageNotFoundError, version

    import jax

    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True, cwd=root).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "mgs_teach"], capture_output=True,
                               text=True, cwd=root).stdout.strip() != ""  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = "unknown", False
    versions = {"python": platform.python_version()}
    for package in ("jax", "jaxlib", "flax", "optax", "numpy"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    return dict(
        command=command,
        git_commit=commit + ("+uncommitted changes in mgs_teach" if dirty else ""),
        device=[str(d) for d in jax.devices()], cpu=_cpu_model(),
        cpu_count=os.cpu_count(), versions=versions,
        start=time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(start)),
    )  # fmt: skip


def _cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else its architecture. XLA compiles for the
    CPU it runs on, so float32 round-off, and with it a long noisy run, depends on it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def _provenance(argv: Sequence[str], plan: Any, start: float) -> dict[str, Any]:
    source = plan.source if plan.source != "auto" else _mnist("auto").source
    found = provenance(" ".join(["python", "-m", "mgs_teach.experiments", *argv]), start)
    if plan.task == "faces":
        return {**found, "plan": plan.name, "task": "faces", "faces_source": plan.source}
    return {**found, "plan": plan.name, "mnist_source": source}


def _add_run_options(parser: Any, default_out: str, task: str = "mnist") -> None:
    parser.add_argument("--plan", default="cpu", choices=sorted(_plans(task)))
    parser.add_argument("--out", default=None, help=f"results folder (default {default_out})")
    parser.add_argument(
        "--shard",
        default=None,
        metavar="I/N",
        help="train only the I-th of N disjoint parts (0 <= I < N)",
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop cleanly after this long; the next call continues",
    )
    parser.add_argument("--no-progress", action="store_true")


def _plans(task: str = "mnist") -> dict[str, Any]:
    from mgs_teach.plans import PLANS, REGRESSION_PLANS

    return REGRESSION_PLANS if task == "faces" else PLANS


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mgs_teach.experiments mnist --plan cpu`` (then ``testbench --plan cpu``)."""
    import argparse
    import shutil
    import signal
    import sys
    import time

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m mgs_teach.experiments",
                                     description="Reproduce a chapter's experiments.")  # fmt: skip
    sub = parser.add_subparsers(dest="experiment", required=True)
    mnist = sub.add_parser("mnist", help="the chapter 'MGS on corrupted MNIST'")
    _add_run_options(mnist, "results/mnist-PLAN")
    regression = sub.add_parser(
        "regression", help="the regression benchmark (Table 2 and D.2's regression)"
    )
    _add_run_options(regression, "results/regression-PLAN", "faces")
    bench = sub.add_parser("testbench", help="Appendix F's test bench, with the tuned strengths")
    _add_run_options(bench, "results/testbench-PLAN")
    bench.add_argument("--tuned", default=None,
                       help="results of the plan's mnist command, for its tuned strengths "
                            "(default results/mnist-PLAN)")  # fmt: skip
    cost = sub.add_parser("budget", help="a plan's wall time from measured rates, and the "
                                          "least its arithmetic allows")  # fmt: skip
    cost.add_argument("--plan", default="paper", choices=sorted(_plans()))
    cost.add_argument(
        "--task",
        default="mnist",
        choices=["mnist", "regression"],
        help="whose plan: the MNIST chapter's or the regression benchmark's",
    )
    cost.add_argument("--rates", type=Path, default=None,
                      help="JSON of python -m mgs_teach.bench training")  # fmt: skip
    cost.add_argument("--peak-tflops", type=float, default=None,
                      help="the device's peak rate, for the arithmetic floor (default: the "
                           "matrix-product rate measured with --rates)")  # fmt: skip
    args = parser.parse_args(argv)
    regression = args.experiment == "regression" or getattr(args, "task", "") == "regression"
    plan = _plans("faces" if regression else "mnist")[args.plan]
    if args.experiment == "budget":
        if args.rates is None and args.peak_tflops is None:
            parser.error("budget needs --rates, --peak-tflops or both")
        rates = json.loads(args.rates.read_text()) if args.rates else []
        peak = args.peak_tflops * 1e12 if args.peak_tflops else None
        print_budget(budget(plan, rates, peak=peak), f"{args.task} plan {args.plan}")
        return 0

    if args.experiment == "testbench" and plan.testbench is None:
        parser.error(f"plan {plan.name} has no test bench")
    out = Path(args.out or f"results/{args.experiment}-{plan.name}")
    shard = None
    if args.shard:
        i, n = (int(v) for v in args.shard.split("/"))
        shard = (i, n)
    if args.experiment == "testbench":
        tuned = Path(args.tuned or f"results/mnist-{plan.name}")
        try:
            _tuned_strengths(plan, tuned)
        except FileNotFoundError as err:  # before anything is written
            print(err, file=sys.stderr)
            return 2

        def work() -> dict[str, Any]:
            results = run_testbench(plan, out, tuned, shard=shard, progress=not args.no_progress)
            if shard is None:
                out.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(tuned / "best_strengths.json", out / "best_strengths.json")
            return results

        def summary(results: dict[str, Any]) -> dict[str, Any]:
            return testbench_summary(results["testbench"], plan, results["best"])
    else:

        def work() -> dict[str, Any]:
            return run_mnist(plan, out, shard=shard, progress=not args.no_progress)

        def summary(results: dict[str, Any]) -> dict[str, Any]:
            return mnist_summary(results, plan)

    start = time.time()
    previous = (
        json.loads((out / "provenance.json").read_text())
        if (out / "provenance.json").exists()
        else {}
    )
    provenance = _provenance(argv, plan, start)
    provenance["earlier_wall_s"] = previous.get("wall_s", 0.0) + previous.get("earlier_wall_s", 0.0)
    if shard is None:
        _write_atomic(out / "provenance.json", json.dumps({**provenance, "status": "running"},
                                                          indent=1))  # fmt: skip
    if args.time_limit:

        def expire(*_: Any) -> None:  # training stops at its next chunk boundary
            engine.STOP.set()

        signal.signal(signal.SIGALRM, expire)
        signal.setitimer(signal.ITIMER_REAL, args.time_limit)
    status = "finished"
    try:
        results = work()
    except KeyboardInterrupt as err:
        status = "partial"
        timed_out = isinstance(err, Deadline) and args.time_limit
        reason = f"time limit of {args.time_limit:g} s reached" if timed_out else err
        reason = reason or "interrupted"
        print(f"stopped ({reason}); finished runs are kept: run the same command again to "
              "continue")  # fmt: skip
    except RuntimeError as err:  # a shard waiting for the other shards' tuning
        if shard is None:
            raise
        print(err)
        return 4
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        engine.STOP.clear()
    end = time.time()
    if shard is not None:
        print(f"shard {args.shard}: {status} in {end - start:.0f} s; merge the shards' folders and "
              f"run once without --shard to write the summary")  # fmt: skip
        return 0
    provenance.update(end=time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(end)),
                      wall_s=round(end - start, 1), status=status)  # fmt: skip
    provenance["total_wall_s"] = round(provenance["wall_s"] + provenance["earlier_wall_s"], 1)
    _write_atomic(out / "provenance.json", json.dumps(provenance, indent=1))
    if status == "finished":
        _write_atomic(out / "summary.json", json.dumps(summary(results), indent=1))
        print(
            f"finished in {end - start:.0f} s; results, provenance.json and summary.json in {out}"
        )
    return 0 if status == "finished" else 3


if __name__ == "__main__":
    # the CLI runs the imported module, so that its classes are the ones mgs_teach.plans
    # builds its plans from (this file, run as __main__, would define copies of them)
    from mgs_teach.experiments import main as _main

    raise SystemExit(_main())
