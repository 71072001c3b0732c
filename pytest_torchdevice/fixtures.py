"""Fixtures: ``target_device`` (the torch.device tests really run on) and ``torchdevice`` (the handle)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from .runtime import PluginState

STATE_KEY = pytest.StashKey[PluginState]()
RECORD_KEY = pytest.StashKey[Any]()  # the redirect record snapshot at this test's start
DIFF_KEY = pytest.StashKey[Any]()  # a test run under a switched target leaves its own record here


def _state(config: pytest.Config) -> PluginState | None:
    return config.stash.get(STATE_KEY, None)


class TorchDevice:
    """What a test gets from the ``torchdevice`` fixture."""

    def __init__(self, state: PluginState | None, node: pytest.Item) -> None:
        self._state = state
        self._node = node

    @property
    def active(self) -> bool:
        """Is redirection on for this test?"""
        return self._state is not None and self._state.active

    @property
    def session(self) -> Any:
        """The ``torchdevice_core.Redirection`` (target, options, record), or None."""
        return self._state.session if self._state is not None else None

    @property
    def target(self) -> Any:
        """The real ``torch.device`` redirected code runs on, or None when off."""
        session = self.session
        return None if session is None else session.target.device

    @property
    def source(self) -> str | None:
        session = self.session
        return None if session is None else session.source

    @contextlib.contextmanager
    def disabled(self) -> Iterator[None]:
        """Run a block against the real torch (no redirection, real ``torch.cuda``)."""
        if not self.active:
            yield
            return
        assert self._state is not None
        with self._state.handle.suspended():
            yield

    def record(self) -> Any:
        """This test's redirect record so far (a ``RecordSnapshot``: ``.counts``, ``.apis()``, ``.as_dict()``)."""
        import torchdevice_core as core

        session = self.session
        if session is None:
            return core.RecordSnapshot()
        start = self._node.stash.get(RECORD_KEY, None)
        now = session.record.snapshot()
        return now if start is None else now.minus(start)


@pytest.fixture
def torchdevice(request: pytest.FixtureRequest) -> TorchDevice:
    """The redirection in force for this test: target, record, and ``disabled()``."""
    return TorchDevice(_state(request.config), request.node)


@pytest.fixture
def target_device(request: pytest.FixtureRequest) -> Any:
    """The ``torch.device`` this test really runs on (per parameter under ``@pytest.mark.devices``)."""
    import torch

    state = _state(request.config)
    if state is not None and state.active:
        return state.session.target.device
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


@pytest.fixture(autouse=True)
def _torchdevice_device(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Carries the ``devices`` marker's parameter: switches the target for this one test."""
    param = getattr(request, "param", None)
    state = _state(request.config)
    if param is None or state is None:
        yield None
        return
    with state.switched(param):
        session = state.session
        start = session.record.snapshot() if session is not None else None
        if start is not None:
            request.node.stash[RECORD_KEY] = start
        try:
            yield param
        finally:
            if session is not None and start is not None:
                request.node.stash[DIFF_KEY] = session.record.snapshot().minus(start)
