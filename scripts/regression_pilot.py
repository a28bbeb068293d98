"""Train the regression pilot: ``python scripts/regression_pilot.py [--out DIR]``.

The grid is :data:`mgs_teach.lab.pilots.REGRESSION_PILOT` on the networks of the regression
``cpu`` plan; ``DIR`` is ``results/regression-pilot`` by default. Runs are stored as they
finish (the command resumes), the onset grid's under ``DIR/onset``; at the end it writes
``provenance.json`` and ``summary.json`` (:func:`mgs_teach.lab.pilots.pilot_summary`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from mgs_teach.checkpoint import write_atomic
from mgs_teach.lab.grid import run_grid
from mgs_teach.lab.pilots import REGRESSION_PILOT, pilot_grid, pilot_summary
from mgs_teach.lab.plans import REGRESSION_CPU
from mgs_teach.lab.provenance import provenance


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/regression-pilot"))
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    start = time.time()
    found = provenance(" ".join(["python", "scripts/regression_pilot.py", *(argv or sys.argv[1:])]),
                       start)  # fmt: skip
    runs = run_grid(pilot_grid(), range(REGRESSION_PILOT.runs), args.out / "runs",
                    progress=not args.no_progress)  # fmt: skip
    run_grid(pilot_grid(onset=True), [0], args.out / "onset", progress=not args.no_progress)
    end = time.time()
    found.update(task="faces", faces_source=REGRESSION_CPU.source, status="finished",
                 end=time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(end)),
                 wall_s=round(end - start, 1))  # fmt: skip
    write_atomic(args.out / "provenance.json", json.dumps(found, indent=1))
    write_atomic(args.out / "summary.json", json.dumps(pilot_summary(runs), indent=1))
    print(f"finished in {end - start:.0f} s; results in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
