"""Shared fixtures. ``torch`` is imported here, at the top, before any test module (see Note
[pytester: import torch in the outer conftest] in docs/notes.md: in-process pytester runs whose inner tests import
torch break on the second run unless the outer conftest imports it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
import torch._dynamo
import torch._inductor.test_operators  # noqa: F401  re-register its C++ library on a re-import and fail)

import torchdevice_core

RUN_WITHOUT_TARGET = (
    "this is pytest-torchdevice's own test suite, which activates and deactivates the redirection itself; "
    "it must run without a target device ({header}): run `python -m pytest` without --target-device, with "
    "PYTEST_TARGET_DEVICE unset and no target_device ini key. To see the plugin at work, run the bundled "
    "CUDA-written suite: `python -m pytest examples/cuda_suite --target-device=cpu`"
)


def pytest_configure(config: pytest.Config) -> None:
    """Refuse, with a usage error, a session where the plugin is active (a target was given).

    The plugin activates in ``pytest_load_initial_conftests``, before this file is imported; the tests here
    then fail with ``ActivationError`` (different settings while active) or assert on a torch that is not
    the plain one. One clear message is better than dozens of confusing failures.
    """
    if torchdevice_core.active() is None:
        return
    plugin = config.pluginmanager.get_plugin("torchdevice-session")  # the plugin's TorchDevicePlugin
    header = plugin.pytest_report_header(config) if plugin is not None else None
    if isinstance(header, list):  # the plugin's header lines
        header = "; ".join(header)
    raise pytest.UsageError(RUN_WITHOUT_TARGET.format(header=header or "the redirection is active"))


@pytest.fixture(autouse=True)
def _torchdevice_deactivated() -> Iterator[None]:
    """Whatever a test activates is deactivated after it, even when it fails half-way.

    An activation that was already there when the test started (the plugin's own, for a whole session) is
    not this test's to undo.
    """
    outer = torchdevice_core.active()
    yield
    if outer is None:
        torchdevice_core.deactivate()
