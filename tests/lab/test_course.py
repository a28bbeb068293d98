"""The course kit: chapters as Otter-Grader assignments, graded with ``otter run``.

Two chapters go through the whole loop: ``measuring_mgs`` (theory) and ``mgs_penalty`` (the
cheapest chapter that trains models). For each, ``python -m mgs_teach.lab course assign``
writes the assignment and ``otter run`` grades three submissions against its autograder zip:
the solution notebook, the untouched student notebook, and the solution with one answer
made wrong. Grading executes the chapter (``MGS_SCALE=quick``), locally, without a network.
"""

import importlib.metadata
import json
import os
import re
import subprocess
import sys
import time
import zipfile

import install_cell
import nbformat
import pytest
from bookfiles import ROOT, chapters, exercises

from mgs_teach.lab.course import main as course_main
from mgs_teach.lab.course.assign import install_spec, requirements
from mgs_teach.lab.course.chapter import Exercise, parse_chapter
from mgs_teach.lab.course.master import master_notebook, reseeds
from tests.test_student_edition import normalise, phrases, public_text

pytestmark = pytest.mark.book

#: Per chapter: the question made wrong, and the code that makes it wrong (appended to the
#: cell that defines the answer, so the answer is a plausible mistake, not a missing one).
WRONG = {
    "measuring_mgs": ("mm_ex_centred_kernel", "def centre_kernel",
                      "def centre_kernel(k):\n    return np.asarray(k, dtype=float)  # uncentred"),
    "mgs_penalty": ("pen_ex_output_gradient", "def output_gradient",
                    "_mean_gradient = output_gradient\n\n\ndef output_gradient(logits, y):\n"
                    "    return _mean_gradient(logits, y) * len(y)  # the sum's, not the mean's"),
}  # fmt: skip


def otter_run(zip_path, notebook, out):
    """Grade ``notebook`` with ``otter run``: (scores by question, seconds)."""
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "MGS_SCALE": "quick"}
    start = time.perf_counter()
    cmd = [sys.executable, "-m", "otter", "run", "--no-logo", "-a", str(zip_path), "-o", str(out),
           str(notebook)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=notebook.parent)
    seconds = time.perf_counter() - start
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    tests = json.loads((out / "results.json").read_text())["tests"]
    scores = {t["name"]: (t["score"], t["max_score"]) for t in tests if "score" in t}
    print(f"{notebook.name} ({out.name}): {sum(s for s, _ in scores.values())} / "
          f"{sum(m for _, m in scores.values())} in {seconds:.0f} s")  # fmt: skip
    return scores, seconds


