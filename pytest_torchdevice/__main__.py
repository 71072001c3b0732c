"""``python -m pytest_torchdevice report merge|table``: the CI side of the per-test reports.

    python -m pytest_torchdevice report merge shard-*.json -o all.json
    python -m pytest_torchdevice report table all.json                       # a text matrix on stdout
    python -m pytest_torchdevice report table all.json --format github >> "$GITHUB_STEP_SUMMARY"
    python -m pytest_torchdevice manifest merge lane-*.txt --base ci/known-failures.txt -o ci/known-failures.txt
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from . import manifest_file, report_merge


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m pytest_torchdevice", description=__doc__.split("\n")[0])
    commands = top.add_subparsers(dest="command", required=True)
    report = commands.add_parser("report", help="merge and tabulate --torchdevice-report JSON files")
    actions = report.add_subparsers(dest="action", required=True)
    merge = actions.add_parser("merge", help="merge reports (per run or already merged) into one")
    merge.add_argument("reports", nargs="+", metavar="REPORT.json")
    merge.add_argument("-o", "--output", required=True, metavar="OUT.json", help="the merged report to write")
    show = actions.add_parser("table", help="print the matrix test x configuration")
    show.add_argument("reports", nargs="+", metavar="REPORT.json", help="merged reports or per-run ones")
    show.add_argument("--format", choices=("text", "github"), default="text",
                      help="text (default) or github: Markdown for a GitHub Actions step summary")
    show.add_argument("--rows", choices=("all", "problems"), default="all",
                      help="all tests (default), or only those not passing in every configuration")
    show.add_argument("-o", "--output", metavar="PATH", help="write here instead of stdout ('-' for stdout)")
    manifests = commands.add_parser("manifest", help="combine known-failure manifests")
    manifest_actions = manifests.add_subparsers(dest="action", required=True)
    combine = manifest_actions.add_parser(
        "merge", help="one manifest from those shards and lanes wrote (--torchdevice-manifest-out)")
    combine.add_argument("manifests", nargs="+", metavar="MANIFEST.txt")
    combine.add_argument("-o", "--output", required=True, metavar="OUT.txt")
    combine.add_argument("--base", metavar="MANIFEST.txt",
                         help="keep this manifest's configurations that none of the inputs has")
    return top


def merge_manifests(paths: Sequence[str], output: str, base: str | None) -> int:
    try:
        parts = [manifest_file.Manifest.read(path) for path in paths]
        for path in paths:
            if not Path(path).exists():
                raise manifest_file.ManifestError(f"{path}: no such file")
        start = manifest_file.Manifest.read(base) if base else None
    except manifest_file.ManifestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    merged, disagreements = manifest_file.combine(parts, start)
    for line in disagreements:
        print(f"warning: the inputs disagree on {line}; the first one's line is kept", file=sys.stderr)
    header = [f"# merged from {len(paths)} manifests by python -m pytest_torchdevice manifest merge"
              + (f" (base {base})" if base else ""), *manifest_file.FORMAT_HELP]
    merged.write(output, header)
    print(f"{len(merged.entries)} entries in {len(merged.configurations())} configurations -> {output}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "manifest":
        return merge_manifests(args.manifests, args.output, args.base)
    try:
        merged = report_merge.merge_files(args.reports)
    except report_merge.ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.action == "merge":
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(merged, indent=2) + "\n", encoding="utf-8")
        conflicts = sum(report_merge.totals(merged)[cfg]["conflict"] for cfg in merged["configurations"])
        print(f"merged {len(args.reports)} reports: {len(merged['tests'])} tests in "
              f"{len(merged['configurations'])} configurations ({conflicts} conflicts) -> {out}")
        return 0
    text = report_merge.table(merged, args.format, args.rows)
    if args.output and args.output != "-":
        with open(args.output, "a", encoding="utf-8") as stream:  # a step summary is appended to
            stream.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
