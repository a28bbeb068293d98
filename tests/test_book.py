"""Build the whole book as the README does: every chapter executes at quick scale, -W."""

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
