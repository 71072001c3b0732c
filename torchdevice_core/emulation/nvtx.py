"""NVTX ranges and marks are profiler annotations: no-ops on the target (they never change results)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

from ..patching import Patch
from ..session import Redirection


def patches(session: Redirection) -> list[Patch]:
    if session.backend is None or "cuda" not in session.sources:
        return []
    nvtx = torch.cuda.nvtx
    hit = session.record.emulated
    depth = {"n": 0}

    def range_push(msg: str) -> int:
        hit("torch.cuda.nvtx")
        depth["n"] += 1
        return depth["n"] - 1

    def range_pop() -> int:
        depth["n"] = max(0, depth["n"] - 1)
        return depth["n"]

    def range_start(msg: str) -> int:
        hit("torch.cuda.nvtx")
        return 0

    def range_end(range_id: int) -> None:
        return None

    def mark(msg: str) -> None:
        hit("torch.cuda.nvtx")

    @contextlib.contextmanager
    def range(msg: str, *args: Any, **kwargs: Any) -> Iterator[None]:
        range_push(msg)
        try:
            yield
        finally:
            range_pop()

    functions = {"range_push": range_push, "range_pop": range_pop, "range_start": range_start,
                 "range_end": range_end, "mark": mark, "range": range}
    return [Patch(nvtx, name, fn, "no-op profiler annotation") for name, fn in functions.items() if hasattr(nvtx, name)]