def wrong_submission(solution, folder, marker, code):
    """The solution notebook with one answer replaced by a wrong one."""
    nb = nbformat.read(solution, as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code" and marker in c.source)
    cell.source += "\n\n\n" + code + "\n"
    path = folder / solution.name
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """The two chapters assigned with the command line, and their three gradings each."""
    out = tmp_path_factory.mktemp("course")
    names = list(WRONG)
    cmd = [sys.executable, "-m", "mgs_teach.lab", "course", "assign",
           *[f"book/{n}.ipynb" for n in names], str(out)]  # fmt: skip
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    graded = {}
    for name in names:
        dist = out / name / "dist"
        zip_path = next((dist / "autograder").glob("*.zip"))
        solution = dist / "autograder" / f"{name}.ipynb"
        question, marker, code = WRONG[name]
        wrong = wrong_submission(solution, out / "wrong" / name, marker, code)
        graded[name] = {
            "solution": otter_run(zip_path, solution, out / "graded" / f"{name}-solution"),
            "student": otter_run(zip_path, dist / "student" / f"{name}.ipynb",
                                 out / "graded" / f"{name}-student"),
            "wrong": otter_run(zip_path, wrong, out / "graded" / f"{name}-wrong"),
        }  # fmt: skip
    return out, graded


def test_every_exercise_of_every_chapter_becomes_a_question():
    """Cheap, for all chapters: the master notebook has one question per exercise, with the
    exercise's self-check, and an answer for the student to write."""
    for chapter in chapters():
        items = parse_chapter(chapter)
        found = [i for i in items if isinstance(i, Exercise)]
        assert [e.label for e in found] == [e.label for e in exercises(chapter)], chapter.name
        for ex in found:
            assert ex.check is not None and ex.check.answers, f"{ex.label}: no answer found"
        nb = master_notebook(chapter.stem, items)
        raw = [c.source for c in nb.cells if c.cell_type == "raw"]
        assert raw[0].startswith("# ASSIGNMENT CONFIG")
        assert sum(r.startswith("# BEGIN QUESTION") for r in raw) == len(found)


def test_the_command_takes_chapters_or_all(tmp_path, monkeypatch):
    for argv in (["assign", str(tmp_path)], ["assign", "--all", "book/gd_step.ipynb", "x"]):
        with pytest.raises(SystemExit):
            course_main(argv)
    monkeypatch.chdir(tmp_path)  # no _toc.yml here
    with pytest.raises(SystemExit):
        course_main(["assign", "--all", str(tmp_path / "out")])


def test_reseeding_is_detected():
    assert reseeds("mse_update") and reseeds("paper_aggregate")  # the latter via a helper
    assert not reseeds("max_stable_lr") and not reseeds("singular_batch")


def test_the_autograder_installs_mgs_teach_as_the_colab_cell_does(course):
    out, _ = course
    spec = install_spec(ROOT / "book" / "measuring_mgs.ipynb")
    assert f'"{spec}"' in install_cell.install_source()  # the cell of scripts/install_cell.py
    version = importlib.metadata.version("mgs-teach")
    assert spec.endswith(f"@v{version}")
    pinned = re.search(r"^otter-grader==\S+$", (ROOT / "requirements.txt").read_text(), re.M)
    assert pinned, "requirements.txt pins otter-grader"
    for name in WRONG:
        with zipfile.ZipFile(next((out / name / "dist" / "autograder").glob("*.zip"))) as z:
            env = z.read("environment.yml").decode()
        assert f"archive/refs/tags/v{version}.zip" in env and "mgs-teach[mnist] @" in env
        assert requirements(ROOT / "book" / f"{name}.ipynb").splitlines()[-1] in env
        tested = re.escape(pinned.group(0).split("==")[1])  # the Otter of these tests
        assert re.search(rf"otter-grader\S*=={tested}$", env, re.M), env


@pytest.mark.parametrize("name", list(WRONG))
def test_the_solution_gets_full_marks(course, name):
    scores, _ = course[1][name]["solution"]
    assert len(scores) == len(exercises(ROOT / "book" / f"{name}.ipynb"))
    assert all(score == top > 0 for score, top in scores.values()), scores


@pytest.mark.parametrize("name", list(WRONG))
def test_the_untouched_student_notebook_gets_zero(course, name):
    scores, _ = course[1][name]["student"]
    assert len(scores) == len(exercises(ROOT / "book" / f"{name}.ipynb"))
    assert all(score == 0 for score, _ in scores.values()), scores


@pytest.mark.parametrize("name", list(WRONG))
def test_one_wrong_answer_loses_exactly_its_points(course, name):
    right, _ = course[1][name]["solution"]
    scores, _ = course[1][name]["wrong"]
    question = WRONG[name][0]
    assert scores[question][0] == 0 and right[question][0] > 0
    assert {q: s for q, s in scores.items() if q != question} == {
        q: s for q, s in right.items() if q != question}  # fmt: skip


def _tests_in_zip(zip_path):
    with zipfile.ZipFile(zip_path) as z:
        return {n: z.read(n).decode() for n in z.namelist() if n.startswith("tests/")}


@pytest.mark.parametrize("name", list(WRONG))
def test_public_and_hidden_tests_differ(course, name):
    """Each question has a public test worth 0 and a different, hidden test worth its points."""
    out, _ = course
    zip_path = next((out / name / "dist" / "autograder").glob("*.zip"))
    for path, text in _tests_in_zip(zip_path).items():
        cases = text.split("@test_case(")[1:]
        assert len(cases) == 2 and "hidden=False" in cases[0] and "hidden=True" in cases[1]
        assert re.search(r"^points = \[0, [1-9]", text, re.M), path
        bodies = [c.split("\n", 2)[2] for c in cases]  # after the decorator and the def line
        assert bodies[0].strip() != bodies[1].strip(), path


@pytest.mark.parametrize("name", list(WRONG))
def test_no_solution_text_reaches_the_student_notebook(course, name):
    """The student edition's leak check, on the student notebook and its public tests. The
    answers' signatures (``def f(x):``) and the public tests' calls of the self-checks
    (``assert checks.f(f)``) are given on purpose and are the only exceptions."""
    out, _ = course
    chapter = ROOT / "book" / f"{name}.ipynb"
    nb = json.loads((out / name / "dist" / "student" / f"{name}.ipynb").read_text())
    text = normalise("\n".join("".join(c["source"]) for c in nb["cells"]) + json.dumps(
        nb["metadata"], ensure_ascii=False))  # fmt: skip
    given = []  # the answers' starting points, and the self-check calls of the public tests
    for item in parse_chapter(chapter):
        if isinstance(item, Exercise):
            given += [line for a in item.check.answers for line in a.prompt.splitlines()]
            given.append(f"assert checks.{item.check.function}({', '.join(item.check.args)})")
    prompts = set(map(normalise, given))
    public = public_text(chapter)
    for ex in exercises(chapter):
        assert normalise(ex.title) in text, f"{ex.label}: exercise missing"
        leaked = [p for p in phrases(ex, public) if p in text and p not in prompts]
        assert not leaked, f"{ex.label}: solution text in the student notebook: {leaked[:2]}"
    assert "BEGIN SOLUTION" not in text and "hidden=True" not in text


def test_the_course_readme(course):
    out, graded = course
    readme = (out / "README.md").read_text()
    for name in WRONG:
        assert f"| {name} |" in readme
    for words in ("Gradescope", "otter run", "otter grade", "points: [0, N]"):
        assert words in readme
    seconds = max(g["solution"][1] for g in graded.values())
    assert seconds < 300, f"a submission took {seconds:.0f} s to grade"
