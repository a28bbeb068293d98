"""The results store: one folder per experiment, one file per finished run.

``Store(folder)`` keeps every finished run of an :class:`~mgs_teach.lab.experiment.Experiment`
in ``folder/<experiment.key>/seed<k>.csv``, with the experiment itself in
``experiment.json`` beside it. Writes are atomic (a killed process never leaves half a
file), and reading never trains: a missing run is a clear ``FileNotFoundError``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from mgs_teach.checkpoint import write_atomic
from mgs_teach.lab.experiment import Experiment

__all__ = ["Store", "with_fields"]


def with_fields(frame: pd.DataFrame, experiment: Experiment, seed: int) -> pd.DataFrame:
    """A run's history with its experiment's fields, ``key`` and ``seed`` as columns."""
    fields = {k: v for k, v in experiment.fields().items() if k not in ("strength", "regulariser")}
    return frame.assign(**fields, key=experiment.key, seed=seed)


class Store:
    """A results folder (see the module's docstring).

    Parameters
    ----------
    folder : path
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def __repr__(self) -> str:
        return f"Store({str(self.folder)!r})"

    def path(self, experiment: Experiment, seed: int) -> Path:
        """Where the run of ``experiment`` with ``seed`` is stored."""
        return self.folder / experiment.key / f"seed{seed}.csv"

    def has(self, experiment: Experiment, seed: int) -> bool:
        """Whether that run has finished and is stored."""
        return self.path(experiment, seed).exists()

    def write(self, experiment: Experiment, seed: int, history: pd.DataFrame) -> None:
        """Store one run's history (with a ``status`` column), atomically."""
        write_atomic(self.folder / experiment.key / "experiment.json",
                     json.dumps(experiment.to_json(), indent=1))  # fmt: skip
        write_atomic(self.path(experiment, seed), history.to_csv(index=False))

    def read(self, experiment: Experiment, seed: int) -> pd.DataFrame:
        """One stored run, with its experiment's fields (:func:`with_fields`)."""
        path = self.path(experiment, seed)
        if not path.exists():
            raise FileNotFoundError(f"no run {experiment.key} seed {seed} under {self.folder}")
        return with_fields(pd.read_csv(path), experiment, seed)

    def missing(self, experiments: Sequence[Experiment], seeds: Iterable[int]) -> list:
        """``(key, seed)`` of every run of the grid that is not stored."""
        seeds = list(seeds)
        return [(e.key, s) for e in experiments for s in seeds if not self.has(e, s)]

    def read_grid(self, experiments: Sequence[Experiment], seeds: Iterable[int]) -> pd.DataFrame:
        """Every run of a grid, read back; ``FileNotFoundError`` if any is missing."""
        seeds = list(seeds)
        missing = self.missing(experiments, seeds)
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} runs are missing under {self.folder}, e.g. {missing[0]}"
            )
        frames = [self.read(e, s) for e in dict.fromkeys(experiments) for s in seeds]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def read_all(self) -> pd.DataFrame:
        """Every stored run, whatever its experiment."""
        frames = []
        for meta in sorted(self.folder.glob("*/experiment.json")):
            experiment = Experiment.from_json(json.loads(meta.read_text()))
            for csv in sorted(meta.parent.glob("seed*.csv")):
                frames.append(with_fields(pd.read_csv(csv), experiment, int(csv.stem[4:])))
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def checkpoint(self, tag: str) -> Path:
        """Where a group of runs in progress keeps its checkpoint (deleted when it finishes)."""
        return self.folder / ".checkpoints" / f"{tag}.pkl"
