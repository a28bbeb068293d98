"""Small fixes to the rendered book, and the instructors page's generated figures, loaded
through ``sphinx.local_extensions``.

- sphinx-thebe adds its inline configuration script to every page twice under Jupyter Book 1,
  and the second copy stops with "Identifier 'THEBE_JS_URL' has already been declared" in the
  reader's browser. Identical inline scripts are dropped here, keeping the first.
- The instructors page (``book/instructors.md``) types none of its counts or run times:

  - ``{mgs-chapter-table}`` is its table of chapters. Each line of its content is
    ``<notebook stem>: <full-scale estimate>``; the table adds the number of exercises of the
    chapter (its ``{exercise}`` directives), the working time (the sum of the times in the
    chapter's exercise table on the page) and the chapter's execution time in the build that
    made the page (what jupyter-cache recorded for it, as ``{nb-exec-table}`` shows).
  - ``{mgs-runtime}`<stem>``` is that execution time in a sentence.
  - ``{mgs-walltime}`<name>``` is the wall time that the stored runs' provenance,
    ``results/<name>/provenance.json``, records.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx import addnodes
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util.docutils import SphinxDirective

EXERCISE = re.compile(r"```\{exercise\}")
#: The key under which myst-nb lists the pages to write again when a notebook executed anew.
EXEC_TABLE_KEY = "has_exec_table"
NOT_EXECUTED = "not measured"


def _drop_duplicate_inline_scripts(app: Any, pagename: str, templatename: str,
                                   context: dict, doctree: Any) -> None:  # fmt: skip
    seen, kept = set(), []
    for script in context.get("script_files", []):
        body = getattr(script, "attributes", {}).get("body")
        if body is not None and not getattr(script, "filename", None):
            if body in seen:
                continue
            seen.add(body)
        kept.append(script)
    context["script_files"] = kept


def exercise_count(notebook: Path) -> int:
    """The number of ``{exercise}`` directives in the markdown cells of ``notebook``."""
    cells = json.loads(notebook.read_text())["cells"]
    return sum(len(EXERCISE.findall("".join(c["source"])))
               for c in cells if c["cell_type"] == "markdown")  # fmt: skip


def working_minutes(page: str, stem: str) -> int:
    """The sum of the ``NN min`` times of the exercise rows in the section of ``stem`` of the
    instructors page's text (from its target ``(instr-<stem>)=`` to the next one)."""
    start = page.find(f"(instr-{stem})=")
    if start < 0:
        return 0
    end = page.find("(instr-", start + 1)
    section = page[start : end if end > 0 else None]
    rows = re.findall(r"^\|\s*\{ref\}`[^`]+`.*\|\s*(\d+)\s*min\s*\|\s*$", section, re.M)
    return sum(map(int, rows))


def hours_and_minutes(minutes: int) -> str:
    """``175`` -> ``2 h 55 min``; ``45`` -> ``45 min``."""
    hours, rest = divmod(minutes, 60)
    return " ".join(part for part in (f"{hours} h" if hours else "", f"{rest} min" if rest else "")
                    if part) or "0 min"  # fmt: skip


def seconds_text(seconds: float | None) -> str:
    """A run time in words: ``34 s``, ``3.1 min``, ``1.2 h``; without one, a note that says so."""
    if seconds is None:
        return NOT_EXECUTED
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.1f} min".replace(".0 min", " min")
    return f"{seconds / 3600:.1f} h"


def build_runtime(env: Any, stem: str) -> float | None:
    """The execution time of chapter ``book/<stem>`` that this build recorded, if any."""
    from myst_nb.sphinx_ import NbMetadataCollector

    data = NbMetadataCollector.get_doc_data(env).get(f"book/{stem}", {}).get("exec_data")
    return (data or {}).get("runtime")


class ChapterTableNode(nodes.General, nodes.Element):
    """Placeholder for the table of chapters, filled once every chapter has executed."""


class RuntimeNode(nodes.General, nodes.Inline, nodes.Element):
    """Placeholder for a chapter's execution time in this build."""


def _mark_for_rewrite(env: Any) -> None:
    from myst_nb.sphinx_ import NbMetadataCollector

    NbMetadataCollector.set_doc_data(env, env.docname, EXEC_TABLE_KEY, True)


