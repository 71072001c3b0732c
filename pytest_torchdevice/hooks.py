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


def pytest_torchdevice_register_targets(register: Any) -> None:
    """Add target device types: call ``register(name, make_backend, is_available)``.

    ``make_backend(index)`` returns a ``torchdevice_core.backends.Backend`` (``index``: the ``:N`` of
    ``--target-device=name:N``, or None); ``is_available()`` says whether this machine has it.  Registered names
    are valid ``--target-device`` values.  Implement it in an installed plugin or one loaded with ``-p``: the
    command line is checked before conftest files load.
    """


def pytest_torchdevice_options(config: pytest.Config, options: dict[str, Any]) -> None:
    """Adjust the core options (``torchdevice_core.Options`` fields) in place before activation."""


@pytest.hookspec(firstresult=True)
def pytest_torchdevice_unemulatable(item: pytest.Item, error: BaseException) -> str | None:
    """A test called an API that cannot be emulated: return "skip", "fail" or "xfail" (None: the default)."""
