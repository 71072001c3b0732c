"""The CPU target: work is synchronous, memory is host memory, the RNG is torch.default_generator."""

from __future__ import annotations

import os
import platform
import time

import torch


def _meminfo() -> dict[str, int]:
    """MemTotal/MemAvailable in bytes from /proc/meminfo; sysconf where that file does not exist."""
    values: dict[str, int] = {}
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                values[key] = int(rest.split()[0]) * 1024
    except OSError:
        page = os.sysconf("SC_PAGE_SIZE")
        values["MemTotal"] = page * os.sysconf("SC_PHYS_PAGES")
        values["MemAvailable"] = page * os.sysconf("SC_AVPHYS_PAGES") if hasattr(os, "sysconf") else 0
    return values


class PerfCounterEvent:
    """An event on a synchronous device: the host clock at record() time is the device's time."""

    def __init__(self, synchronize: object = None) -> None:
        self._ns: int | None = None
        self._sync = synchronize

    def record(self) -> None:
        if callable(self._sync):
            self._sync()
        self._ns = time.perf_counter_ns()

    def query(self) -> bool:
        return True

    def synchronize(self) -> None:
        return None

    @property
    def recorded(self) -> bool:
        return self._ns is not None

    def elapsed_ms(self, end: object) -> float:
        if not isinstance(end, PerfCounterEvent) or self._ns is None or end._ns is None:
            raise RuntimeError("elapsed_time: both events must be recorded before measuring the time between them")
        return (end._ns - self._ns) / 1e6


class CpuBackend:
    name = "cpu"

    def __init__(self) -> None:
        self.device = torch.device("cpu")

    def synchronize(self) -> None:
        return None

    def device_name(self) -> str:
        cpu = platform.processor() or platform.machine() or "cpu"
        return f"torchdevice emulated CUDA on CPU ({cpu})"

    def total_memory(self) -> int:
        return _meminfo().get("MemTotal", 0)

    def free_memory(self) -> int:
        return _meminfo().get("MemAvailable", 0)

    def driver_reserved_memory(self) -> int | None:
        return None

    def empty_cache(self) -> None:
        return None

    def generator(self) -> torch.Generator:
        return torch.default_generator

    def manual_seed(self, seed: int) -> None:
        torch.default_generator.manual_seed(seed)

    def seed(self) -> int:
        return int(torch.default_generator.seed())

    def new_timing_event(self) -> PerfCounterEvent:
        return PerfCounterEvent(self.synchronize)

    def autocast_dtype(self) -> torch.dtype:
        # CUDA's autocast default; CPU has float16 autocast kernels for matmul/conv/linear since torch 2.3.
        return torch.float16

    def supports_dtype(self, dtype: torch.dtype) -> bool:
        return True
