"""Links between the chapters and the library's reference page (``book/api.md``).

Loaded through ``sphinx.local_extensions``. The chapters' code cells are read once, with
:mod:`ast`, for the ``mgs_teach`` functions and classes they use (``from mgs_teach import
kernel`` and then ``kernel.mgs_trace(...)`` counts as ``mgs_teach.kernel.mgs_trace``). Then:

- each of those objects' entry on the reference page ends with the chapters that use it;
- each chapter's page ends with a list of the library objects it uses, linked to their
  entries.

An object a chapter uses but the reference page cannot show (not in its module's
``__all__``) is a warning, so the links cannot silently break under ``-W``.

A module's constant is shown by its name, its type and a one-line summary (the first
paragraph of its docstring), never by its value: ``autodoc_default_options`` in
``_config.yml`` sets ``no-value``, and :func:`constant_summary` writes the rest.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import re
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx import addnodes
from sphinx.util import logging

logger = logging.getLogger(__name__)
PACKAGE = "mgs_teach"


def _canonical(obj: Any) -> str | None:
    """``module.qualname`` of a function or class defined in the package, else ``None``."""
    if not (inspect.isfunction(obj) or inspect.isclass(obj)):
        return None
    module = getattr(obj, "__module__", "") or ""
    if not module.startswith(PACKAGE):
        return None
    return f"{module}.{obj.__qualname__}"


def _resolve(path: str) -> Any:
    """The object at a dotted path such as ``mgs_teach.kernel.mgs_trace``, or ``None``."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def uses(source: str) -> set[str]:
    """The canonical names of the package's functions and classes that ``source`` uses."""
    try:
        tree = ast.parse(source)
    except SyntaxError:  # IPython magics and the like: nothing to read
        return set()
    alias: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == PACKAGE:
                    alias[a.asname or a.name.split(".")[0]] = a.name if a.asname else PACKAGE
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == PACKAGE:
            for a in node.names:
                alias[a.asname or a.name] = f"{node.module}.{a.name}"
    found: set[str] = set()

    def dotted(node: ast.AST) -> str | None:
        if isinstance(node, ast.Name):
            return alias.get(node.id)
        if isinstance(node, ast.Attribute):
            base = dotted(node.value)
            return f"{base}.{node.attr}" if base else None
        return None

    for node in ast.walk(tree):
        if isinstance(node, ast.Name | ast.Attribute):
            path = dotted(node)
            if path and (name := _canonical(_resolve(path))):
                found.add(name)
    return found


