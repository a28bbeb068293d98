"""The parser of exercises and solutions, and the solution stripper of the student edition."""

import json

from bookfiles import exercises, strip_solutions


def md(text):
    return {"cell_type": "markdown", "metadata": {}, "source": text.splitlines(keepends=True)}


def code(text):
    return {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
            "source": text.splitlines(keepends=True)}  # fmt: skip


NB = {
    "cells": [
        md("# Chapter\n\nSome prose.\n\n```{exercise} Add two numbers\n:label: ex-add\n\n"
           "Write `add(a, b)`; check it with `checks.add(add)`.\n```\n\n"
           "```{solution-start} ex-add\n:class: dropdown\n```\n\nJust use the plus sign."),
        code("def add(a, b):\n    return a + b"),
        md("```{solution-end}\n```\n\n## Next section\n\nMore prose."),
        md("```{exercise} Think\n:label: ex-think\n\nWhy?\n```\n\n"
           "```{solution-start} ex-think\n```\nBecause.\n```{solution-end}\n```"),
        code("print('after the solutions')"),
    ],
    "metadata": {},
    "nbformat": 4,
    "nbformat_minor": 5,
}  # fmt: skip


def test_exercises_are_parsed_with_their_solutions(tmp_path):
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(NB))
    first, second = exercises(path)
    assert (first.label, first.title) == ("ex-add", "Add two numbers")
    assert "checks.add(add)" in first.statement and ":label:" not in first.statement
    assert "Just use the plus sign." in first.solution_text
    assert first.solution_code == ["def add(a, b):\n    return a + b"]
    assert "Next section" not in first.solution_text
    assert (second.label, second.solution_text.strip(), second.solution_code) == (
        "ex-think", "Because.", [])  # fmt: skip


def test_strip_solutions_keeps_everything_else():
    text = json.dumps(strip_solutions(NB))
    for kept in ["Some prose.", "Add two numbers", "checks.add(add)", "Next section",
                 "More prose.", "Why?", "after the solutions"]:  # fmt: skip
        assert kept in text
    for gone in ["plus sign", "return a + b", "Because.", "solution-start", "solution-end"]:
        assert gone not in text
