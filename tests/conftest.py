import fcntl
import os
import re
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))  # bookfiles, tools
from bookfiles import ROOT  # noqa: E402

from mgs_teach import float64 as enable_x64  # noqa: F401 - re-exported for the tests

# The tests run in two pytest-xdist workers (pyproject.toml: ``-n 2 --dist loadscope
# --no-loadscope-reorder``; ``-n 0`` runs them in one process). Each module goes whole to one
# worker, so its module fixtures are built once; the modules go out in the order that
# pytest_collection_modifyitems gives them, the slowest first so that the two workers end
# together, and the modules of the built book last. The book's build then waits until every
# other test has finished, so that it runs alone: it executes two chapters at a time
# (_ext/parallel_execute.py), one per core, and they share the cores with nothing else.

#: The slowest modules, slowest first (on this project's 2-core CPU, 125 to 40 s each; the
#: wheel's and the course kit's, which execute chapters, several minutes), by file name
#: (``lab/test_engine.py`` is ``test_engine.py``).
SLOWEST = (
    "test_wheel.py", "test_course.py", "test_fast.py", "test_kernel.py", "test_engine.py",
    "test_bench.py", "test_cli.py", "test_results.py", "test_gpu_reproduce.py",
    "test_penalties.py", "test_train.py",
)  # fmt: skip


def pytest_terminal_summary(terminalreporter, config):
    timings = _shared(config) / "book-timings.txt"
    if timings.exists():
        terminalreporter.section("book build, notebook execution times")
        for line in timings.read_text().splitlines():
            terminalreporter.write_line("  " + line)


def _shared(config) -> Path:
    """A folder of this test run that every worker sees: pytest's base temporary folder, whose
    subfolders the workers' own are (as pytest-xdist makes them)."""
    base = config._tmp_path_factory.getbasetemp()
    return base.parent if hasattr(config, "workerinput") else base


@pytest.fixture
def x64():
    with enable_x64():
        yield


def _uses(item, fixture: str) -> bool:
    return fixture in getattr(item, "fixturenames", ())


def _module(item) -> str:
    return item.nodeid.split("::")[0]


def _book_modules(items) -> set[str]:
    return {_module(i) for i in items if _uses(i, "book_build")}


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Whole modules, the slowest first and those of the built book last (see the top)."""
    book = _book_modules(items)
    first = {name: rank for rank, name in enumerate(SLOWEST)}

    def order(item):
        module = _module(item)
        return (module in book, first.get(module.rsplit("/", 1)[-1], len(first)))

    items.sort(key=order)  # stable: within a module, and among the others, as collected


def pytest_runtest_logfinish(nodeid, location):
    """Each worker notes the tests it has finished, for the book's build to wait on."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker and _FINISHED is not None:
        with open(_FINISHED / f"finished-{worker}", "a") as f:
            f.write(nodeid + "\n")


_FINISHED: Path | None = None


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session):
    global _FINISHED
    if os.environ.get("PYTEST_XDIST_WORKER"):
        _FINISHED = _shared(session.config)


def _wait_for_the_other_tests(session, limit_s: float = 1800.0) -> None:
    """In a worker: wait until every selected test outside the book's modules has finished,
    in all workers (or ``limit_s`` has passed: a worker that crashed never reports)."""
    if _FINISHED is None:
        return
    book = _book_modules(session.items)
    expected = {i.nodeid for i in session.items if _module(i) not in book}
    start = time.monotonic()
    while time.monotonic() - start < limit_s:
        done = set()
        for path in _FINISHED.glob("finished-*"):
            done.update(path.read_text().splitlines())
        if expected <= done:
            return
        time.sleep(1.0)
    warnings.warn(
        f"the book's build waited {limit_s:.0f} s for the other tests; builds now", stacklevel=1
    )


def pytest_collection_finish(session):
    """Install the neural-tangents environment in a thread while the first tests run, when a
    selected test needs it (its fixture waits for it on its lock)."""
    if session.config.option.collectonly:
        return
    if os.environ.get("PYTEST_XDIST_WORKER", "gw0") != "gw0":
        return  # one installer is enough; the fixture waits for it on its lock
    if any(_uses(i, "nt_kernels") for i in session.items):
        from mgs_teach.lab import bench

        if bench.nt_python() is None:
            threading.Thread(target=_setup_nt_quietly, daemon=True).start()


def _setup_nt_quietly():
    """Install the neural-tangents environment early; a failure is reported by the fixture
    that needs it, which then installs it again (the environment is not ready until then)."""
    from mgs_teach.lab import bench

    try:
        bench.setup_nt()
    except Exception:  # noqa: BLE001, S110 - the nt_kernels fixture raises it in its test
        pass


@pytest.fixture(scope="session")
def book_build(request):
    """Build the whole book as the README does (quick scale, warnings as errors), once.

    Returns the build folder: HTML in ``html``, executed notebooks in ``jupyter_execute``.
    The first worker to ask builds it, after the other tests; the others wait on a lock and
    take the same build. ``MGS_BOOK_BUILD=<a build's _build folder>`` reuses that build
    instead, to iterate on the tests of the rendered book without rebuilding it.
    """
    if os.environ.get("MGS_BOOK_BUILD"):
        return Path(os.environ["MGS_BOOK_BUILD"])
    out = _shared(request.config) / "book"
    with open(out.with_name("book.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / "problems.txt").exists():
            _wait_for_the_other_tests(request.session)
            _build_book(out)
    problems = (out / "problems.txt").read_text()
    assert not problems, "book build failed:\n" + problems
    return out / "_build"


def _build_book(out: Path) -> None:
    """Build into ``out``: its log, the notebooks' times and ``problems.txt`` (empty: built).

    A build that failed on a cell that timed out (a kernel that lost a message;
    requirements.txt says why) runs once more.
    """
    jb = Path(sys.executable).with_name("jupyter-book")
    # the chapters that tests/test_wheel.py executed from the installed wheel are taken, not
    # executed again (MGS_EXECUTED in _ext/parallel_execute.py)
    env = {**os.environ, "MGS_SCALE": "quick", "MGS_EXECUTED": str(out.with_name("executed"))}
    cmd = [str(jb), "build", str(ROOT), "--path-output", str(out), "-W", "--keep-going"]
    for attempt in (1, 2):
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
        log = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
        if result.returncode == 0 or attempt == 2 or "CellTimeoutError" not in log:
            break
    out.mkdir(parents=True, exist_ok=True)
    (out / "build.log").write_text(log)
    timings = [line.strip() for line in log.splitlines() if "Executed notebook" in line]
    out.with_name("book-timings.txt").write_text("\n".join(timings))
    problems = [f"jupyter-book exited with {result.returncode}"] + [
        line for line in log.splitlines() if "WARNING" in line or "ERROR" in line or "Error" in line
    ]
    (out / "problems.txt").write_text("" if result.returncode == 0 else "\n".join(problems))


@pytest.fixture(scope="session")
def html(book_build):
    return book_build / "html"
