"""The book's files: the pages of ``_toc.yml``, and the exercises and solutions of a chapter.

Used by the scripts in this folder and by the tests. A chapter marks its exercises with
sphinx-exercise's ``{exercise}`` directive and each worked solution with a gated
``{solution-start}`` ... ``{solution-end}`` pair, which may enclose code cells.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def toc_files() -> list[Path]:
    """Every file listed in _toc.yml, with its extension resolved."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    names = [toc["root"]]
    for part in toc.get("parts", []):
        names += [ch["file"] for ch in part["chapters"]]
    files = []
    for name in names:
        matches = [p for ext in (".ipynb", ".md") if (p := ROOT / f"{name}{ext}").exists()]
        assert len(matches) == 1, f"{name} should exist as exactly one of .ipynb or .md"
        files.append(matches[0])
    return files


def chapters() -> list[Path]:
    """The executable chapters (notebooks) of the book."""
    return [p for p in toc_files() if p.suffix == ".ipynb"]


@dataclasses.dataclass
class Exercise:
    """One exercise of a chapter and its worked solution."""

    label: str
    title: str
    statement: str
    solution_text: str = ""
    solution_code: list[str] = dataclasses.field(default_factory=list)


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def _directives(text: str) -> list[re.Match]:
    return list(re.finditer(r"```\{(exercise|solution-start|solution-end)\}([^\n]*)", text))


def exercises(path: Path) -> list[Exercise]:
    """The exercises of a chapter notebook, in order, each with its solution."""
    found: list[Exercise] = []
    inside = False
    for cell in json.loads(path.read_text())["cells"]:
        text = _source(cell)
        if cell["cell_type"] == "code":
            if inside:
                found[-1].solution_code.append(text)
            continue
        pos = 0
        for m in _directives(text):
            if inside:
                found[-1].solution_text += text[pos : m.start()]
            kind = m.group(1)
            end = text.index("\n```", m.end()) + 4
            if kind == "exercise":
                body = text[m.end() : end - 4]
                label = re.search(r":label:\s*(\S+)", body)
                statement = "\n".join(ln for ln in body.splitlines() if not ln.startswith(":"))
                found.append(Exercise(label.group(1) if label else "", m.group(2).strip(),
                                      statement.strip()))  # fmt: skip
            inside = kind == "solution-start"
            pos = end
        if inside:
            found[-1].solution_text += text[pos:]
    return found


def strip_solutions(nb: dict) -> dict:
    """A copy of a notebook without its solutions: prose and code between ``{solution-start}``
    and ``{solution-end}`` (both included) are removed, everything else is kept."""
    cells, inside = [], False
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            if not inside:
                cells.append(cell)
            continue
        text, kept, pos = _source(cell), [], 0
        for m in _directives(text):
            end = text.index("\n```", m.end()) + 4
            if m.group(1) == "solution-start":
                kept.append(text[pos : m.start()])
                inside = True
            elif m.group(1) == "solution-end":
                inside = False
            elif not inside:  # an exercise: keep it and the prose before it
                kept.append(text[pos:end])
            pos = end
        if not inside:
            kept.append(text[pos:])
        new = "".join(kept).strip("\n")
        if new.strip():
            cells.append({**cell, "source": new.splitlines(keepends=True)})
    return {**nb, "cells": cells}
