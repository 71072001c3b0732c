"""The command line: ``python -m benchmarks.real_suites`` (see the package docstring).

Runs each chosen suite the chosen ways, prints every suite's detail and then the summary table (regressions
first), and writes the JSON summary. Exit status 2 when a suite could not be set up, 1 when any suite has a
regression not known to fail on real CUDA too, else 0.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from .analysis import SuiteResult, analyse
from .provision import REPO_ROOT, SetupError, log, prepare, remove_installation
from .run import WAYS, XDIST_WORKERS, RunResult, plugin_has_target_device, run_way
from .suites import SUITES, TOOL_PINS, TORCH_PIN, Suite
from .tables import RULE, print_suite, print_summary


def run_suite(
    suite: Suite, workdir: Path, threads: int, ways: tuple[str, ...], git_mirror: Path | None = None
) -> SuiteResult:
    suite_dir = workdir / suite.name
    try:
        ready = prepare(suite, suite_dir, git_mirror)
    except SetupError as exc:
        log(f"{suite.name}: SETUP FAILED: {exc}")
        return SuiteResult(
            suite=suite.name,
            version=suite.version,
            test_args=list(suite.test_args),
            subset_note=suite.subset_note,
            setup_error=str(exc),
        )
    out_dir = suite_dir / "runs"
    out_dir.mkdir(parents=True, exist_ok=True)
    plugin_ok = plugin_has_target_device(suite, ready.python, ready.src_dir)
    if not plugin_ok:
        log(f"{suite.name}: pytest-torchdevice has no --target-device: running the native way only")
    runs: dict[str, RunResult] = {}
    for way in ways:
        if way == "native" or plugin_ok:
            runs[way] = run_way(suite, way, ready.python, ready.src_dir, out_dir, threads)
    return analyse(suite, runs, plugin_ok)


def project_commit() -> str:
    """This repository's HEAD, +dirty when tracked files differ: the plugin version the numbers are for."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT, capture_output=True, text=True
        )
    except OSError:
        return "unknown"
    return (head.stdout.strip() or "unknown") + ("+dirty" if dirty.stdout.strip() else "")


def parse_ways(text: str) -> tuple[str, ...]:
    ways = tuple(w.strip() for w in text.split(",") if w.strip())
    unknown = [w for w in ways if w not in WAYS]
    if unknown or "native" not in ways:
        raise argparse.ArgumentTypeError(f"ways are a comma list of {', '.join(WAYS)} that includes native")
    return tuple(w for w in WAYS if w in ways)


def parse_mirror(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep or name not in SUITES:
        raise argparse.ArgumentTypeError(f"expected NAME=GIT_DIR with NAME one of {', '.join(SUITES)}")
    return name, Path(path).resolve()


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.real_suites",
        description="Run real third-party suites natively and with the plugin; report regressions first.",
    )
    ap.add_argument(
        "--suite",
        action="extend",
        nargs="+",
        choices=sorted(SUITES),
        metavar="NAME",
        help=f"suites to run (default: all): {', '.join(SUITES)}",
    )
    ap.add_argument(
        "--ways",
        type=parse_ways,
        default=WAYS,
        help="comma list of native,plugin,xdist (default: all three); native,plugin is the regression run",
    )
    ap.add_argument("--workdir", type=Path, default=REPO_ROOT / ".real_suites")
    ap.add_argument("--json", type=Path, default=None, help="default: WORKDIR/results.json")
    ap.add_argument("--keep", action="store_true", help="keep venvs and unpacked sources (a later run reuses them)")
    ap.add_argument(
        "--git-mirror",
        type=parse_mirror,
        action="append",
        default=[],
        metavar="NAME=GIT_DIR",
        help="a local clone to take a suite's tests from, for suites whose sdist ships none",
    )
    ap.add_argument(
        "--test-args",
        type=shlex.split,
        default=None,
        metavar="ARGS",
        help="replace the suites' test paths and selection (one string, shell-split), for a look beyond the subset",
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="OMP/MKL threads per pytest process (default 1; 0: torch's default, one per core)",
    )
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    workdir: Path = args.workdir.resolve()
    json_path: Path = (args.json or workdir / "results.json").resolve()
    names = list(dict.fromkeys(args.suite or SUITES))
    mirrors = dict(args.git_mirror)
    workdir.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    results = []
    for name in names:
        suite = SUITES[name]
        if args.test_args is not None:
            note = "test args given on the command line: " + shlex.join(args.test_args)
            suite = dataclasses.replace(suite, test_args=tuple(args.test_args), subset_note=note)
        results.append(run_suite(suite, workdir, args.threads, args.ways, mirrors.get(name)))
        if not args.keep:
            remove_installation(workdir / name)
    total = time.perf_counter() - started

    print()
    for res in results:
        print_suite(res)
    print(RULE)
    print_summary(results)
    threads = f"{args.threads} thread(s)" if args.threads else "torch's default threads"
    print(f"total time {total:.0f}s on {os.cpu_count()} CPUs, {threads} per pytest process; JSON: {json_path}")
    summary = {
        "project_commit": project_commit(),
        "torch": TORCH_PIN,
        "tools": list(TOOL_PINS),
        "ways": list(args.ways),
        "xdist_workers": XDIST_WORKERS,
        "threads_per_process": args.threads or "torch default",
        "cpus": os.cpu_count(),
        "total_s": round(total, 1),
        "suites": [r.to_json() for r in results],
    }
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(summary, indent=1) + "\n")
    if any(r.setup_error for r in results):
        return 2
    return 1 if any(r.regressions_unexplained for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
