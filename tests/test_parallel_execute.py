"""The book's notebooks executed ahead, several at a time (``_ext/parallel_execute.py``)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from bookfiles import ROOT

sys.path.insert(0, str(ROOT / "_ext"))
import parallel_execute  # noqa: E402

CONF = f"""
import sys
sys.path.insert(0, {str(ROOT / "_ext")!r})
extensions = ["myst_nb", "parallel_execute"]
nb_execution_mode = "cache"
mgs_execution_inputs = ["lib"]
mgs_execution_alone = ["timed"]
exclude_patterns = ["_build", "lib"]
"""


def _notebook(path: Path, code: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}  # fmt: skip
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {path.stem}"), nbformat.v4.new_code_cell(code)]
    nbformat.write(nb, path)


def _build(src: Path) -> str:
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-W", str(src), str(src / "_build/html")]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "MGS_BOOK_JOBS": "2"})  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


@pytest.fixture
def project(tmp_path):
    (tmp_path / "conf.py").write_text(CONF)
    (tmp_path / "index.md").write_text("# Book\n\n```{toctree}\na\nb\ntimed\n```\n")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "values.txt").write_text("1")
    for name in ("a", "b", "timed"):
        code = f"print('{name} ran', open('lib/values.txt').read())"
        _notebook(tmp_path / f"{name}.ipynb", code)
    return tmp_path


def _executed_ahead(log: str) -> set[str]:
    return {line.split("Executed notebook ")[1].split(" in ")[0]
            for line in log.splitlines() if "] Executed notebook " in line}  # fmt: skip


def _output(src: Path, name: str) -> str:
    nb = nbformat.read(src / "_build/jupyter_execute" / f"{name}.ipynb", as_version=4)
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_fills_the_cache_ahead_and_reexecutes_only_what_changed(project):
    log = _build(project)
    assert _executed_ahead(log) == {"a.ipynb", "b.ipynb", "timed.ipynb"}
    assert "1 alone, then the others 2 at a time" in log
    first = next(line for line in log.splitlines() if "] Executed notebook " in line)
    assert "[1/3, " in first and "timed.ipynb" in first  # it ran first, alone
    assert log.count("Using cached notebook") == 3  # myst-nb executed none of them itself
    assert _output(project, "a") == "a ran 1\n"  # the written notebook has its outputs
    assert "a ran 1" in (project / "_build/html/a.html").read_text()
    timings = json.loads((project / "_build/.jupyter_cache/timings.json").read_text())
    assert set(timings) == {"a", "b", "timed"}

    assert _executed_ahead(_build(project)) == set()  # nothing changed: nothing runs

    _notebook(project / "b.ipynb", "print('b changed')")
    log = _build(project)
    assert _executed_ahead(log) == {"b.ipynb"}
    assert _output(project, "b") == "b changed\n"

    (project / "lib" / "values.txt").write_text("2")  # an input of every chapter
    log = _build(project)
    assert _executed_ahead(log) == {"a.ipynb", "b.ipynb", "timed.ipynb"}
    assert _output(project, "a") == "a ran 2\n"


def test_a_failing_notebook_is_left_to_myst_nb_which_reports_it(project):
    _notebook(project / "b.ipynb", "raise ValueError('broken chapter')")
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-W", str(project),
           str(project / "_build/html")]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    log = result.stdout + result.stderr
    assert result.returncode != 0
    assert "execution failed, left to myst-nb: b.ipynb" in log
    assert "Executing notebook failed: CellExecutionError" in log  # myst-nb's own report


def test_fingerprint_follows_the_inputs_and_the_scale(tmp_path, monkeypatch):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "m.py").write_text("x = 1")
    monkeypatch.delenv("MGS_SCALE", raising=False)
    first = parallel_execute.fingerprint(tmp_path, ["lib"])
    (tmp_path / "lib" / "__pycache__").mkdir()
    (tmp_path / "lib" / "__pycache__" / "m.pyc").write_bytes(b"\0")
    monkeypatch.setenv("MGS_BOOK_JOBS", "3")
    assert parallel_execute.fingerprint(tmp_path, ["lib"]) == first
    monkeypatch.setenv("MGS_SCALE", "full")
    assert parallel_execute.fingerprint(tmp_path, ["lib"]) != first
    monkeypatch.delenv("MGS_SCALE")
    (tmp_path / "lib" / "m.py").write_text("x = 2")
    assert parallel_execute.fingerprint(tmp_path, ["lib"]) != first


def test_jobs(monkeypatch):
    monkeypatch.setenv("MGS_BOOK_JOBS", "3")
    assert parallel_execute.jobs() == 3
    monkeypatch.delenv("MGS_BOOK_JOBS")
    monkeypatch.setenv("MGS_SCALE", "full")
    assert parallel_execute.jobs() == 1  # the chapters would share one accelerator
    monkeypatch.setenv("MGS_SCALE", "quick")
    assert 1 <= parallel_execute.jobs() <= 2


def test_a_client_channel_waits_again_after_a_missed_wakeup(monkeypatch):
    """A wait that wakes with nothing (the message arrived unseen) is followed by another,
    and a caller's timeout still holds when nothing comes."""
    import asyncio
    import time
    from queue import Empty

    from jupyter_client.channels import AsyncZMQSocketChannel

    waits, arrives_after = [], [2]  # the message is seen on the second wait

    async def socket_wait(self, timeout=None):
        waits.append(timeout)
        if len(waits) < arrives_after[0]:
            await asyncio.sleep(timeout)
            raise Empty
        return {"msg_type": "execute_reply"}

    monkeypatch.setattr(AsyncZMQSocketChannel, "get_msg", socket_wait)
    monkeypatch.setattr(parallel_execute, "POLL_SLICE_S", 0.05)
    channel_class = parallel_execute._kernel_manager_class()().client().shell_channel_class
    channel = channel_class.__new__(channel_class)  # its get_msg needs no socket here
    assert asyncio.run(channel.get_msg(timeout=900))["msg_type"] == "execute_reply"
    assert waits == [0.05, 0.05]

    waits.clear()
    arrives_after[0] = 10**9  # never
    start = time.monotonic()
    with pytest.raises(Empty):
        asyncio.run(channel.get_msg(timeout=0.2))
    assert time.monotonic() - start >= 0.2
    assert 4 <= len(waits) and max(waits) <= 0.05
