"""The instructor page, book/instructors.md, checked against the chapters without a build,
and its rendered form against the build that made it.

Each chapter has a section on the page, opened by the target ``(instr-<notebook stem>)=``
and a heading; it links the chapter, lists every exercise of the chapter by label and title,
names the self-check of every exercise that has one, and gives a run time at both scales.
No count or measured time is typed: ``_ext/book_fixes.py`` fills them in at build time (the
``{mgs-chapter-table}`` directive, the ``{mgs-runtime}`` and ``{mgs-walltime}`` roles).
"""

import html as htmllib
import json
import re
import sys

import pytest
import yaml
from bookfiles import ROOT, chapters, exercises

from mgs_teach import checks

sys.path.insert(0, str(ROOT / "_ext"))
import book_fixes  # noqa: E402

PAGE = ROOT / "book" / "instructors.md"
CHECK = re.compile(r"checks\.([A-Za-z_]\w*)")
TIME = r"\d+(?:[.,]\d+)?(?:[–-]\d+(?:[.,]\d+)?)?\s*(?:s|min|h|hours?|GPU-hours?)\b"


@pytest.fixture(scope="module")
def text():
    return PAGE.read_text()


@pytest.fixture(scope="module")
def sections(text):
    """``{notebook stem: text of its section}``, from its target to the next heading."""
    found = {}
    for m in re.finditer(r"^\(instr-([\w-]+)\)=\n## ", text, re.M):
        rest = text[m.end() :]
        nxt = re.search(r"^(?:\(instr-[\w-]+\)=\n)?## ", rest, re.M)
        found[m.group(1)] = rest[: nxt.start()] if nxt else rest
    return found


def exercise_row(section, label):
    """The table row of a section that starts with a reference to ``label``, or ``""``."""
    row = re.search(rf"^\|\s*\{{ref\}}`{re.escape(label)}`.*$", section, re.M)
    return row[0] if row else ""


def test_page_is_in_the_toc_before_the_back_matter():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    captions = [part["caption"] for part in toc["parts"]]
    assert captions.index("For instructors") == captions.index("Back matter") - 1
    part = toc["parts"][captions.index("For instructors")]
    assert [ch["file"] for ch in part["chapters"]] == ["book/instructors"]


def test_every_chapter_has_a_section_in_toc_order(text, sections):
    stems = [path.stem for path in chapters()]
    assert list(sections) == stems
    for stem, body in sections.items():
        assert f"{{doc}}`{stem}`" in body, f"{stem}: its section does not link the chapter"


def test_every_exercise_has_a_row_in_its_chapter_section(text, sections):
    labels = set()
    for path in chapters():
        for ex in exercises(path):
            assert ex.label, f"{path.name}: an exercise without a label"
            labels.add(ex.label)
            row = exercise_row(sections[path.stem], ex.label)
            assert row, f"{ex.label} is not listed in the section of {path.name}"
            assert ex.title in row, f"{ex.label}: its row does not give its title {ex.title!r}"
    unknown = set(re.findall(r"\{ref\}`([^`<>]+)`", text)) - labels
    assert not unknown, f"references to no exercise: {sorted(unknown)}"


def test_self_checks_exist_and_match_the_exercises(text, sections):
    named = set(CHECK.findall(text))
    assert named, "the page names no self-check"
    unknown = named - set(checks.__all__)
    assert not unknown, f"not in mgs_teach.checks: {sorted(unknown)}"
    for path in chapters():
        for ex in exercises(path):
            row = exercise_row(sections[path.stem], ex.label)
            for name in CHECK.findall(ex.statement):
                assert row and f"checks.{name}" in row, f"{ex.label}: checks.{name} not named"


def test_every_chapter_states_a_run_time_at_each_scale(sections):
    """``quick``: the time this build measured, filled in by the build; ``full``: an estimate."""
    for stem, body in sections.items():
        assert re.search(rf"^- `quick`: \{{mgs-runtime\}}`{stem}`", body, re.M), f"{stem}: quick"
        full = re.search(rf"^- `full`:.*?{TIME}.*?\(estimate\)", body, re.M | re.S)
        assert full, f"{stem}: no `full` estimate"


def chapter_table(text):
    """The content lines of the page's ``{mgs-chapter-table}``: ``{stem: full estimate}``."""
    block = re.search(r"^```\{mgs-chapter-table\}\n(.*?)^```", text, re.M | re.S)
    assert block, "the page has no {mgs-chapter-table}"
    return dict(line.split(":", 1) for line in block[1].splitlines() if line.strip())


def test_chapter_table_lists_every_chapter_in_toc_order_with_an_estimate(text):
    table = chapter_table(text)
    assert list(table) == [path.stem for path in chapters()]
    for stem, full in table.items():
        assert re.search(TIME, full) and "estimate" in full, f"{stem}: {full!r}"


