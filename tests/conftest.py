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
