"""Every chapter runs in Colab: an install cell that keeps Colab's JAX, declared imports only,
launch buttons that open notebooks."""

import ast
import importlib.metadata as metadata
import importlib.util
import json
import re
import subprocess
import sys

import install_cell
import pytest
import yaml
from bookfiles import ROOT, chapters, toc_files
from packaging.requirements import Requirement

from mgs_teach import deps

CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
VERSION = metadata.version("mgs-teach")


def code_cells(path):
    return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


@pytest.fixture(params=chapters(), ids=lambda p: p.stem)
def chapter(request):
    return request.param


def test_first_code_cell_is_the_current_install_cell(chapter):
    first = code_cells(chapter)[0]
    assert "".join(first["source"]) == install_cell.install_source(), (
        f"{chapter.name}: run `python scripts/install_cell.py`"
    )
    assert install_cell.TAG in first["metadata"]["tags"]


def test_install_cell_pins_this_repository_and_release():
    source = install_cell.install_source()
    assert f"git+{CONFIG['repository']['url']}@v{VERSION}" in source
    assert "--no-deps" in source


def run_install_cell(monkeypatch, installed):
    """Execute the install cell with pip replaced by a recorder."""
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append(cmd))
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec",
        lambda name, *a: real(name, *a) if installed or name != "mgs_teach" else None,
    )  # fmt: skip
    exec(install_cell.install_source(), {})
    return calls


def test_install_cell_does_nothing_when_the_library_is_there(monkeypatch):
    assert run_install_cell(monkeypatch, installed=True) == []


def test_install_cell_never_installs_jax(monkeypatch):
    pip, helper = run_install_cell(monkeypatch, installed=False)
    assert pip[:4] == [sys.executable, "-m", "pip", "install"] and "--no-deps" in pip
    assert not any(re.match(r"jax(lib)?\b", arg) for arg in pip)
    assert helper == [sys.executable, "-m", "mgs_teach.deps"]


def test_deps_lists_only_what_is_missing_and_never_jax():
    reqs = ["jax>=99", "jaxlib<0.0.1", "numpy>=1", "numpy<1", "no-such-package-xyz>=1",
            'mlxtend>=0; extra == "mnist"', 'numpy; python_version < "3"']  # fmt: skip
    assert deps.missing(reqs) == ["numpy<1", "no-such-package-xyz>=1"]


def test_deps_of_this_environment_are_complete():
    assert deps.missing() == [], "the test environment lacks a declared requirement"


# ---------------------------------------------------------------- declared imports

DECLARED = {Requirement(r).name.lower().replace("_", "-") for r in metadata.requires("mgs-teach")}
OWN = {"mgs_teach", "google"}  # google.colab: Colab's own, imported only where it exists
# the library imports these only where they exist, with a fallback (findings: myst-nb's glue,
# in a book build); a chapter does not import them
OPTIONAL = {"myst_nb"}


def top_level_imports(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module.split(".")[0]


def undeclared(modules):
    dists = metadata.packages_distributions()
    bad = set()
    for module in set(modules) - set(sys.stdlib_module_names) - OWN:
        names = {d.lower().replace("_", "-") for d in dists.get(module, [module])}
        if not names & DECLARED:
            bad.add(f"{module} ({', '.join(sorted(names))})")
    return bad


def test_chapters_import_only_declared_dependencies(chapter):
    modules = []
    for cell in code_cells(chapter):
        modules += top_level_imports(ast.parse("".join(cell["source"])))
    assert not undeclared(modules), f"{chapter.name} imports undeclared packages"


def test_library_imports_only_declared_dependencies():
    modules = []
    for path in (ROOT / "mgs_teach").rglob("*.py"):
        if path.name != "_nt_worker.py":  # runs in the separate neural-tangents environment
            modules += top_level_imports(ast.parse(path.read_text()))
    assert not undeclared(set(modules) - OPTIONAL)


# ------------------------------------------------------------------ launch buttons


def test_launch_buttons_open_notebooks_in_colab():
    assert CONFIG["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert CONFIG["repository"]["url"].startswith("https://github.com/")
    for path in toc_files():
        if path.suffix != ".ipynb":  # Markdown pages carry no code, and so no launch button
            text = path.read_text()
            assert "```{code-cell}" not in text, f"{path.name}: code belongs in a notebook"
