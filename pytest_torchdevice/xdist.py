"""Per-worker device assignment under pytest-xdist.

The controller decides (``pytest_configure_node`` writes ``node.workerinput``); a worker must activate
before it imports conftests, when ``workerinput`` has not arrived yet, so it computes the same answer from
``PYTEST_XDIST_WORKER`` / ``PYTEST_XDIST_WORKER_COUNT`` with the pure function below and cross-checks in
``pytest_configure``.
"""

from __future__ import annotations

import os
import re
from typing import Any

import pytest

WORKERINPUT_KEY = "torchdevice_target"


def worker_index(worker_id: str) -> int | None:
    """``"gw3"`` -> 3; None for the controller / a non-xdist run."""
    match = re.fullmatch(r"gw(\d+)", worker_id or "")
    return int(match.group(1)) if match else None


def assign_device(requested: str, index: int | None, cuda_count: int) -> str:
    """The device one worker uses for ``requested``: a bare ``cuda`` is spread round-robin over the GPUs.

    Pure: ``requested`` is the normalised spec (``cpu``, ``mps``, ``cuda``, ``cuda:1``, ``auto`` already
    resolved to one of those), ``index`` the worker number (None: not a worker), ``cuda_count`` the GPUs.
    An explicit ``cuda:N`` pins every worker to N; cpu and mps are shared.
    """
    if requested == "cuda" and index is not None and cuda_count > 0:
        return f"cuda:{index % cuda_count}"
    return requested


def env_worker() -> str | None:
    """This process's xdist worker id (``gw1``), from the environment: ``workerinput`` arrives too late."""
    return os.environ.get("PYTEST_XDIST_WORKER")


class XdistHooks:
    """Registered only when xdist is present, so pytest never sees xdist hooks without xdist."""

    def __init__(self, decide: Any) -> None:
        self._decide = decide

    @pytest.hookimpl
    def pytest_configure_node(self, node: Any) -> None:
        device = self._decide(node.config, node.workerinput.get("workerid", ""))
        if device is not None:
            node.workerinput[WORKERINPUT_KEY] = device
