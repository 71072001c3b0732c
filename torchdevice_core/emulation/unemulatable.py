"""CUDA APIs that cannot be reproduced on another device: each raises ``UnemulatableError`` when used.

Faking them (a graph that never replays, an NCCL call that does nothing) would turn a test green that
says nothing about the code; raising lets the pytest plugin report the test as skipped, with this reason.
"""

from __future__ import annotations

import types
from typing import Any

from ..errors import UnemulatableError
from ..patching import Patch
from ..session import Redirection
from .answers import namespace

# name in torch.cuda -> why it cannot be emulated
UNEMULATABLE: dict[str, str] = {
    "CUDAGraph": "CUDA graphs capture and replay GPU kernels",
    "graph": "CUDA graphs capture and replay GPU kernels",
    "make_graphed_callables": "CUDA graphs capture and replay GPU kernels",
    "graph_pool_handle": "CUDA graphs capture and replay GPU kernels",
    "nccl": "NCCL collectives need NVIDIA GPUs (torch.distributed with backend='nccl' is mapped to gloo instead)",
    "jiterator": "jiterator compiles CUDA C++ kernels at run time",
    "caching_allocator_alloc": "raw CUDA caching-allocator pointers",
    "caching_allocator_delete": "raw CUDA caching-allocator pointers",
    "MemPool": "CUDA memory pools",
    "use_mem_pool": "CUDA memory pools",
    "CUDAPluggableAllocator": "a custom CUDA allocator",
    "change_current_allocator": "a custom CUDA allocator",
    "ExternalStream": "a stream created outside torch by the CUDA runtime",
    "get_stream_from_external": "a stream created outside torch by the CUDA runtime",
    "list_gpu_processes": "NVML device telemetry",
    "utilization": "NVML device telemetry",
    "temperature": "NVML device telemetry",
    "power_draw": "NVML device telemetry",
    "clock_rate": "NVML device telemetry",
    "memory_usage": "NVML device telemetry",
    "device_memory_used": "NVML device telemetry",
    "cudart": "direct CUDA runtime calls",
    "current_blas_handle": "a cuBLAS handle",
    "current_solver_handle": "a cuSOLVER handle",
    "memory_snapshot": "the CUDA caching allocator's segment snapshot",
    "GreenContext": "CUDA green contexts",
    "gds": "GPUDirect Storage",
}


def raiser(api: str, target: str, why: str, session: Redirection, original: Any = None) -> Any:
    def unemulatable(*args: Any, **kwargs: Any) -> Any:
        session.record.refused(api)
        raise UnemulatableError(api, target, why)

    unemulatable.__name__ = api.rpartition(".")[2]
    wrapped = getattr(original, "__wrapped__", None)
    if wrapped is not None:
        # torch 2.14's dynamo reads e.g. torch.cuda.use_mem_pool.__wrapped__ (a contextmanager's function) when
        # it is imported: the replacement keeps the attribute, so importing dynamo while active works.
        unemulatable.__wrapped__ = wrapped  # type: ignore[attr-defined]
    return unemulatable


def raising_class(api: str, target: str, why: str, session: Redirection) -> type:
    """A class standing in for ``api`` whose construction is recorded as refused and raises UnemulatableError."""
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        session.record.refused(api)
        raise UnemulatableError(api, target, why)

    return type(api.rpartition(".")[2], (), {"__init__": __init__, "__module__": api.rpartition(".")[0]})


# Makers whose products are refused when called, not when made: torch's own op_db
# (torch.testing._internal.common_methods_invocations) builds jiterator functions at import time, as it does
# natively on a machine without CUDA, where only calling one fails.
DEFERRED = {"torch.cuda.jiterator": ("_create_jit_fn", "_create_multi_output_jit_fn")}


def _refused_when_called(api: str, target: str, why: str, session: Redirection) -> Any:
    def make(*args: Any, **kwargs: Any) -> Any:
        return raiser(api, target, why, session)

    make.__name__ = api.rpartition(".")[2]
    return make


class _RaisingModule(types.ModuleType):
    """A stand-in for a submodule: any attribute use raises (imports of the real module still work)."""

    def __init__(self, api: str, target: str, why: str, session: Redirection) -> None:
        super().__init__(api)
        self._td = (api, target, why, session)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        api, target, why, session = self._td
        if name in DEFERRED.get(api, ()):
            return _refused_when_called(f"{api}.{name}", target, why, session)
        session.record.refused(f"{api}.{name}")
        raise UnemulatableError(f"{api}.{name}", target, why)


def patches(session: Redirection) -> list[Patch]:
    if session.backend is None or "cuda" not in session.sources:
        return []
    ns = namespace(session)
    target = str(session.target.device)
    out = []
    for name, why in UNEMULATABLE.items():
        if not hasattr(ns, name):
            continue
        api = f"torch.cuda.{name}"
        current = getattr(ns, name)
        if isinstance(current, types.ModuleType):
            replacement: Any = _RaisingModule(api, target, why, session)
        elif isinstance(current, type):
            replacement = raising_class(api, target, why, session)
        else:
            replacement = raiser(api, target, why, session, current)
        out.append(Patch(ns, name, replacement, f"unemulatable: {why}"))
    memory = getattr(ns, "memory", None)
    for name in ("_record_memory_history", "_snapshot", "_dump_snapshot"):
        if memory is not None and hasattr(memory, name):
            api = f"torch.cuda.memory.{name}"
            why = "the CUDA caching allocator's history"
            out.append(Patch(memory, name, raiser(api, target, why, session), f"unemulatable: {why}"))
    return out
