"""Build hook: the committed results travel inside the package.

The chapters read the results of runs too long for CI (``results/mnist-cpu`` and the
others) through :func:`mgs_teach.lab.summaries.results_dir`. A clone reads its own
``results/``; an installed wheel (Colab's ``pip install git+...``, say) has no clone around
it, so ``build_py`` copies every folder of ``results/`` into the built package as
``mgs_teach/_results/<name>/``. The repository keeps its one ``results/`` folder. Group
checkpoints (``.checkpoints/``, left by an unfinished command) and hidden files are left out.
Everything else about the project is in ``pyproject.toml``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

RESULTS = Path(__file__).resolve().parent / "results"
SHIPPED = Path("mgs_teach", "_results")


def shipped_files() -> list[Path]:
    """The files of ``results/`` that the package carries, relative to ``results/``."""
    if not RESULTS.is_dir():
        return []
    return sorted(
        p.relative_to(RESULTS)
        for p in RESULTS.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(RESULTS).parts)
    )


class BuildPyWithResults(build_py):
    """``build_py`` that also copies ``results/`` into ``mgs_teach/_results/``."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install is a clone: it reads results/ in place
        for name in shipped_files():
            target = Path(self.build_lib) / SHIPPED / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(RESULTS / name, target)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = super().get_outputs(include_bytecode)
        if getattr(self, "editable_mode", False):
            return outputs
        return outputs + [str(Path(self.build_lib) / SHIPPED / n) for n in shipped_files()]


setup(cmdclass={"build_py": BuildPyWithResults})
