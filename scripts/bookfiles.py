"""The chapters of the book, read from _toc.yml."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def toc_files() -> list[Path]:
    """Every file listed in _toc.yml, with its extension resolved."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    names = [toc["root"]]
    for part in toc.get("parts", []):
        names += [ch["file"] for ch in part["chapters"]]
    files = []
    for name in names:
        matches = [p for ext in (".ipynb", ".md") if (p := ROOT / f"{name}{ext}").exists()]
        assert len(matches) == 1, f"{name} should exist as exactly one of .ipynb or .md"
        files.append(matches[0])
    return files


def chapters() -> list[Path]:
    """The executable chapters (notebooks) of the book."""
    return [p for p in toc_files() if p.suffix == ".ipynb"]
