import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))  # bookfiles, tools
from bookfiles import ROOT  # noqa: E402

from mgs_teach import float64 as enable_x64  # noqa: F401 - re-exported for the tests

#: Each notebook's execution time in the book build, for the terminal summary: a CI log shows
#: where the build's time went.
TIMINGS: list[str] = []


def pytest_terminal_summary(terminalreporter):
    if TIMINGS:
        terminalreporter.section("book build, notebook execution times")
        for line in TIMINGS:
            terminalreporter.write_line("  " + line)


@pytest.fixture
def x64():
    with enable_x64():
        yield


def _uses(item, fixture: str) -> bool:
    return fixture in getattr(item, "fixturenames", ())


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """The tests of the built book run last: by then the neural-tangents environment that
    the fast-penalty chapter times is ready (see :func:`pytest_collection_finish`)."""
    book = [i for i in items if _uses(i, "book_build")]
    items[:] = [i for i in items if not _uses(i, "book_build")] + book


def pytest_collection_finish(session):
    """Install the neural-tangents environment in a thread while the first tests run, when a
    selected test needs it (its fixture waits for it on its lock)."""
    if session.config.option.collectonly:
        return
    if any(_uses(i, "nt_kernels") for i in session.items):
        from mgs_teach import bench

        if bench.nt_python() is None:
            threading.Thread(target=_setup_nt_quietly, daemon=True).start()


def _setup_nt_quietly():
    """Install the neural-tangents environment early; a failure is reported by the fixture
    that needs it, which then installs it again (the environment is not ready until then)."""
    from mgs_teach import bench

    try:
        bench.setup_nt()
    except Exception:  # noqa: BLE001, S110 - the nt_kernels fixture raises it in its test
        pass


@pytest.fixture(scope="session")
def book_build(tmp_path_factory):
    """Build the whole book as the README does (quick scale, warnings as errors), once.

    Returns the build folder: HTML in ``html``, executed notebooks in ``jupyter_execute``.
    ``MGS_BOOK_BUILD=<a build's _build folder>`` reuses that build instead, to iterate on
    the tests of the rendered book without rebuilding it.
    """
    if os.environ.get("MGS_BOOK_BUILD"):
        return Path(os.environ["MGS_BOOK_BUILD"])
    out = tmp_path_factory.mktemp("book")
    jb = Path(sys.executable).with_name("jupyter-book")
    env = {**os.environ, "MGS_SCALE": "quick"}
    cmd = [str(jb), "build", str(ROOT), "--path-output", str(out), "-W", "--keep-going"]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    log = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
    (out / "build.log").write_text(log)
    TIMINGS[:] = [line.strip() for line in log.splitlines() if "Executed notebook" in line]
    assert result.returncode == 0, "book build failed:\n" + "\n".join(
        line for line in log.splitlines() if "WARNING" in line or "ERROR" in line or "Error" in line
    )
    return out / "_build"


@pytest.fixture(scope="session")
def html(book_build):
    return book_build / "html"
