"""Checkpoints: one format for every loop, written atomically and resumed only by the same run.

A checkpoint is a pickled dict whose JAX arrays are stored as NumPy arrays (PRNG keys as their
data), with a ``fingerprint`` that names the run it belongs to. :func:`restore` puts saved
arrays back into the structure, dtypes and key types of a template state.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["fingerprint", "load", "restore", "save", "write_atomic"]


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` atomically: a crash mid-write never leaves a truncated file.

    The parent folder is created if needed. Text is written as UTF-8.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)


def save(path: str | Path, state: dict) -> None:
    """Write a checkpoint atomically (:func:`write_atomic`).

    JAX arrays anywhere in ``state`` are stored as NumPy arrays (PRNG keys as their data).
    """
    write_atomic(path, pickle.dumps(jax.tree.map(_to_numpy, state)))


def load(path: str | Path, fingerprint: str) -> dict | None:
    """Read a checkpoint written by :func:`save`, or ``None`` if there is none.

    Raises
    ------
    ValueError
        If the checkpoint's ``fingerprint`` differs: it belongs to another run.
    """
    path = Path(path)
    if not path.exists():
        return None
    with open(path, "rb") as f:
        saved = pickle.load(f)
    if saved.get("fingerprint") != fingerprint:
        raise ValueError(
            f"checkpoint {path} belongs to a different run (other model, data, regulariser "
            "or config); delete it or pass another path"
        )
    return saved


def _to_numpy(leaf: Any) -> Any:
    if isinstance(leaf, jax.Array):
        if jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            return np.asarray(jax.random.key_data(leaf))
        return np.asarray(leaf)
    return leaf


def fingerprint(*parts: Any) -> str:
    """A stable hash of reprs and arrays: a checkpoint is only resumed by the same run."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray | jax.Array):
            h.update(np.ascontiguousarray(np.asarray(part)).tobytes())
        else:
            h.update(repr(part).encode())
    return h.hexdigest()


def restore(template: Any, saved: Any) -> Any:
    """Arrays of a checkpoint back into the structure (and PRNG key types) of ``template``."""

    def back(t: Any, s: Any) -> Any:
        if isinstance(t, jax.Array) and jnp.issubdtype(t.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(jnp.asarray(s))
        return jnp.asarray(s, dtype=t.dtype)

    return jax.tree.map(back, template, saved)
