"""Execute the book's notebooks several at a time, before Sphinx reads them.

Loaded through ``sphinx.local_extensions``; active when ``execute.execute_notebooks`` is
``cache``. myst-nb then takes each notebook's outputs from a jupyter-cache, and executes a
notebook itself only when the cache has no record of it. This extension fills that cache
first, running ``mgs_execution_jobs`` kernels at once (the slowest notebooks first), so that
myst-nb finds every notebook already executed. On a 2-core CPU most of a chapter's time is
spent compiling XLA programs on one core, so two kernels at once nearly halve the build.

The cache lives under ``_build/.jupyter_cache/<fingerprint>``. The fingerprint hashes what
the chapters' outputs depend on besides their own code cells (which jupyter-cache hashes):
the files under ``mgs_execution_inputs`` (the library and the stored results) and the
``MGS_*`` environment variables (the scale). A change to the library therefore executes
every chapter again; a change to one chapter's code executes that chapter again.

A chapter named in ``mgs_execution_alone`` (one that times code and prints what it measured)
runs first, while no other kernel runs, so that its timings are those of an idle machine.

A notebook that fails here is not cached: myst-nb executes it again while reading it and
reports its error as it always does (a cell that timed out thus gets a second try).

Environment: ``MGS_BOOK_JOBS`` overrides the number of kernels (default: 2 on a machine with
at least 2 cores at ``quick`` scale; 1 otherwise, since at ``full`` scale the chapters share
one accelerator). ``MGS_EXECUTED`` names a folder of chapters that a test has executed already
(``tests/test_wheel.py`` runs the chapters that read committed results from the installed
wheel, as readers run them): a chapter found there, with the same code cells and executed
with the same ``MGS_*`` variables, is cached as it is instead of being executed again.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from sphinx.util import logging

LOGGER = logging.getLogger(__name__)


#: What the chapters' outputs depend on besides their code: ``mgs_execution_inputs``'s default.
INPUTS = ["mgs_teach", "results"]


def fingerprint(root: Path, inputs: list[str], env: dict[str, str] | None = None) -> str:
    """A short hash of the files under ``inputs`` (relative to ``root``) and of ``MGS_*``
    (``env``, by default this process's :func:`mgs_env`)."""
    h = hashlib.sha1()
    for name in inputs:
        base = root / name
        files = [base] if base.is_file() else sorted(base.rglob("*"))
        for path in files:
            if path.is_file() and "__pycache__" not in path.parts:
                h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    for key, value in sorted((mgs_env() if env is None else env).items()):
        h.update(f"{key}={value}".encode())
    return h.hexdigest()[:16]


#: ``MGS_*`` variables that say how the book is built, not what the chapters compute.
BUILD_ONLY = ("MGS_BOOK_JOBS", "MGS_EXECUTED")


def mgs_env() -> dict[str, str]:
    """The ``MGS_*`` environment variables the chapters' outputs depend on (the scale...)."""
    return {k: v for k, v in os.environ.items() if k.startswith("MGS_") and k not in BUILD_ONLY}


def jobs() -> int:
    if os.environ.get("MGS_BOOK_JOBS"):
        return max(1, int(os.environ["MGS_BOOK_JOBS"]))
    quick = os.environ.get("MGS_SCALE", "").lower() == "quick"
    return min(2, os.cpu_count() or 1) if quick else 1


#: The longest a kernel client's channel waits on its socket before it looks again.
POLL_SLICE_S = 2.0


@functools.cache  # one set of classes for every notebook of the build
def _kernel_manager_class() -> type:
    """An ``AsyncKernelManager`` whose clients wait for messages in slices of ``POLL_SLICE_S``.

    With two kernels run from threads of one process, a client sometimes never wakes for a
    message that has arrived: a kernel that answered a cell sat idle while nbclient waited
    out the cell's whole timeout for the reply (seen in this book's build, in the widget
    chapter; nbclient#312 reports the same). A new wait on the socket finds the message, so
    each wait here lasts at most ``POLL_SLICE_S`` and the next one starts until the caller's
    timeout is spent.
    """
    from queue import Empty

    from jupyter_client import AsyncKernelClient, AsyncKernelManager
    from jupyter_client.channels import AsyncZMQSocketChannel
    from traitlets import Type

    class SlicedChannel(AsyncZMQSocketChannel):
        async def get_msg(self, timeout: float | None = None) -> dict:
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                left = POLL_SLICE_S if deadline is None else deadline - time.monotonic()
                try:
                    return await super().get_msg(timeout=max(0.0, min(POLL_SLICE_S, left)))
                except Empty:
                    if deadline is not None and time.monotonic() >= deadline:
                        raise

    class SlicedClient(AsyncKernelClient):
        shell_channel_class = Type(SlicedChannel)
        iopub_channel_class = Type(SlicedChannel)

    class SlicedManager(AsyncKernelManager):
        def client(self, **kwargs: Any) -> SlicedClient:
            self.client_factory = SlicedClient  # nbclient sets client_class after creating us
            return super().client(**kwargs)

    return SlicedManager


def _execute(path: Path, timeout: int | None, allow_errors: bool) -> tuple[Any, Any]:
    """Execute one notebook (in its own folder, as myst-nb does); return it and the result."""
    import nbformat
    from jupyter_cache.executors.utils import single_nb_execution

    nb = nbformat.read(path, as_version=4)
    result = single_nb_execution(
        nb,
        cwd=str(path.parent),
        timeout=timeout,
        allow_errors=allow_errors,
        meta_override=True,
        kernel_manager_class=_kernel_manager_class(),
    )
    return nb, result


def _code(nb: Any) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


def executed_copy(path: Path, root: Path, inputs: str) -> tuple[Any, float] | None:
    """The notebook ``path``, executed already: ``$MGS_EXECUTED/<path relative to root>``, if
    its code cells are those of ``path`` and ``<copy>.json`` beside it says it was executed
    with this build's :func:`mgs_env` and library and results, whose :func:`fingerprint` is
    ``inputs`` (``{"seconds": ..., "env": {...}, "fingerprint": ...}``); else ``None``."""
    import nbformat

    folder = os.environ.get("MGS_EXECUTED")
    if not folder:
        return None
    copy = Path(folder) / path.relative_to(root)
    note = copy.with_suffix(".json")
    if not (copy.is_file() and note.is_file()):
        return None
    meta = json.loads(note.read_text())
    executed = nbformat.read(copy, as_version=4)
    if meta.get("env") != mgs_env() or meta.get("fingerprint") != inputs:
        return None
    source = nbformat.read(path, 4)
    if _code(executed) != _code(source) or len(executed.cells) != len(source.cells):
        return None
    # jupyter-cache hashes the cells' metadata too: a client that records timings (nbclient's
    # default) adds some, and the copy must match the book's notebook to be found
    executed.metadata["kernelspec"] = source.metadata.get("kernelspec", {})
    for cell, original in zip(executed.cells, source.cells):
        cell.metadata = original.metadata
    return executed, float(meta["seconds"])


def _notebooks(app: Any) -> list[Path]:
    """The ``.ipynb`` documents Sphinx will read (its exclude patterns applied)."""
    from sphinx.project import Project

    project = Project(app.srcdir, app.config.source_suffix)
    docnames = project.discover(app.config.exclude_patterns, app.config.include_patterns)
    paths = [Path(project.doc2path(name, absolute=True)) for name in sorted(docnames)]
    return [p for p in paths if p.suffix == ".ipynb"]


def execute_ahead(app: Any) -> None:
    """Fill myst-nb's jupyter-cache with every notebook it lacks, ``jobs()`` at a time."""
    config = app.env.mystnb_config
    if config.execution_mode != "cache":
        return
    import nbformat
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    base = Path(config.execution_cache_path)
    inputs = fingerprint(Path(app.srcdir), list(app.config.mgs_execution_inputs))
    cache_path = base / inputs
    app.env.mystnb_config = config.copy(execution_cache_path=str(cache_path))
    cache = get_cache(str(cache_path))

    todo = []
    for path in _notebooks(app):
        try:
            cache.match_cache_notebook(nbformat.read(path, as_version=4))
        except KeyError:
            todo.append(path)
    timings_file = base / "timings.json"
    timings = json.loads(timings_file.read_text()) if timings_file.exists() else {}
    executed = app.mgs_executed_ahead = set()  # docnames, for reread() below
    for path in list(todo):
        found = executed_copy(path, Path(app.srcdir), inputs)
        if found is not None:
            nb, seconds = found
            record = cache.add_nb_to_project(str(path))
            cache.cache_notebook_bundle(
                CacheBundleIn(nb, record.uri, data={"execution_seconds": seconds}),
                check_validity=False,
                overwrite=True,
            )
            todo.remove(path)
            timings[path.stem] = round(seconds, 1)
            executed.add(path.relative_to(app.srcdir).with_suffix("").as_posix())
            LOGGER.info(
                f"Executed notebook {path.relative_to(app.srcdir)} in {seconds:.1f} s "
                f"(by a test, taken from {os.environ['MGS_EXECUTED']})"
            )
    if not todo:
        timings_file.write_text(json.dumps(timings, indent=1, sort_keys=True) + "\n")
        return
    hints = list(app.config.mgs_execution_slowest)

    def expected(path: Path) -> float:  # slowest first: the last build's times, else the hints
        name = path.stem
        if name in timings:
            return timings[name]
        return 1e6 - hints.index(name) if name in hints else 0.0

    todo.sort(key=expected, reverse=True)
    alone = [p for p in todo if p.stem in app.config.mgs_execution_alone]
    shared = [p for p in todo if p not in alone]
    n_jobs = min(jobs(), len(todo))
    LOGGER.info(
        f"executing {len(todo)} notebooks into {cache_path}: "
        f"{len(alone)} alone, then the others {n_jobs} at a time"
    )
    timeout, allow = config.execution_timeout, config.execution_allow_errors
    start, done, failed = time.monotonic(), 0, []

    def run(paths: list[Path], n: int) -> None:
        nonlocal done
        if not paths:
            return
        with ThreadPoolExecutor(n) as pool:
            running = {pool.submit(_execute, p, timeout, allow): p for p in paths}
            while running:
                try:
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                except BaseException:  # Ctrl-C: start no other; what finished stays cached
                    pool.shutdown(cancel_futures=True)
                    raise
                for future in finished:
                    path = running.pop(future)
                    name = str(path.relative_to(app.srcdir))
                    done += 1
                    try:
                        nb, result = future.result()
                    except Exception as error:  # noqa: BLE001 - myst-nb executes it again
                        failed.append(f"{name}: {error!r}")
                        continue
                    if result.err is not None:
                        failed.append(f"{name}: {result.err.__class__.__name__}")
                        continue
                    record = cache.add_nb_to_project(str(path))
                    cache.cache_notebook_bundle(
                        CacheBundleIn(nb, record.uri, data={"execution_seconds": result.time}),
                        check_validity=False,
                        overwrite=True,
                    )
                    timings[path.stem] = round(result.time, 1)
                    executed.add(path.relative_to(app.srcdir).with_suffix("").as_posix())
                    LOGGER.info(
                        f"[{done}/{len(todo)}, {time.monotonic() - start:.0f} s] "
                        f"Executed notebook {name} in {result.time:.1f} s"
                    )

    run(alone, 1)  # chapters that time code: nothing else runs meanwhile
    run(shared, n_jobs)
    timings_file.write_text(json.dumps(timings, indent=1, sort_keys=True) + "\n")
    LOGGER.info(f"executed {len(todo)} notebooks in {time.monotonic() - start:.0f} s")
    for line in failed:  # myst-nb executes these again and reports their errors
        LOGGER.info(f"execution failed, left to myst-nb: {line}")


def reread(app: Any, env: Any, added: set, changed: set, removed: set) -> list[str]:
    """Have Sphinx read again the notebooks executed ahead in this build, though their source
    did not change (after a change to the library, say), so their pages show the new outputs."""
    return sorted(getattr(app, "mgs_executed_ahead", set()) - added - changed)


def write_executed(app: Any, doctree: Any) -> None:
    """Write a notebook taken from the cache to ``_build/jupyter_execute`` with its outputs.

    myst-nb 1.4 writes there the notebook it read, which in ``cache`` mode is the one without
    outputs (it merges the cached outputs into a copy); in ``force`` mode it is the executed
    one. This puts back what ``force`` writes, for the downloads and the tests that read it.
    """
    config = app.env.mystnb_config
    source = Path(app.env.doc2path(app.env.docname))
    if config.execution_mode != "cache" or source.suffix != ".ipynb":
        return
    import nbformat
    from jupyter_cache import get_cache

    try:
        _, executed = get_cache(config.execution_cache_path).merge_match_into_notebook(
            nbformat.read(source, as_version=4)
        )
    except KeyError:
        return  # not cached: myst-nb executed it in place (or it failed) and wrote that
    target = Path(config.output_folder, *app.env.docname.split("/")).with_suffix(".ipynb")
    target.write_text(nbformat.writes(executed), encoding="utf8")


def setup(app: Any) -> dict:
    app.add_config_value("mgs_execution_inputs", INPUTS, "env")
    app.add_config_value("mgs_execution_slowest", [], "env")
    app.add_config_value("mgs_execution_alone", [], "env")
    app.connect("builder-inited", execute_ahead, priority=600)  # after myst-nb's config
    app.connect("env-get-outdated", reread)
    app.connect("doctree-read", write_executed)  # after myst-nb has written the notebook
    return {"parallel_read_safe": True, "parallel_write_safe": True}
