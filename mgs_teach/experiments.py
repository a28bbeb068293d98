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


# ------------------------------------------------------------- the MNIST chapter's grids
#
# One definition of every grid of the chapter "MGS on corrupted MNIST", used both by the
# chapter and by ``python -m mgs_teach.experiments mnist``, so that the two cannot drift.

#: Every regulariser of Figure 3, in the paper's order.
MNIST_REGULARISERS = ("none", "weight_decay", "dropout", "adam", "cyclical_lr",
                      "input_gradient", "param_gradient", "mgs_trace", "mgs_logdet")  # fmt: skip

#: The columns of Table 1 and Table D.2: paper's name -> regulariser.
TABLE_METHODS = {"Unregularised": "none", "Dropout": "dropout", "Weight": "weight_decay",
                 "Loss grad.": "param_gradient", "MGS": "mgs_trace"}  # fmt: skip

#: Candidate strengths of the tuning grid, the same rule for every method; ``none`` has none.
TUNING_STRENGTHS = {
    "weight_decay": (1e-4, 1e-3, 1e-2),
    "dropout": (0.1, 0.3, 0.5),
    "adam": (0.003, 0.01, 0.03),
    "cyclical_lr": (0.25, 0.5, 0.9),
    "input_gradient": (0.01, 0.1, 1.0),
    "param_gradient": (0.01, 0.1, 1.0),
    "mgs_trace": (1e-5, 3e-5, 1e-4),
    "mgs_logdet": (1e-5, 1e-4, 1e-3),
}

MNIST_SCALES = ("smoke", "quick", "full")

__all__ += ["MNIST_REGULARISERS", "TABLE_METHODS", "TUNING_STRENGTHS", "load_mnist_results",
            "main", "mnist_grids", "mnist_settings", "mnist_tuning", "resolve_source",
            "run_mnist"]  # fmt: skip


def mnist_settings(scale: str) -> dict[str, Any]:
    """The sizes of the MNIST chapter at one scale.

    ``full`` is the paper's test bench (Appendix D) as far as the data allow: 3,000
    training samples, 400 epochs and 10 runs for the tables, tuning at 50 % noise for 100
    epochs and 5 runs, AlexNet for Figure 3. ``quick`` is a CPU-sized version: a small FCN
    stands in for every network but LeNet-5 (per-example Jacobians of AlexNet are too
    heavy for a CPU), 500 samples, 10 epochs, one seed, the two weaker candidate strengths
    (a short run needs less regularisation), two noise
    levels, and the middle scenario plus one changed value per robustness axis for two
    methods; LeNet-5 trains 5 epochs only and borrows the FCN's tuned strengths
    (``tuned_on``) instead of being tuned itself. ``smoke`` is tinier still, for tests.
    """
    if scale not in MNIST_SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {MNIST_SCALES}")
    if scale == "full":
        small = ()
        return dict(
            seeds=10, tune_seeds=5, n_train=3000, epochs=400, table1_epochs=400, tune_epochs=100,
            n_records=100, monitor_size=32, tune_noise=0.5,
            noises=(0.0, 0.3, 0.6, 0.8), strengths=TUNING_STRENGTHS,
            models=dict(table1=("lenet5", small), fcn_table=("fcn", small),
                        figure3=("alexnet", small), figure4=("lenet5", small)),
            figure3_noise=0.5, figure3_epochs=100,
            figure4_methods=tuple(TABLE_METHODS.values()), tuned_on={},
            figure4_axes=dict(n_train=(1000, 2000), label_noise=(0.2, 0.8),
                              batch_size=(16, 128), learning_rate=(0.03, 0.3),
                              epochs=(50, 200)),
        )  # fmt: skip
    tiny = scale == "smoke"
    fcn = ("fcn", (("depth", 1), ("width", 16)) if tiny else (("depth", 2), ("width", 64)))
    strengths = {name: values[:2] for name, values in TUNING_STRENGTHS.items()}
    return dict(
        seeds=1, tune_seeds=1, n_train=64 if tiny else 500, epochs=1 if tiny else 10,
        table1_epochs=1 if tiny else 5,  # LeNet-5's per-example Jacobians are slow on a CPU
        tune_epochs=1 if tiny else 10, n_records=3 if tiny else 8,
        monitor_size=8 if tiny else 16, tune_noise=0.5, noises=(0.0,) if tiny else (0.0, 0.6),
        strengths={"mgs_trace": (1e-4,)} if tiny else strengths,
        models=dict(table1=fcn if tiny else ("lenet5", ()), fcn_table=fcn, figure3=fcn,
                    figure4=fcn),
        tuned_on={} if tiny else {"table1": "figure3"},
        # at quick scale Figure 3 runs at the table's 60 % noise, so the two share runs
        figure3_noise=0.5 if tiny else 0.6, figure3_epochs=1 if tiny else 10,
        figure4_methods=("none", "mgs_trace"),
        figure4_axes=dict(n_train=(32,), label_noise=(0.2,), epochs=(2,)) if tiny else dict(
            n_train=(250,), label_noise=(0.8,), batch_size=(128,), learning_rate=(0.3,),
            epochs=(5,)),
    )  # fmt: skip


