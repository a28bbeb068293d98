"""A chapter notebook read as teaching cells and exercises, each with its solution and check.

A chapter marks an exercise with sphinx-exercise's ``{exercise}`` directive and its worked
solution with the extension's gated solution directives (a start and an end marker, see
``_DIRECTIVE``), which may enclose code cells. The last of those code cells that calls a
self-check (``assert checks.NAME(...)``) holds the exercise's answer: the arguments of the
call that the solution defines (a function or a value), or that it writes out (an
expression, such as ``(C - 1) / C``).
"""

from __future__ import annotations

import ast
import dataclasses
import json
import re
from pathlib import Path
from typing import Any

__all__ = ["Answer", "Check", "Exercise", "parse_chapter"]

_DIRECTIVE = re.compile(r"```\{(exercise|solution-start|solution-end)\}([^\n]*)")
_ROLE = re.compile(r"\{[\w:.-]+\}`([^`<]*?)\s*(?:<([^>]*)>)?`")


@dataclasses.dataclass
class Answer:
    """What a student writes: a function (``kind="function"``) or a value (``"value"``).

    ``prompt`` is the student's starting point (a signature with ``...``, or ``name = ...``);
    ``source`` is set for an answer written out in the check call, which the solution then
    assigns to ``name``.
    """

    name: str
    kind: str
    prompt: str
    source: str = ""


@dataclasses.dataclass
class Check:
    """A self-check call: ``checks.<function>(<args>)``, its answers and the other names."""

    function: str
    args: list[str]
    answers: list[Answer]
    names: list[str]


@dataclasses.dataclass
class Exercise:
    """One exercise: its statement, its worked solution (prose and code) and its check."""

    label: str
    title: str
    statement: str
    solution_text: list[str] = dataclasses.field(default_factory=list)
    solution_code: list[str] = dataclasses.field(default_factory=list)
    check: Check | None = None


def _source(cell: dict[str, Any]) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def plain_roles(text: str) -> str:
    """MyST roles as plain text: ``{eq}`eq-x``` -> ``(eq-x)``, ``{ref}`words <x>``` -> words."""

    def sub(m: re.Match[str]) -> str:
        return m.group(1) if m.group(1) else f"({m.group(2) or ''})"

    return _ROLE.sub(lambda m: sub(m) if m.group(1) or m.group(2) else m.group(0), text)


def _exercise(head: re.Match[str], body: str) -> Exercise:
    label = re.search(r":label:\s*(\S+)", body)
    statement = "\n".join(ln for ln in body.splitlines() if not ln.startswith(":")).strip()
    return Exercise(label.group(1) if label else "", head.group(2).strip(), statement)


def parse_chapter(path: Path) -> list[dict[str, Any] | Exercise]:
    """The chapter as a list of teaching cells (notebook cells) and exercises, in order.

    Markdown cells are split at the directives: prose outside solutions stays a markdown
    cell, each exercise becomes an :class:`Exercise` with its solution's prose and code.
    """
    items: list[dict[str, Any] | Exercise] = []
    inside = False
    for cell in json.loads(path.read_text())["cells"]:
        if cell["cell_type"] != "markdown":
            if inside:
                items[-1].solution_code.append(_source(cell))  # type: ignore[union-attr]
            else:
                items.append({**cell, "outputs": [], "execution_count": None}
                             if cell["cell_type"] == "code" else cell)  # fmt: skip
            continue
        text, pos = _source(cell), 0
        for m in _DIRECTIVE.finditer(text):
            end = text.index("\n```", m.end()) + 4
            _add_text(items, text[pos : m.start()], inside)
            if m.group(1) == "exercise":
                items.append(_exercise(m, text[m.end() : end - 4]))
            inside = m.group(1) == "solution-start"
            pos = end
        _add_text(items, text[pos:], inside)
    for item in items:
        if isinstance(item, Exercise):
            item.check = find_check(item)
    return items


def _add_text(items: list[dict[str, Any] | Exercise], text: str, inside: bool) -> None:
    """Prose: part of the current solution, or a markdown cell of its own."""
    text = text.strip("\n")
    if not text.strip():
        return
    if inside:
        items[-1].solution_text.append(text)  # type: ignore[union-attr]
    else:
        items.append({"cell_type": "markdown", "metadata": {}, "source": text})


def _check_call(tree: ast.Module) -> ast.Call | None:
    """The ``assert checks.NAME(...)`` statement's call, at the top level of a cell."""
    for node in tree.body:
        call = node.test if isinstance(node, ast.Assert) else None
        func = call.func if isinstance(call, ast.Call) else None
        if isinstance(func, ast.Attribute) and getattr(func.value, "id", "") == "checks":
            return call
    return None


def _defined(code: list[str]) -> dict[str, ast.AST]:
    """Names that the solution's cells define at their top level (functions and values)."""
    found: dict[str, ast.AST] = {}
    for source in code:
        for node in ast.parse(source).body:
            if isinstance(node, ast.FunctionDef):
                found[node.name] = node
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    for name in ast.walk(target):
                        if isinstance(name, ast.Name):
                            found[name.id] = node
    return found


def _prompt(name: str, node: ast.AST) -> Answer:
    if isinstance(node, ast.FunctionDef):
        signature = ast.unparse(node.args)
        return Answer(name, "function", f"def {name}({signature}):\n    ...")
    return Answer(name, "value", f"{name} = ...")


def find_check(ex: Exercise) -> Check | None:
    """The exercise's self-check call and its answers, from the solution's code cells."""
    defined = _defined(ex.solution_code)
    for source in reversed(ex.solution_code):
        call = _check_call(ast.parse(source))
        if call is None:
            continue
        answers: list[Answer] = []
        args: list[str] = []
        names: list[str] = []
        for arg in call.args:
            if isinstance(arg, ast.Name) and arg.id in defined:
                answers.append(_prompt(arg.id, defined[arg.id]))
                args.append(arg.id)
            elif isinstance(arg, ast.Name):
                names.append(arg.id)
                args.append(arg.id)
            else:  # an answer written out in the call
                name = f"{call.func.attr}_answer" + (f"_{len(answers)}" if answers else "")  # type: ignore[attr-defined]
                answers.append(Answer(name, "value", f"{name} = ...", ast.unparse(arg)))
                args.append(name)
        return Check(call.func.attr, args, answers, names)  # type: ignore[attr-defined]
    return None


def without_check(source: str) -> str:
    """A solution cell without its ``assert checks.NAME(...)`` statement (the tests run it)."""
    tree = ast.parse(source)
    lines = source.splitlines()
    for node in tree.body:
        if isinstance(node, ast.Assert) and _check_call(ast.Module([node], [])) is not None:
            del lines[node.lineno - 1 : node.end_lineno]
            break
    return "\n".join(lines).strip("\n")
