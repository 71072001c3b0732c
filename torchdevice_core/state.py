"""Process state that is not an attribute patch: the default device, the virtual current device, autocast.

Snapshots let deactivation (and the pytest plugin, per test) put things back as they were.
"""

from __future__ import annotations

import torch

from .session import Redirection

_AUTOCAST_TYPES = ("cpu", "cuda", "mps")


def current_default_device() -> torch.device | None:
    context = getattr(torch._GLOBAL_DEVICE_CONTEXT, "device_context", None)
    return None if context is None else context.device


class StateSnapshot:
    __slots__ = ("autocast", "autocast_nesting", "current_index", "default_device")

    def __init__(self, default_device: torch.device | None, current_index: int | None,
                 autocast: dict[str, tuple[bool, torch.dtype]], autocast_nesting: int) -> None:
        self.default_device = default_device
        self.current_index = current_index
        self.autocast = autocast
        self.autocast_nesting = autocast_nesting


def snapshot(session: Redirection | None) -> StateSnapshot:
    autocast = {}
    for kind in _AUTOCAST_TYPES:
        try:
            autocast[kind] = (torch.is_autocast_enabled(kind), torch.get_autocast_dtype(kind))
        except (RuntimeError, TypeError):
            continue
    return StateSnapshot(current_default_device(), None if session is None else session.current_index, autocast,
                         autocast_nesting())


def autocast_nesting() -> int:
    """How many autocast contexts are entered (torch has no getter: step up and back down)."""
    torch.autocast_increment_nesting()
    return int(torch.autocast_decrement_nesting())


def restore(session: Redirection | None, snap: StateSnapshot) -> None:
    if current_default_device() != snap.default_device:
        torch.set_default_device(snap.default_device)
    if session is not None and snap.current_index is not None:
        session.current_index = snap.current_index
    # An autocast entered and never exited keeps the nesting up, and torch then never clears its cache of
    # low-precision weight copies: later steps would reuse stale weights.
    nesting = autocast_nesting()
    while nesting > snap.autocast_nesting:
        nesting = int(torch.autocast_decrement_nesting())
        if nesting == 0:
            torch.clear_autocast_cache()
    for kind, (enabled, dtype) in snap.autocast.items():
        try:
            if torch.is_autocast_enabled(kind) != enabled:
                torch.set_autocast_enabled(kind, enabled)
            if torch.get_autocast_dtype(kind) != dtype:
                torch.set_autocast_dtype(kind, dtype)
        except (RuntimeError, TypeError):
            continue