def resolve_source(source: str) -> str:
    """``"auto"`` becomes ``"full"`` or ``"offline"``, whichever :func:`load_mnist` gives."""
    if source != "auto":
        return source
    mnist = _MNIST_CACHE.get("auto") or D.load_mnist("auto")
    _MNIST_CACHE["auto"] = mnist
    resolved = "full" if len(mnist.y_train) > 5000 else "offline"
    _MNIST_CACHE.setdefault(resolved, mnist)
    return resolved


def _base(settings: dict, model_key: str, source: str, **fields: Any) -> Scenario:
    model, kwargs = settings["models"][model_key]
    defaults = dict(n_train=settings["n_train"], label_noise=settings["tune_noise"],
                    regulariser="none", epochs=settings["epochs"],
                    n_records=settings["n_records"], monitor_size=settings["monitor_size"],
                    source=source)  # fmt: skip
    return Scenario(model, **{**defaults, **fields}, model_kwargs=kwargs)


def mnist_tuning(scale: str, source: str = "offline") -> dict[str, tuple[Scenario, dict]]:
    """Tuning bases: ``{model_key: (base scenario, {regulariser: candidates})}``.

    One tuning per distinct network (models shared by several grids are tuned once), at
    50 % label noise, every method the same way (:func:`tune_grid`). Figure 3 and the FCN
    table tune every regulariser of :data:`MNIST_REGULARISERS` that their grids use.
    """
    settings = mnist_settings(scale)
    out: dict[str, tuple[Scenario, dict]] = {}
    for key in ("table1", "fcn_table", "figure3", "figure4"):
        name = _model_name(settings, settings["tuned_on"].get(key, key))
        base = _base(
            settings, settings["tuned_on"].get(key, key), source, epochs=settings["tune_epochs"]
        )
        names = MNIST_REGULARISERS if key == "figure3" else tuple(TABLE_METHODS.values())
        wanted = {r: settings["strengths"][r] for r in names if r in settings["strengths"]}
        if name in out:
            out[name][1].update(wanted)
        else:
            out[name] = (base, dict(wanted))
    return out


def _model_name(settings: dict, key: str) -> str:
    model = settings["models"][key]
    return f"{model[0]}" + "".join(f"-{k}{v}" for k, v in model[1])


def mnist_grids(
    scale: str, best: dict[str, dict[str, float]], source: str = "offline"
) -> dict[str, list[Scenario]]:
    """The chapter's grids given the tuned strengths ``best[model_name][regulariser]``.

    Returns ``{"figure3": ..., "table1": ..., "fcn_table": ..., "figure4": ...}``. An
    untuned regulariser runs at the middle candidate of :data:`TUNING_STRENGTHS` (``none``
    at 0).
    Figure 4's grid holds the middle scenario (3,000 samples, 50 % noise at full scale)
    and one scenario per changed value of each axis.
    """
    settings = mnist_settings(scale)

    def strength(key: str, reg: str) -> float:
        tuned = _model_name(settings, settings["tuned_on"].get(key, key))
        default = TUNING_STRENGTHS[reg][1] if reg in TUNING_STRENGTHS else 0.0
        return float(best.get(tuned, {}).get(reg, default))

    grids: dict[str, list[Scenario]] = {}
    grids["figure3"] = [
        _base(settings, "figure3", source, label_noise=settings["figure3_noise"],
              epochs=settings["figure3_epochs"], regulariser=r, strength=strength("figure3", r))
        for r in MNIST_REGULARISERS
    ]  # fmt: skip
    for key in ("table1", "fcn_table"):
        epochs = settings["table1_epochs"] if key == "table1" else settings["epochs"]
        grids[key] = [
            _base(settings, key, source, label_noise=p, regulariser=r, strength=strength(key, r),
                  epochs=epochs)
            for p in settings["noises"] for r in TABLE_METHODS.values()
        ]  # fmt: skip
    middle = dict(epochs=settings["tune_epochs"], label_noise=settings["tune_noise"])
    figure4 = []
    for r in settings["figure4_methods"]:
        base = _base(settings, "figure4", source, regulariser=r, strength=strength("figure4", r),
                     **middle)  # fmt: skip
        figure4.append(base)
        for axis, values in settings["figure4_axes"].items():
            figure4 += [dataclasses.replace(base, **{axis: v}) for v in values]
    grids["figure4"] = figure4
    return grids


def _refuse(*args: Any, **kwargs: Any) -> Any:
    raise FileNotFoundError("a run of the grid is missing from the results folder")


