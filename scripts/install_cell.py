"""Write (or refresh) the Colab install cell at the top of every chapter.

    python scripts/install_cell.py

The cell installs ``mgs_teach`` only when it is missing, from the repository named in
``_config.yml`` at the tag of the version in ``pyproject.toml`` (as installed), with
``--no-deps`` so that the runtime's JAX is never replaced; then ``python -m mgs_teach.deps``
adds whatever else is missing, with JAX held at its version. Run this after a version bump:
``tests/test_colab.py`` fails until every chapter carries the current cell.
"""

from __future__ import annotations

import importlib.metadata
import json

import yaml
from bookfiles import ROOT, chapters

TAG = "colab-install"


def install_source() -> str:
    """The install cell's code, for the current repository URL and version."""
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    version = importlib.metadata.version("mgs-teach")
    spec = f"mgs-teach @ git+{url}@v{version}"
    return f'''\
# Colab or a fresh Jupyter: install the book's library, mgs_teach, if it is missing. It comes
# from the book's repository at the release this chapter was written for, without
# dependencies, so the JAX already installed (Colab's, with its GPU support) stays as it is;
# then mgs_teach.deps adds anything else that is missing, holding JAX at its version.
import importlib.util
import subprocess
import sys

if importlib.util.find_spec("mgs_teach") is None:
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps"]
    subprocess.run([*pip, "{spec}"], check=True)
    subprocess.run([sys.executable, "-m", "mgs_teach.deps"], check=True)
    importlib.invalidate_caches()'''


def install_cell() -> dict:
    return {
        "cell_type": "code",
        "execution_count": None,
        "id": TAG,
        "metadata": {"tags": ["remove-cell", TAG]},
        "outputs": [],
        "source": install_source().splitlines(keepends=True),
    }


def main() -> None:
    for path in chapters():
        nb = json.loads(path.read_text())
        cells = [c for c in nb["cells"] if TAG not in c.get("metadata", {}).get("tags", [])]
        first_code = next(i for i, c in enumerate(cells) if c["cell_type"] == "code")
        cells.insert(first_code, install_cell())
        nb["cells"] = cells
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        print(f"{path.relative_to(ROOT)}: install cell at position {first_code}")


if __name__ == "__main__":
    main()
