"""The undo stack (``patching.Patcher``): every kind of change comes back exactly, last first."""

from __future__ import annotations

import os
from typing import Any

import pytest

from torchdevice_core.patching import MISSING, ItemPatch, Patch, Patcher

ENV = "TORCHDEVICE_TEST_UNDO_STACK"


class _Context:
    def __init__(self, log: list[str], name: str) -> None:
        self.log, self.name = log, name

    def __enter__(self) -> _Context:
        self.log.append(f"enter {self.name}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.log.append(f"exit {self.name}")


def test_items_are_restored_or_removed_again() -> None:
    table: dict[str, int] = {"kept": 1}
    flags = [False]
    patcher = Patcher()
    assert patcher.setitem(table, "kept", 2, "test") == 1
    assert patcher.setitem(table, "added", 3, "test") is MISSING
    patcher.apply(ItemPatch(flags, 0, True, "test"))
    assert table == {"kept": 2, "added": 3} and flags == [True]
    with pytest.raises(ValueError, match="patched twice"):
        patcher.setitem(table, "kept", 4, "test")
    patcher.undo_all()
    assert table == {"kept": 1} and flags == [False]
    assert patcher.changes == ()


def test_environment_variables_are_restored_or_unset_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setenv(ENV + "_SET", "before")
    patcher = Patcher()
    assert patcher.setenv(ENV, "1", "test") is None
    assert patcher.setenv(ENV + "_SET", None, "test") == "before"
    assert os.environ[ENV] == "1" and ENV + "_SET" not in os.environ
    patcher.undo_all()
    assert ENV not in os.environ and os.environ[ENV + "_SET"] == "before"


def test_contexts_are_exited_and_everything_is_undone_last_first() -> None:
    log: list[str] = []
    table: dict[str, str] = {}
    patcher = Patcher()
    outer = patcher.enter(_Context(log, "outer"), "test")
    patcher.setitem(table, "key", "value", "test")
    patcher.defer(lambda: log.append(f"callback sees {table!r}"), "test")
    patcher.enter(_Context(log, "inner"), "test")
    assert isinstance(outer, _Context) and log == ["enter outer", "enter inner"]
    patcher.undo_all()
    assert log == ["enter outer", "enter inner", "exit inner", "callback sees {'key': 'value'}", "exit outer"]
    assert table == {}


def test_undo_to_takes_back_only_what_came_after() -> None:
    class Owner:
        value = "original"

    table: dict[str, int] = {}
    patcher = Patcher()
    patcher.apply(Patch(Owner, "value", "bottom", "test"))
    depth = patcher.depth
    patcher.setitem(table, "top", 1, "test")
    patcher.undo_to(depth)
    assert table == {} and Owner.value == "bottom" and patcher.depth == depth
    patcher.setitem(table, "top", 2, "test")  # its claim was released: it can be changed again
    patcher.undo_all()
    assert table == {} and Owner.value == "original"


def test_a_failing_undo_does_not_stop_the_others() -> None:
    table = {"a": 1}
    log: list[Any] = []
    patcher = Patcher()
    patcher.setitem(table, "a", 2, "test")

    def fail() -> None:
        raise RuntimeError("undo failed")

    patcher.defer(fail, "test")
    patcher.defer(lambda: log.append("ran"), "test")
    with pytest.raises(RuntimeError, match="undo failed"):
        patcher.undo_all()
    assert log == ["ran"] and table == {"a": 1} and patcher.changes == ()
