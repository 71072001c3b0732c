"""Hook specifications other plugins implement to extend pytest-torchdevice."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.hookspec(firstresult=True)
def pytest_torchdevice_select_device(config: pytest.Config, worker_id: str | None, requested: str) -> str | None:
    """Choose the target device spec for one process (the controller asks once per xdist worker).

    ``worker_id`` is ``"gw0"``... for an xdist worker, None otherwise; ``requested`` is the normalised
    ``--target-device`` value.  Return a spec such as ``"cuda:1"`` to override, or None for the default
    (round-robin of a bare ``cuda`` over the GPUs).
    """


def pytest_torchdevice_options(config: pytest.Config, options: dict[str, Any]) -> None:
    """Adjust the core options (``torchdevice_core.Options`` fields) in place before activation."""


@pytest.hookspec(firstresult=True)
def pytest_torchdevice_unemulatable(item: pytest.Item, error: BaseException) -> str | None:
    """A test called an API that cannot be emulated: return "skip", "fail" or "xfail" (None: the default)."""
