"""What the run redirected, per test: the terminal summary and the ``--torchdevice-report`` JSON.

Workers attach each test's record to its teardown report (``user_properties``), so the same collector
works in-process and on the xdist controller.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

PROPERTY = "torchdevice"


def test_record(diff: Any, note: str | None = None) -> dict[str, Any]:
    """The JSON-able record of one test from a ``RecordSnapshot`` diff."""
    data: dict[str, Any] = {"redirected": {}, "emulated": {}, "refused": {}, "mps": {}, "target_gap": {}}
    seen: set[str] = set()
    for (kind, api), count in sorted(diff.counts.items()):
        if kind == "source":
            seen.add(api)
        else:
            data[kind][api] = count
    if diff.sites:
        data["call_sites"] = {f"{kind}:{api}": dict(sorted(sites.items())) for (kind, api), sites in diff.sites.items()}
    data["cuda_path"] = bool(data["redirected"] or data["refused"])
    # (queries alone do not count: a conftest asking torch.cuda.is_available() did not use CUDA)
    seen.update(s for s in map(namespace_source, data["refused"]) if s)
    data["sources"] = sorted(seen)
    data["queried"] = sorted({s for s in map(namespace_source, data["emulated"]) if s} - seen)
    if note:
        data["note"] = note
    return data


def namespace_source(api: str) -> str | None:
    """The source device an emulated API belongs to: ``torch.cuda.x`` -> cuda, ``torch.backends.mps.x`` -> mps."""
    for source in ("cuda", "mps"):
        if api.startswith((f"torch.{source}.", f"torch.backends.{source}.")):
            return source
    return None


def _sources_phrase(sources: set[str], fallback: str) -> str:
    names = sorted(sources) or [s for s in fallback.split(",") if s]
    return " and ".join(n.upper() for n in names) if sources else " or ".join(n.upper() for n in names)


@dataclass
class TestEntry:
    outcome: str = "passed"
    reason: str | None = None
    record: dict[str, Any] = field(default_factory=dict)


class Collector:
    def __init__(self, describe: str, source: str, target: str, sources: tuple[str, ...] = (),
                 configuration: str = "off") -> None:
        self.describe = describe
        self.source = source  # as asked: auto, cuda or mps
        self.sources = sources or ((source,) if source != "auto" else ("cuda", "mps"))  # what was redirected
        self.target = target
        self.configuration = configuration  # runconfig.configuration(): what manifests and merges key on
        self.tests: dict[str, TestEntry] = {}

    def add(self, report: pytest.TestReport) -> None:
        entry = self.tests.setdefault(report.nodeid, TestEntry())
        if report.when == "call" or report.outcome != "passed":
            outcome: str = report.outcome
            if hasattr(report, "wasxfail"):
                outcome = "xpassed" if report.outcome == "passed" else "xfailed"
            elif report.when != "call" and report.outcome == "failed":
                outcome = "error"
            if entry.outcome in ("passed",) or outcome in ("failed", "error"):
                entry.outcome = outcome
                entry.reason = _reason(report)
        for name, value in report.user_properties:
            if name == PROPERTY and isinstance(value, dict):
                entry.record = value

    def add_mps(self, nodeid: str, what: str) -> None:
        """An MPS limit seen outside the core's record (a real Mac's CPU-fallback warning)."""
        entry = self.tests.setdefault(nodeid, TestEntry())
        mps = entry.record.setdefault("mps", {})
        mps[what] = mps.get(what, 0) + 1

    def as_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "source": self.source,
            "sources_seen": self.sources_seen(),
            "target": self.target,
            "configuration": self.configuration,
            "tests": {
                nodeid: {"outcome": e.outcome, "reason": e.reason, **_with_defaults(e.record)}
                for nodeid, e in sorted(self.tests.items())
            },
        }

    def write(self, path: str) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(self.as_json(), indent=2) + "\n")

    def title(self) -> str:
        """``cuda -> cpu``: the sources seen (the configured ones before any was seen) and the target."""
        seen = self.sources_seen()
        _configured, arrow, target = self.describe.partition(" -> ")
        return f"{', '.join(seen)} -> {target}" if seen and arrow else self.describe

    def sources_seen(self) -> list[str]:
        """The source device types the run's tests really asked for (tensors put there, APIs called)."""
        return sorted({s for e in self.tests.values() for s in e.record.get("sources", ())})

    def terminal_lines(self) -> list[str]:
        touched = [e for e in self.tests.values() if e.record.get("cuda_path")]
        emulated_only = [e for e in self.tests.values() if e.record.get("emulated") and not e.record.get("cuda_path")]
        seen = set(self.sources_seen())
        paths = _sources_phrase(seen, ",".join(self.sources))
        queried = (sorted({s for e in emulated_only for s in e.record.get("queried", ())}) or sorted(seen)
                   or list(self.sources))
        namespaces = "/".join(f"torch.{s}" for s in queried)
        per_source = ""
        if len(seen) > 1:
            counts = Counter(s for e in touched for s in e.record.get("sources", ()))
            per_source = ", ".join(f"{s}: {counts[s]}" for s in sorted(seen))
        totals: dict[str, Counter[str]] = {
            k: Counter() for k in ("redirected", "emulated", "refused", "mps", "target_gap")}
        for entry in self.tests.values():
            for kind, counter in totals.items():
                counter.update(entry.record.get(kind, {}))
        lines = [
            f"{len(touched)} of {len(self.tests)} tests exercised redirected {paths} code paths"
            f"{_parenthesised(per_source, _outcomes(touched))}; "
            f"{len(emulated_only)} more only queried the emulated {namespaces}",
        ]
        for kind in ("redirected", "emulated"):
            if totals[kind]:
                top = ", ".join(f"{api} ({n})" for api, n in totals[kind].most_common(8))
                more = len(totals[kind]) - 8
                lines.append(f"{kind}: {top}" + (f", +{more} more" if more > 0 else ""))
        limited = [e for e in self.tests.values() if e.record.get("mps")]
        if limited:
            failed = sum(1 for e in limited if e.outcome in ("failed", "error"))
            top = ", ".join(f"{api} ({n})" for api, n in totals["mps"].most_common(10))
            lines.append(f"MPS limits hit by {len(limited)} tests ({failed} failed): {top}")
        gaps = [e for e in self.tests.values() if e.record.get("target_gap")]
        if gaps:
            skipped = sum(1 for e in gaps if e.outcome == "skipped")
            top = ", ".join(f"{op} ({n})" for op, n in totals["target_gap"].most_common(8))
            lines.append(f"target gaps on {self.target}: {len(gaps)} tests ({skipped} skipped): {top}")
        refused = [e for e in self.tests.values() if e.record.get("refused")]
        if refused:
            apis = ", ".join(sorted(totals["refused"]))
            skipped = sum(1 for e in refused if e.outcome == "skipped")
            lines.append(f"unemulatable on {self.target}: {len(refused)} tests ({skipped} skipped): {apis}")
        return lines


