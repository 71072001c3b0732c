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

from ..cuda import streams
from ..patching import Patch
from ..session import Redirection


def _is_source(session: Redirection, device: Any) -> bool:
    if device is None:
        return not session.real_caller(3)  # user code means the current accelerator: the source device
    if isinstance(device, int) and not isinstance(device, bool):
        return True  # an index of the current accelerator
    return session.resolve(device) is not None


def _generic_class(session: Redirection, real: type, emulated: type, make: Any) -> type:
    """A stand-in for ``torch.<real>``: emulated objects for the source device, real ones otherwise."""

    class Meta(type):
        def __instancecheck__(cls, obj: object) -> bool:
            return isinstance(obj, (real, emulated))

        def __subclasscheck__(cls, sub: type) -> bool:
            return issubclass(sub, (real, emulated))

    def __new__(cls: type, device: Any = None, *args: Any, **kwargs: Any) -> Any:
        if _is_source(session, device):
            session.record.emulated(f"torch.{real.__name__}")
            return make(device, *args, **kwargs)
        return real(device, *args, **kwargs) if device is not None else real(*args, **kwargs)

    namespace = {"__new__": __new__, "__module__": "torch", "__doc__": real.__doc__, "__qualname__": real.__name__}
    return Meta(real.__name__, (real,), namespace)


def patches(session: Redirection) -> list[Patch]:
    if session.backend is None:
        return []
    parts = streams.build(session)
    stream_cls, event_cls = parts["Stream"], parts["Event"]

    def make_stream(device: Any = None, *, priority: int = 0) -> Any:
        return stream_cls(device, priority=priority)

    def make_event(device: Any = None, *, enable_timing: bool = False, blocking: bool = False,
                   interprocess: bool = False) -> Any:
        return event_cls(enable_timing=enable_timing, blocking=blocking, interprocess=interprocess, device=device)

    out = []
    if isinstance(getattr(torch, "Stream", None), type):
        out.append(Patch(torch, "Stream", _generic_class(session, torch.Stream, stream_cls, make_stream),
                         "emulated for the source device"))
    if isinstance(getattr(torch, "Event", None), type):
        out.append(Patch(torch, "Event", _generic_class(session, torch.Event, event_cls, make_event),
                         "emulated for the source device"))
    return out