class ChapterTable(SphinxDirective):
    """``{mgs-chapter-table}``: one content line per chapter, ``<stem>: <full estimate>``."""

    has_content = True

    def run(self) -> list[nodes.Node]:
        page = Path(self.env.doc2path(self.env.docname)).read_text()
        rows = []
        for line in self.content:
            stem, _, full = (part.strip() for part in line.partition(":"))
            notebook = Path(self.env.srcdir) / "book" / f"{stem}.ipynb"
            if not notebook.exists():
                raise self.error(f"mgs-chapter-table: no chapter book/{stem}.ipynb")
            text, messages = self.state.inline_text(full, self.lineno)
            rows.append({"stem": stem, "full": text, "exercises": exercise_count(notebook),
                         "minutes": working_minutes(page, stem)})  # fmt: skip
            if messages:
                return messages
        _mark_for_rewrite(self.env)
        return [ChapterTableNode(rows=rows)]


def provenance_path(srcdir: Path, name: str) -> Path:
    """``results/<name>/provenance.json`` of the book's sources, or, where they have no
    ``results/`` (the student edition's copy), of the stored results the library finds."""
    path = srcdir / "results" / name / "provenance.json"
    if path.exists():
        return path
    from mgs_teach.lab.summaries import results_dir

    try:
        return results_dir(name) / "provenance.json"
    except FileNotFoundError:
        return path


def runtime_role(name: str, rawtext: str, text: str, lineno: int, inliner: Any,
                 options: Any = None, content: Any = None) -> tuple[list, list]:  # fmt: skip
    """``{mgs-runtime}`<stem>```: the chapter's execution time in this build."""
    _mark_for_rewrite(inliner.document.settings.env)
    return [RuntimeNode(stem=text.strip())], []


def walltime_role(name: str, rawtext: str, text: str, lineno: int, inliner: Any,
                  options: Any = None, content: Any = None) -> tuple[list, list]:  # fmt: skip
    """``{mgs-walltime}`<name>```: the wall time in ``results/<name>/provenance.json``."""
    env = inliner.document.settings.env
    path = provenance_path(Path(env.srcdir), text.strip())
    try:
        seconds = json.loads(path.read_text()).get("total_wall_s")
    except (OSError, ValueError):
        seconds = None
    if seconds is None:
        msg = inliner.reporter.warning(f"mgs-walltime: no total_wall_s in {path}", line=lineno)
        return [inliner.problematic(rawtext, rawtext, msg)], [msg]
    env.note_dependency(str(path))
    return [nodes.Text(seconds_text(seconds))], []


def _cell(*children: nodes.Node) -> nodes.entry:
    return nodes.entry("", nodes.paragraph("", "", *children))


def _table(env: Any, docname: str, rows: list[dict]) -> nodes.table:
    heads = ["Chapter", "Exercises", "Working time", "quick scale, this build", "full scale, GPU"]
    table = nodes.table(classes=["colwidths-auto"])
    group = nodes.tgroup(cols=len(heads))
    table += group
    group += [nodes.colspec(colwidth=1) for _ in heads]
    head = nodes.thead()
    group += head
    head += nodes.row("", *(_cell(nodes.Text(h)) for h in heads))
    body = nodes.tbody()
    group += body
    for row in rows:
        link = addnodes.pending_xref("", nodes.inline("", row["stem"]), refdomain="std",
                                     reftype="doc", reftarget=f"/book/{row['stem']}",
                                     refexplicit=False, refdoc=docname, refwarn=True)  # fmt: skip
        body += nodes.row("", _cell(link), _cell(nodes.Text(str(row["exercises"]))),
                          _cell(nodes.Text(hours_and_minutes(row["minutes"]))),
                          _cell(nodes.Text(seconds_text(build_runtime(env, row["stem"])))),
                          _cell(*(n.deepcopy() for n in row["full"])))  # fmt: skip
    return table


class FillFromTheBuild(SphinxPostTransform):
    """Replace the placeholders once every chapter has executed (before links resolve)."""

    default_priority = 8

    def run(self, **kwargs: Any) -> None:
        for node in list(self.document.findall(ChapterTableNode)):
            node.replace_self(_table(self.env, self.env.docname, node["rows"]))
        for node in list(self.document.findall(RuntimeNode)):
            node.replace_self(nodes.Text(seconds_text(build_runtime(self.env, node["stem"]))))


def setup(app: Any) -> dict:
    app.connect("html-page-context", _drop_duplicate_inline_scripts, priority=900)
    app.add_node(ChapterTableNode)
    app.add_node(RuntimeNode)
    app.add_directive("mgs-chapter-table", ChapterTable)
    app.add_role("mgs-runtime", runtime_role)
    app.add_role("mgs-walltime", walltime_role)
    app.add_post_transform(FillFromTheBuild)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
