"""Per test: the isolation snapshot, the seed, and what an unemulatable API or a target gap makes of a test."""

from __future__ import annotations

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
        from torchdevice_core.errors import TargetGapError, UnemulatableError

        gap = in_chain(exc, TargetGapError)
        if gap is not None:  # the target lacks a kernel the source device has: skip, or fail when strict
            if state.settings.strict:
                raise
            raise pytest.skip.Exception(f"torchdevice: {gap.reason}", _use_item_location=True) from None
        error = in_chain(exc, UnemulatableError)
        if error is None:
            raise
        decision = item.config.hook.pytest_torchdevice_unemulatable(item=item, error=error)
        if decision is None:
            decision = "fail" if state.settings.strict else "skip"
        if decision == "skip":
            raise pytest.skip.Exception(f"torchdevice: {error}", _use_item_location=True) from None
        if decision == "xfail":
            raise pytest.xfail.Exception(f"torchdevice: {error}") from None
        raise


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
