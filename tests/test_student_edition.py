"""The student edition has every exercise and no solution text, anywhere in its build."""

import html as html_lib
import json
import re

import pytest
import student_edition
from bookfiles import chapters, exercises, strip_solutions

pytestmark = pytest.mark.book

QUOTES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "–": "--", "—": "---"})


def normalise(text):
    return " ".join(text.translate(QUOTES).split())


def site_text(folder):
    """Every text a reader can reach: pages (tags removed), sources, notebooks, scripts."""
    parts = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or "_static" in path.parts:
            continue
        if path.suffix == ".html":
            parts.append(html_lib.unescape(re.sub(r"<[^>]+>", "", path.read_text())))
        elif path.suffix == ".ipynb":
            cells = json.loads(path.read_text())["cells"]
            parts += ["".join(c["source"]) for c in cells]
        elif path.suffix in (".txt", ".md", ".js", ".py"):
            parts.append(path.read_text(errors="ignore"))
    return normalise("\n".join(parts))


def public_text(chapter):
    """A chapter's text outside its solutions."""
    cells = strip_solutions(json.loads(chapter.read_text()))["cells"]
    return normalise("\n".join("".join(c["source"]) for c in cells))


def phrases(ex, public):
    """Distinctive pieces of a worked solution: runs of six or more plain words of its prose
    (split at maths, roles and markup) and its longer code lines, less those that the chapter
    also has outside its solutions (such as the call of a self-check, named in the exercise)."""
    found = []
    for chunk in re.split(r"[$`*{}\[\]\n]|\\\w+", ex.solution_text):
        if len(chunk.split()) >= 6:
            found.append(normalise(chunk))
    for code in ex.solution_code:
        for line in code.splitlines():
            if len(line.strip()) >= 30 and not line.strip().startswith("#"):
                found.append(normalise(line))
    return [p for p in found if p not in public]


@pytest.fixture(scope="module")
def student_html(book_build, tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    return student_edition.main(["--executed", str(book_build / "jupyter_execute"),
                                 "--out", str(out)])  # fmt: skip


def test_solutions_are_visible_in_the_normal_edition(html):
    """The leak check below can see solutions: in the normal edition it finds them all."""
    text = site_text(html)
    for chapter in chapters():
        public = public_text(chapter)
        for ex in exercises(chapter):
            assert any(p in text for p in phrases(ex, public)), f"{ex.label}: no phrase found"


def test_student_edition_has_every_exercise_and_no_solution(student_html):
    text = site_text(student_html)
    pages = "".join(p.read_text() for p in student_html.rglob("*.html"))
    assert 'class="solution' not in pages
    assert "(student edition)" in pages
    for chapter in chapters():
        public = public_text(chapter)
        for ex in exercises(chapter):
            assert normalise(ex.title) in text, f"{ex.label}: exercise missing"
            leaked = [p for p in phrases(ex, public) if p in text]
            assert not leaked, f"{ex.label}: solution text in the student edition: {leaked[:2]}"
    assert not (student_html / "_sources").exists() or "solution-start" not in text
