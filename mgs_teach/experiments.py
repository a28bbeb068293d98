"""The paper's experiments as data: scenarios, a resumable grid runner, and its aggregation.

A :class:`Scenario` says what to train (model, data, regulariser, schedule); a grid is a
list of scenarios times a list of seeds. :func:`run_grid` writes every finished run to its own
file, atomically, and skips runs whose file exists, so an interrupted grid resumes where it
stopped without losing or repeating a finished run (and a run cut off mid-way resumes from
its checkpoint). :func:`summarise` aggregates as the paper does.

::

    grid = [Scenario("lenet5", n_train=3000, label_noise=p, regulariser=r, strength=s, epochs=400)
            for p in (0.0, 0.3, 0.6, 0.8) for r, s in tuned.items()]
    runs = run_grid(grid, seeds=range(10), out="results/table1")
    table = summarise(runs, ["label_noise", "regulariser"])
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from flax import nnx
from tqdm.auto import tqdm

from mgs_teach import data as D
from mgs_teach.models import FCN, AlexNet, LeNet5
from mgs_teach.penalties import NAMES, regulariser
from mgs_teach.train import Config, train

__all__ = ["MODELS", "Scenario", "load_runs", "make_data", "run_grid", "summarise", "tune_grid"]


def _fcn(dropout: float, rngs: nnx.Rngs, depth: int = 6, width: int = 300) -> nnx.Module:
    return FCN(784, 10, depth=depth, width=width, dropout=dropout, rngs=rngs)


#: model name -> ``make_model(dropout, rngs, **model_kwargs)``
MODELS: dict[str, Callable[..., nnx.Module]] = {
    "fcn": _fcn,
    "lenet5": lambda dropout, rngs: LeNet5(10, dropout=dropout, rngs=rngs),
    "alexnet": lambda dropout, rngs: AlexNet(10, dropout=dropout, rngs=rngs),
}


@dataclasses.dataclass(frozen=True)
class Scenario:
    """One training scenario of the paper's test bench.

    Attributes
    ----------
    model : str
        A key of :data:`MODELS` (``"fcn"``, ``"lenet5"``, ``"alexnet"``).
    n_train : int
        Training samples, drawn stratified.
    label_noise : float
        Fraction of training labels flipped.
    regulariser, strength
        As in :func:`mgs_teach.penalties.regulariser`.
    epochs, batch_size, learning_rate, lr_decay, n_records, monitor_size
        As in :class:`mgs_teach.train.Config`.
    source : str
        MNIST source, as in :func:`mgs_teach.data.load_mnist`.
    blur : bool
        Motion-blur the images (the paper's corruption).
    split : str
        ``"test"``: evaluate on the test set. ``"validation"``: hold out a quarter of the
        training subset and evaluate on it (for tuning, so the test set stays unseen).
    model_kwargs : tuple of (str, value) pairs
        Extra arguments of the model constructor, e.g. ``(("width", 100),)`` for the FCN.
    """

    model: str
    n_train: int
    label_noise: float
    regulariser: str
    strength: float = 0.0
    epochs: int = 100
    batch_size: int = 32
    learning_rate: float = 0.1
    lr_decay: float = 0.99
    n_records: int = 100
    monitor_size: int = 32
    source: str = "offline"
    blur: bool = True
    split: str = "test"
    model_kwargs: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; choose one of {sorted(MODELS)}")
        if self.regulariser not in NAMES:
            raise ValueError(f"unknown regulariser {self.regulariser!r}; choose one of {NAMES}")
        if self.split not in ("test", "validation"):
            raise ValueError(f"split must be 'test' or 'validation', got {self.split!r}")
        if not 0 <= self.label_noise <= 1:
            raise ValueError(f"label_noise must lie in [0, 1], got {self.label_noise}")
        regulariser(self.regulariser, self.strength)  # validates the strength

    @property
    def key(self) -> str:
        """A short, stable name for files: readable prefix plus a hash of every field."""
        digest = hashlib.sha1(repr(dataclasses.astuple(self)).encode()).hexdigest()[:10]
        return (f"{self.model}-n{self.n_train}-noise{self.label_noise:g}-{self.regulariser}"
                f"-{self.strength:g}-{digest}")  # fmt: skip

    def config(self, seed: int) -> Config:
        """The :class:`mgs_teach.train.Config` of this scenario for one seed."""
        fields = ("epochs", "batch_size", "learning_rate", "lr_decay", "n_records", "monitor_size")
        return Config(**{f: getattr(self, f) for f in fields}, seed=seed)

    def make_model(self) -> Callable[..., nnx.Module]:
        """``make_model(dropout, rngs)`` for :func:`mgs_teach.train.train`."""
        return partial(MODELS[self.model], **dict(self.model_kwargs))


_MNIST_CACHE: dict[str, D.MNIST] = {}


def make_data(scenario: Scenario, seed: int) -> tuple[np.ndarray, ...]:
    """The scenario's ``(x_train, y_train, x_eval, y_eval)`` for one seed (MNIST loaded once)."""
    if scenario.source not in _MNIST_CACHE:
        _MNIST_CACHE[scenario.source] = D.load_mnist(scenario.source)
    mnist = _MNIST_CACHE[scenario.source]
    x_tr, y_tr, x_te, y_te = D.corrupted_mnist(
        scenario.n_train, label_noise=scenario.label_noise, blur=scenario.blur, seed=seed,
        data=mnist,
    )  # fmt: skip
    if scenario.split == "validation":
        n_val = len(y_tr) // 4
        return x_tr[n_val:], y_tr[n_val:], x_tr[:n_val], y_tr[:n_val]
    return x_tr, y_tr, x_te, y_te


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _paths(out: Path, scenario: Scenario, seed: int) -> tuple[Path, Path]:
    folder = out / scenario.key
    return folder / f"seed{seed}.csv", folder / f"seed{seed}.ckpt"


def run_grid(
    scenarios: Sequence[Scenario],
    seeds: Iterable[int],
    out: str | Path,
    *,
    progress: bool = True,
    runner: Callable[..., Any] = train,
) -> pd.DataFrame:
    """Run every scenario for every seed, resumably, and return all histories.

    Each finished run is written atomically to ``out/<scenario.key>/seed<k>.csv``, with the
    scenario in ``scenario.json`` beside it. Runs whose CSV exists are read back, not run
    again; a run that was cut off resumes from its checkpoint (``seed<k>.ckpt``, deleted
    once the run is written).

    Parameters
    ----------
    scenarios : sequence of Scenario
    seeds : iterable of int
    out : path
        Output folder.
    progress : bool
        One progress bar over the grid.
    runner : callable
        The training function (``mgs_teach.train.train``); replaceable for tests.

    Returns
    -------
    pandas.DataFrame
        Every run's history, with the scenario's fields and ``seed``, ``status`` and
        ``wall_s`` columns added. Runs that diverged or were interrupted are kept (their
        ``status`` says so) and are excluded from :func:`summarise` by default.
    """
    out = Path(out)
    seeds = list(seeds)
    jobs = [(s, seed) for s in scenarios for seed in seeds]
    frames = []
    bar = tqdm(jobs, desc="grid", disable=not progress)
    for scenario, seed in bar:
        csv, ckpt = _paths(out, scenario, seed)
        if not csv.exists():
            bar.set_postfix_str(
                f"{scenario.regulariser}, noise {scenario.label_noise:g}, seed {seed}"
            )
            start = time.perf_counter()
            run = runner(scenario.make_model(), make_data(scenario, seed),
                         regulariser(scenario.regulariser, scenario.strength),
                         scenario.config(seed), checkpoint=ckpt, progress=False)  # fmt: skip
            if run.status == "interrupted":
                raise KeyboardInterrupt(f"grid interrupted; rerun to resume ({run.message})")
            history = run.history.assign(status=run.status, wall_s=time.perf_counter() - start)
            _write_atomic(csv.parent / "scenario.json",
                          json.dumps(dataclasses.asdict(scenario), indent=1))  # fmt: skip
            _write_atomic(csv, history.to_csv(index=False))
            ckpt.unlink(missing_ok=True)
        frames.append(_read_run(csv, scenario, seed))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _read_run(csv: Path, scenario: Scenario, seed: int) -> pd.DataFrame:
    frame = pd.read_csv(csv)
    fields = dataclasses.asdict(scenario)
    fields.pop("model_kwargs")
    fields.pop("strength")  # already a column, from the run itself
    fields.pop("regulariser")
    return frame.assign(**fields, key=scenario.key, seed=seed)


def load_runs(out: str | Path) -> pd.DataFrame:
    """Every finished run under ``out``, as :func:`run_grid` returns them (for results/)."""
    frames = []
    for meta in sorted(Path(out).glob("*/scenario.json")):
        fields = json.loads(meta.read_text())
        fields["model_kwargs"] = tuple(tuple(kv) for kv in fields["model_kwargs"])
        scenario = Scenario(**fields)
        for csv in sorted(meta.parent.glob("seed*.csv")):
            frames.append(_read_run(csv, scenario, int(csv.stem[4:])))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def summarise(
    runs: pd.DataFrame,
    by: Sequence[str],
    *,
    metric: str = "test_acc",
    last: int = 5,
    include_failed: bool = False,
) -> pd.DataFrame:
    """Aggregate runs the paper's way.

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
        Also aggregate runs whose ``status`` is not ``"finished"``.

    Returns
    -------
    pandas.DataFrame
        Columns ``by + [final, sd, max, runs]``.
    """
    if not include_failed and "status" in runs:
        runs = runs[runs["status"] == "finished"]
    rows = []
    for group, frame in runs.groupby(list(by), sort=False):
        finals = frame.groupby("seed").apply(
            lambda r: r.sort_values("step")[metric].tail(last).mean(), include_groups=False
        )
        curve = frame.groupby("step")[metric].mean()
        group = group if isinstance(group, tuple) else (group,)
        rows.append({**dict(zip(by, group)), "final": finals.mean(),
                     "sd": finals.std(ddof=1) if len(finals) > 1 else float("nan"),
                     "max": curve.max(), "runs": len(finals)})  # fmt: skip
    return pd.DataFrame(rows)


def tune_grid(
    base: Scenario,
    strengths: dict[str, Sequence[float]],
    seeds: Iterable[int],
    out: str | Path,
    *,
    progress: bool = True,
    runner: Callable[..., Any] = train,
) -> tuple[dict[str, float], pd.DataFrame]:
    """Tune every regulariser's strength the same way: final validation loss, held-out data.

    Each regulariser's candidates run as ``base`` with ``split="validation"`` (a quarter of
    the training subset held out, the test set never seen), resumably under ``out``. The
    strength with the lowest mean final validation loss (mean of the last 5 records, then
    over seeds) wins; diverged runs count as infinitely bad. The validation labels carry the
    same label noise as the training labels, as they would in practice: nobody has clean
    labels to tune on. With symmetric noise the noisy loss still ranks models by how well
    they fit the clean classes.

    Returns
    -------
    best : dict
        ``{regulariser: strength}``.
    table : pandas.DataFrame
        ``regulariser, strength, val_loss, val_acc, best``.
    """
    seeds = list(seeds)
    rows = []
    for name, candidates in strengths.items():
        grid = [dataclasses.replace(base, regulariser=name, strength=float(s), split="validation")
                for s in candidates]  # fmt: skip
        runs = run_grid(grid, seeds, out, progress=progress, runner=runner)
        for s in candidates:
            frame = runs[runs["strength"] == float(s)]
            ok = frame[frame["status"] == "finished"]
            loss = summarise(ok, ["strength"], metric="test_loss")["final"] if len(ok) else []
            acc = summarise(ok, ["strength"], metric="test_acc")["final"] if len(ok) else []
            diverged = (frame.groupby("seed")["status"].first() != "finished").any()
            val_loss = np.inf if diverged or not len(loss) else float(loss.iloc[0])
            rows.append(dict(regulariser=name, strength=float(s), val_loss=val_loss,
                             val_acc=float(acc.iloc[0]) if len(acc) else np.nan))  # fmt: skip
    table = pd.DataFrame(rows)
    best_idx = table.groupby("regulariser", sort=False)["val_loss"].idxmin()
    table["best"] = table.index.isin(best_idx)
    best = dict(zip(table.loc[best_idx, "regulariser"], table.loc[best_idx, "strength"]))
    return best, table
