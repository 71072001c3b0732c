"""Targets behind one interface. ``backend_for`` maps a resolved target to its backend."""

from __future__ import annotations

from ..registry import registered_target
from ..spec import Target
from .base import Backend, TimingEvent
from .cpu import CpuBackend
from .cuda import CudaBackend
from .mps import MpsBackend

__all__ = ["Backend", "CpuBackend", "CudaBackend", "MpsBackend", "TimingEvent", "backend_for"]


def backend_for(target: Target) -> Backend:
    """The backend whose device redirected tensors live on (only used when target type != source type)."""
    name, _, index = target.spec.partition(":")
    entry = registered_target(name)
    if entry is not None:
        return entry.make_backend(int(index) if index else None)
    if target.type == "cpu":
        return CpuBackend()
    if target.type == "mps":
        return MpsBackend()
    if target.type == "cuda":
        return CudaBackend(target.device)
    raise ValueError(f"no backend for {target.device}")
