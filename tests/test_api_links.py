"""The links between chapters and the library reference (``_ext/api_links.py``)."""

import re
import sys

import pytest
import yaml
from bookfiles import ROOT, chapters

sys.path.insert(0, str(ROOT / "_ext"))
import api_links  # noqa: E402


def test_uses_follows_imports_across_the_source():
    source = """
import mgs_teach
import mgs_teach.fast as f
from mgs_teach import checks, mgs_trace as tr, plots
from mgs_teach.models import FCN

tr(1, 2, 3)
f.structured_trace
checks.mse_update(None)
FCN(2, 2)
mgs_teach.linalg.gram
plots.OKABE_ITO  # a constant, not a function: not listed
plots.nothing_here  # not in the package: not listed
unrelated.mgs_trace
"""
    assert api_links.uses(source) == {
        "mgs_teach.kernel.mgs_trace",
        "mgs_teach.fast.structured_trace",
        "mgs_teach.checks.gd_step.mse_update",
        "mgs_teach.models.FCN",
        "mgs_teach.linalg.gram",
    }


def test_uses_ignores_names_without_an_import():
    assert api_links.uses("mgs_trace(1)\nkernel.mgs_kernel") == set()
    assert api_links.uses("this is not python") == set()


def test_documented_means_in_the_modules_all():
    assert api_links.documented("mgs_teach.kernel.mgs_trace")
    assert not api_links.documented("mgs_teach.lab.engine._setup")
    assert api_links.documented("mgs_teach.config.Hyper.of")  # with its class
    assert not api_links.documented("mgs_teach.lab.engine._start.thing")


def test_every_chapter_uses_the_library_and_every_use_is_documented():
    found = api_links.chapter_uses(ROOT)
    assert set(found) == {f"book/{nb.stem}" for nb in chapters()}
    for doc, names in found.items():
        assert len(names) >= 5, f"{doc}: {sorted(names)}"
        undocumented = [n for n in names if not api_links.documented(n)]
        assert not undocumented, f"{doc} uses undocumented {undocumented}"


def test_reference_page_documents_every_public_module():
    """Every module of the package with an ``__all__`` has its automodule on the page; so does
    a package whose ``__init__.py`` defines functions or classes of its own (not only
    re-exports), such as ``mgs_teach.lab.findings`` with its glue helpers."""
    page = (ROOT / "book" / "api.md").read_text()
    shown = set(re.findall(r"\.\. automodule:: (mgs_teach[\w.]*)", page))

    def public(path):
        text = path.read_text()
        own = re.search(r"^(?:def|class) ", text, re.M)
        return "__all__" in text and (path.name != "__init__.py" or own)

    modules = {
        ".".join(
            ("mgs_teach", *path.relative_to(ROOT / "mgs_teach").with_suffix("").parts)
        ).removesuffix(".__init__")
        for path in (ROOT / "mgs_teach").rglob("*.py")
        if public(path)
    }
    assert modules == shown, modules ^ shown


def test_module_titles_become_rubrics():
    lines = ["Intro.", "", "The part", "--------", "", "Text.", "not a title", "==="]
    api_links._rubrics(lines)
    assert lines[2:4] == [".. rubric:: The part", ""]
    assert lines[6:] == ["not a title", "==="]


@pytest.mark.book
def test_reference_page_and_chapter_links(html):
    api = (html / "book" / "api.html").read_text()
    anchors = set(re.findall(r'id="(mgs_teach\.[\w.]+)"', api))
    assert {"mgs_teach.kernel.mgs_trace", "mgs_teach.fast.structured_trace",
            "mgs_teach.lab.engine.train_runs"} <= anchors  # fmt: skip
    for doc, names in api_links.chapter_uses(ROOT).items():
        page = (html / f"{doc}.html").read_text()
        assert "The library in this chapter" in page, doc
        linked = set(re.findall(r'href="api\.html#(mgs_teach\.[\w.]+)"', page))
        assert linked == names, f"{doc}: {sorted(names ^ linked)}"
        assert names <= anchors
        # and back: each object's entry names the chapter
        for name in names:
            entry = api[api.index(f'id="{name}"') :]
            entry = entry[: entry.find('<dl class="py', 1)]
            assert f'href="{doc.split("/")[1]}.html"' in entry, (name, doc)


def test_a_constant_is_shown_by_summary_and_type_not_its_value():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())["sphinx"]["config"]
    assert config["autodoc_default_options"]["no-value"] is True
    lines = ["The registry: every name and its family.", "More detail", "", "Second paragraph."]
    assert api_links.constant_summary(lines, {"a": 1, "b": 2}, annotated=False) == [
        "The registry – every name and its family. More detail",
        "",
        "*Type:* ``dict`` of 2 entries.",
    ]
    # annotated: autodoc shows the type beside the name; code keeps its colons
    assert api_links.constant_summary(["Uses ``a:b`` and :func:`f`."], (1,), annotated=True) == [
        "Uses ``a:b`` and :func:`f`."
    ]
    assert api_links.describe_type((1,)) == "``tuple`` of 1 item"
    assert api_links.describe_type(0.3) == "``float``"
