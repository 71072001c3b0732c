"""The emulated ``torch.accelerator``: the source device (``cuda``, or ``mps`` for an MPS source) is the accelerator.

Availability queries (``is_available``, ``current_accelerator``, ``device_count``, ``get_device_capability``,
``torch.get_device_module()``) follow the caller rule of ``torch.cuda.is_available``: torch's own modules
(``Options.real_callers``) get the machine's answer, so the DataLoader, DataParallel and dynamo keep their CPU
paths.  Everything else (the current device index, streams, ``synchronize``, memory) is emulated for every
caller, as ``torch.cuda``'s is: it serves the same virtual device, the same streams (``cuda.streams.build``)
and the same storage ledger as ``torch.cuda``.

Each patched name gets its own function object: ``torch.accelerator.memory_allocated`` and
``torch.accelerator.memory.memory_allocated`` are one function in torch, two here (dynamo refuses one object
under two names).
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch

from ..emulation import memory as cuda_memory
from ..emulation import streams
from ..emulation.answers import emulated, namespace, per_caller
from ..emulation.unemulatable import raising_class
from ..mps.limits import UNSUPPORTED_DTYPES
from ..patching import Patch
from ..session import Redirection

MEMORY_NAMES = ("empty_cache", "empty_host_cache", "get_memory_info", "max_memory_allocated", "max_memory_reserved",
                "memory_allocated", "memory_reserved", "memory_stats", "reset_accumulated_memory_stats",
                "reset_peak_memory_stats")


def supported_dtypes(session: Redirection) -> set[torch.dtype]:
    """What ``get_device_capability()["supported_dtypes"]`` lists: every dtype, less MPS's gaps on MPS."""
    every = {value for value in vars(torch).values() if isinstance(value, torch.dtype)}
    if session.source == "mps" or session.mps_limits:
        every -= set(UNSUPPORTED_DTYPES)
    return every


def device_index_of(session: Redirection, device: Any, optional: bool = True) -> int:
    """``torch.accelerator._utils._get_device_index`` for the emulated accelerator (its errors too)."""
    source = session.source
    if isinstance(device, int) and not isinstance(device, bool):
        return session.index_of(device) if device >= 0 else device
    if isinstance(device, str):
        device = torch.device(device)
    if isinstance(device, torch.device):
        if device.type != source:
            raise ValueError(f"{device.type} doesn't match the current accelerator {source}.")
        if device.index is not None:
            return session.index_of(device)
    elif device is not None:
        raise TypeError(f"Expected a torch.device, str or int, but got: {device!r}")
    if not optional:
        raise ValueError(f"Expected a torch.device with a specified index or an integer, but got:{device}")
    return session.current_index


def _functions(session: Redirection) -> dict[str, Callable[..., Any]]:
    """Fresh functions for one owner; called once per owner so no two names share a function object."""
    assert session.backend is not None
    backend = session.backend
    parts = streams.build(session)

    def index(device: Any, optional: bool = True) -> int:
        return device_index_of(session, device, optional)

    def set_device_index(device: Any, /) -> None:
        chosen = index(device, optional=False)
        if chosen >= 0:
            session.current_index = chosen

    def set_stream(stream: Any) -> None:
        parts["set_stream"](stream)
        session.current_index = stream.device_index

    def memory_stats(device_index: Any = None, /) -> OrderedDict[str, int]:
        return cuda_memory.stats(session, index(device_index))

    def reset_peak_memory_stats(device_index: Any = None, /) -> None:
        session.armed_ledger().reset_peak(index(device_index))

    def reset_accumulated_memory_stats(device_index: Any = None, /) -> None:
        session.armed_ledger().reset_accumulated(index(device_index))

    def synchronize(device: Any = None, /) -> None:
        index(device)
        backend.synchronize()

    def empty_cache() -> None:
        session.armed_ledger().empty_cache()
        backend.empty_cache()

    def stat(key: str) -> Callable[..., int]:
        def read(device_index: Any = None, /) -> int:
            return cuda_memory.stats(session, index(device_index))[key]

        return read

    def get_memory_info(device_index: Any = None, /) -> tuple[int, int]:
        return cuda_memory.memory_info(session, index(device_index))

    return {
        "memory_stats": memory_stats,
        "memory_allocated": stat("allocated_bytes.all.current"),
        "max_memory_allocated": stat("allocated_bytes.all.peak"),
        "memory_reserved": stat("reserved_bytes.all.current"),
        "max_memory_reserved": stat("reserved_bytes.all.peak"),
        "reset_peak_memory_stats": reset_peak_memory_stats,
        "reset_accumulated_memory_stats": reset_accumulated_memory_stats,
        "empty_cache": empty_cache,
        "empty_host_cache": lambda: None,
        "get_memory_info": get_memory_info,
        "current_device_index": lambda: session.current_index,
        "set_device_index": set_device_index,
        "synchronize": synchronize,
        "current_stream": lambda device=None, /: parts["current_stream"](index(device)),
        "set_stream": set_stream,
    }


