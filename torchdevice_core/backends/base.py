"""The small interface every target implements; the emulated torch.cuda namespace only talks to this."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import torch


@runtime_checkable
class TimingEvent(Protocol):
    def record(self) -> None: ...

    def query(self) -> bool: ...

    def synchronize(self) -> None: ...

    def elapsed_ms(self, end: TimingEvent) -> float: ...


class DeviceEvent:
    """A timing event of a device with its own asynchronous queue (MPS, CUDA): only its own events time it."""

    def __init__(self, make_event: Callable[..., Any]) -> None:
        self._event = make_event(enable_timing=True)
        self.recorded = False

    def record(self) -> None:
        self._event.record()
        self.recorded = True

    def query(self) -> bool:
        return bool(self._event.query())

    def synchronize(self) -> None:
        self._event.synchronize()

    def elapsed_ms(self, end: object) -> float:
        if not isinstance(end, DeviceEvent) or not (self.recorded and end.recorded):
            raise RuntimeError("elapsed_time: both events must be recorded before measuring the time between them")
        return float(self._event.elapsed_time(end._event))


class Backend(Protocol):
    """One target device. ``device`` is where redirected tensors really live."""

    name: str
    device: torch.device

    def synchronize(self) -> None: ...

    def device_name(self) -> str: ...

    def total_memory(self) -> int: ...

    def free_memory(self) -> int: ...

    def driver_reserved_memory(self) -> int | None:
        """Bytes the target's own allocator holds, where it can say; None to derive from the ledger."""
        ...

    def empty_cache(self) -> None: ...

    def generator(self) -> torch.Generator: ...

    def manual_seed(self, seed: int) -> None: ...

    def seed(self) -> int: ...

    def new_timing_event(self) -> TimingEvent: ...

    def autocast_dtype(self) -> torch.dtype: ...

    def supports_dtype(self, dtype: torch.dtype) -> bool: ...
