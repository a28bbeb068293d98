"""Build the whole book as the README does: every chapter executes at quick scale, -W."""

import html as html_lib
import json
import re

import pytest
from bookfiles import ROOT, chapters


@pytest.mark.book
def test_every_chapter_renders_executed(html):
    for nb in chapters():
        page = (html / nb.relative_to(ROOT)).with_suffix(".html").read_text()
        assert "scale: quick" in page, f"{nb.name}: no executed banner"
        assert "Traceback" not in page and "Error</span>" not in page, f"{nb.name}: error output"
        assert 'class="solution dropdown' in page, f"{nb.name}: no collapsible solutions"
        assert "<img" in page, f"{nb.name}: no figures"
        assert "✅" in page, f"{nb.name}: a solution's self-check did not pass"
        assert "❌" not in page, f"{nb.name}: a solution's self-check failed"
        assert "figure check:" not in page, f"{nb.name}: a figure has an unlabelled axis"
        for tag in re.findall(r"<img [^>]*>", page):
            alt = re.search(r'alt="([^"]*)"', tag)
            assert alt and alt.group(1).strip(), f"{nb.name}: an image without alt text"
            assert not re.search(r"\.(png|svg|jpe?g)$", alt.group(1)), f"{nb.name}: alt is a path"


@pytest.mark.book
def test_proofs_and_bibliography_render(html):
    theory = (html / "book" / "measuring_mgs.html").read_text()
    assert theory.count('class="proof') >= 4
    bib = (html / "book" / "bibliography.html").read_text()
    assert "Model Gradient Similarity" in bib


@pytest.mark.book
def test_first_order_error_falls_as_eta_squared(html):
    page = (html / "book" / "gd_step.html").read_text()
    slopes = [float(s) for s in re.findall(r"fitted slope (\d+\.\d+)", page)]
    assert len(slopes) >= 2
    assert all(abs(s - 2) < 0.1 for s in slopes), slopes


@pytest.mark.book
def test_every_widget_has_a_static_stand_in(html):
    """A chapter that shows an ipywidgets explorer also shows, in the static page, the figures
    of ``widgets.static_grid``: its image (found by its alt text) is on the page."""
    explorers = 0
    for nb in chapters():
        cells = json.loads(nb.read_text())["cells"]
        sources = ["".join(c["source"]) for c in cells]
        if not any("widgets.explorer(" in s for s in sources):
            continue
        explorers += 1
        grids = [c for c, s in zip(cells, sources) if "widgets.static_grid(" in s]
        assert grids, f"{nb.name}: an explorer without a static stand-in"
        page = html_lib.unescape((html / nb.relative_to(ROOT)).with_suffix(".html").read_text())
        for cell in grids:
            assert f'alt="{cell["metadata"]["mystnb"]["image"]["alt"]}"' in page
    assert explorers >= 1


@pytest.mark.book
def test_every_chapter_executed_ahead_and_written_with_outputs(book_build):
    """_ext/parallel_execute.py ran every chapter before Sphinx read it (myst-nb executed none
    itself), and the executed notebooks it wrote carry their outputs."""
    log = (book_build.parent / "build.log").read_text()
    for nb in chapters():
        name = nb.relative_to(ROOT).as_posix()
        assert f"Executed notebook {name} in " in log, f"{name}: not executed ahead"
        executed = json.loads((book_build / "jupyter_execute" / name).read_text())
        outputs = [o for c in executed["cells"] if c["cell_type"] == "code" for o in c["outputs"]]
        assert any("scale: quick" in "".join(o.get("text", "")) for o in outputs), name
    assert log.count("Using cached notebook") == len(chapters())
