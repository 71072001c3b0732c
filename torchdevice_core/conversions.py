"""Moving emulated tensors: ``Tensor.to`` / ``.cuda()`` / ``.type(...)`` on them, and the legacy type names.

What a move means is decided here: onto another virtual device (a copy on the target, given that device's
class), onto the same one (a dtype or format change), or off the emulated device (a plain copy, as CUDA
copies).  ``handlers.py`` calls these for emulated tensors; ``redirect/tensor_methods.py`` for plain ones.
"""

from __future__ import annotations

from typing import Any

import torch
from torch._C import DisableTorchFunctionSubclass as _Disable

from .active_state import ACTIVE
from .tensor import EmulatedTensor, adopt, promote

_Tensor = torch.Tensor
_TensorBase = torch._C.TensorBase
_orig_to = _TensorBase.to
_orig_clone = _TensorBase.clone
_device_getter = _TensorBase.device.__get__

# torch's legacy tensor type names (``torch.cuda.FloatTensor``) by dtype
LEGACY_NAMES = {
    torch.float32: "FloatTensor", torch.float64: "DoubleTensor", torch.float16: "HalfTensor",
    torch.bfloat16: "BFloat16Tensor", torch.int64: "LongTensor", torch.int32: "IntTensor",
    torch.int16: "ShortTensor", torch.int8: "CharTensor", torch.uint8: "ByteTensor", torch.bool: "BoolTensor",
    torch.complex64: "ComplexFloatTensor", torch.complex128: "ComplexDoubleTensor",
}
_LEGACY_DTYPES = {name: dtype for dtype, name in LEGACY_NAMES.items()}


def split_to_args(args: tuple, kwargs: dict) -> tuple[Any, Any, bool, bool, Any] | None:
    """``Tensor.to``'s three signatures -> (destination, dtype, non_blocking, copy, memory_format).

    None when the arguments do not fit: the caller then lets torch raise its own error.
    """
    kw = dict(kwargs)
    dest = kw.pop("device", None)
    dtype = kw.pop("dtype", None)
    non_blocking = kw.pop("non_blocking", False)
    copy_ = kw.pop("copy", False)
    memory_format = kw.pop("memory_format", torch.preserve_format)
    if kw:
        return None
    rest: list[Any]
    if args:
        first = args[0]
        if isinstance(first, torch.dtype):
            dtype, rest = first, list(args[1:])
            names: tuple[str, ...] = ("non_blocking", "copy")
        elif isinstance(first, _Tensor):
            dest, dtype, rest = first.device, first.dtype, list(args[1:])
            names = ("non_blocking", "copy")
        else:
            dest, rest = first, list(args[1:])
            names = ("dtype", "non_blocking", "copy")
        if len(rest) > len(names):
            return None
        values = dict(zip(names, rest, strict=False))
        dtype = values.get("dtype", dtype)
        non_blocking = values.get("non_blocking", non_blocking)
        copy_ = values.get("copy", copy_)
    return dest, dtype, bool(non_blocking), bool(copy_), memory_format


def to_target(t: torch.Tensor, index: int, dtype: Any = None, non_blocking: bool = False,
              memory_format: Any = torch.preserve_format, emulate: bool = True) -> torch.Tensor:
    """Copy ``t`` onto the target as virtual device ``index`` (a real transfer always copies, so mutating the
    result never touches ``t``); ``emulate=False`` leaves the copy a plain target tensor."""
    active = ACTIVE[0]
    assert active is not None
    with _Disable():
        out = _orig_to(t, device=active.target.device, dtype=dtype, non_blocking=non_blocking, copy=True,
                       memory_format=memory_format)
    if not emulate or type(out) is not _Tensor:  # (a subclass of the caller's own keeps its type)
        return out
    return promote(out, active.slot_class(index))


def emulated_to(self: EmulatedTensor, args: tuple, kwargs: dict) -> Any:
    out = _emulated_to(self, args, kwargs)
    if self._td_uninitialized_base is not None:  # a lazy module's tensor stays uninitialized
        from .uninitialized import convert

        out = convert(self, out, (self,))
    return out


