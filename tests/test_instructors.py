"""The instructor page, book/instructors.md, checked against the chapters without a build.

Each chapter has a section on the page, opened by the target ``(instr-<notebook stem>)=``
and a heading; it links the chapter, lists every exercise of the chapter by label and title,
names the self-check of every exercise that has one, and gives a run time at both scales.
"""

import re

import pytest
import yaml
from bookfiles import ROOT, chapters, exercises

from mgs_teach import checks

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


@pytest.mark.parametrize("scale", ["quick", "full"])
def test_every_chapter_states_a_run_time_at_each_scale(sections, scale):
    for stem, body in sections.items():
        assert re.search(rf"^- `{scale}`:.*?{TIME}", body, re.M), f"{stem}: no `{scale}` time"


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
