"""An Otter Assign master notebook (Otter's notebook format v1) from a parsed chapter.

The notebook opens with a raw ``# ASSIGNMENT CONFIG`` cell. The chapter's teaching cells
follow as they are; each exercise becomes a question::

    # BEGIN QUESTION        (raw: name, points)
    the exercise's statement (markdown)
    # BEGIN SOLUTION        (raw) the worked solution's prose, then one code cell: the
                            student's starting point (a signature, or name = ...) as an
                            Otter prompt string, and the solution's code, without the check
                            call, between # BEGIN SOLUTION NO PROMPT and # END SOLUTION
    # BEGIN TESTS           (raw) a public test, then a hidden one
    # END QUESTION

The tests are exception-based (a function whose arguments Otter takes from the notebook).
The hidden test runs the chapter's self-check with its random cases drawn anew (NumPy's
``default_rng`` re-seeded), so it grades on inputs the student has not seen, and it carries
the question's points. The public test (0 points) is the self-check on the chapter's own
cases, with its hints; where the check draws no random cases, so that re-seeding would
repeat it, the public test only checks that every answer is given, of the right kind.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import inspect
from typing import Any

import nbformat
import yaml

from mgs_teach.lab.course.chapter import Check, Exercise, plain_roles, without_check

__all__ = [
    "HIDDEN_SALT",
    "INSTALL_TAG",
    "assignment_config",
    "master_notebook",
    "otter_init_cell",
    "question_cells",
    "reseeds",
]

#: The tag of the chapters' Colab install cell (``scripts/install_cell.py``).
INSTALL_TAG = "colab-install"

#: Mixed into every seed of ``np.random.default_rng`` while a hidden test runs.
HIDDEN_SALT = 27_1729


def reseeds(function: str) -> bool:
    """Whether the check ``function`` draws its cases from ``np.random.default_rng``.

    Follows the check's calls into the helpers of its own module.
    """
    module = importlib.import_module(getattr(importlib.import_module("mgs_teach.checks"),
                                             function).__module__)  # fmt: skip
    defs = {n.name: n for n in ast.parse(inspect.getsource(module)).body
            if isinstance(n, ast.FunctionDef)}  # fmt: skip
    todo, seen = [function], set()
    while todo:
        name = todo.pop()
        if name in seen or name not in defs:
            continue
        seen.add(name)
        source = ast.unparse(defs[name])
        if "default_rng" in source:
            return True
        todo += [n.id for n in ast.walk(defs[name]) if isinstance(n, ast.Name)]
    return False


def _raw(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_raw_cell(text)


def _yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).strip()


def assignment_config(name: str, *, run_tests: bool = True) -> str:
    """The ``# ASSIGNMENT CONFIG`` cell: local files for the environment, no PDFs."""
    config = {
        "name": name,
        "requirements": "requirements.txt",
        "python_version": "3.11",
        "run_tests": run_tests,
        "init_cell": False,  # otter_init_cell, after the chapter's install cell
        "check_all_cell": True,
        "solutions_pdf": False,
        "template_pdf": False,
        "export_cell": {"pdf": False, "instructions": "Upload the zip file to Gradescope."},
        "generate": {"pdf": False, "show_stdout": True, "show_hidden": False},
        "tests": {"files": False, "ok_format": False},
    }
    return "# ASSIGNMENT CONFIG\n" + _yaml(config)


def otter_init_cell(name: str) -> nbformat.NotebookNode:
    """Otter's init cell, which also installs Otter where it is missing (Colab).

    Otter's own init cell would come first, before the chapter's install cell, and fail
    where Otter is not installed; this one installs the version that wrote the assignment.
    """
    version = importlib.metadata.version("otter-grader")
    source = f"""\
# Otter-Grader: grader.check("QUESTION") runs a question's public tests. In Colab or a fresh
# Jupyter it is installed first, at the version that made this assignment.
import importlib.util
import subprocess
import sys

if importlib.util.find_spec("otter") is None:
    pip = [sys.executable, "-m", "pip", "install", "-q", "otter-grader=={version}"]
    subprocess.run(pip, check=True)
    importlib.invalidate_caches()

import otter

grader = otter.Notebook("{name}.ipynb")"""
    return nbformat.v4.new_code_cell(source)


