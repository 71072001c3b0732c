"""Device queries and selection: availability, count, current device, properties, synchronize."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from ..patching import Patch
from ..session import Redirection
from .answers import emulated, namespace, per_caller

_SM_COUNT = {(7, 0): 80, (7, 5): 40, (8, 0): 108, (8, 6): 84, (8, 9): 128, (9, 0): 132}


class EmulatedDeviceProperties:
    """The fields of ``torch.cuda.get_device_properties(i)`` that code reads, with the target's real memory."""

    DEFAULTS: ClassVar[dict[str, Any]] = {
        "is_integrated": 0, "is_multi_gpu_board": 0, "max_threads_per_multi_processor": 2048, "warp_size": 32,
        "regs_per_multiprocessor": 65536, "shared_memory_per_block": 49152,
        "shared_memory_per_block_optin": 166912, "shared_memory_per_multiprocessor": 167936,
        "L2_cache_size": 41943040, "gcnArchName": "NVIDIA", "uuid": "00000000-0000-0000-0000-000000000000",
        "pci_bus_id": 0, "pci_device_id": 0, "pci_domain_id": 0,
    }

    def __init__(self, name: str, major: int, minor: int, total_memory: int, multi_processor_count: int,
                 **fields: Any) -> None:
        self.name = name
        self.major = major
        self.minor = minor
        self.total_memory = total_memory
        self.multi_processor_count = multi_processor_count
        for key, default in self.DEFAULTS.items():
            setattr(self, key, fields.pop(key, default))
        if fields:
            raise TypeError(f"unknown device properties: {sorted(fields)}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self.__dict__:
            raise AttributeError(f"device properties are read-only: {name}")
        super().__setattr__(name, value)

    def __repr__(self) -> str:
        return (
            f"_CudaDeviceProperties(name='{self.name}', major={self.major}, minor={self.minor}, "
            f"total_memory={self.total_memory // (1024 * 1024)}MB, "
            f"multi_processor_count={self.multi_processor_count}, uuid={getattr(self, 'uuid', '')})"
        )


def device_properties(session: Redirection, index: int) -> EmulatedDeviceProperties:
    assert session.backend is not None
    major, minor = session.options.capability
    profile = session.profile
    extra = {"L2_cache_size": profile.l2_cache_size} if profile is not None else {}
    return EmulatedDeviceProperties(
        name=session.options.device_name or session.backend.device_name(),
        major=major,
        minor=minor,
        total_memory=profile.total_memory if profile is not None else session.backend.total_memory(),
        multi_processor_count=(profile.multi_processor_count if profile is not None
                               else _SM_COUNT.get((major, minor), 108)),
        uuid=f"00000000-0000-0000-0000-{index:012d}",
        pci_bus_id=index,
        **extra,
    )


def _device_context_class(session: Redirection) -> type:
    class device:
        """Context manager that changes the (virtual) current device, as ``torch.cuda.device`` does."""

        def __init__(self, device: Any) -> None:
            self.idx = -1 if device is None else session.index_of(device)
            self.prev_idx = -1

        def __enter__(self) -> None:
            if self.idx != -1:
                self.prev_idx = session.current_index
                session.current_index = self.idx

        def __exit__(self, *exc: object) -> None:
            if self.idx != -1:
                session.current_index = self.prev_idx

    device.__module__ = f"torch.{session.source}"
    return device


def _device_of_class(session: Redirection, base: type) -> type:
    class device_of(base):
        """``device_of(tensor)``: the device of an emulated tensor; a no-op for any other tensor."""

        def __init__(self, obj: Any) -> None:
            index = obj.get_device() if getattr(obj, "is_cuda", False) else -1
            self.idx = index
            self.prev_idx = -1

    device_of.__module__ = f"torch.{session.source}"
    return device_of


def patches(session: Redirection) -> list[Patch]:
    if session.backend is None:
        return []
    backend = session.backend
    count = session.options.device_count

    def set_device(device: Any) -> None:
        index = session.index_of(device)
        if index >= 0:
            session.current_index = index

    def get_device_name(device: Any = None) -> str:
        return device_properties(session, session.index_of(device)).name

    def get_device_capability(device: Any = None) -> tuple[int, int]:
        session.index_of(device)
        return session.options.capability

    def get_device_properties(device: Any = None) -> EmulatedDeviceProperties:
        return device_properties(session, session.index_of(device))

    def is_bf16_supported(including_emulation: bool = True) -> bool:
        native = session.options.capability >= (8, 0)
        if session.profile is not None:  # as CUDA: sm_80+ natively; older boards run bf16 through emulation
            native = session.profile.bf16 or including_emulation
        return backend.supports_dtype(torch.bfloat16) and native

    def is_tf32_supported() -> bool:
        profile = session.profile
        return profile.tf32 if profile is not None else session.options.capability >= (8, 0)

    def synchronize(device: Any = None) -> None:
        session.index_of(device)
        backend.synchronize()

    def get_arch_list() -> list[str]:
        if session.profile is not None:
            return session.profile.arch_list
        major, minor = session.options.capability
        return [f"sm_{major}{minor}"]

    def can_device_access_peer(device: Any, peer_device: Any) -> bool:
        return session.index_of(device) != session.index_of(peer_device)

    sync_mode = {"mode": 0}

    def set_sync_debug_mode(debug_mode: Any) -> None:
        sync_mode["mode"] = {"default": 0, "warn": 1, "error": 2}.get(debug_mode, debug_mode)

    device_cls = _device_context_class(session)
    ns = namespace(session)
    out = [
        per_caller(session, "is_available", lambda: True),
        per_caller(session, "device_count", lambda: count),
        per_caller(session, "is_initialized", lambda: True),
        per_caller(session, "get_device_capability", get_device_capability, needs_hardware=True),
        per_caller(session, "get_device_properties", get_device_properties, needs_hardware=True),
        per_caller(session, "get_device_name", get_device_name, needs_hardware=True),
        per_caller(session, "is_bf16_supported", is_bf16_supported),
        emulated(session, "init", lambda: None),
        emulated(session, "current_device", lambda: session.current_index),
        emulated(session, "set_device", set_device),
        emulated(session, "synchronize", synchronize),
        per_caller(session, "get_arch_list", get_arch_list),
        emulated(session, "can_device_access_peer", can_device_access_peer),
        emulated(session, "set_sync_debug_mode", set_sync_debug_mode),
        emulated(session, "get_sync_debug_mode", lambda: sync_mode["mode"]),
        emulated(session, "ipc_collect", lambda: None),
        emulated(session, "is_current_stream_capturing", lambda: False),
        emulated(session, "get_allocator_backend", lambda: "native"),
        Patch(ns, "device", device_cls, "emulated"),
        Patch(ns, "device_of", _device_of_class(session, device_cls), "emulated"),
    ]
    if hasattr(ns, "is_tf32_supported"):
        out.append(per_caller(session, "is_tf32_supported", is_tf32_supported))
    return out
