"""Targets behind one interface. ``backend_for`` maps a resolved target to its backend."""

from __future__ import annotations

from ..spec import Target
from .base import Backend, TimingEvent
from .cpu import CpuBackend
from .cuda import CudaBackend
from .mps import MpsBackend

__all__ = ["Backend", "CpuBackend", "CudaBackend", "MpsBackend", "TimingEvent", "backend_for"]


def backend_for(target: Target) -> Backend:
    """The backend whose device redirected tensors live on (only used when target type != source type)."""
    if target.backend is not None:  # a registered target's, built by spec.resolve_target
        return target.backend
    if target.type == "cpu":
        return CpuBackend()
    if target.type == "mps":
        return MpsBackend()
    if target.type == "cuda":
        return CudaBackend(target.device)
    raise ValueError(f"no backend for {target.device}")
