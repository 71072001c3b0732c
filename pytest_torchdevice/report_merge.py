"""Per-test reports (``--torchdevice-report``) from shards, machines and targets merged into one matrix.

A merged report keeps, per test and configuration (``runconfig``), every *distinct* result seen: results are
the same when outcome and cause agree (the shards of one run never overlap, so agreeing duplicates come from
re-runs and are folded, remembering every file they came from).  Two distinct results for one test in one
configuration are a conflict, and the table shows both with their files: a flaky test or a machine that
differs is something to look at, not to average away.

Merged reports merge again (``merge all.json more.json``).  Nothing here imports torch.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from . import runconfig
from .causes import classify_report

KIND = "torchdevice-merged-report"
VERSION = 1
_KEPT = ("outcome", "reason", "cause", "exception", "cuda_path", "redirected", "emulated", "refused", "mps")
_ICONS = {"passed": "✅", "failed": "❌", "error": "❌", "skipped": "⏭️", "xfailed": "🟡", "xpassed": "⚠️"}


class ReportError(ValueError):
    """An input that is not a report: names the file."""


def load(path: str | Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReportError(f"{path}: cannot read a report: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("tests"), dict):
        raise ReportError(f"{path}: not a --torchdevice-report JSON (no 'tests' object)")
    return data


def _result(test: dict[str, Any], origin: Sequence[str]) -> dict[str, Any]:
    out = {key: test[key] for key in _KEPT if key in test}
    out["cause"] = test.get("cause") or classify_report(test)
    out["from"] = sorted(set(origin))
    return out


def _order(result: dict[str, Any]) -> tuple[str, str]:
    return str(result.get("outcome")), str(result.get("cause") or "")


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return (a.get("outcome"), a.get("cause")) == (b.get("outcome"), b.get("cause"))


def merge(reports: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Merge ``(name, report)`` pairs (per-run reports or merged ones) into one merged report."""
    tests: dict[str, dict[str, list[dict[str, Any]]]] = {}
    inputs: list[dict[str, Any]] = []
    configurations: set[str] = set()

    def add(nodeid: str, configuration: str, result: dict[str, Any]) -> None:
        results = tests.setdefault(nodeid, {}).setdefault(configuration, [])
        for seen in results:
            if _same(seen, result):
                seen["from"] = sorted(set(seen["from"]) | set(result["from"]))
                return
        results.append(result)

    for name, data in reports:
        if data.get("kind") == KIND:
            inputs.extend(data.get("inputs", []))
            configurations.update(data.get("configurations", []))
            for nodeid, per_config in data["tests"].items():
                for configuration, results in per_config.items():
                    for result in results:
                        add(nodeid, configuration, _result(result, result.get("from") or [name]))
            continue
        configuration = runconfig.of_report(data)
        configurations.add(configuration)
        inputs.append({"file": name, "configuration": configuration, "tests": len(data["tests"])})
        for nodeid, test in data["tests"].items():
            add(nodeid, configuration, _result(test, [name]))
    return {
        "version": VERSION,
        "kind": KIND,
        "configurations": sorted(configurations),
        "inputs": inputs,
        "tests": {nodeid: {cfg: sorted(per[cfg], key=_order) for cfg in sorted(per)}
                  for nodeid, per in sorted(tests.items())},
    }


def merge_files(paths: Iterable[str]) -> dict[str, Any]:
    return merge((str(path), load(path)) for path in paths)


# ------------------------------------------------------------------------------------------------ the table
def cell(results: list[dict[str, Any]] | None, *, icons: bool = False) -> str:
    """``passed``, ``failed (float64)``, ``-`` (not run there), ``CONFLICT: passed [a.json] / failed [b.json]``."""
    if not results:
        return "-"

    def one(result: dict[str, Any]) -> str:
        outcome = str(result.get("outcome"))
        text = outcome + (f" ({result['cause']})" if result.get("cause") else "")
        return f"{_ICONS.get(outcome, '')} {text}" if icons else text

    if len(results) == 1:
        return one(results[0])
    return "CONFLICT: " + " / ".join(f"{one(r)} [{', '.join(r.get('from', []))}]" for r in results)


def _problem(per_config: dict[str, list[dict[str, Any]]]) -> bool:
    return any(len(rs) > 1 or rs[0].get("outcome") != "passed" for rs in per_config.values())


def totals(merged: dict[str, Any]) -> dict[str, Counter[str]]:
    """Per configuration: tests per outcome, ``conflict``, and ``cuda_path`` (tests that ran redirected code)."""
    out: dict[str, Counter[str]] = {cfg: Counter() for cfg in merged["configurations"]}
    for per_config in merged["tests"].values():
        for cfg, results in per_config.items():
            counter = out.setdefault(cfg, Counter())
            if len(results) > 1:
                counter["conflict"] += 1
            else:
                counter[str(results[0].get("outcome"))] += 1
            if any(r.get("cuda_path") for r in results):
                counter["cuda_path"] += 1
    return out


_COLUMNS = ("passed", "failed", "error", "skipped", "xfailed", "xpassed", "conflict", "cuda_path")
_LABELS = {"cuda_path": "on CUDA paths"}


def table(merged: dict[str, Any], fmt: str = "text", rows: str = "all") -> str:
    """The matrix test x configuration, then totals per configuration; ``fmt`` is ``text`` or ``github``."""
    configurations: list[str] = list(merged["configurations"])
    tests = merged["tests"]
    shown = [n for n in tests if rows == "all" or _problem(tests[n])]
    counts = totals(merged)
    if fmt == "github":
        return _markdown(merged, configurations, shown, counts, rows)
    header = ["test", *configurations]
    body = [[nodeid, *(cell(tests[nodeid].get(cfg)) for cfg in configurations)] for nodeid in shown]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(text.ljust(w) for text, w in zip(row, widths, strict=True)).rstrip() for row in [header, *body]]
    if rows != "all":
        lines.append(f"({len(tests) - len(shown)} tests passed in every configuration are not shown)")
    lines.append("")
    lines.append("totals:")
    for cfg in configurations:
        parts = [f"{counts[cfg][key]} {_LABELS.get(key, key)}" for key in _COLUMNS if counts[cfg][key]]
        lines.append(f"  {cfg}: {', '.join(parts) or 'no tests'}")
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def _markdown(merged: dict[str, Any], configurations: list[str], shown: list[str], counts: dict[str, Counter[str]],
              rows: str) -> str:
    tests = merged["tests"]
    lines = [f"### torchdevice: {len(tests)} tests in {len(configurations)} configurations", ""]
    lines.append("| configuration | " + " | ".join(_LABELS.get(key, key) for key in _COLUMNS) + " |")
    lines.append("|---" * (len(_COLUMNS) + 1) + "|")
    for cfg in configurations:
        lines.append(f"| `{_md(cfg)}` | " + " | ".join(str(counts[cfg][key]) for key in _COLUMNS) + " |")
    lines.append("")
    if shown:
        what = "every test" if rows == "all" else "tests not passing everywhere"
        lines += [f"<details><summary>{what} ({len(shown)})</summary>", ""]
        lines.append("| test | " + " | ".join(f"`{_md(cfg)}`" for cfg in configurations) + " |")
        lines.append("|---" * (len(configurations) + 1) + "|")
        for nodeid in shown:
            cells = [_md(cell(tests[nodeid].get(cfg), icons=True)) for cfg in configurations]
            lines.append(f"| `{_md(nodeid)}` | " + " | ".join(cells) + " |")
        lines += ["", "</details>"]
    elif rows != "all":
        lines.append("Every test passed in every configuration.")
    return "\n".join(lines) + "\n"
