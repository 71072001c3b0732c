"""Memory statistics that move with the redirected tensors' real storages (see ``memory.StorageLedger``)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from ..patching import Patch
from ..session import Redirection
from .answers import emulated, namespace


def stats(session: Redirection, index: int) -> OrderedDict[str, int]:
    assert session.backend is not None
    ledger = session.armed_ledger().device(index)
    reserved = session.backend.driver_reserved_memory()
    reserved_now = ledger.reserved if reserved is None else max(reserved, ledger.allocated)
    allocs = ledger.num_alloc
    frees = ledger.num_free
    out: OrderedDict[str, int] = OrderedDict()
    for prefix in ("allocated_bytes", "active_bytes", "requested_bytes"):
        out[f"{prefix}.all.current"] = ledger.allocated
        out[f"{prefix}.all.peak"] = ledger.peak
        out[f"{prefix}.all.allocated"] = ledger.bytes_allocated_total
        out[f"{prefix}.all.freed"] = ledger.bytes_freed_total
    for prefix in ("allocation", "active"):
        out[f"{prefix}.all.current"] = allocs - frees
        out[f"{prefix}.all.allocated"] = allocs
        out[f"{prefix}.all.freed"] = frees
    out["reserved_bytes.all.current"] = reserved_now
    out["reserved_bytes.all.peak"] = max(ledger.peak_reserved, reserved_now)
    out["num_alloc_retries"] = 0
    out["num_ooms"] = 0
    out["num_sync_all_streams"] = 0
    out["num_device_alloc"] = allocs
    out["num_device_free"] = frees
    return OrderedDict(sorted(out.items()))


def memory_info(session: Redirection, index: int) -> tuple[int, int]:
    """(free, total) bytes of virtual device ``index``: the target's, or the profile's GPU memory (free: what
    the redirected tensors leave of it, at most what the target really has free)."""
    assert session.backend is not None
    free = session.backend.free_memory()
    profile = session.profile
    if profile is None:
        return free, session.backend.total_memory()
    used = session.armed_ledger().device(index).allocated
    return min(free, max(profile.total_memory - used, 0)), profile.total_memory


def nested(flat: dict[str, int]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in flat.items():
        node = result
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return result


def summary(session: Redirection, index: int) -> str:
    s = stats(session, index)
    mib = 1024 * 1024
    rows = [
        ("Allocated memory", s["allocated_bytes.all.current"], s["allocated_bytes.all.peak"]),
        ("Reserved memory", s["reserved_bytes.all.current"], s["reserved_bytes.all.peak"]),
    ]
    lines = [
        "=" * 75,
        f" torchdevice emulated memory summary, device {session.source}:{index} on {session.target.device}",
        "-" * 75,
        f" {'Metric':<30}{'Cur Usage':>20}{'Peak Usage':>20}",
        "-" * 75,
    ]
    lines += [f" {name:<30}{cur / mib:>17.2f} MB{peak / mib:>17.2f} MB" for name, cur, peak in rows]
    lines += [f" {'Allocations':<30}{s['allocation.all.current']:>20}{s['allocation.all.allocated']:>20}", "=" * 75]
    return "\n".join(lines)


def patches(session: Redirection) -> list[Patch]:
    if session.backend is None:
        return []
    backend = session.backend
    fraction: dict[int, float] = {}

    def index(device: Any) -> int:
        return session.index_of(device)

    def memory_allocated(device: Any = None) -> int:
        return session.armed_ledger().device(index(device)).allocated

    def max_memory_allocated(device: Any = None) -> int:
        return session.armed_ledger().device(index(device)).peak

    def memory_reserved(device: Any = None) -> int:
        return stats(session, index(device))["reserved_bytes.all.current"]

    def max_memory_reserved(device: Any = None) -> int:
        return stats(session, index(device))["reserved_bytes.all.peak"]

    def reset_peak_memory_stats(device: Any = None) -> None:
        session.armed_ledger().reset_peak(index(device))

    def reset_accumulated_memory_stats(device: Any = None) -> None:
        session.armed_ledger().reset_accumulated(index(device))

    def memory_stats(device: Any = None) -> dict[str, int]:
        return stats(session, index(device))

    def memory_stats_as_nested_dict(device: Any = None) -> dict[str, Any]:
        return nested(stats(session, index(device)))

    def memory_summary(device: Any = None, abbreviated: bool = False) -> str:
        return summary(session, index(device))

    def mem_get_info(device: Any = None) -> tuple[int, int]:
        return memory_info(session, index(device))

    def empty_cache() -> None:
        session.armed_ledger().empty_cache()
        backend.empty_cache()

    def set_per_process_memory_fraction(value: float, device: Any = None) -> None:
        if not isinstance(value, float) or not 0 <= value <= 1:
            raise ValueError(f"Invalid fraction value: {value}. Allowed range: 0~1")
        fraction[index(device)] = value

    def get_per_process_memory_fraction(device: Any = None) -> float:
        return fraction.get(index(device), 1.0)

    functions: dict[str, Callable[..., Any]] = {
        "memory_allocated": memory_allocated,
        "max_memory_allocated": max_memory_allocated,
        "memory_reserved": memory_reserved,
        "max_memory_reserved": max_memory_reserved,
        "memory_cached": memory_reserved,
        "max_memory_cached": max_memory_reserved,
        "reset_peak_memory_stats": reset_peak_memory_stats,
        "reset_max_memory_allocated": reset_peak_memory_stats,
        "reset_max_memory_cached": reset_peak_memory_stats,
        "reset_accumulated_memory_stats": reset_accumulated_memory_stats,
        "memory_stats": memory_stats,
        "memory_stats_as_nested_dict": memory_stats_as_nested_dict,
        "memory_summary": memory_summary,
        "mem_get_info": mem_get_info,
        "empty_cache": empty_cache,
        "set_per_process_memory_fraction": set_per_process_memory_fraction,
        "get_per_process_memory_fraction": get_per_process_memory_fraction,
    }
    out = []
    for name, fn in functions.items():
        out.append(emulated(session, name, fn))
    module = getattr(namespace(session), "memory", None)  # torch.cuda.memory.mem_get_info is its own name
    for name, fn in functions.items():
        if module is not None and hasattr(module, name):
            out.append(emulated(session, name, fn, owner=module, api=f"torch.cuda.memory.{name}"))
    return out
