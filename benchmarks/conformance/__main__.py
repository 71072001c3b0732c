"""Command line: ``python -m benchmarks.conformance [--db op_db,module_db,optim_db] [--ops a,b] [--limit N]
[--json PATH] [--threads N]``; prints the table of samples run, identical, and mismatched by cause."""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections import Counter
from typing import Any

import torch

from . import modules, ops, optimizers
from .compare import CAUSES, Summary

DBS = ("op_db", "module_db", "optim_db")


def table(summary: Summary) -> str:
    """The markdown table of the README: one row per database, one column per cause that occurred."""
    by_db: dict[str, Counter[str]] = {db: Counter() for db in DBS if db in summary.seconds}
    for o in summary.outcomes:
        by_db.setdefault(o.db, Counter())[o.cause or "identical"] += 1
    causes = [c for c in CAUSES if any(c in counts for counts in by_db.values())]
    head = ["database", "samples", "identical", "%", *causes, "seconds"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    total: Counter[str] = Counter()
    for db, counts in by_db.items():
        run = sum(counts.values())
        total.update(counts)
        lines.append(_row(db, run, counts, causes, summary.seconds.get(db, 0.0)))
    if len(by_db) > 1:
        lines.append(_row("all", sum(total.values()), total, causes, sum(summary.seconds.values()), bold=True))
    return "\n".join(lines)


def _row(name: str, run: int, counts: Counter[str], causes: list[str], seconds: float, bold: bool = False) -> str:
    same = counts.get("identical", 0)
    pct = f"{100.0 * same / run:.2f}" if run else "-"
    cells = [name, str(run), str(same), pct, *(str(counts.get(c, 0)) for c in causes), f"{seconds:.0f}"]
    if bold:
        cells = [f"**{c}**" for c in cells]
    return "| " + " | ".join(cells) + " |"


def remaining(summary: Summary, limit: int = 80) -> str:
    """The entries with mismatches: name, dtype, cause, how many samples, the first detail."""
    groups: dict[tuple[str, str, str, str], list[Any]] = {}
    for o in summary.outcomes:
        if o.cause:
            groups.setdefault((o.db, o.name, o.dtype, o.cause), []).append(o)
    lines = []
    for (db, name, dtype, cause), items in sorted(groups.items()):
        lines.append(f"  {db:9} {name} [{dtype}] {cause}: {len(items)} sample(s), e.g. #{items[0].index}: "
                     f"{items[0].detail}")
    if len(lines) > limit:
        lines = [*lines[:limit], f"  ... {len(lines) - limit} more (see --json)"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.conformance", description=__doc__)
    parser.add_argument("--db", default=",".join(DBS), help="comma-separated: op_db, module_db, optim_db")
    parser.add_argument("--ops", default=None,
                        help="comma-separated entry names: OpInfo name[.variant], module (nn.Linear) or optimizer")
    parser.add_argument("--limit", type=int, default=None, help="at most N samples per entry, dtype and variant")
    parser.add_argument("--variants", default=",".join(ops.VARIANTS), help="op_db variants: op, inplace")
    parser.add_argument("--json", default=None, metavar="PATH", help="write the table and every mismatch")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: both sides alike)")
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    dbs = [d.strip() for d in args.db.split(",") if d.strip()]
    bad = [d for d in dbs if d not in DBS]
    if bad:
        parser.error(f"unknown --db {', '.join(bad)}; valid choices: {', '.join(DBS)}")
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return _run(args, dbs)
    finally:
        torch.set_num_threads(threads)  # (main() also runs inside test processes)


def _run(args: argparse.Namespace, dbs: list[str]) -> int:
    names = [n.strip() for n in args.ops.split(",")] if args.ops else None
    summary = Summary()
    start = time.perf_counter()
    for db in dbs:
        chosen = None if names is None else _names_for(db, names)
        if names is not None and not chosen:
            continue
        if db == "op_db":
            ops.run(chosen, limit=args.limit, variants=args.variants.split(","), summary=summary,
                    progress=args.progress)
        elif db == "module_db":
            modules.run(chosen, limit=args.limit, summary=summary, progress=args.progress)
        else:
            optimizers.run(chosen, limit=args.limit, summary=summary)
    wall = time.perf_counter() - start
    print(table(summary))
    gaps = Counter(o.name.split(" ")[0] for o in summary.outcomes if o.no_cuda_kernel)
    if gaps:
        print(f"{sum(gaps.values())} samples ({len(gaps)} OpInfos) are at a dtype CUDA has no kernel for "
              f"(OpInfo dtypesIfCUDA): they run here and would raise on CUDA: {', '.join(sorted(gaps)[:12])}"
              + (" ..." if len(gaps) > 12 else ""))
    for reason, count in sorted(summary.not_run.items()):
        print(f"not run: {reason}: {count}")
    rest = remaining(summary)
    if rest:
        print("mismatches:")
        print(rest)
    print(f"{wall:.0f} s, torch {torch.__version__}, {torch.get_num_threads()} thread(s), {platform.machine()}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(_as_json(summary, wall, args.argv), f, indent=1)
    return 0


def _names_for(db: str, names: list[str]) -> list[str]:
    """Which of ``--ops`` belong to ``db`` (a name may be known to several)."""
    known: set[str]
    if db == "op_db":
        known = {ops.full_name(o) for o in ops.op_db()} | {o.name for o in ops.op_db()}
    elif db == "module_db":
        known = {i.name for i in modules.module_db()} | {i.module_cls.__name__ for i in modules.module_db()}
    else:
        known = {optimizers.name_of(i) for i in optimizers.optim_db()}
    return [n for n in names if n in known]


def _as_json(summary: Summary, wall: float, argv: list[str]) -> dict[str, Any]:
    counts: dict[str, Counter[str]] = {}
    for o in summary.outcomes:
        counts.setdefault(o.db, Counter())[o.cause or "identical"] += 1
    return {
        "command": "python -m benchmarks.conformance " + " ".join(argv),
        "torch": torch.__version__,
        "seconds": {**summary.seconds, "wall": wall},
        "counts": {db: dict(c) for db, c in counts.items()},
        "not_run": summary.not_run,
        "no_cuda_kernel": sorted({o.name for o in summary.outcomes if o.no_cuda_kernel}),
        "table": table(summary),
        "mismatches": [o.as_dict() for o in summary.outcomes if o.cause],
    }


if __name__ == "__main__":
    raise SystemExit(main())
