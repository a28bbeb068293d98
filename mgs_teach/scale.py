"""One switch for the size of every experiment in the book.

Two scales exist:

``quick``
    Small enough that the whole book executes on a laptop CPU in minutes. CI uses it.
``full``
    The paper's sizes. Meant for a GPU.

The default is ``full`` when JAX sees a GPU and ``quick`` otherwise. The environment
variable ``MGS_SCALE`` overrides the default, for example ``MGS_SCALE=quick`` on a GPU
machine to get a fast smoke run. Chapters read the switch once, at the top::

    from mgs_teach import scale
    print(scale.banner())
    n_steps = scale.pick(quick=200, full=5_000)
"""

from __future__ import annotations

import os
import platform
from typing import TypeVar

import jax

__all__ = ["ENV_VAR", "SCALES", "banner", "current", "device", "pick"]

ENV_VAR = "MGS_SCALE"
SCALES = ("quick", "full")

T = TypeVar("T")


def device() -> str:
    """Platform of JAX's default device: ``"cpu"``, ``"gpu"`` or ``"tpu"``."""
    return jax.default_backend()


def current() -> str:
    """The scale in force: ``MGS_SCALE`` if set, else ``full`` on a GPU and ``quick`` otherwise.

    Raises
    ------
    ValueError
        If ``MGS_SCALE`` is set to something other than ``quick`` or ``full``.
    """
    value = os.environ.get(ENV_VAR, "").strip().lower()
    if not value:
        return "full" if device() in ("gpu", "tpu") else "quick"
    if value not in SCALES:
        raise ValueError(f"{ENV_VAR}={os.environ[ENV_VAR]!r} is not a scale; use one of {SCALES}")
    return value


def pick(quick: T, full: T) -> T:
    """Return ``quick`` or ``full`` according to :func:`current`."""
    return full if current() == "full" else quick


def banner() -> str:
    """A short banner for the top of a chapter: the scale, whether a GPU is active, the software.

    The first line starts with ``scale: quick`` or ``scale: full`` and says whether a GPU is
    active, the second names the software; without a GPU a third says how to get one (in
    Colab: *Runtime > Change runtime type*) or how to force a scale. Lines fit 90 columns.
    """
    dev = jax.devices()[0]
    kind = getattr(dev, "device_kind", dev.platform)
    accelerated = device() in ("gpu", "tpu")
    if os.environ.get(ENV_VAR):
        source = f"set by {ENV_VAR}"
    else:
        source = f"default {'with' if accelerated else 'without'} a GPU"
    accelerator = f"GPU active: {kind}" if accelerated else "no GPU, running on the CPU"
    lines = [
        f"scale: {current()} ({source}) | {accelerator}",
        f"jax {jax.__version__}, python {platform.python_version()}",
    ]
    if not accelerated:
        lines.append(
            "For the paper's sizes: a GPU (Colab: Runtime > Change runtime type) or MGS_SCALE=full."
        )
    return "\n".join(lines)
