"""``torch.save`` / ``torch.load`` of checkpoints whose storages are tagged ``cuda:N``.

torch restores every storage through ``torch.serialization.default_restore_location`` (for the default
``map_location``, dicts, strings, devices, and callables that return None).  The patched version sends
source-tagged storages to the target; ``UntypedStorage.cuda()`` (what ``map_location=lambda s, l: s.cuda()``
calls) does the same.  Tensors built on those storages come back as emulated source-device tensors.
``torch.save`` of an emulated tensor tags its storage ``cuda:N``, as a real CUDA tensor's would be: the file
loads back onto the emulated device here, and needs a ``map_location`` elsewhere, exactly like a GPU one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import torch
import torch.serialization as _serialization

from ..active_state import SAVING
from ..patching import Patch
from ..session import Redirection
from ..tensor import promote, real_device

_StorageBase = torch.storage._StorageBase
_untyped_storage = torch._C.TensorBase.untyped_storage
_loading = threading.local()


def _move(session: Redirection, storage: Any, index: int) -> Any:
    target = session.target.device
    # Under MPS limits the dtype decides (float64 policy), and a storage has none yet: it waits on the CPU.
    wait = session.mps_limits and session.options.mps_float64 != "error"
    moved = storage if wait or storage.device == target else storage.to(device=target)
    marks: dict[int, tuple[int, Any]] | None = getattr(_loading, "marks", None)
    if marks is not None:
        marks[id(moved)] = (index, moved)  # keep the storage alive so its id stays unique during the load
    return moved


def _make_restore(session: Redirection) -> Callable[..., Any]:
    orig = _serialization.default_restore_location

    def default_restore_location(storage: Any, location: str) -> Any:
        index = session.resolve(location)
        if index is None:
            return orig(storage, location)
        session.record.redirected("torch.load")
        return _move(session, storage, index)

    return default_restore_location


def _make_storage_cuda(session: Redirection) -> Callable[..., Any]:
    def cuda(self: Any, device: Any = None, non_blocking: bool = False) -> Any:
        index = session.index_of(device)
        session.record.redirected("UntypedStorage.cuda")
        if isinstance(self, torch.TypedStorage):
            return torch.TypedStorage(wrap_storage=_move(session, self._untyped_storage, index), dtype=self.dtype,
                                      _internal=True)
        return _move(session, self, index)

    return cuda


def _adopt_tensor(session: Redirection, tensor: torch.Tensor, index: int) -> torch.Tensor:
    """A tensor loaded from a source-tagged storage: onto the target, as an emulated tensor, within limits."""
    wanted = session.limit_dtype(tensor.dtype)  # raises under MPS limits + the "error" float64 policy
    if wanted is None:
        return tensor  # float64 kept on the CPU
    is_param = isinstance(tensor, torch.nn.Parameter)
    if wanted != tensor.dtype or real_device(tensor) != session.target.device:
        moved = tensor.detach().to(device=session.target.device, dtype=wanted)
        tensor = torch.nn.Parameter(moved, tensor.requires_grad) if is_param else moved
    if session.options.emulate_identity:
        cls = session.slot_class(index)
        promote(tensor, cls._td_param_class if is_param else cls)
    return tensor


def _adopt_loaded(session: Redirection, obj: Any, marks: dict[int, tuple[int, Any]], seen: set[int]) -> Any:
    """Walk what torch.load returned; returns ``obj`` or, for a tensor that had to change, its replacement."""
    if id(obj) in seen:
        return obj
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        if type(obj) not in (torch.Tensor, torch.nn.Parameter):
            return obj
        try:
            mark = marks.get(id(_untyped_storage(obj)))
        except (RuntimeError, NotImplementedError):
            return obj
        return obj if mark is None else _adopt_tensor(session, obj, mark[0])
    if isinstance(obj, dict):
        for key, value in list(obj.items()):
            new = _adopt_loaded(session, value, marks, seen)
            if new is not value:
                obj[key] = new
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            new = _adopt_loaded(session, value, marks, seen)
            if new is not value:
                obj[i] = new
    elif isinstance(obj, tuple):
        items = [_adopt_loaded(session, value, marks, seen) for value in obj]
        if any(new is not old for new, old in zip(items, obj, strict=True)):
            return type(obj)(*items) if hasattr(obj, "_fields") else type(obj)(items)
    elif isinstance(obj, torch.nn.Module):
        for module in obj.modules():
            _adopt_loaded(session, module._parameters, marks, seen)
            _adopt_loaded(session, module._buffers, marks, seen)
    return obj


def _make_load(session: Redirection) -> Callable[..., Any]:
    orig = torch.load

    def load(*args: Any, **kwargs: Any) -> Any:
        outer = getattr(_loading, "marks", None)
        marks: dict[int, tuple[int, Any]] = {}
        _loading.marks = marks
        try:
            result = orig(*args, **kwargs)
        finally:
            _loading.marks = outer
        if marks:
            result = _adopt_loaded(session, result, marks, set())
        return result

    load.__doc__ = orig.__doc__
    load.__wrapped__ = orig  # type: ignore[attr-defined]
    return load


def _make_location_tag(session: Redirection) -> Callable[..., Any]:
    orig = _serialization.location_tag

    def location_tag(storage: Any) -> Any:
        marks = getattr(SAVING, "marks", None)
        if marks:
            untyped = storage._untyped_storage if isinstance(storage, torch.TypedStorage) else storage
            mark = marks.get(id(untyped))
            if mark is not None:
                return mark[0]
        return orig(storage)

    return location_tag


def _make_save(session: Redirection) -> Callable[..., Any]:
    orig = torch.save

    def save(*args: Any, **kwargs: Any) -> Any:
        outer = getattr(SAVING, "marks", None)
        SAVING.marks = {}
        try:
            return orig(*args, **kwargs)
        finally:
            SAVING.marks = outer

    save.__doc__ = orig.__doc__
    save.__wrapped__ = orig  # type: ignore[attr-defined]
    return save


def patches(session: Redirection) -> list[Patch]:
    out = [
        Patch(_serialization, "location_tag", _make_location_tag(session), "tag emulated storages cuda:N"),
        Patch(torch, "save", _make_save(session), "tag emulated storages cuda:N"),
        Patch(_serialization, "default_restore_location", _make_restore(session), "restore cuda-tagged storages"),
        Patch(torch, "load", _make_load(session), "adopt tensors of cuda-tagged storages"),
    ]
    if "cuda" in session.sources:
        out.append(Patch(_StorageBase, "cuda", _make_storage_cuda(session), "redirect UntypedStorage.cuda"))
    return out
