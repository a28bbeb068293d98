"""The chapters run where readers run them: from an installed wheel, outside the repository.

The wheel is built from a copy of the sources (offline, without build isolation), installed
with ``pip install --no-deps --target`` into a folder of its own, and the chapters that read
committed results are copied alone into another folder and executed there, with that folder
first on the kernel's path, as Colab runs them after its install cell.
"""

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import pytest
from bookfiles import ROOT

sys.path.insert(0, str(ROOT / "_ext"))
import parallel_execute  # noqa: E402

#: The chapters that read committed results, and the results they read.
CHAPTERS = ("mnist", "regression")
COMMITTED = ("mnist-cpu", "regression-cpu", "regression-cpu-scaled", "regression-pilot",
             "testbench-cpu", "figure3-cpu", "long_fcn-cpu", "figure4-cpu", "bench")  # fmt: skip
SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "LICENSE", "results")

#: The form the chapters had before ``summaries.results_dir``: a path beside the package.
OLD_ROOT = re.compile(r'ROOT / "results" / "([^"]+)"')
#: Appended to each chapter, and removed again before the chapter is compared.
WHERE = """\
import importlib.util, mgs_teach
print("mgs_teach from", mgs_teach.__file__)
print("found as", importlib.util.find_spec("mgs_teach").origin)"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built offline from a copy of the sources (the repository stays clean)."""
    src, dist = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("dist")
    for name in SOURCES:
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy2)(ROOT / name, src / name)
    shutil.copytree(ROOT / "mgs_teach", src / "mgs_teach",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
           "--no-index", "-q", "-w", str(dist), str(src)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    (path,) = dist.glob("mgs_teach-*.whl")
    return path


@pytest.fixture(scope="module")
def site(wheel, tmp_path_factory) -> Path:
    """The wheel installed alone into a folder (no dependencies: the test's own are used)."""
    target = tmp_path_factory.mktemp("site")
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q",
           "--target", str(target), str(wheel)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return target


def _python(site: Path, code: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def test_the_wheel_carries_the_committed_results(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in COMMITTED:
        files = [f for f in (ROOT / "results" / name).rglob("*") if f.is_file()]
        assert files, f"results/{name} is committed"
        for f in files:
            assert f"mgs_teach/_results/{f.relative_to(ROOT / 'results').as_posix()}" in names
    assert not any(".checkpoints" in n or "__pycache__" in n for n in names)
    assert not any(n.startswith("results/") for n in names), "results/ belongs in the package"


def test_an_installed_wheel_reads_its_own_copy(site, tmp_path):
    code = """if True:
        from pathlib import Path
        from mgs_teach.lab import summaries
        print(Path(summaries.__file__).resolve().parents[1])
        print(summaries.results_dir("mnist-cpu"))
        print(summaries.results_dir("mnist-paper"))
        print(summaries.load_mnist_results(summaries.results_dir("mnist-paper")))"""
    done = _python(site, code, tmp_path)
    assert done.returncode == 0, done.stderr
    package, cpu, paper, none = done.stdout.split("\n")[:4]
    assert Path(package) == (site / "mgs_teach").resolve()
    assert Path(cpu) == Path(package) / "_results" / "mnist-cpu"
    assert Path(paper) == tmp_path.resolve() / "results" / "mnist-paper"  # where the CLI writes
    assert none == "None"


def test_a_package_without_results_says_so(site, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(site / "mgs_teach", bare / "mgs_teach",
                    ignore=shutil.ignore_patterns("_results"))  # fmt: skip
    done = _python(bare, "from mgs_teach.lab import summaries; summaries.results_dir('mnist-cpu')",
                   tmp_path)  # fmt: skip
    assert done.returncode != 0
    assert "FileNotFoundError: no stored results for 'mnist-cpu'" in done.stderr


def test_a_clone_reads_its_own_results():
    from mgs_teach.lab import summaries

    assert summaries.results_dir("mnist-cpu") == ROOT / "results" / "mnist-cpu"
    assert summaries.results_dir("mnist-paper") == ROOT / "results" / "mnist-paper"


def chapter_alone(name: str, folder: Path) -> Path:
    """The chapter copied alone into ``folder``, with the check of :data:`WHERE` appended.

    A chapter still in the form that found the results beside the package (``ROOT / "results"
    / name``) reads them through ``summaries.results_dir`` instead."""
    nb = nbformat.read(ROOT / "book" / f"{name}.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = OLD_ROOT.sub(r'summaries.results_dir("\1")', cell.source)
            assert "ROOT /" not in cell.source, f"{name}: a path beside the package"
    nb.cells.append(nbformat.v4.new_code_cell(WHERE))
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


def executed_folder(tmp_path_factory) -> Path:
    """Where the chapters executed here go, for the book's build to take (``MGS_EXECUTED``
    in ``_ext/parallel_execute.py``): ``executed/`` in the folder every worker of this test
    run sees, beside the build's ``book/`` (tests/conftest.py)."""
    base = tmp_path_factory.getbasetemp()
    return (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "executed"


def hand_over(nb, name: str, seconds: float, env: dict, folder: Path) -> None:
    """Leave the executed chapter for the book's build, unless an output names the test's
    folders. The build takes it only if its code is the book's (a chapter that
    :func:`chapter_alone` patched is executed again)."""
    nb.cells = nb.cells[:-1]  # the check of WHERE
    if any(folder.parent.as_posix() in str(c.get("outputs", "")) for c in nb.cells):
        return
    target = folder / "book" / f"{name}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target)
    mgs = {k: v for k, v in env.items() if k.startswith("MGS_")}
    mgs = {k: mgs[k] for k in mgs if k not in parallel_execute.BUILD_ONLY}
    # the library and results the wheel was built from, so that a later change to them
    # makes the build execute the chapter again
    note = {
        "seconds": seconds,
        "env": mgs,
        "fingerprint": parallel_execute.fingerprint(ROOT, parallel_execute.INPUTS, mgs),
    }
    part = target.with_suffix(".json.part")  # the note last, and whole: it admits the copy
    part.write_text(json.dumps(note))
    os.replace(part, target.with_suffix(".json"))


@pytest.mark.book
@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_runs_from_the_installed_wheel(name, site, tmp_path, tmp_path_factory):
    """Executed with nbclient (what nbconvert and nbmake run) in a folder of its own; the
    book's build then takes the executed chapter instead of executing it again."""
    from nbclient import NotebookClient

    path = chapter_alone(name, tmp_path)
    nb = nbformat.read(path, as_version=4)
    env = {**os.environ, "PYTHONPATH": str(site), "MGS_SCALE": "quick"}
    client = NotebookClient(nb, timeout=900, resources={"metadata": {"path": str(tmp_path)}})
    start = time.monotonic()
    client.execute(env=env)
    seconds = time.monotonic() - start
    install, where = nb.cells[[c.cell_type for c in nb.cells].index("code")], nb.cells[-1]
    assert "colab-install" in install.metadata["tags"]
    assert install.outputs == [], "the install cell did something"
    text = "".join(o.get("text", "") for o in where.outputs)
    package = (site / "mgs_teach" / "__init__.py").resolve()
    assert text.count(str(package)) == 2, text  # the wheel's copy, not the repository's
    assert not list(tmp_path.glob("results")), "the chapter wrote results beside itself"
    hand_over(nb, name, seconds, env, executed_folder(tmp_path_factory))


def test_the_build_takes_a_chapter_executed_with_its_code_and_scale(tmp_path, monkeypatch):
    src, done = tmp_path / "src", tmp_path / "done"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)")])
    (src / "book").mkdir(parents=True)
    nbformat.write(nb, src / "book" / "a.ipynb")
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", text="1\n")]
    (done / "book").mkdir(parents=True)
    nbformat.write(nb, done / "book" / "a.ipynb")
    (src / "lib").mkdir()
    (src / "lib" / "m.py").write_text("x = 1\n")
    env = {"MGS_SCALE": "quick"}
    inputs = parallel_execute.fingerprint(src, ["lib"], env)
    note = done / "book" / "a.json"
    note.write_text(json.dumps({"seconds": 3.0, "env": env, "fingerprint": inputs}))
    for key in [k for k in os.environ if k.startswith("MGS_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("MGS_SCALE", "quick")
    copy = functools.partial(parallel_execute.executed_copy, src / "book" / "a.ipynb", src)
    assert copy(inputs) is None  # not asked
    monkeypatch.setenv("MGS_EXECUTED", str(done))
    assert parallel_execute.fingerprint(src, ["lib"]) == inputs  # the build's, with its env
    executed, seconds = copy(inputs)
    assert seconds == 3.0 and executed.cells[0].outputs[0].text == "1\n"
    (src / "lib" / "m.py").write_text("x = 2\n")  # the library changed: executed again
    assert copy(parallel_execute.fingerprint(src, ["lib"])) is None
    monkeypatch.setenv("MGS_SCALE", "full")  # another scale: executed again
    assert copy(inputs) is None
    monkeypatch.setenv("MGS_SCALE", "quick")
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(2)")]),
                   src / "book" / "a.ipynb")  # fmt: skip
    assert copy(inputs) is None  # other code


def test_a_sphinx_build_takes_the_executed_copy_and_runs_no_kernel(tmp_path):
    """The book's extension, in a one-page Sphinx project: the page shows the copy's output."""
    src, done = tmp_path / "src", tmp_path / "done"
    (src / "book").mkdir(parents=True)
    (src / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(ROOT / '_ext')!r})\n"
        'extensions = ["myst_nb", "parallel_execute"]\nnb_execution_mode = "cache"\n'
        'mgs_execution_inputs = []\nexclude_patterns = ["_build"]\n'
    )
    (src / "index.md").write_text("# Book\n\n```{toctree}\nbook/a\n```\n")
    cells = [nbformat.v4.new_markdown_cell("# A"), nbformat.v4.new_code_cell("print('here')")]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}  # fmt: skip
    nbformat.write(nb, src / "book" / "a.ipynb")
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="run by the test\n")]
    # what nbclient's default record_timing leaves on a cell (jupyter-cache hashes it)
    nb.cells[1].metadata["execution"] = {"iopub.status.busy": "2026-12-06T16:00:00.000000Z"}
    (done / "book").mkdir(parents=True)
    nbformat.write(nb, done / "book" / "a.ipynb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MGS_")}
    note = {"seconds": 7.0, "env": {}, "fingerprint": parallel_execute.fingerprint(src, [], {})}
    (done / "book" / "a.json").write_text(json.dumps(note))
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-W", str(src), str(src / "_build/html")]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                            env={**env, "MGS_EXECUTED": str(done)})  # fmt: skip
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    assert f"Executed notebook {Path('book', 'a.ipynb')} in 7.0 s (by a test" in log
    assert "Using cached notebook" in log
    assert "run by the test" in (src / "_build/html/book/a.html").read_text()
