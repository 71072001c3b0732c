"""A real CUDA target, for code written for another source device (``mps`` code on a GPU runner)."""

from __future__ import annotations

import torch

from .base import DeviceEvent


class CudaBackend:
    name = "cuda"

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._index = device.index if device.index is not None else 0

    def synchronize(self) -> None:
        torch.cuda.synchronize(self._index)

    def device_name(self) -> str:
        return str(torch.cuda.get_device_name(self._index))

    def total_memory(self) -> int:
        return int(torch.cuda.get_device_properties(self._index).total_memory)

    def free_memory(self) -> int:
        return int(torch.cuda.mem_get_info(self._index)[0])

    def driver_reserved_memory(self) -> int | None:
        return int(torch.cuda.memory_reserved(self._index))

    def empty_cache(self) -> None:
        torch.cuda.empty_cache()

    def generator(self) -> torch.Generator:
        return torch.cuda.default_generators[self._index]

    def manual_seed(self, seed: int) -> None:
        self.generator().manual_seed(seed)

    def seed(self) -> int:
        return int(self.generator().seed())

    def new_timing_event(self) -> DeviceEvent:
        return DeviceEvent(torch.cuda.Event)

    def autocast_dtype(self) -> torch.dtype:
        return torch.float16

    def supports_dtype(self, dtype: torch.dtype) -> bool:
        return True
