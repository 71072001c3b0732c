"""Pinned host memory on a target that has none (CPU, MPS): ``pin_memory()``, ``is_pinned()``, DataLoader;
and shared storages "on" the emulated device (what a DataLoader worker collates emulated tensors into).

On CUDA, ``x.pin_memory()`` returns a page-locked host copy, ``is_pinned()`` says True for it (and for its
views), and ``DataLoader(pin_memory=True)`` yields such batches.  Here host memory is all there is, so a
"pinned" tensor is a plain host copy whose storage is remembered as pinned: ``is_pinned()`` answers True for
every tensor on such a storage, exactly as CUDA answers for page-locked memory, and False for everything
else (what the CPU says).  Copies to the device (``.cuda(non_blocking=True)``) work as from pinned memory.
The storages are held weakly: the registry never keeps memory alive.

``DataLoader(pin_memory=True)``: torch's iterator asks ``torch.accelerator`` (torch internals get the real
answer: none on a CPU box), warns that pinning is off, and yields unpinned batches.  Under redirection the
iterator is built as without ``pin_memory`` (no warning a GPU would not give, no pinning thread) and pins each
batch in ``__next__`` through ``Tensor.pin_memory`` above, in the main process as CUDA's pinning thread does.
"""

from __future__ import annotations

import contextlib
import warnings
import weakref
from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import dataloader as _dataloader

from ..patching import Patch
from ..session import Redirection
from ..tensor import EmulatedTensor

_untyped_storage = torch._C.TensorBase.untyped_storage
_PINNED: weakref.WeakSet[Any] = weakref.WeakSet()


def mark_pinned(t: torch.Tensor) -> torch.Tensor:
    """Remember ``t``'s storage as (emulated) pinned host memory."""
    with contextlib.suppress(RuntimeError, NotImplementedError, TypeError):  # sparse...: no storage, never pinned
        _PINNED.add(_untyped_storage(t))
    return t


def is_marked_pinned(t: torch.Tensor) -> bool:
    try:
        return _untyped_storage(t) in _PINNED
    except (RuntimeError, NotImplementedError, TypeError):
        return False


def _make_is_pinned(session: Redirection) -> Callable[..., Any]:
    orig = torch._C.TensorBase.is_pinned
    plain = torch.Tensor

    def is_pinned(self: torch.Tensor, device: Any = None) -> bool:
        if type(self) is not plain and isinstance(self, EmulatedTensor):
            return False  # a (emulated) CUDA tensor is device memory
        if _PINNED and is_marked_pinned(self):
            return True
        return bool(orig(self) if device is None else orig(self, device))

    return is_pinned


def _make_iter_init(session: Redirection) -> Callable[..., Any]:
    orig = _dataloader._BaseDataLoaderIter.__init__

    def __init__(self: Any, loader: Any) -> None:
        if not loader.pin_memory:
            return orig(self, loader)
        if loader.pin_memory_device:
            warnings.warn(
                "pin_memory_device is deprecated, the current accelerator will be used as the device,"
                f"ignore pin_memory_device='{loader.pin_memory_device}'.",
                stacklevel=2,
            )
        loader.pin_memory = False  # torch's own setup, as if unpinned: no accelerator query, no warning
        try:
            orig(self, loader)
        finally:
            loader.pin_memory = True
        self._td_pin = True
        session.record.emulated("DataLoader(pin_memory=True)")

    __init__.__wrapped__ = orig  # type: ignore[attr-defined]
    return __init__


def _make_iter_next() -> Callable[..., Any]:
    orig = _dataloader._BaseDataLoaderIter.__next__
    pin = _dataloader._utils.pin_memory.pin_memory

    def __next__(self: Any) -> Any:
        data = orig(self)
        if getattr(self, "_td_pin", False):
            data = pin(data)
        return data

    __next__.__wrapped__ = orig  # type: ignore[attr-defined]
    return __next__


def _make_new_shared(session: Redirection) -> Any:
    orig = vars(torch.storage._StorageBase)["_new_shared"].__func__
    resolve = session.resolve
    target = session.target.device

    def _new_shared(cls: Any, size: int, *, device: Any = "cpu") -> Any:
        # a DataLoader worker collates a batch straight into shared memory "on elem.device": for an
        # emulated tensor that is the target's (shared host) memory
        if resolve(device) is not None:
            device = target
        return orig(cls, size, device=device)

    _new_shared.__wrapped__ = orig  # type: ignore[attr-defined]
    return classmethod(_new_shared)


def patches(session: Redirection) -> list[Patch]:
    if session.target.type == "cuda":
        return []  # real pinned memory
    iterator = _dataloader._BaseDataLoaderIter
    return [
        Patch(iterator, "__init__", _make_iter_init(session), "DataLoader(pin_memory=True) pins emulated"),
        Patch(iterator, "__next__", _make_iter_next(), "DataLoader(pin_memory=True) pins emulated"),
        Patch(torch.storage._StorageBase, "_new_shared", _make_new_shared(session),
              "shared storages on the emulated device live in the target's memory"),
    ]


def is_pinned_patch(session: Redirection) -> Callable[..., Any]:
    """The ``Tensor.is_pinned`` replacement (installed with the other Tensor methods)."""
    return _make_is_pinned(session)
