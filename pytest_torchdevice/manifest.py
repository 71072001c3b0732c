"""The known-failure manifest in a run: write it (``--torchdevice-manifest-out``), apply it
(``--torchdevice-manifest``), refresh it in place (``--torchdevice-manifest-update``).

Applying: every entry of this run's configuration becomes a strict ``xfail(raises=<recorded type>)`` on its
test, so the known failure is expected, a *different* failure still fails, and a fix fails as
``XPASS(strict)`` with a message to refresh the manifest.  Entries whose test this run did not collect (and
did not deselect) are listed in the summary as gone.

Under pytest-xdist the workers collect and apply (each reads the file); they send the entries they found
gone in ``workeroutput``; the controller, which sees every test's report, writes the file.
"""

from __future__ import annotations

import platform
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from . import causes
from .manifest_file import FORMAT_HELP, TITLE, Entry, Manifest, ManifestError, one_line
from .summary import Collector, TestEntry

GONE_KEY = "torchdevice_manifest_gone"
MARK_PREFIX = "torchdevice manifest"
REFRESH = "--torchdevice-manifest-update"
_FAILED = ("failed", "error")


def add_options(group: Any) -> None:
    group.addoption(
        "--torchdevice-manifest-out", dest="torchdevice_manifest_out", default=None, metavar="PATH",
        help="after the run, write every test that failed or errored on this target (exception type, cause), "
        "keyed by the run's configuration: a known-failure manifest.",
    )
    group.addoption(
        "--torchdevice-manifest", dest="torchdevice_manifest", default=None, metavar="PATH",
        help="apply a known-failure manifest: its tests for this configuration become strict xfails.",
    )
    group.addoption(
        "--torchdevice-manifest-update", dest="torchdevice_manifest_update", action="store_true", default=False,
        help="rewrite the --torchdevice-manifest file in place from this run (adds new failures, drops fixed "
        "and removed tests).",
    )


def is_manifest_xpass(reason: str | None) -> bool:
    return bool(reason) and str(reason).startswith("[XPASS(strict)]") and MARK_PREFIX in str(reason)


