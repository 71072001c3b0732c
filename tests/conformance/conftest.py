"""The conformance slice imports the harness from ``benchmarks/conformance`` (not an installed package): the
repository root goes on ``sys.path`` for it, whatever directory pytest was started from."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import torchdevice_core

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


@pytest.fixture(autouse=True)
def _no_outer_redirection() -> None:
    """The harness compares a native run with an emulated one, switching redirection on and off itself."""
    if torchdevice_core.active() is not None:
        pytest.skip("the conformance harness needs redirection off around it (it activates it itself)")
