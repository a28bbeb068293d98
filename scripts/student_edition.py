"""Build the student edition of the book: every exercise, no solutions.

    python scripts/student_edition.py                       # executes every chapter
    python scripts/student_edition.py --executed _build/jupyter_execute   # reuses a build

The chapters are copied into ``OUT/src`` with their solutions cut out (the prose and code
between ``{solution-start}`` and ``{solution-end}``, see :func:`bookfiles.strip_solutions`),
and built with sphinx-exercise's ``hide_solutions`` on as a second guard. So no solution
reaches the pages, the search index, the downloadable sources or the notebooks.

``--executed DIR`` takes the chapters from the executed notebooks of a normal build
(``_build/jupyter_execute`` after ``jupyter-book build .``) and does not execute them again:
the outputs are those of the normal edition, minus the solutions' cells. Without it every
chapter executes, as in the normal build.

Launch buttons would open the repository's notebooks, which contain the solutions, so the
student edition has none, unless ``--branch NAME`` names a branch of the repository that
holds solution-free notebooks: ``--notebooks DIR`` writes them (without outputs) for that.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from bookfiles import ROOT, chapters, strip_solutions

TITLE_SUFFIX = " (student edition)"


def student_config(*, executed: bool, branch: str | None) -> dict:
    """``_config.yml`` for the student edition."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["title"] += TITLE_SUFFIX
    config["execute"]["execute_notebooks"] = "off" if executed else "force"
    sphinx = config.setdefault("sphinx", {}).setdefault("config", {})
    sphinx["hide_solutions"] = True
    if branch:
        config["repository"]["branch"] = branch
    else:
        config.pop("launch_buttons", None)
        config["html"]["use_repository_button"] = False
    return config


def clear_outputs(nb: dict) -> dict:
    cells = [{**c, "outputs": [], "execution_count": None} if c["cell_type"] == "code" else c
             for c in nb["cells"]]  # fmt: skip
    return {**nb, "cells": cells}


def stage(src: Path, *, executed: Path | None, branch: str | None) -> None:
    """Copy the book into ``src`` without solutions."""
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    for name in ("_toc.yml", "references.bib"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "book", src / "book", ignore=shutil.ignore_patterns("*.ipynb"))
    shutil.copytree(ROOT / "_ext", src / "_ext")  # the book's local Sphinx extension
    shutil.copytree(ROOT / "_static", src / "_static")  # the book's stylesheet
    config = student_config(executed=executed is not None, branch=branch)
    (src / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    for path in chapters():
        rel = path.relative_to(ROOT)
        origin = executed / rel if executed else path
        if not origin.exists():
            sys.exit(f"{origin} is missing: build the normal edition first, or drop --executed")
        nb = strip_solutions(json.loads(origin.read_text()))
        (src / rel).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    results = ROOT / "results"
    if results.exists() and executed is None:  # chapters read full-scale results when executed
        shutil.copytree(results, src / "results")


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--out", type=Path, default=ROOT / "_build" / "student",
        help="build folder; the HTML lands in OUT/_build/html")  # fmt: skip
    add("--executed", type=Path,
        help="a normal build's executed notebooks (_build/jupyter_execute)")  # fmt: skip
    add("--branch", help="repository branch with solution-free notebooks")
    add("--notebooks", type=Path, help="also write the solution-free notebooks here (no outputs)")
    args = parser.parse_args(argv)

    out = args.out.resolve()
    src = out / "src"
    stage(src, executed=args.executed and args.executed.resolve(), branch=args.branch)
    if args.notebooks:
        for path in chapters():
            rel = path.relative_to(ROOT)
            target = args.notebooks / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            nb = clear_outputs(json.loads((src / rel).read_text()))
            target.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb), "build", str(src), "--path-output", str(out), "-W", "--keep-going"]
    subprocess.run(cmd, check=True)
    html = out / "_build" / "html"
    print(f"student edition: {html / 'index.html'}")
    return html


if __name__ == "__main__":
    main()
