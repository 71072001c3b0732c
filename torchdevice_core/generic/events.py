"""``torch.Stream`` / ``torch.Event`` with the source device: the emulated ``torch.cuda`` streams and events.

``torch.Stream`` and ``torch.Event`` are C types whose attributes cannot be set, so the names in ``torch`` are
replaced, while active, by subclasses whose constructor answers ``device="cuda"`` (or, from user code, no
device: the current accelerator) with the same emulated objects ``torch.cuda.Stream``/``Event`` make, and any
other device with a real ``torch.Stream``/``Event``.  Their metaclass keeps ``isinstance(s, torch.Stream)``
true for real streams and for emulated ones, as it is for ``torch.cuda.Stream`` objects on a GPU.
"""

from __future__ import annotations

from typing import Any

import torch

from ..emulation import streams
from ..patching import Patch
from ..session import Redirection


def _source_of(session: Redirection, device: Any) -> str | None:
    """The source device type ``device`` names (None: the current accelerator, for user code), or None."""
    if device is None:
        return None if session.real_caller(3) else session.source
    if isinstance(device, int) and not isinstance(device, bool):
        return session.source  # an index of the current accelerator
    if session.resolve(device) is None:
        return None
    return torch.device(device).type


def _generic_class(session: Redirection, real: type, emulated: tuple[type, ...], make: Any) -> type:
    """A stand-in for ``torch.<real>``: emulated objects for the source device, real ones otherwise."""

    class Meta(type):
        def __instancecheck__(cls, obj: object) -> bool:
            return isinstance(obj, (real, *emulated))

        def __subclasscheck__(cls, sub: type) -> bool:
            return issubclass(sub, (real, *emulated))

    def __new__(cls: type, device: Any = None, *args: Any, **kwargs: Any) -> Any:
        source = _source_of(session, device)
        if source is not None:
            session.record.emulated(f"torch.{real.__name__}")
            return make(source, device, *args, **kwargs)
        return real(device, *args, **kwargs) if device is not None else real(*args, **kwargs)

    namespace = {"__new__": __new__, "__module__": "torch", "__doc__": real.__doc__, "__qualname__": real.__name__}
    return Meta(real.__name__, (real,), namespace)


def patches(session: Redirection) -> list[Patch]:
    if session.backend is None:
        return []
    parts = {source: streams.build(session, source) for source in session.sources}
    stream_classes = tuple(part["Stream"] for part in parts.values())
    event_classes = tuple(part["Event"] for part in parts.values())

    def make_stream(source: str, device: Any = None, *, priority: int = 0) -> Any:
        return parts[source]["Stream"](device, priority=priority)

    def make_event(source: str, device: Any = None, *, enable_timing: bool = False, blocking: bool = False,
                   interprocess: bool = False) -> Any:
        return parts[source]["Event"](enable_timing=enable_timing, blocking=blocking, interprocess=interprocess,
                                      device=device)

    out = []
    if isinstance(getattr(torch, "Stream", None), type):
        out.append(Patch(torch, "Stream", _generic_class(session, torch.Stream, stream_classes, make_stream),
                         "emulated for the source device"))
    if isinstance(getattr(torch, "Event", None), type):
        out.append(Patch(torch, "Event", _generic_class(session, torch.Event, event_classes, make_event),
                         "emulated for the source device"))
    return out