def _device_index_class(session: Redirection) -> type:
    class device_index:
        """``with torch.accelerator.device_index(i):`` switches the (virtual) current device for the block."""

        def __init__(self, device: int | None, /) -> None:
            self.idx = device
            self.prev_idx = -1

        def __enter__(self) -> None:
            if self.idx is not None and self.idx >= 0:
                self.prev_idx = session.current_index
                session.current_index = session.index_of(self.idx)

        def __exit__(self, *exc_info: object) -> None:
            if self.idx is not None and self.idx >= 0 and self.prev_idx >= 0:
                session.current_index = self.prev_idx

    device_index.__module__ = "torch.accelerator"
    return device_index


def _deprecated(name: str, replacement: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def old(*args: Any) -> Any:
        warnings.warn(f"Use `{replacement}` instead.", FutureWarning, stacklevel=2)
        return fn(*args)

    old.__name__ = old.__qualname__ = name
    return old


def patches(session: Redirection) -> list[Patch]:
    accelerator = getattr(torch, "accelerator", None)
    if session.backend is None or accelerator is None:
        return []
    source = session.source
    count = 1 if source == "mps" else session.options.device_count
    device = torch.device(source)
    target = str(session.target.device)

    def current_accelerator(check_available: bool = False) -> torch.device:
        return device

    def get_device_capability(device: Any = None, /) -> dict[str, Any]:
        device_index_of(session, device)
        return {"supported_dtypes": supported_dtypes(session)}

    out = [
        per_caller(session, "is_available", lambda: True, owner=accelerator),
        per_caller(session, "current_accelerator", current_accelerator, owner=accelerator),
        per_caller(session, "device_count", lambda: count, owner=accelerator),
        per_caller(session, "get_device_capability", get_device_capability, owner=accelerator,
                   needs_hardware=True),
    ]
    top = _functions(session)
    for name, fn in top.items():
        if hasattr(accelerator, name):
            out.append(emulated(session, name, fn, owner=accelerator, api=f"torch.accelerator.{name}"))
    for old, new in (("current_device_idx", "current_device_index"), ("set_device_idx", "set_device_index")):
        if hasattr(accelerator, old):
            fn = _deprecated(old, new, _functions(session)[new])
            out.append(emulated(session, old, fn, owner=accelerator, api=f"torch.accelerator.{old}"))
    if hasattr(accelerator, "device_index"):
        out.append(Patch(accelerator, "device_index", _device_index_class(session), "emulated"))
    memory = getattr(accelerator, "memory", None)
    if memory is not None:
        own = _functions(session)
        for name in MEMORY_NAMES:
            if hasattr(memory, name):
                out.append(emulated(session, name, own[name], owner=memory, api=f"torch.accelerator.memory.{name}"))
    why = "accelerator graphs capture and replay GPU kernels"
    if hasattr(accelerator, "Graph"):
        out.append(Patch(accelerator, "Graph", raising_class("torch.accelerator.Graph", target, why, session),
                         f"unemulatable: {why}"))
    graphs = getattr(accelerator, "graphs", None)
    if graphs is not None and hasattr(graphs, "Graph"):
        out.append(Patch(graphs, "Graph", raising_class("torch.accelerator.graphs.Graph", target, why, session),
                         f"unemulatable: {why}"))
    if hasattr(torch, "get_device_module"):
        original = torch.get_device_module
        emulated_module = namespace(session)

        def get_device_module(device: Any = None) -> Any:
            return emulated_module if device is None else original(device)

        out.append(per_caller(session, "get_device_module", get_device_module, owner=torch))
    return out
