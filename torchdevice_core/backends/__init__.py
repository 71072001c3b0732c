"""Targets behind one interface. ``backend_for`` maps a resolved target to its backend."""

from __future__ import annotations

from ..spec import Target
from .base import Backend, TimingEvent
from .cpu import CpuBackend
from .mps import MpsBackend

__all__ = ["Backend", "CpuBackend", "MpsBackend", "TimingEvent", "backend_for"]


def backend_for(target: Target) -> Backend:
    if target.type == "cpu":
        return CpuBackend()
    if target.type == "mps":
        return MpsBackend()
    raise ValueError(f"no emulation backend for {target.device}: a CUDA target runs natively")