def test_exercise_counts_and_working_times_come_from_the_chapters(text, sections):
    """What the build writes in the table: as many exercises as the chapter has, and the sum
    of the times that its section gives them."""
    for path in chapters():
        found = exercises(path)
        assert book_fixes.exercise_count(path) == len(found) > 0, path.name
        rows = [exercise_row(sections[path.stem], ex.label) for ex in found]
        times = [re.search(r"\|\s*(\d+)\s*min\s*\|\s*$", row) for row in rows]
        assert all(times), f"{path.name}: an exercise row without a time in minutes"
        minutes = sum(int(t[1]) for t in times)
        assert book_fixes.working_minutes(text, path.stem) == minutes, path.name


def test_no_count_or_measured_time_is_typed(text):
    assert not re.search(r"\d\s*(?:s|min)\s+measured|\(measured|\bpending\b", text)
    assert not re.search(r"^\|\s*\{doc\}`\w+`\s*\|\s*\d+\s*\|", text, re.M), "a typed table"
    for name in re.findall(r"\{mgs-walltime\}`([^`]+)`", text):
        provenance = json.loads(book_fixes.provenance_path(ROOT, name).read_text())
        assert provenance["total_wall_s"] > 0, name


def test_times_and_counts_in_words():
    assert book_fixes.seconds_text(33.8) == "34 s"
    assert book_fixes.seconds_text(299.4) == "5 min"
    assert book_fixes.seconds_text(2873.0) == "47.9 min"
    assert book_fixes.seconds_text(9000) == "2.5 h"
    assert book_fixes.seconds_text(None) == book_fixes.NOT_EXECUTED
    assert book_fixes.hours_and_minutes(175) == "2 h 55 min"
    assert book_fixes.hours_and_minutes(45) == "45 min"
    assert book_fixes.hours_and_minutes(120) == "2 h"
    page = "(instr-a)=\n| {ref}`x` | t | k | 20 min |\n| {ref}`y` | t | k | 5 min |\n(instr-b)=\n"
    assert book_fixes.working_minutes(page, "a") == 25
    assert book_fixes.working_minutes(page, "b") == 0


def _rows(table_html):
    """The cells' text of each row of an HTML table."""
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table_html, re.S)
    cell = re.compile(r"<t[dh][^>]*>(.*?)</t[dh]>", re.S)
    return [[" ".join(htmllib.unescape(re.sub(r"<[^>]+>", "", c)).split()) for c in cell.findall(r)]
            for r in rows]  # fmt: skip


@pytest.mark.book
def test_rendered_table_agrees_with_the_chapters_and_the_measured_times(html):
    """The chapter table of the built page: each chapter's count of exercises, and its
    `quick` time equal to the one in the page's own table of measured execution times."""
    page = (html / "book" / "instructors.html").read_text()
    tables = re.findall(r"<table.*?</table>", page, re.S)
    ours = next(t for t in tables if "Exercises" in t and "Working time" in t)
    measured = next(t for t in tables if "Run Time (s)" in t)
    seconds = {r[0].removeprefix("book/"): float(r[3]) for r in _rows(measured)[1:] if r[3] != "-"}
    rows = _rows(ours)[1:]  # the chapters in the order of the toc, each linked by its title
    assert len(rows) == len(chapters())
    for path, row in zip(chapters(), rows, strict=True):
        assert row[1] == str(len(exercises(path))), row
        assert row[3] == book_fixes.seconds_text(seconds[path.stem]), (row, seconds[path.stem])
    text = re.sub(r"<[^>]+>", " ", page)
    for stem, secs in seconds.items():
        assert book_fixes.seconds_text(secs) in text, stem
    assert "{mgs-" not in text and book_fixes.NOT_EXECUTED not in text


def test_execution_table_is_rendered_by_the_build(text):
    assert re.search(r"^```\{nb-exec-table\}\s*$", text, re.M)


def test_page_gives_away_no_solution(text):
    """No run of six plain words of a worked solution's prose, nor a longer line of its code
    that the exercise statement does not itself contain: the page is in the student edition."""

    def normal(s):
        return " ".join(s.split())

    page = normal(text)
    for path in chapters():
        for ex in exercises(path):
            pieces = [c for c in re.split(r"[$`*{}\[\]\n]|\\\w+", ex.solution_text)
                      if len(c.split()) >= 6]  # fmt: skip
            pieces += [line for code in ex.solution_code for line in code.splitlines()
                       if len(line.strip()) >= 30 and not line.strip().startswith("#")]  # fmt: skip
            statement = normal(ex.statement)
            leaked = [p for p in map(normal, pieces) if p not in statement and p in page]
            assert not leaked, f"{ex.label}: solution text on the page: {leaked[:2]}"
