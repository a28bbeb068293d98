"""The lab's command line: ``python -m mgs_teach.lab COMMAND``.

``mnist``, ``regression`` and ``testbench`` train a plan's experiments resumably into
``results/<command>-<plan>/`` and write ``provenance.json`` and ``summary.json``; ``part
NAME`` does the same for a grid that a plan trains by a command of its own (Figure 3,
Figure 4 or a long table of the ``cpu`` plan) into ``results/<NAME>-<plan>/``;
``budget`` estimates a plan's cost; ``bench`` runs the benchmarks
(:mod:`mgs_teach.lab.bench`). Names (plans, tasks) map to values here and nowhere deeper.
A time limit is a deadline passed down as a ``stop()`` callback: training stops at its next
chunk boundary, keeps what finished, and the same command resumes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mgs_teach.checkpoint import write_atomic
from mgs_teach.lab import bench
from mgs_teach.lab.budget import budget, print_budget
from mgs_teach.lab.grid import Deadline
from mgs_teach.lab.plans import plans_for
from mgs_teach.lab.provenance import mnist_source, plan_provenance
from mgs_teach.lab.runner import run_mnist, run_part, tuned_strengths
from mgs_teach.lab.summaries import mnist_summary, part_summary

__all__ = ["main", "parser"]


def _add_run_options(sub: Any, default_out: str, task: str = "mnist") -> None:
    sub.add_argument("--plan", default="cpu", choices=sorted(plans_for(task)))
    sub.add_argument("--out", default=None, help=f"results folder (default {default_out})")
    sub.add_argument("--shard", default=None, metavar="I/N",
                     help="train only the I-th of N disjoint parts (0 <= I < N)")  # fmt: skip
    sub.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                     help="stop cleanly after this long; the next call continues")  # fmt: skip
    sub.add_argument("--no-progress", action="store_true")


def parser() -> argparse.ArgumentParser:
    """The command line's parser (``bench`` takes the rest of the line itself)."""
    p = argparse.ArgumentParser(prog="python -m mgs_teach.lab",
                                description="Reproduce a chapter's experiments.")  # fmt: skip
    sub = p.add_subparsers(dest="experiment", required=True)
    _add_run_options(sub.add_parser("mnist", help="the chapter 'MGS on corrupted MNIST'"),
                     "results/mnist-PLAN")  # fmt: skip
    _add_run_options(sub.add_parser("regression", help="the regression benchmark (Table 2 "
                                    "and D.2's regression)"), "results/regression-PLAN",
                     "faces")  # fmt: skip
    testbench = sub.add_parser("testbench", help="Appendix F's test bench, tuned strengths")
    part = sub.add_parser("part", help="a grid with a command of its own (the cpu plan's "
                          "figure3, figure4, long_fcn), tuned strengths")  # fmt: skip
    part.add_argument("name", help="the grid: one of the plan's own parts")
    for command, out in ((testbench, "results/testbench-PLAN"), (part, "results/NAME-PLAN")):
        _add_run_options(command, out)
        command.add_argument("--tuned", default=None,
                             help="results of the plan's mnist command, for its tuned "
                                  "strengths (default results/mnist-PLAN)")  # fmt: skip
    cost = sub.add_parser("budget", help="a plan's wall time from measured rates, and the "
                                          "least its arithmetic allows")  # fmt: skip
    cost.add_argument("--plan", default="paper", choices=sorted(plans_for()))
    cost.add_argument(
        "--task",
        default="mnist",
        choices=["mnist", "regression"],
        help="whose plan: the MNIST chapter's or the regression benchmark's",
    )
    cost.add_argument("--rates", type=Path, default=None,
                      help="JSON of python -m mgs_teach.lab bench training")  # fmt: skip
    cost.add_argument("--peak-tflops", type=float, default=None,
                      help="the device's peak rate, for the arithmetic floor (default: the "
                           "matrix-product rate measured with --rates)")  # fmt: skip
    sub.add_parser("bench", help="the benchmarks: python -m mgs_teach.lab bench --help")
    sub.add_parser("course", help="exercises as Otter-Grader assignments: course assign --help")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mgs_teach.lab mnist --plan cpu`` (then ``testbench --plan cpu``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:  # no rows timed is a failure, as it always was
        return 0 if bench.main(argv[1:]) else 1
    if argv[:1] == ["course"]:
        from mgs_teach.lab.course import main as course

        return course(argv[1:])
    p = parser()
    args = p.parse_args(argv)
    task = "faces" if "regression" in (args.experiment, getattr(args, "task", "")) else "mnist"
    plan = plans_for(task)[args.plan]
    if args.experiment == "budget":
        if args.rates is None and args.peak_tflops is None:
            p.error("budget needs --rates, --peak-tflops or both")
        rates = json.loads(args.rates.read_text()) if args.rates else []
        peak = args.peak_tflops * 1e12 if args.peak_tflops else None
        print_budget(budget(plan, rates, peak=peak), f"{args.task} plan {args.plan}")
        return 0
    name = {"testbench": "testbench", "part": getattr(args, "name", "")}.get(args.experiment)
    if task == "mnist":  # the tuning's sizes where the full MNIST is there (Tuning.full)
        plan = plan.for_source(mnist_source(plan))
    if args.experiment == "testbench" and plan.testbench is None:
        p.error(f"plan {plan.name} has no test bench")
    if args.experiment == "part" and name not in plan.own:
        p.error(f"plan {plan.name} trains no part {name!r} by a command of its own; its own "
                f"parts: {', '.join(plan.own) or 'none'}")  # fmt: skip
    out = Path(args.out or f"results/{name or args.experiment}-{plan.name}")
    shard = tuple(int(v) for v in args.shard.split("/")) if args.shard else None
    if name:
        tuned = Path(args.tuned or f"results/mnist-{plan.name}")
        try:
            tuned_strengths(plan, tuned, name)
        except FileNotFoundError as err:  # before anything is written
            print(err, file=sys.stderr)
            return 2
        command = _part(plan, name, out, tuned, shard, not args.no_progress)
    else:
        command = _mnist(plan, out, shard, not args.no_progress)
    return _run(command, argv, plan, out, args.shard, args.time_limit, name)


Command = tuple[Callable[..., dict[str, Any]], Callable[[dict[str, Any]], dict[str, Any]]]


def _mnist(plan: Any, out: Path, shard: Any, progress: bool) -> Command:
    """What an MNIST or regression command trains, and the summary of its results."""

    def work(stop: Callable[[], bool]) -> dict[str, Any]:
        return run_mnist(plan, out, shard=shard, progress=progress, stop=stop)

    return work, lambda results: mnist_summary(results, plan)


def _part(plan: Any, name: str, out: Path, tuned: Path, shard: Any, progress: bool) -> Command:
    """What a part's command trains (keeping the strengths it used), and its summary."""

    def work(stop: Callable[[], bool]) -> dict[str, Any]:
        results = run_part(plan, name, out, tuned, shard=shard, progress=progress, stop=stop)
        if shard is None:
            out.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(tuned / "best_strengths.json", out / "best_strengths.json")
        return results

    return work, lambda results: part_summary(name, results[name], plan, results["best"])


def _run(command: Command, argv: list[str], plan: Any, out: Path, shard: str | None,
         time_limit: float | None, part: str | None = None) -> int:  # fmt: skip
    """Run a command under its deadline, then write its provenance and summary.

    Exit status: 0 finished (or a shard done), 3 stopped (time limit or Ctrl-C; it resumes),
    4 a shard waiting for the other shards' tuning.
    """
    work, summary = command
    start = time.time()
    earlier = json.loads((out / "provenance.json").read_text()) if (
        out / "provenance.json").exists() else {}  # fmt: skip
    provenance = plan_provenance(argv, plan, start) | ({"part": part} if part else {})
    provenance["earlier_wall_s"] = earlier.get("wall_s", 0.0) + earlier.get("earlier_wall_s", 0.0)
    if shard is None:
        write_atomic(out / "provenance.json",
                     json.dumps({**provenance, "status": "running"}, indent=1))  # fmt: skip
    deadline = time.monotonic() + time_limit if time_limit else float("inf")
    status, results = "finished", {}
    try:
        results = work(lambda: time.monotonic() > deadline)
    except (KeyboardInterrupt, Deadline) as err:
        status = "partial"
        reason = f"time limit of {time_limit:g} s reached" if isinstance(err, Deadline) else err
        print(f"stopped ({reason or 'interrupted'}); finished runs are kept: run the same "
              "command again to continue")  # fmt: skip
    except RuntimeError as err:  # a shard waiting for the other shards' tuning
        if shard is None:
            raise
        print(err)
        return 4
    end = time.time()
    if shard is not None:
        print(f"shard {shard}: {status} in {end - start:.0f} s; merge the shards' folders and "
              f"run once without --shard to write the summary")  # fmt: skip
        return 0
    provenance.update(end=time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(end)),
                      wall_s=round(end - start, 1), status=status)  # fmt: skip
    provenance["total_wall_s"] = round(provenance["wall_s"] + provenance["earlier_wall_s"], 1)
    write_atomic(out / "provenance.json", json.dumps(provenance, indent=1))
    if status != "finished":
        return 3
    write_atomic(out / "summary.json", json.dumps(summary(results), indent=1))
    print(f"finished in {end - start:.0f} s; results, provenance.json and summary.json in {out}")
    return 0
