"""Small fixes to the rendered book, loaded through ``sphinx.local_extensions``.

- sphinx-thebe adds its inline configuration script to every page twice under Jupyter Book 1,
  and the second copy stops with "Identifier 'THEBE_JS_URL' has already been declared" in the
  reader's browser. Identical inline scripts are dropped here, keeping the first.
"""

from __future__ import annotations

from typing import Any


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


def setup(app: Any) -> dict:
    app.connect("html-page-context", _drop_duplicate_inline_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
