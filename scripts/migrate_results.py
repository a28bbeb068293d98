"""Rename stored runs to the current key scheme: ``python scripts/migrate_results.py [ROOT]``.

Every run folder of a results store is named by its experiment's key
(:attr:`mgs_teach.lab.experiment.Experiment.key`). When the key scheme changes
(:data:`mgs_teach.lab.experiment.KEY_VERSION`), this renames each folder that holds an
``experiment.json`` to the key that experiment has now. Nothing is re-trained and no file's
content changes; ``--check`` only reports what would move (exit 1 if anything would).

The checkpoints of groups still in progress (``.checkpoints/*.pkl``) are named by the old keys
of their runs and would never be resumed: they are deleted, and those groups start again.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mgs_teach.lab.experiment import Experiment


def moves(root: Path) -> list[tuple[Path, Path]]:
    """``(old folder, new folder)`` of every stored experiment under ``root`` whose key changed."""
    out = []
    for meta in sorted(root.rglob("experiment.json")):
        folder = meta.parent
        key = Experiment.from_json(json.loads(meta.read_text())).key
        if folder.name != key:
            out.append((folder, folder.with_name(key)))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default="results", type=Path)
    parser.add_argument("--check", action="store_true", help="report only; exit 1 if stale")
    args = parser.parse_args(argv)
    todo = moves(args.root)
    for old, new in todo:
        if new.exists():
            print(f"refusing to move {old}: {new} exists", file=sys.stderr)
            return 2
        print(f"{old} -> {new.name}")
        if not args.check:
            old.rename(new)
    print(f"{len(todo)} folders {'to move' if args.check else 'moved'}")
    stale = sorted(args.root.rglob(".checkpoints/*.pkl")) if todo else []
    for path in stale:
        print(f"{'stale' if args.check else 'deleted'} checkpoint of a group in progress: {path}")
        if not args.check:
            path.unlink()
    return 1 if args.check and todo else 0


if __name__ == "__main__":
    raise SystemExit(main())
