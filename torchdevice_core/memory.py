"""Byte accounting for redirected tensors, per virtual device.

Accounting starts the first time memory statistics are asked for (``Redirection.armed_ledger``): one walk
of the garbage collector's objects counts the redirected tensors alive then, and from then on every new
redirected tensor is counted as it is made.  Until then ops pay nothing for it.

A storage's Python object lives exactly as long as the storage itself (torch preserves it while C++ holds a
reference, autograd's saved tensors included), so a weakref callback on it is an exact "freed" signal.
"""

from __future__ import annotations

import gc
import threading
import weakref
from typing import Any

import torch

_untyped_storage = torch._C.TensorBase.untyped_storage


class DeviceLedger:
    """The byte counts of one virtual device.  ``reserved`` emulates a caching allocator: it grows with use
    and shrinks to ``allocated`` on ``empty_cache()``."""

    __slots__ = ("allocated", "bytes_allocated_total", "bytes_freed_total", "live", "num_alloc", "num_free",
                 "peak", "peak_reserved", "reserved")

    def __init__(self) -> None:
        self.allocated = self.peak = self.reserved = self.peak_reserved = 0
        self.num_alloc = self.num_free = self.bytes_allocated_total = self.bytes_freed_total = 0
        self.live: dict[int, Any] = {}


class StorageLedger:
    def __init__(self) -> None:
        self._devices: dict[int, DeviceLedger] = {}
        self._lock = threading.Lock()

    def device(self, index: int) -> DeviceLedger:
        ledger = self._devices.get(index)
        if ledger is None:
            ledger = self._devices.setdefault(index, DeviceLedger())
        return ledger

    def track(self, tensor: Any, index: int) -> None:
        """Count ``tensor``'s storage against virtual device ``index`` once, until it is freed.

        ``tensor`` must still be a plain tensor (called before it is given its emulated class).
        """
        try:
            storage = _untyped_storage(tensor)
        except (RuntimeError, NotImplementedError):
            return  # sparse and other storage-less layouts are not counted
        key = id(storage)
        ledger = self._devices.get(index) or self.device(index)
        if key in ledger.live:
            return
        nbytes = storage.nbytes()

        def freed(_ref: object, key: int = key, nbytes: int = nbytes, ledger: DeviceLedger = ledger) -> None:
            with self._lock:
                if ledger.live.pop(key, None) is not None:
                    ledger.allocated -= nbytes
                    ledger.num_free += 1
                    ledger.bytes_freed_total += nbytes

        try:
            ref = weakref.ref(storage, freed)
        except TypeError:
            return
        with self._lock:
            ledger.live[key] = ref
            ledger.allocated += nbytes
            ledger.num_alloc += 1
            ledger.bytes_allocated_total += nbytes
            if ledger.allocated > ledger.peak:
                ledger.peak = ledger.allocated
            if ledger.allocated > ledger.reserved:
                ledger.reserved = ledger.allocated
                if ledger.reserved > ledger.peak_reserved:
                    ledger.peak_reserved = ledger.reserved

    def track_existing(self, kind: type, index_of: Any) -> int:
        """Count the live tensors of class ``kind`` (one gc walk): accounting starts lazily, not per op."""
        found = 0
        with torch._C.DisableTorchFunctionSubclass():
            for obj in gc.get_objects():
                if issubclass(type(obj), kind):  # type(), not isinstance: gc holds dead weakproxies too
                    self.track(obj, index_of(obj))
                    found += 1
        return found

    def reset_peak(self, index: int) -> None:
        ledger = self.device(index)
        with self._lock:
            ledger.peak = ledger.allocated
            ledger.peak_reserved = ledger.reserved

    def empty_cache(self) -> None:
        with self._lock:
            for ledger in self._devices.values():
                ledger.reserved = ledger.allocated

    def reset_accumulated(self, index: int) -> None:
        ledger = self.device(index)
        with self._lock:
            ledger.num_alloc = ledger.num_free = 0
            ledger.bytes_allocated_total = ledger.bytes_freed_total = 0