def chapter_uses(srcdir: Path) -> dict[str, set[str]]:
    """For every notebook under ``book/``: its docname and the package objects it uses."""
    found = {}
    for nb in sorted((srcdir / "book").glob("*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        # One module: names imported in one cell are used in the next. Line magics and shell
        # escapes are dropped (not a continuation line that starts with "!=").
        code = "\n".join(line for line in code.splitlines()
                         if not re.match(r"\s*(%|!(?!=))", line))  # fmt: skip
        try:
            ast.parse(code)
        except SyntaxError as err:
            logger.warning(f"{nb.name}: its code could not be read for library links ({err})")
        found[f"book/{nb.stem}"] = uses(code)
    return found


def documented(name: str) -> bool:
    """Whether the reference page shows ``name``: it, or the class it belongs to, is in its
    module's ``__all__`` (a method is documented with its class)."""
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            module = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        return parts[cut] in getattr(module, "__all__", ())
    return False


def _builder_inited(app: Any) -> None:
    by_chapter = chapter_uses(Path(app.srcdir))
    by_object: dict[str, list[str]] = {}
    for doc, names in by_chapter.items():
        for name in sorted(names):
            if not documented(name):
                logger.warning(f"{doc} uses {name}, which the API page does not show "
                               f"(add it to its module's __all__)")  # fmt: skip
            by_object.setdefault(name, []).append(doc)
    app.env.mgs_by_chapter, app.env.mgs_by_object = by_chapter, by_object


_CODE = re.compile(r"(:[\w:+.-]+:`[^`]+`|``.+?``|`[^`]+`)")


def describe_type(value: Any) -> str:
    """The type of a constant in words, with its size for a container: ``dict`` of 4 entries."""
    name = f"``{type(value).__name__}``"
    if isinstance(value, dict):
        return f"{name} of {len(value)} {'entry' if len(value) == 1 else 'entries'}"
    if isinstance(value, list | tuple | set | frozenset):
        return f"{name} of {len(value)} {'item' if len(value) == 1 else 'items'}"
    return name


def constant_summary(lines: list[str], value: Any, annotated: bool) -> list[str]:
    """A constant's entry: the first paragraph of its docstring on one line, then its type.

    A colon outside code would read, to napoleon, as "type: description" (and print the
    start of the sentence as the type); it becomes a dash. The type line is left out when the
    constant has an annotation, which autodoc shows beside its name.
    """
    paragraph = []
    for line in lines:
        if not line.strip():
            if paragraph:
                break
            continue
        paragraph.append(line.strip())
    text = " ".join(paragraph)
    pieces = _CODE.split(text)
    colon = re.compile(r"(?<!:):(?!:)\s*")
    text = "".join(p if i % 2 else colon.sub(" – ", p) for i, p in enumerate(pieces))
    out = [text] if text else []
    if not annotated:
        out += ["", f"*Type:* {describe_type(value)}."]
    return out


def _constant(app: Any, what: str, name: str, obj: Any, options: Any, lines: list) -> None:
    """Before napoleon: a module-level constant's docstring becomes its summary and type."""
    if what != "data":
        return
    module, _, attr = name.rpartition(".")
    try:
        annotations = getattr(importlib.import_module(module), "__annotations__", {})
    except ImportError:
        annotations = {}
    lines[:] = constant_summary(lines, obj, attr in annotations)


def _rubrics(lines: list[str]) -> None:
    """Turn reST section titles of a module docstring into rubrics (no sections in a directive)."""
    for i in range(len(lines) - 1):
        title, under = lines[i].strip(), lines[i + 1].strip()
        if title and len(under) >= len(title) and len(set(under)) == 1 and under[0] in "-=~^":
            lines[i], lines[i + 1] = f".. rubric:: {title}", ""


def _docstring(app: Any, what: str, name: str, obj: Any, options: Any, lines: list) -> None:
    if what == "module":
        _rubrics(lines)
    docs = getattr(app.env, "mgs_by_object", {}).get(name)
    if docs and what in ("function", "class"):
        links = ", ".join(f":doc:`/{doc}`" for doc in docs)
        lines += ["", f"*Used in the book:* {links}.", ""]


def _doctree(app: Any, doctree: nodes.document) -> None:
    names = sorted(getattr(app.env, "mgs_by_chapter", {}).get(app.env.docname, ()))
    if not names:
        return
    items = nodes.bullet_list()
    for name in names:
        ref = addnodes.pending_xref("", refdomain="py", reftype="obj", reftarget=name,
                                    refexplicit=False, refwarn=True)  # fmt: skip
        ref += nodes.literal(name, name.removeprefix(f"{PACKAGE}."), classes=["xref", "py"])
        items += nodes.list_item("", nodes.paragraph("", "", ref))
    intro = nodes.paragraph("", "Each entry links to its documentation on the ")
    intro += addnodes.pending_xref("", nodes.inline("", "library reference"), refdomain="std",
                                   reftype="doc", reftarget="/book/api", refexplicit=True,
                                   refdoc=app.env.docname)  # fmt: skip
    intro += nodes.Text(" page.")
    section = doctree.next_node(nodes.section) or doctree
    section += [nodes.rubric("", "The library in this chapter", classes=["mgs-library"]),
                intro, items]  # fmt: skip


def setup(app: Any) -> dict:
    app.connect("builder-inited", _builder_inited)
    app.connect("autodoc-process-docstring", _constant, priority=400)  # napoleon's is 500
    app.connect("autodoc-process-docstring", _docstring)
    app.connect("doctree-read", _doctree, priority=400)
    return {"parallel_read_safe": False, "parallel_write_safe": True}