def run_mnist(
    scale: str,
    out: str | Path,
    *,
    source: str = "offline",
    seeds: int | None = None,
    progress: bool = True,
    runner: Callable[..., Any] | None = None,
) -> dict[str, Any]:
    """Tune, then run every grid of the MNIST chapter, resumably under ``out``.

    Parameters
    ----------
    scale : ``"smoke"``, ``"quick"`` or ``"full"``
    out : path
        Results folder; every run lands in ``out/<scenario key>/``.
    source : str
        MNIST source (``"auto"`` is resolved first).
    seeds : int, optional
        Runs per scenario (tuning uses ``min(seeds, tune_seeds)``); the scale's default if
        omitted.
    runner : callable, optional
        ``train`` by default; :func:`load_mnist_results` passes one that refuses to train.

    Returns
    -------
    dict
        ``best`` (tuned strengths per model), ``tuning`` (the tuning table, with a ``model``
        column), and one run frame per grid name of :func:`mnist_grids`.
    """
    runner = runner or train
    settings = mnist_settings(scale)
    source = resolve_source(source)
    n_seeds = seeds or settings["seeds"]
    tune_seeds = range(min(n_seeds, settings["tune_seeds"]))
    best: dict[str, dict[str, float]] = {}
    tables = []
    for name, (base, strengths) in mnist_tuning(scale, source).items():
        best[name], table = tune_grid(base, strengths, tune_seeds, out, progress=progress,
                                      runner=runner)  # fmt: skip
        tables.append(table.assign(model=name))
    _write_atomic(Path(out) / "best_strengths.json", json.dumps(best, indent=1))
    results: dict[str, Any] = {"best": best, "tuning": pd.concat(tables, ignore_index=True)}
    for name, grid in mnist_grids(scale, best, source).items():
        results[name] = run_grid(grid, range(n_seeds), out, progress=progress, runner=runner)
    return results


def load_mnist_results(out: str | Path) -> dict[str, Any] | None:
    """The finished results of ``python -m mgs_teach.experiments mnist`` under ``out``.

    Returns ``None`` when ``out/provenance.json`` is missing or says the command has not
    finished; otherwise what :func:`run_mnist` returned, read back without training, plus
    ``provenance`` (the parsed provenance file).
    """
    path = Path(out) / "provenance.json"
    if not path.exists():
        return None
    provenance = json.loads(path.read_text())
    if provenance.get("status") != "finished":
        return None
    results = run_mnist(provenance["scale"], out, source=provenance["source"],
                        seeds=provenance["seeds"], progress=False, runner=_refuse)  # fmt: skip
    return {**results, "provenance": provenance}


def _provenance(argv: Sequence[str], args: Any, source: str, start: float) -> dict[str, Any]:
    import platform
    import subprocess
    import sys
    from importlib.metadata import PackageNotFoundError, version

    import jax

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True, cwd=Path(__file__).parent).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    versions = {"python": platform.python_version()}
    for package in ("jax", "jaxlib", "flax", "optax", "numpy"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    return dict(
        command=" ".join([Path(sys.executable).name, "-m", "mgs_teach.experiments", *argv]),
        git_commit=commit or "unknown", device=[str(d) for d in jax.devices()],
        versions=versions, scale=args.scale, source=source,
        seeds=args.seeds or mnist_settings(args.scale)["seeds"],
        start=time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(start)),
    )  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m mgs_teach.experiments mnist --out results/mnist [--scale full] ...``."""
    import argparse
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m mgs_teach.experiments",
                                     description="Reproduce a chapter's experiments.")  # fmt: skip
    sub = parser.add_subparsers(dest="experiment", required=True)
    mnist = sub.add_parser("mnist", help="the chapter 'MGS on corrupted MNIST'")
    mnist.add_argument("--out", default="results/mnist", help="results folder")
    mnist.add_argument("--scale", default="full", choices=MNIST_SCALES)
    mnist.add_argument("--source", default="auto", choices=("auto", "offline", "full"))
    mnist.add_argument("--seeds", type=int, default=None, help="runs per scenario")
    mnist.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    start = time.time()
    source = resolve_source(args.source)
    out = Path(args.out)
    provenance = _provenance(argv, args, source, start)
    _write_atomic(out / "provenance.json", json.dumps({**provenance, "status": "running"},
                                                      indent=1))  # fmt: skip
    run_mnist(args.scale, out, source=source, seeds=args.seeds, progress=not args.no_progress)
    end = time.time()
    provenance.update(end=time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(end)),
                      wall_s=round(end - start, 1), status="finished")  # fmt: skip
    _write_atomic(out / "provenance.json", json.dumps(provenance, indent=1))
    print(f"finished in {end - start:.0f} s; results and provenance.json in {out}")


if __name__ == "__main__":
    main()
