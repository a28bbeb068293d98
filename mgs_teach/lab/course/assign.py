"""``python -m mgs_teach.lab course assign``: chapters as Otter-Grader assignments.

For each chapter it writes ``OUT/<chapter>/<chapter>.ipynb``, an Otter Assign master notebook
(:mod:`mgs_teach.lab.course.master`), and ``OUT/<chapter>/requirements.txt``, the autograder's
environment; then it runs ``otter assign``, which writes ``OUT/<chapter>/dist/student/`` (the
notebook students get) and ``OUT/<chapter>/dist/autograder/`` (the solution notebook and the
autograder zip, for Gradescope or ``otter run``). ``OUT/README.md`` tells the instructor what to
do with them.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import nbformat
import yaml

from mgs_teach.lab.course.chapter import Exercise, parse_chapter
from mgs_teach.lab.course.master import INSTALL_TAG, master_notebook
from mgs_teach.lab.course.readme import readme

__all__ = ["assign_chapter", "book_chapters", "install_spec", "main", "requirements"]


def book_chapters(root: Path) -> list[Path]:
    """The executable chapters of the book at ``root``, in the order of its ``_toc.yml``."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    names = [ch["file"] for part in toc.get("parts", []) for ch in part["chapters"]]
    return [root / f"{name}.ipynb" for name in names if (root / f"{name}.ipynb").exists()]


def install_spec(chapter: Path) -> str:
    """The requirement that the chapter's Colab install cell installs ``mgs_teach`` from.

    For example ``mgs-teach @ git+https://github.com/OWNER/REPO@v0.1.0``: the book's
    repository at the release tag of ``pyproject.toml`` (``scripts/install_cell.py``).
    """
    for cell in json.loads(chapter.read_text())["cells"]:
        if INSTALL_TAG in cell.get("metadata", {}).get("tags", []):
            found = re.search(r'"(mgs-teach @ [^"]+)"', "".join(cell["source"]))
            if found:
                return found.group(1)
    raise ValueError(f"{chapter} has no Colab install cell ({INSTALL_TAG})")


def requirements(chapter: Path) -> str:
    """The autograder's ``requirements.txt``: ``mgs_teach`` as the Colab cell installs it.

    The Colab cell installs ``mgs_teach`` from the book's repository at its release tag, with
    ``--no-deps``, then ``python -m mgs_teach.deps`` adds its missing requirements (the
    ``mnist`` extra's included). The autograder's image has no JAX to protect, so one
    ``pip install`` of the same release with its dependencies and extra does the same. It
    names the tag's source archive, which pip fetches without git.
    """
    spec = install_spec(chapter)
    url = re.match(r"mgs-teach @ git\+(https://\S+?)(?:\.git)?@(\S+)$", spec)
    if url is None:
        raise ValueError(f"unexpected install spec {spec!r}")
    archive = f"{url.group(1)}/archive/refs/tags/{url.group(2)}.zip"
    return (
        f"# mgs_teach as the chapters' Colab install cell installs it: {spec}\n"
        f"# (the same release as a source archive, with its dependencies; no git needed)\n"
        f"mgs-teach[mnist] @ {archive}\n"
    )


def _run(cmd: list[str], cwd: Path) -> None:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed in {cwd}:\n{done.stdout}\n{done.stderr}")


def assign_chapter(chapter: Path, out: Path, *, points: float = 1,
                   run_tests: bool = False) -> dict[str, object]:  # fmt: skip
    """Write one chapter's master notebook and environment, and run ``otter assign``.

    Parameters
    ----------
    chapter : Path
        A chapter notebook, such as ``book/gd_step.ipynb``.
    out : Path
        The course folder; the assignment goes to ``out/<chapter name>/``.
    points : float
        The points of each question (all of them in its hidden test).
    run_tests : bool
        Let ``otter assign`` execute the solution notebook and run every test against it.

    Returns
    -------
    dict
        The chapter's name, folder, questions (name and points) and autograder zip.
    """
    name = chapter.stem
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    items = parse_chapter(chapter)
    nb = master_notebook(name, items, points=points, run_tests=run_tests)
    nbformat.write(nb, folder / f"{name}.ipynb")
    (folder / "requirements.txt").write_text(requirements(chapter))
    _run([sys.executable, "-m", "otter", "assign", f"{name}.ipynb", "dist"], folder)
    zips = sorted((folder / "dist" / "autograder").glob("*.zip"))
    questions = [(ex.label.replace("-", "_"), points) for ex in items if isinstance(ex, Exercise)]
    return {"name": name, "folder": folder, "questions": questions,
            "zip": zips[-1] if zips else None}  # fmt: skip


def parser() -> argparse.ArgumentParser:
    """The ``course`` command's parser."""
    p = argparse.ArgumentParser(
        prog="python -m mgs_teach.lab course",
        description="Chapters' exercises as Otter-Grader assignments.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("assign", help="write Otter Assign notebooks and run otter assign")
    a.add_argument("chapters", nargs="*", type=Path, help="chapter notebooks (book/X.ipynb)")
    a.add_argument("out", type=Path, help="the course folder")
    a.add_argument("--all", action="store_true", help="every chapter of the book")
    a.add_argument("--points", type=float, default=1, help="points per question (default 1)")
    a.add_argument(
        "--run-tests",
        action="store_true",
        help="let otter assign execute each solution notebook and run its tests",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mgs_teach.lab course assign (book/X.ipynb ... | --all) OUT``."""
    p = parser()
    args = p.parse_args(argv)
    if args.all == bool(args.chapters):
        p.error("name chapters or --all, not both")
    root = Path.cwd()
    if args.all and not (root / "_toc.yml").exists():
        p.error("--all reads the book's _toc.yml: run it in the repository's folder")
    chapters = book_chapters(root) if args.all else args.chapters
    done = []
    for chapter in chapters:
        info = assign_chapter(chapter, args.out, points=args.points, run_tests=args.run_tests)
        print(f"{chapter}: {len(info['questions'])} questions -> {info['folder']}")  # type: ignore[arg-type]
        done.append(info)
    (args.out / "README.md").write_text(readme(done, args.out))
    print(f"instructions: {args.out / 'README.md'}")
    return 0
