"""Per test: the isolation snapshot, the seed, and what an unemulatable API or a target gap makes of a test."""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from . import causes
from .fixtures import DIFF_KEY, RECORD_KEY
from .runtime import PluginState
from .summary import PROPERTY, test_record

if TYPE_CHECKING:
    from torchdevice_core.record import RecordSnapshot

E = TypeVar("E", bound=BaseException)
SNAPSHOT_KEY = pytest.StashKey[Any]()  # torchdevice_core.state's snapshot of the redirection at setup


def start(item: pytest.Item, state: PluginState) -> None:
    """Before the test: remember what per-test isolation restores, and seed torch when asked."""
    redirection = state.redirection
    if redirection is None:
        return
    from torchdevice_core.state import snapshot

    item.stash[SNAPSHOT_KEY] = snapshot(redirection)
    item.stash[RECORD_KEY] = redirection.record.snapshot()
    if state.settings.seed is not None:
        import torch

        torch.manual_seed(state.settings.seed)


def finish(item: pytest.Item, state: PluginState) -> None:
    """After the test: bring back a redirection the test ended, and undo what it changed in it."""
    snap = item.stash.get(SNAPSHOT_KEY, None)
    if snap is None:
        return
    state.restore_if_lost()
    redirection = state.redirection
    if redirection is not None:
        from torchdevice_core.state import restore

        restore(redirection, snap)


def unemulatable_as_skip(item: pytest.Item, state: PluginState) -> Generator[None, None, None]:
    """Wrap a test phase: an unemulatable API or a target gap skips the test (fails it when strict)."""
    try:
        return (yield)
    except BaseException as exc:
        replacement = judge(exc, item, state)
        if replacement is None:
            item.stash[_JUDGED_KEY] = exc
            raise
        raise replacement from None


_JUDGED_KEY = pytest.StashKey[BaseException]()  # the last exception judged and left to fail


def judge(exc: BaseException, item: pytest.Item, state: PluginState) -> BaseException | None:
    """What an unemulatable API or a target gap in ``exc`` makes of the test: pytest's skip or xfail exception
    with the reason, or None when it stays as it is (not ours, strict, or the hook said "fail")."""
    from torchdevice_core.errors import TargetGapError, UnemulatableError

    gap = in_chain(exc, TargetGapError)
    if gap is not None:  # the target lacks a kernel the source device has: skip, or fail when strict
        if state.settings.strict:
            return None
        return pytest.skip.Exception(f"torchdevice: {gap.reason}", _use_item_location=True)
    error = in_chain(exc, UnemulatableError)
    if error is None:
        return None
    decision = item.config.hook.pytest_torchdevice_unemulatable(item=item, error=error)
    if decision is None:
        decision = "fail" if state.settings.strict else "skip"
    if decision == "skip":
        return pytest.skip.Exception(f"torchdevice: {error}", _use_item_location=True)
    if decision == "xfail":
        return pytest.xfail.Exception(f"torchdevice: {error}")
    return None


def judge_caught(item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport,
                 state: PluginState) -> None:
    """The same judgement for an exception the test's framework caught before it reached ``pytest_runtest_call``:
    a ``unittest.TestCase`` records it itself, and pytest's unittest plugin hands it to the report as
    ``call.excinfo``. The report and ``call.excinfo`` become what the skip (or xfail) would have made."""
    excinfo = call.excinfo
    if excinfo is None or call.when != "call" or item.stash.get(_JUDGED_KEY, None) is excinfo.value:
        return
    if excinfo.errisinstance((pytest.skip.Exception, pytest.xfail.Exception)):
        return
    replacement = judge(excinfo.value, item, state)
    if replacement is None:
        return
    try:
        raise replacement from None
    except BaseException:
        call.excinfo = pytest.ExceptionInfo.from_current()
    report.outcome = "skipped"
    if isinstance(replacement, pytest.xfail.Exception):
        report.wasxfail = str(replacement)  # its msg: what pytest's skipping plugin makes of xfail()
    else:
        path, line = item.reportinfo()[:2]
        report.longrepr = (os.fspath(path), (line or 0) + 1, f"Skipped: {replacement}")


def in_chain(exc: BaseException, kind: type[E]) -> E | None:
    """The first ``kind`` in ``exc``'s cause/context chain (a library may have wrapped it), or None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def record_since_start(item: pytest.Item, state: PluginState) -> RecordSnapshot | None:
    """This test's redirect record so far, or None when nothing was active."""
    diff = item.stash.get(DIFF_KEY, None)
    redirection = state.redirection
    if diff is None and redirection is not None:
        begin = item.stash.get(RECORD_KEY, None)
        if begin is not None:
            diff = redirection.record.snapshot().minus(begin)
    return diff


def amend_report(item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport,
                 state: PluginState) -> None:
    """A pass that caught a refused API's error says nothing (skip it, fail when strict); teardown carries the
    test's record for the JSON report."""
    judge_caught(item, call, report, state)
    causes.remember(item, call)
    if call.when == "call" and report.passed and not hasattr(report, "wasxfail"):
        diff = record_since_start(item, state)
        refused = diff.apis("refused") if diff is not None else []
        if refused:  # the test caught the error of an API that cannot be emulated: its pass says nothing
            reason = (f"torchdevice: called {', '.join(refused)}, which cannot be emulated on "
                      f"{state.current or 'the target'} (the test caught the error)")
            if state.settings.strict:
                report.outcome = "failed"
                report.longrepr = reason
            else:
                report.outcome = "skipped"
                report.longrepr = (str(item.path), (item.location[1] or 0) + 1, f"Skipped: {reason}")
    if call.when == "teardown":
        diff = record_since_start(item, state)
        if diff is not None:
            record = test_record(diff, root=str(item.config.rootpath))
            report.user_properties.append((PROPERTY, causes.annotate(record, item)))
