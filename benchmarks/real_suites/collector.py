"""The result collector: a pytest plugin loaded with ``-p real_suites_collector`` into every third-party run.

It records, per test id, the outcome (one verdict for setup, call, teardown and subtests together), the summed
duration and the first failure's message, and writes them as JSON to ``$REAL_SUITES_RESULTS`` at the end of
the session. Under xdist it does its work in the controller, where the workers' reports arrive through
``pytest_runtest_logreport``.

It imports nothing but the standard library and pytest: provisioning copies this file next to the unpacked
suite as a top-level module, so the suite's venv needs nothing of this repository's ``benchmarks`` package
(and the suite's own ``tests`` package is not shadowed by ours).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import pytest

RESULTS_ENV = "REAL_SUITES_RESULTS"


@dataclass
class Entry:
    """What the reports of one test id said so far."""

    when: dict[str, str] = field(default_factory=dict)  # phase (setup/call/teardown/collect) -> outcome
    subtest_failed: bool = False
    duration: float = 0.0
    wasxfail: bool = False
    cause: str | None = None
    cause_failed: bool = False  # cause comes from a failure (a skip reason is replaced by a later failure)

    def outcome(self) -> str:
        """One of passed, failed, error, skipped, xfailed, xpassed, as pytest's summary would count it."""
        when = self.when
        if when.get("collect") == "failed":
            return "error"
        if when.get("call") == "failed" or self.subtest_failed:
            return "failed"
        if when.get("setup") == "failed":
            return "error"
        if "skipped" in (when.get("setup"), when.get("call")):
            return "xfailed" if self.wasxfail else "skipped"
        if when.get("teardown") == "failed":
            return "error"
        if when.get("call") == "passed":
            return "xpassed" if self.wasxfail else "passed"
        return "error"


def is_subtest(report: object) -> bool:
    """Subtest reports (unittest ``subTest``, pytest-subtests) share the test's id but are not its verdict."""
    return type(report).__name__ == "SubtestReport" or getattr(report, "context", None) is not None


def cause_of(longrepr: object) -> str | None:
    """The one-line reason of a failure or a skip, from whatever shape of ``longrepr`` pytest produced."""
    if longrepr is None:
        return None
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # a skip: (path, line, reason)
        return str(longrepr[2])
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None and getattr(crash, "message", None):
        return str(crash.message)
    lines = [line.strip() for line in str(longrepr).splitlines() if line.strip()]
    for line in lines:
        if line.startswith("E "):
            return line[1:].strip()
    return lines[-1] if lines else None


class Collector:
    """Accumulates the reports of one session; ``record`` is what the JSON holds."""

    def __init__(self) -> None:
        self.tests: dict[str, Entry] = {}
        self.collected: int | None = None

    def entry(self, nodeid: str) -> Entry:
        return self.tests.setdefault(nodeid, Entry())

    def add_test_report(self, report: pytest.TestReport) -> None:
        e = self.entry(report.nodeid)
        if is_subtest(report):
            if report.failed:
                e.subtest_failed = True
                if not e.cause_failed:
                    e.cause, e.cause_failed = cause_of(report.longrepr), True
            return
        e.when[report.when] = report.outcome
        e.duration += float(getattr(report, "duration", 0.0) or 0.0)
        if hasattr(report, "wasxfail"):
            e.wasxfail = True
        if report.failed and not e.cause_failed:
            e.cause, e.cause_failed = cause_of(report.longrepr), True
        elif report.skipped and e.cause is None:
            e.cause = cause_of(report.longrepr)

    def add_collect_report(self, report: pytest.CollectReport) -> None:
        if report.failed:
            e = self.entry(report.nodeid or "<collection>")
            e.when["collect"] = "failed"
            e.cause, e.cause_failed = cause_of(report.longrepr), True

    def record(self, exitstatus: int) -> dict[str, Any]:
        tests = {
            nodeid: {"outcome": e.outcome(), "duration": round(e.duration, 6), "cause": e.cause}
            for nodeid, e in self.tests.items()
        }
        return {"exitstatus": int(exitstatus), "collected": self.collected, "tests": tests}


_COLLECTOR = Collector()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _COLLECTOR.add_test_report(report)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    _COLLECTOR.add_collect_report(report)


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.items:
        _COLLECTOR.collected = len(session.items)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: object, ids: list[str]) -> None:
    if _COLLECTOR.collected is None:
        _COLLECTOR.collected = len(ids)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if hasattr(session.config, "workerinput"):  # an xdist worker: the controller writes the record
        return
    path = os.environ.get(RESULTS_ENV)
    if not path:
        return
    with open(path, "w") as f:
        json.dump(_COLLECTOR.record(exitstatus), f)