def _outcomes(entries: list[TestEntry]) -> str:
    """``3 passed, 1 failed, 0 skipped``: what a maintainer asks first about the tests that ran CUDA code."""
    if not entries:
        return ""
    counts = Counter("failed" if e.outcome == "error" else e.outcome for e in entries)
    parts = [f"{counts.pop(name, 0)} {name}" for name in ("passed", "failed", "skipped")]
    parts += [f"{n} {name}" for name, n in sorted(counts.items())]
    return ", ".join(parts)


def _parenthesised(*parts: str) -> str:
    text = "; ".join(p for p in parts if p)
    return f" ({text})" if text else ""


def _with_defaults(record: dict[str, Any]) -> dict[str, Any]:
    out = {"cuda_path": False, "sources": [], "queried": [], "redirected": {}, "emulated": {}, "refused": {},
           "mps": {}, "target_gap": {}, "exception": None, "cause": None}
    out.update(record)
    return out


def _reason(report: pytest.TestReport) -> str | None:
    if report.outcome == "skipped" and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    if report.outcome == "failed":
        crash = getattr(report.longrepr, "reprcrash", None)
        if crash is not None:
            return str(crash.message).split("\n")[0][:300]
        return str(report.longrepr).strip().split("\n")[-1][:300]
    if hasattr(report, "wasxfail"):
        return str(report.wasxfail) or None
    return None
