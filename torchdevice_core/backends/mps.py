"""The Apple MPS target, through torch.mps (designed against the documented API; no Mac runs these tests)."""

from __future__ import annotations

import platform

import torch

from ..mps.limits import UNSUPPORTED_DTYPES
from .base import DeviceEvent


class MpsBackend:
    name = "mps"

    def __init__(self) -> None:
        self.device = torch.device("mps")

    def synchronize(self) -> None:
        torch.mps.synchronize()

    def device_name(self) -> str:
        return f"torchdevice emulated CUDA on Apple MPS ({platform.machine()})"

    def total_memory(self) -> int:
        return int(torch.mps.recommended_max_memory())

    def free_memory(self) -> int:
        return max(0, self.total_memory() - int(torch.mps.driver_allocated_memory()))

    def driver_reserved_memory(self) -> int | None:
        return int(torch.mps.driver_allocated_memory())

    def empty_cache(self) -> None:
        torch.mps.empty_cache()

    def generator(self) -> torch.Generator:
        return torch.mps._get_default_mps_generator()

    def manual_seed(self, seed: int) -> None:
        torch.mps.manual_seed(seed)

    def seed(self) -> int:
        torch.mps.seed()
        return int(self.generator().initial_seed())

    def new_timing_event(self) -> DeviceEvent:
        return DeviceEvent(torch.mps.Event)

    def autocast_dtype(self) -> torch.dtype:
        return torch.float16

    def supports_dtype(self, dtype: torch.dtype) -> bool:
        return dtype not in UNSUPPORTED_DTYPES