def _test(name: str, params: list[str], body: list[str], *, hidden: bool) -> str:
    """An exception-based test cell: a config block and one function."""
    config = f'""" # BEGIN TEST CONFIG\nhidden: {str(hidden).lower()}\n""" # END TEST CONFIG'
    lines = [config, f"def {name}({', '.join(params)}):", *[f"    {b}" for b in body]]
    return "\n".join(lines)


def _params(check: Check) -> list[str]:
    names = ["checks", *[a.name for a in check.answers], *check.names]
    return list(dict.fromkeys(names))


def public_test(check: Check) -> str:
    """The question's public test: the chapter's self-check, or that every answer is given."""
    call = f"checks.{check.function}({', '.join(check.args)})"
    if reseeds(check.function):
        return _test(f"test_{check.function}", _params(check), [f"assert {call}"], hidden=False)
    body = []
    for a in check.answers:
        body.append(f"assert {a.name} is not None and {a.name} is not ..., "
                    f"'give {a.name} a value'")  # fmt: skip
        if a.kind == "function":
            body.append(f"assert callable({a.name}), '{a.name} should be a function'")
    params = [a.name for a in check.answers]
    return _test(f"test_{check.function}_answered", params, body or ["pass"], hidden=False)


def hidden_test(check: Check) -> str:
    """The question's hidden test: the self-check, on random cases drawn anew."""
    call = f"checks.{check.function}({', '.join(check.args)})"
    body = [
        "import unittest.mock",
        "",
        "import numpy as np",
        "",
        "draw = np.random.default_rng",
        "",
        "def other(seed=None):",
        f"    return draw(seed if seed is None or not isinstance(seed, int) else "
        f"[seed, {HIDDEN_SALT}])",
        "",
        'with unittest.mock.patch("numpy.random.default_rng", other):',
        f"    assert {call}",
    ]
    return _test(f"test_{check.function}_hidden", _params(check), body, hidden=True)


def _statement(ex: Exercise) -> str:
    return f"### Exercise: {plain_roles(ex.title)}\n\n{plain_roles(ex.statement)}"


def question_cells(ex: Exercise, points: float) -> list[nbformat.NotebookNode]:
    """The cells of one question: statement, prompt, solution and tests."""
    check = ex.check
    assert check is not None, f"{ex.label}: no self-check call in the solution"
    config = {"name": ex.label.replace("-", "_"), "points": [0, points]}
    prompt = "\n\n".join(a.prompt for a in check.answers)
    code = [without_check(c) for c in ex.solution_code]
    code += [f"{a.name} = {a.source}" for a in check.answers if a.source]
    answer = "\n".join(['""" # BEGIN PROMPT', prompt, '"""  # END PROMPT',
                         "# BEGIN SOLUTION NO PROMPT", "\n\n".join(c for c in code if c.strip()),
                         "# END SOLUTION"])  # fmt: skip
    statement = nbformat.v4.new_markdown_cell(_statement(ex))
    cells = [_raw("# BEGIN QUESTION\n" + _yaml(config)), statement, _raw("# BEGIN SOLUTION")]
    cells += [nbformat.v4.new_markdown_cell("**Solution.** " + t) for t in ex.solution_text[:1]]
    cells += [nbformat.v4.new_markdown_cell(t) for t in ex.solution_text[1:]]
    cells.append(nbformat.v4.new_code_cell(answer))
    cells += [_raw("# END SOLUTION"), _raw("# BEGIN TESTS")]
    cells += [nbformat.v4.new_code_cell(t) for t in (public_test(check), hidden_test(check))]
    return cells + [_raw("# END TESTS"), _raw("# END QUESTION")]


def master_notebook(name: str, items: list[Any], *, points: float = 1,
                    run_tests: bool = True) -> nbformat.NotebookNode:  # fmt: skip
    """The master notebook of a chapter: its config, teaching cells and questions."""
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python",
                                  "name": "python3"}}  # fmt: skip
    cells = [_raw(assignment_config(name, run_tests=run_tests))]
    for item in items:
        if isinstance(item, Exercise):
            cells += question_cells(item, points)
        else:
            cells.append(nbformat.from_dict({**item, "id": nbformat.v4.new_code_cell().id}
                                            if "id" not in item else item))  # fmt: skip
            if INSTALL_TAG in item.get("metadata", {}).get("tags", []):
                cells.append(otter_init_cell(name))
    nb.cells = cells
    return nb