class ManifestPlugin:
    """Registered on every process that has a manifest option; ``collector`` is None on xdist workers."""

    def __init__(self, config: pytest.Config, configuration: str, collector: Callable[[], Collector | None]) -> None:
        self.config = config
        self.configuration = configuration
        self._collector = collector
        self.apply_path: str | None = config.getoption("torchdevice_manifest")
        self.out_path: str | None = config.getoption("torchdevice_manifest_out")
        self.update = bool(config.getoption("torchdevice_manifest_update"))
        if self.update and not self.apply_path:
            raise pytest.UsageError(f"{REFRESH} needs --torchdevice-manifest=PATH (the file to rewrite)")
        try:
            self.manifest = Manifest.read(self.apply_path) if self.apply_path else Manifest.empty()
        except ManifestError as exc:
            raise pytest.UsageError(f"--torchdevice-manifest: {exc}") from None
        if self.apply_path and not Path(self.apply_path).exists() and not self.update:
            raise pytest.UsageError(f"--torchdevice-manifest={self.apply_path!r}: no such file")
        self.listed = self.manifest.of(configuration)
        self.applied: set[str] = set()
        self.deselected: set[str] = set()
        self.gone: set[str] | None = None  # None: not known (nothing collected here, or collection errors)
        self.collection_errors = False
        self.written: list[str] = []

    # ------------------------------------------------------------------------------------------ collect
    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            entry = self.listed.get(item.nodeid)
            if entry is not None:
                item.add_marker(self._mark(entry), append=False)
                self.applied.add(item.nodeid)

    def _mark(self, entry: Entry) -> pytest.MarkDecorator:
        raises = causes.resolve_type(entry.raises) if entry.raises else None
        note = ""
        if entry.raises and raises is None:
            note = f" (raises={entry.raises} not applied: the type cannot be imported)"
        reason = (f"{MARK_PREFIX} [{entry.cause}]: {entry.reason}{note} -- listed in {self.apply_path}; if it "
                  f"passes now, refresh the manifest with {REFRESH}")
        if raises is None:
            return pytest.mark.xfail(strict=True, reason=reason)
        return pytest.mark.xfail(strict=True, raises=raises, reason=reason)

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        self.deselected.update(item.nodeid for item in items)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collection_errors = True

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if self.collection_errors:
            return
        present = {item.nodeid for item in session.items} | self.deselected
        self.gone = {nodeid for nodeid in self.listed if nodeid not in present}
        workeroutput = getattr(self.config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput[GONE_KEY] = sorted(self.gone)

    def gone_from_worker(self, node: Any) -> None:
        """xdist controller: the workers collected; take what they found gone (each collected everything)."""
        gone = getattr(node, "workeroutput", {}).get(GONE_KEY)
        if gone is not None:
            self.gone = set(gone) if self.gone is None else self.gone & set(gone)

    # ------------------------------------------------------------------------------------------ results
    def entries_from_run(self, collector: Collector) -> list[Entry]:
        """This run's known failures: what failed, plus listed tests that failed as listed (xfailed)."""
        out = []
        for nodeid, test in sorted(collector.tests.items()):
            if test.outcome in _FAILED and not is_manifest_xpass(test.reason):
                out.append(self._entry(nodeid, test))
            elif nodeid in self.listed and test.outcome == "xfailed" and _manifest_xfail(test):
                out.append(self.listed[nodeid])  # failed as listed: its line stays (a hand-edited reason too)
        return out

    def _entry(self, nodeid: str, test: TestEntry) -> Entry:
        record = test.record
        cause = record.get("cause") or causes.classify_report({"outcome": test.outcome, "reason": test.reason,
                                                               **record}) or causes.OTHER
        return Entry(self.configuration, nodeid, str(record.get("exception") or ""), str(cause),
                     one_line(test.reason or test.outcome))

    def updated(self, collector: Collector) -> tuple[Manifest, dict[str, list[str]]]:
        """The manifest rewritten from this run, and what changed (added, fixed, gone)."""
        fresh = {e.nodeid: e for e in self.entries_from_run(collector)}
        kept: dict[str, Entry] = {}
        fixed, gone = [], []
        for nodeid, entry in self.listed.items():
            test = collector.tests.get(nodeid)
            if nodeid in fresh:
                continue
            if test is None:
                if self.gone is not None and nodeid in self.gone:
                    gone.append(nodeid)
                else:
                    kept[nodeid] = entry  # not run here (another shard, -k): unknown, kept
            elif test.outcome in ("passed", "xpassed") or (test.outcome in _FAILED and is_manifest_xpass(test.reason)):
                fixed.append(nodeid)
            else:
                kept[nodeid] = entry  # skipped this time: unknown, kept
        added = sorted(n for n in fresh if n not in self.listed)
        merged = list(kept.values()) + list(fresh.values())
        return self.manifest.replaced(self.configuration, merged), {"added": added, "fixed": sorted(fixed),
                                                                     "gone": sorted(gone)}

    def header(self) -> list[str]:
        import torch

        from . import __version__

        args = shlex.join(self.config.invocation_params.args)
        return [
            f"# generated by: pytest {args}".rstrip(),
            f"# with pytest-torchdevice {__version__}, torch {torch.__version__}, pytest {pytest.__version__}, "
            f"Python {platform.python_version()}, {sys.platform} {platform.machine()}",
            *FORMAT_HELP,
        ]

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        collector = self._collector()
        if collector is None or getattr(self.config, "workerinput", None) is not None:
            return
        if self.out_path:
            fresh = Manifest.empty().replaced(self.configuration, self.entries_from_run(collector))
            fresh.write(self.out_path, self.header())
            self.written.append(f"manifest written to {self.out_path} ({len(fresh.entries)} entries for "
                                f"{self.configuration})")
        if self.update and self.apply_path:
            manifest, changes = self.updated(collector)
            manifest.write(self.apply_path, self.header())
            self.written.append(
                f"manifest {self.apply_path} updated for {self.configuration}: {len(changes['added'])} added, "
                f"{len(changes['fixed'])} fixed and dropped, {len(changes['gone'])} gone and dropped "
                f"({len(manifest.of(self.configuration))} entries)"
            )

    # ------------------------------------------------------------------------------------------ summary
    def terminal_lines(self, collector: Collector | None) -> list[str]:
        lines: list[str] = []
        if self.apply_path:
            tests = collector.tests if collector is not None else {}
            listed = [tests[n] for n in self.listed if n in tests]
            as_listed = sum(1 for t in listed if t.outcome == "xfailed")
            now_pass = sum(1 for t in listed if is_manifest_xpass(t.reason))
            other = sum(1 for t in listed if t.outcome in _FAILED and not is_manifest_xpass(t.reason))
            lines.append(
                f"manifest {self.apply_path}: {len(self.listed)} entries for {self.configuration} "
                f"({len(self.manifest.entries) - len(self.listed)} for other configurations); {as_listed} failed "
                f"as listed, {now_pass} now pass (XPASS(strict): refresh with {REFRESH}), {other} failed otherwise"
            )
            gone = sorted(self.gone or ())
            if gone:
                lines.append(f"manifest entries whose test no longer exists ({len(gone)}):")
                lines += [f"  {nodeid}" for nodeid in gone]
        return lines + self.written


def _manifest_xfail(test: TestEntry) -> bool:
    return bool(test.reason) and MARK_PREFIX in str(test.reason)


__all__ = ["TITLE", "ManifestPlugin", "add_options", "is_manifest_xpass"]