def _emulated_to(self: EmulatedTensor, args: tuple, kwargs: dict) -> Any:
    parsed = split_to_args(args, kwargs)
    if parsed is None:
        with _Disable():
            return _orig_to(self, *args, **kwargs)
    dest, dtype, non_blocking, copy_, memory_format = parsed
    active = ACTIVE[0]
    index = self._td_slot if dest is None else (active.resolve(dest) if active is not None else None)
    if index is not None and dtype is not None and active is not None and active.mps_limits:
        wanted = active.limit_dtype(dtype)
        if wanted is None:  # float64 leaves the MPS-limited device for the CPU (Options.mps_float64 == "cpu")
            dest, index = "cpu", None
        else:
            dtype = wanted
    if index is not None and index != self._td_slot:
        return to_target(self, index, dtype, non_blocking, memory_format)
    if index is not None:  # same virtual device: a dtype/format change, or a no-op returning self
        with _Disable():
            out = _orig_to(self, dtype=dtype, non_blocking=non_blocking, copy=copy_, memory_format=memory_format)
        return out if out is self else adopt(out, self._td_tensor_class, (self,))
    # leaving the emulated device (cpu, meta, ...): CUDA copies, and so do we; the result is plain
    with _Disable():
        same = _device_getter(self) == torch.device(dest) if isinstance(dest, (str, torch.device)) else False
        out = _orig_to(self, device=dest, dtype=dtype, non_blocking=non_blocking, copy=copy_ or same,
                       memory_format=memory_format)
    if out is self:
        with _Disable():
            out = _orig_clone(self)
    return out


def emulated_cuda(self: EmulatedTensor, device: Any = None, non_blocking: bool = False,
                  memory_format: Any = torch.preserve_format) -> Any:
    active = ACTIVE[0]
    if active is None:
        raise RuntimeError(f"Invalid device, must be {self._td_type} device")
    # a bare .cuda() means the current CUDA device (where cuda is redirected); an mps-only session keeps
    # its one device
    index = active.resolve(("cuda" if "cuda" in active.sources else self._td_type) if device is None else device)
    if index is None:
        raise RuntimeError(f"Invalid device, must be {self._td_type} device")
    if index == self._td_slot:
        return self
    out = to_target(self, index, None, non_blocking, memory_format)
    if self._td_uninitialized_base is not None:
        from .uninitialized import convert

        out = convert(self, out)
    return out


def legacy_type_name(t: torch.Tensor, source: str) -> str:
    return f"torch.{source}.{LEGACY_NAMES.get(t.dtype, 'Tensor')}"


def parse_legacy_type(name: str) -> tuple[str | None, torch.dtype] | None:
    """``"torch.cuda.HalfTensor"`` -> ("cuda", float16); ``"torch.FloatTensor"`` -> (None, float32)."""
    parts = name.split(".")
    if len(parts) < 2 or parts[0] != "torch" or parts[-1] not in _LEGACY_DTYPES:
        return None
    return (parts[1] if len(parts) == 3 else None), _LEGACY_DTYPES[parts[-1]]


def emulated_type(self: EmulatedTensor, dtype: Any = None, non_blocking: bool = False, **kwargs: Any) -> Any:
    if dtype is None:
        return legacy_type_name(self, self._td_type)
    if isinstance(dtype, torch.dtype):
        return emulated_to(self, (dtype,), {"non_blocking": non_blocking})
    name = dtype if isinstance(dtype, str) else getattr(dtype, "_td_legacy_name", None) or str(dtype)
    parsed = parse_legacy_type(name.replace("<class '", "").replace("'>", ""))
    if parsed is None:
        with _Disable():
            return _TensorBase.type(self, dtype, non_blocking, **kwargs)
    where, real_dtype = parsed
    if where == self._td_type:
        return emulated_to(self, (real_dtype,), {"non_blocking": non_blocking})
    return emulated_to(self, (where or "cpu", real_dtype), {"non_blocking": non_blocking})
