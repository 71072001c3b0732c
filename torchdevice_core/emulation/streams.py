"""Streams and events.

The CPU runs work synchronously and MPS has one queue, so every emulated stream is ordered with every
other: waits are satisfied by construction and ``synchronize`` drains the target.  Events with
``enable_timing=True`` measure real time: the host clock after a synchronize on the CPU, MPS's own timing
events on a Mac.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

import torch

from ..backends import TimingEvent
from ..errors import UnemulatableError
from ..patching import Patch
from ..session import Redirection
from .answers import emulated, namespace

DEVICE_TYPE_CODES = {"cpu": 0, "cuda": 1, "mps": 13}  # c10::DeviceType values (torch.Stream.device_type)


def build(session: Redirection, for_source: str | None = None) -> dict[str, Any]:
    """The Stream/Event/StreamContext classes and stream functions bound to ``session`` (for the source
    ``for_source``, by default the primary one).

    Built once per session and source (``session.shared``): ``torch.cuda``, ``torch.accelerator`` and
    ``torch.Stream``/``torch.Event`` hand out the same objects, so a stream set through one is current
    through the others.
    """
    key = f"streams:{for_source or session.source}"
    parts: dict[str, Any] | None = session.shared.get(key)
    if parts is None:
        parts = session.shared[key] = _build(session, for_source)
    return parts


def _build(session: Redirection, for_source: str | None = None) -> dict[str, Any]:
    assert session.backend is not None
    backend = session.backend
    source = for_source or session.source
    ids = itertools.count(1)
    local = threading.local()
    target = str(session.target.device)
    device_type = DEVICE_TYPE_CODES.get(source, 0)

    class Stream:
        """An emulated ``torch.cuda.Stream``: ordered with all others on the target."""

        def __init__(self, device: Any = None, priority: int = 0, **kwargs: Any) -> None:
            self.device_index = session.index_of(device)
            self.device = torch.device(source, self.device_index if source == "cuda" else 0)
            self.priority = priority
            self.stream_id = kwargs.get("stream_id", next(ids))
            self.device_type = device_type  # c10's DeviceType code, as torch.Stream reports it

        @property
        def cuda_stream(self) -> int:
            return int(self.stream_id)

        @property
        def native_handle(self) -> int:
            return int(self.stream_id)

        def is_capturing(self) -> bool:
            return False

        def query(self) -> bool:
            return True

        def synchronize(self) -> None:
            backend.synchronize()

        def wait_event(self, event: Any) -> None:
            return None

        def wait_stream(self, stream: Any) -> None:
            return None

        def record_event(self, event: Any = None) -> Any:
            event = event if event is not None else Event()
            event.record(self)
            return event

        def __enter__(self) -> Stream:
            self._ctx = StreamContext(self)
            self._ctx.__enter__()
            return self

        def __exit__(self, *exc: object) -> None:
            self._ctx.__exit__(*exc)

        def __eq__(self, other: object) -> bool:
            return isinstance(other, Stream) and (self.stream_id, self.device) == (other.stream_id, other.device)

        def __hash__(self) -> int:
            return hash((self.stream_id, self.device))

        def __repr__(self) -> str:
            return f"<torch.{source}.Stream device={self.device} {source}_stream={self.cuda_stream:#x}>"

    defaults: dict[int, Stream] = {}

    def default_stream(device: Any = None) -> Stream:
        index = session.index_of(device)
        if index not in defaults:
            defaults[index] = Stream(index, stream_id=0)
        return defaults[index]

    def current_stream(device: Any = None) -> Stream:
        index = session.index_of(device)
        current: dict[int, Stream] = getattr(local, "current", {})
        return current.get(index) or default_stream(index)

    def set_stream(stream: Any) -> None:
        if stream is None:
            return
        if not hasattr(local, "current"):
            local.current = {}
        local.current[stream.device_index] = stream

    class StreamContext:
        """``with torch.cuda.stream(s):`` makes ``s`` current (and the current device ``s.device``)."""

        def __init__(self, stream: Stream | None) -> None:
            self.stream = stream
            self.prev: Stream | None = None
            self.prev_index = session.current_index

        def __enter__(self) -> None:
            if self.stream is None:
                return
            self.prev_index = session.current_index
            self.prev = current_stream(self.stream.device_index)
            session.current_index = self.stream.device_index
            set_stream(self.stream)

        def __exit__(self, *exc: object) -> None:
            if self.stream is None:
                return
            set_stream(self.prev)
            session.current_index = self.prev_index

    class Event:
        """An emulated ``torch.cuda.Event``; with ``enable_timing=True`` it measures real elapsed time."""

        def __init__(self, enable_timing: bool = False, blocking: bool = False, interprocess: bool = False,
                     external: bool = False, device: Any = None) -> None:
            if interprocess:
                session.record.refused(f"torch.{source}.Event(interprocess=True)")
                raise UnemulatableError(f"torch.{source}.Event(interprocess=True)", target,
                                        "events shared between processes need CUDA IPC")
            self.enable_timing = enable_timing
            self.blocking = blocking
            index = session.index_of(device)
            self.device = torch.device(source, index if source == "cuda" else 0)
            self.event_id = next(ids)
            self._timer: TimingEvent | None = backend.new_timing_event() if enable_timing else None
            self._recorded = False

        def record(self, stream: Any = None) -> None:
            if self._timer is not None:
                self._timer.record()
            self._recorded = True

        def wait(self, stream: Any = None) -> None:
            return None

        def query(self) -> bool:
            return True if self._timer is None else self._timer.query()

        def synchronize(self) -> None:
            if self._timer is not None:
                self._timer.synchronize()
            else:
                backend.synchronize()

        def elapsed_time(self, end_event: Event) -> float:
            if not (self.enable_timing and getattr(end_event, "enable_timing", False)):
                raise ValueError("Both events must be created with argument 'enable_timing=True'.")
            if not (self._recorded and end_event._recorded):
                raise RuntimeError("Both events must be recorded before calculating elapsed time.")
            assert self._timer is not None and end_event._timer is not None
            return self._timer.elapsed_ms(end_event._timer)

        def ipc_handle(self) -> Any:
            raise UnemulatableError(f"torch.{source}.Event.ipc_handle", target, "needs CUDA IPC")

        @classmethod
        def from_ipc_handle(cls, device: Any, handle: Any) -> Any:
            raise UnemulatableError(f"torch.{source}.Event.from_ipc_handle", target, "needs CUDA IPC")

        @property
        def cuda_event(self) -> int:
            return id(self)

        def __repr__(self) -> str:
            return f"<torch.{source}.Event {'timing' if self.enable_timing else 'no timing'}>"

    def stream(stream: Any) -> StreamContext:
        return StreamContext(stream)

    for cls in (Stream, Event, StreamContext):
        cls.__module__ = f"torch.{source}"
    return {
        "Stream": Stream,
        "Event": Event,
        "StreamContext": StreamContext,
        "stream": stream,
        "current_stream": current_stream,
        "default_stream": default_stream,
        "set_stream": set_stream,
    }


def patches(session: Redirection) -> list[Patch]:
    if session.backend is None:
        return []
    parts = build(session)
    ns = namespace(session)
    out = []
    for name, obj in parts.items():
        if isinstance(obj, type):
            out.append(Patch(ns, name, obj, "emulated"))
        else:
            out.append(emulated(session, name, obj))
    return out
