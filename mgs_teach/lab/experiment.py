"""An experiment as a value: a model, data, a regulariser and a config; a run adds a seed.

An :class:`Experiment` composes four parts that each say one thing and re-declare nothing:

- :class:`mgs_teach.lab.specs.ModelSpec`: which network;
- :class:`mgs_teach.lab.specs.DataSpec` or :class:`mgs_teach.lab.specs.FacesSpec`: which data, how
  many samples, how much noise, and whether runs are evaluated on a validation set;
- :class:`mgs_teach.penalties.Regulariser`: the regulariser, its strength and options;
- :class:`mgs_teach.config.Config`: how to train.

Its :attr:`~Experiment.key` names its results: a readable prefix and a hash of the
experiment's canonical, versioned JSON (:meth:`Experiment.canonical_json`), so a key does
not depend on how a Python object prints.

::

    base = Experiment(ModelSpec("lenet5"), DataSpec("mnist", 3000), regulariser("none"),
                      Config(epochs=400))
    grid = [base.replace(label_noise=p, regulariser=r) for p in (0, 0.3) for r in regs]
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from mgs_teach.config import Config
from mgs_teach.lab.specs import DataSpec, FacesSpec, ModelSpec
from mgs_teach.penalties import Regulariser
from mgs_teach.train import program_key

__all__ = ["KEY_VERSION", "Experiment", "canonical"]

#: The version of the key scheme; a new scheme changes it, and a migration renames results.
KEY_VERSION = 1


def canonical(value: Any) -> Any:
    """A JSON value with every number as a float (``3000`` and ``3000.0`` are one value),
    so that equal experiments have equal keys whatever types their numbers were given in."""
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return value


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
        reg = self.regulariser
        reg_fields = set(reg.to_json()) - {"name"}
        mine = {k: changes.pop(k) for k in list(changes) if k in reg_fields}
        new = changes.pop("regulariser", None)
        if isinstance(new, Regulariser):
            reg = new
        elif new is not None:
            mine = {"strength": 0.0, **mine, "name": new}
        reg = Regulariser.from_json({**reg.to_json(), **mine}) if mine else reg
        parts = {"model": self.model, "data": self.data, "config": self.config}
        for name, part in parts.items():
            fields = {f.name for f in dataclasses.fields(part)}
            mine = {k: changes.pop(k) for k in list(changes) if k in fields}
            parts[name] = dataclasses.replace(part, **mine) if mine else part
        if changes:
            raise ValueError(f"no part of an Experiment has the field(s) {sorted(changes)}")
        return Experiment(parts["model"], parts["data"], reg, parts["config"])

    def canonical_json(self) -> str:
        """The experiment as canonical JSON: sorted keys, numbers as floats, and
        :data:`KEY_VERSION`. Its hash is the key's."""
        value = canonical({"key_version": KEY_VERSION, **self.to_json()})
        return json.dumps(value, sort_keys=True, separators=(",", ":"))

    @property
    def key(self) -> str:
        """A short, stable name for files: a readable prefix and a hash of every field."""
        digest = hashlib.sha1(self.canonical_json().encode()).hexdigest()[:10]
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
        """Every field of every part, flat (the columns the grid adds to histories)."""
        out = {"model": self.model.name}
        out.update({f"data_{k}" if k in ("task",) else k: v
                    for k, v in dataclasses.asdict(self.data).items()})  # fmt: skip
        out.update({k: v for k, v in self.regulariser.to_json().items() if k != "name"})
        out["regulariser"] = self.regulariser.name
        out.update(dataclasses.asdict(self.config))
        return out

    def to_json(self) -> dict[str, Any]:
        """The experiment as a JSON-safe dict (``experiment.json`` beside its runs)."""
        return {"model": dataclasses.asdict(self.model), "data": dataclasses.asdict(self.data),
                "regulariser": self.regulariser.to_json(),
                "config": dataclasses.asdict(self.config)}  # fmt: skip

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Experiment:
        """The experiment :meth:`to_json` wrote (specs and regulariser by their registries)."""
        spec = FacesSpec if d["data"].get("task") == "faces" else DataSpec
        return cls(ModelSpec(**d["model"]), spec(**d["data"]),
                   Regulariser.from_json(d["regulariser"]), Config(**d["config"]))  # fmt: skip
