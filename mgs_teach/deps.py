"""Install what ``mgs_teach`` needs and is missing, without ever touching JAX.

Colab and most course machines already have JAX, Flax, Optax and the scientific stack. A
chapter's first cell installs ``mgs_teach`` itself with ``--no-deps`` (so that pip cannot
replace the JAX that came with the GPU runtime) and then runs::

    python -m mgs_teach.deps

which installs only the requirements of ``mgs_teach`` that are not satisfied yet, with the
installed ``jax`` and ``jaxlib`` held at their versions by a pip constraint. If a missing
package would need a different JAX, pip stops with a conflict instead of swapping JAX.
"""

from __future__ import annotations

import importlib.metadata as metadata
import subprocess
import sys
import tempfile

from packaging.requirements import Requirement
from packaging.version import Version

__all__ = ["PINNED", "install_missing", "missing"]

#: Never installed, upgraded or downgraded by this module: the runtime's own JAX.
PINNED = ("jax", "jaxlib")


def _installed(name: str) -> Version | None:
    try:
        return Version(metadata.version(name))
    except metadata.PackageNotFoundError:
        return None


def missing(requirements: list[str] | None = None) -> list[str]:
    """Requirements of ``mgs_teach`` (its extras included) that are not installed.

    Parameters
    ----------
    requirements : list of str, optional
        Requirement strings as in package metadata; default: those of the installed
        ``mgs-teach`` distribution.

    Returns
    -------
    list of str
        The unsatisfied requirements, markers removed. An installed JAX counts as satisfied
        whatever its version; a missing one is listed.
    """
    if requirements is None:
        requirements = metadata.requires("mgs-teach") or []
    out = []
    for line in requirements:
        req = Requirement(line)
        extra_only = req.marker is not None and "extra" in str(req.marker)
        if req.marker is not None and not extra_only and not req.marker.evaluate():
            continue
        version = _installed(req.name)
        if version is not None and (
            req.name.lower() in PINNED or req.specifier.contains(version, prereleases=True)
        ):
            continue
        req.marker = None
        out.append(str(req))
    return out


def install_missing(*, dry_run: bool = False) -> list[str]:
    """Install :func:`missing` with pip, holding the installed JAX at its version.

    Returns the requirements it installed (or would install, with ``dry_run``).
    """
    todo = missing()
    held = [f"{name}=={v}" for name in PINNED if (v := _installed(name)) is not None]
    if todo and not dry_run:
        with tempfile.NamedTemporaryFile("w", suffix=".txt") as constraints:
            constraints.write("\n".join(held) + "\n")
            constraints.flush()
            cmd = [sys.executable, "-m", "pip", "install", "-q", "-c", constraints.name, *todo]
            subprocess.run(cmd, check=True)
    return todo


if __name__ == "__main__":
    done = install_missing(dry_run="--dry-run" in sys.argv[1:])
    print(("installed: " + ", ".join(done)) if done else "mgs_teach: all requirements present")
