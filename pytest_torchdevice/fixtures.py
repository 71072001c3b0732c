"""Fixtures: ``target_device`` (the torch.device tests really run on) and ``torchdevice`` (the handle)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from .runtime import PluginState

if TYPE_CHECKING:
    import torch

    from torchdevice_core.record import RecordSnapshot
    from torchdevice_core.session import Redirection

PLUGIN_NAME = "torchdevice-session"  # the registered TorchDevicePlugin (plugin.py) holding the PluginState
RECORD_KEY = pytest.StashKey["RecordSnapshot"]()  # the redirect record snapshot at this test's start
DIFF_KEY = pytest.StashKey["RecordSnapshot"]()  # a test run under a switched target leaves its own record here


def state_of(config: pytest.Config) -> PluginState | None:
    """The run's plugin state (None before the plugin object is registered); the one way to it outside hooks."""
    plugin = config.pluginmanager.get_plugin(PLUGIN_NAME)
    return None if plugin is None else plugin.state


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
    def redirection(self) -> Redirection | None:
        """The ``torchdevice_core.Redirection`` (target, options, record), or None."""
        return self._state.redirection if self._state is not None else None

    @property
    def session(self) -> Redirection | None:
        """The same as ``redirection`` (its first name, kept for existing suites)."""
        return self.redirection

    @property
    def target(self) -> torch.device | None:
        """The real ``torch.device`` redirected code runs on, or None when off."""
        redirection = self.redirection
        return None if redirection is None else redirection.target.device

    @property
    def source(self) -> str | None:
        """The source device type redirected (``cuda`` or ``mps``), or None when off."""
        redirection = self.redirection
        return None if redirection is None else redirection.source

    @contextlib.contextmanager
    def disabled(self) -> Iterator[None]:
        """Run a block against the real torch (no redirection, real ``torch.cuda``)."""
        handle = self._state.handle if self._state is not None and self._state.active else None
        if handle is None:
            yield
            return
        with handle.suspended():
            yield

    def record(self) -> RecordSnapshot:
        """This test's redirect record so far (a ``RecordSnapshot``: ``.counts``, ``.apis()``, ``.as_dict()``)."""
        import torchdevice_core as core

        redirection = self.redirection
        if redirection is None:
            return core.RecordSnapshot()
        start = self._node.stash.get(RECORD_KEY, None)
        now = redirection.record.snapshot()
        return now if start is None else now.minus(start)


@pytest.fixture
def torchdevice(request: pytest.FixtureRequest) -> TorchDevice:
    """The redirection in force for this test: target, record, and ``disabled()``."""
    return TorchDevice(state_of(request.config), request.node)


@pytest.fixture
def target_device(request: pytest.FixtureRequest) -> Any:
    """The ``torch.device`` this test really runs on (per parameter under ``@pytest.mark.devices``)."""
    import torch

    state = state_of(request.config)
    redirection = state.redirection if state is not None else None
    if redirection is not None:
        return redirection.target.device
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


DEVICE_PARAMETER = "_torchdevice_device"
"""The autouse fixture the ``devices`` marker parametrizes (indirectly); underscored: not for tests to ask for."""


@pytest.fixture(autouse=True, name=DEVICE_PARAMETER)
def device_parameter(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Carries the ``devices`` marker's parameter: switches the target for this one test."""
    param = getattr(request, "param", None)
    state = state_of(request.config)
    if param is None or state is None:
        yield None
        return
    with state.switched(param):
        redirection = state.redirection
        start = redirection.record.snapshot() if redirection is not None else None
        if start is not None:
            request.node.stash[RECORD_KEY] = start
        try:
            yield param
        finally:
            if redirection is not None and start is not None:
                request.node.stash[DIFF_KEY] = redirection.record.snapshot().minus(start)
