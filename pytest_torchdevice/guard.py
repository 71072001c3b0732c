"""``--torchdevice-require-cuda-path=N``: a lane in which fewer than N tests ran redirected device code is red.

A CI job whose CUDA tests all skipped (a missing extra, a wrong marker expression, the plugin left off)
otherwise looks green.  The count is the report's ``cuda_path``: a device argument was rewritten or an
unemulatable API was hit; ``torch.cuda.is_available()`` queries alone do not count.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Generator
from typing import Any

import pytest

from .summary import Collector

OPTION = "--torchdevice-require-cuda-path"


def non_negative_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a non-negative integer")
    return number


def add_options(group: Any) -> None:
    group.addoption(
        OPTION, dest="torchdevice_require_cuda_path", type=non_negative_int, default=None, metavar="N",
        help="fail the run when fewer than N tests executed redirected CUDA code paths (a lane that tested "
        "nothing is red).",
    )


def cuda_path_tests(collector: Collector | None) -> int:
    if collector is None:
        return 0
    return sum(1 for test in collector.tests.values() if test.record.get("cuda_path"))


class CudaPathGuard:
    """On the process that sees every report (the only one, or the xdist controller)."""

    def __init__(self, required: int, collector: Callable[[], Collector | None], active: bool) -> None:
        self.required = required
        self._collector = collector
        self.active = active
        self.failure: str | None = None

    def check(self) -> str | None:
        """The failure message, or None when the requirement is met."""
        collector = self._collector()
        count = cuda_path_tests(collector)
        if count >= self.required:
            return None
        ran = len(collector.tests) if collector is not None else 0
        why = "" if self.active else " (torchdevice is off: no --target-device, $PYTEST_TARGET_DEVICE or ini key)"
        return (f"{OPTION}={self.required} not met: {count} of {ran} tests executed redirected CUDA code "
                f"paths{why}")

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, Any, Any]:
        result = yield
        self.failure = self.check()
        if self.failure is not None:
            session.testsfailed += 1  # the exit status is "tests failed" (1), as for any failure
        return result

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.failure is not None:
            terminalreporter.section("torchdevice: required CUDA code paths", red=True)
            terminalreporter.write_line(f"FAILED {self.failure}", red=True, bold=True)
