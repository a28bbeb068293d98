"""The instructor's README of a course folder written by ``course assign``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["readme"]

_HOW = """\
## Uploading to Gradescope

1. Create a *Programming Assignment* on Gradescope for each chapter.
2. Under *Configure Autograder*, choose *Zip file upload* and upload
   `CHAPTER/dist/autograder/CHAPTER-autograder_*.zip`. Gradescope builds the image from it:
   Otter's setup installs `requirements.txt`, that is `mgs_teach` at the book's release, as
   the chapters' Colab cell installs it, with its dependencies (JAX for the CPU among them).
3. Give students `CHAPTER/dist/student/CHAPTER.ipynb`. Its last cell exports a zip of their
   notebook, which they upload to the assignment.

A submission is graded by executing the whole notebook (the chapter at `MGS_SCALE=quick`,
the default without a GPU) and then the hidden tests; allow a few minutes of CPU per
submission (a chapter executes in about 20 s to 3 min on a 2-core machine). The public tests
show students whether their answers pass the chapter's self-checks; the hidden tests, which
hold all the points, run the same self-checks on cases drawn anew.

## Grading locally

With `otter-grader` (the version pinned in the book's `requirements.txt`) and `mgs_teach`
installed in the current environment:

```bash
otter run -a CHAPTER/dist/autograder/CHAPTER-autograder_*.zip -o results/ submission.ipynb
```

writes `results/results.json` with the score of every question. `otter grade`, which grades
a folder of submissions in Docker containers built from the same zip, does the same for a
whole class:

```bash
otter grade -a CHAPTER/dist/autograder/CHAPTER-autograder_*.zip -p submissions/ -o grades/
```

## Changing points, or questions

Every question is worth the points given to `course assign --points` (default 1), all of
them in its hidden test; its public test is worth 0. To change one question, edit the
`points: [0, N]` line of its `# BEGIN QUESTION` cell in the master notebook
`CHAPTER/CHAPTER.ipynb` (the public test's points, then the hidden test's), and run
`otter assign CHAPTER.ipynb dist` in `CHAPTER/` again; upload the new zip. The master
notebook holds the solutions: keep it, and `dist/autograder/`, away from students.
"""


def readme(done: list[dict[str, Any]], out: Path) -> str:
    """The README of the course folder ``out``, listing the assignments in ``done``."""
    rows = ["| chapter | questions | points | autograder |", "|---|---|---|---|"]
    for info in done:
        names = ", ".join(q for q, _ in info["questions"])
        total = sum(p for _, p in info["questions"])
        zipped = Path(info["zip"]).relative_to(out) if info["zip"] else "(none)"
        rows.append(f"| {info['name']} | {names} | {total:g} | `{zipped}` |")
    head = (
        "# Course kit: the book's exercises as Otter-Grader assignments\n\n"
        "Written by `python -m mgs_teach.lab course assign`. Each chapter's folder holds its\n"
        "master notebook (with solutions and tests), `requirements.txt` (the autograder's\n"
        "environment) and what `otter assign` made of them: `dist/student/` for students and\n"
        "`dist/autograder/` for grading.\n\n"
    )
    return head + "\n".join(rows) + "\n\n" + _HOW
