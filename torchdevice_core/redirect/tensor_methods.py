"""``Tensor.to`` / ``.cuda()`` / ``.type("torch.cuda.FloatTensor")`` / ``new_*`` / ``pin_memory`` /
``record_stream``.

These live on the immutable ``torch._C.TensorBase``; they are patched on ``torch.Tensor`` (where they are
absent from ``__dict__``) and undone by deleting.  Each replacement starts with a cheap check and hands
anything that does not name the source device straight to the original.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import torch

from ..conversions import emulated_cuda, emulated_to, emulated_type, parse_legacy_type, split_to_args, to_target
from ..handlers import method_routes
from ..patching import ItemPatch, Patch
from ..session import Redirection
from ..tensor import EmulatedTensor, promote
from ..uninitialized import convert, is_uninitialized
from .compiling import compiled_call, compiling
from .pinned import is_marked_pinned, is_pinned_patch, mark_pinned
from .wrappers import give_identity, wrapped_index

_TensorBase = torch._C.TensorBase


class PatchedMethod:
    """A patched ``torch.Tensor`` method that, like the C methods it replaces, is a method descriptor.

    Installed as a plain function, ``Tensor.to`` would make dynamo treat ``x.to`` on a tensor subclass like a
    property (it binds it through ``__torch_function__``) and then refuse the subclass's ``__class__``.

    ``_td_method`` is its contract with ``EmulatedTensor.__torch_function__``: under compilation the
    descriptor itself arrives there as ``func`` and is run as the plain method of that name, the device sent
    to the target (``compiling.compiled_method``).  In eager code it arrives there only when torch's C
    dispatch calls ``Tensor.<name>`` from the class, and ``handlers.method_routes`` maps it (and ``fn``) to
    the handler of the C method it replaces.
    """

    __slots__ = ("__dict__", "fn")

    def __init__(self, fn: Callable[..., Any], original: Any, name: str) -> None:
        self.fn = fn
        self._td_method = name
        self.__name__ = self.__qualname__ = getattr(original, "__name__", fn.__name__)
        self.__doc__ = getattr(original, "__doc__", None)
        self.__wrapped__ = original

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        return self if obj is None else types.MethodType(self.fn, obj)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


_NEW_METHODS = ("new_empty", "new_empty_strided", "new_zeros", "new_ones", "new_full", "new_tensor")


def _make_to(session: Redirection) -> Callable[..., Any]:
    orig = _TensorBase.to
    resolve = session.resolve
    hit = session.record.redirected
    plain = torch.Tensor
    device_type = torch.device

    def to(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        if compiling():
            return compiled_call(orig, self, *args, **kwargs)
        if type(self) is not plain and isinstance(self, EmulatedTensor):
            return emulated_to(self, args, kwargs)
        dev = kwargs.get("device") if kwargs else None
        if dev is None and args:
            first = args[0]
            kind = type(first)
            if kind is str or kind is device_type or kind is int:
                dev = first
            elif isinstance(first, EmulatedTensor):
                dev = first.device
        if dev is None:
            return orig(self, *args, **kwargs)
        index = resolve(dev)
        if index is None:
            return orig(self, *args, **kwargs)
        parsed = split_to_args(args, kwargs)
        if parsed is None:
            return orig(self, *args, **kwargs)
        hit("Tensor.to")
        _, dtype, non_blocking, _, memory_format = parsed
        return _copy_to_target(session, self, index, dtype, non_blocking, memory_format)

    return to


def _copy_to_target(session: Redirection, t: torch.Tensor, index: int, dtype: Any, non_blocking: bool,
                    memory_format: Any) -> Any:
    if session.mps_limits:
        wanted = session.limit_dtype(dtype or t.dtype)
        if wanted is None:
            return t  # float64 stays on the CPU (Options.mps_float64 == "cpu")
        dtype = wanted if wanted != t.dtype or dtype is not None else None
    if type(t) is not torch.Tensor and wrapped_index(t) == index and dtype in (None, t.dtype):
        return t  # a wrapper subclass already on this (emulated) device: CUDA returns it
    out = to_target(t, index, dtype, non_blocking, memory_format, emulate=session.options.emulate_identity)
    if type(t) is not torch.Tensor:
        if is_uninitialized(t):  # a lazy module's tensor: uninitialized on CUDA too
            return convert(t, out)
        if type(out) is not torch.Tensor and not isinstance(out, EmulatedTensor):
            return give_identity(session, out, index)  # a wrapper subclass, moved by its own __torch_dispatch__
    return out


def _make_cuda(session: Redirection) -> Callable[..., Any]:
    resolve = session.resolve
    hit = session.record.redirected

    def cuda(self: torch.Tensor, device: Any = None, non_blocking: bool = False,
             memory_format: Any = torch.preserve_format) -> Any:
        if compiling():
            return _TensorBase.to(self, session.target.device, non_blocking=non_blocking, memory_format=memory_format)
        if isinstance(self, EmulatedTensor):
            return emulated_cuda(self, device, non_blocking, memory_format)
        index = resolve("cuda" if device is None else device)
        if index is None:
            raise RuntimeError(f"Invalid device, must be cuda device (got {device!r})")
        hit("Tensor.cuda")
        return _copy_to_target(session, self, index, None, non_blocking, memory_format)

    return cuda


def _make_type(session: Redirection) -> Callable[..., Any]:
    orig = _TensorBase.type
    hit = session.record.redirected

    def type_(self: torch.Tensor, dtype: Any = None, non_blocking: bool = False, **kwargs: Any) -> Any:
        if compiling():
            return orig(self, dtype, non_blocking, **kwargs)
        if isinstance(self, EmulatedTensor):
            return emulated_type(self, dtype, non_blocking, **kwargs)
        if dtype is None or isinstance(dtype, torch.dtype):
            return orig(self, dtype, non_blocking, **kwargs)
        name = dtype if isinstance(dtype, str) else getattr(dtype, "_td_legacy_name", None)
        parsed = parse_legacy_type(name) if name else None
        slot = session.slot_of_source(parsed[0]) if parsed is not None and parsed[0] else None
        if parsed is None or slot is None:
            return orig(self, dtype, non_blocking, **kwargs)
        hit("Tensor.type")
        return _copy_to_target(session, self, slot, parsed[1], non_blocking, torch.preserve_format)

    return type_


def _make_new(session: Redirection, name: str) -> Callable[..., Any]:
    orig = getattr(_TensorBase, name)
    resolve = session.resolve
    hit = session.record.redirected
    target = session.target.device
    api = f"Tensor.{name}"

    def new(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        if compiling():
            return compiled_call(orig, self, *args, **kwargs)
        dev = kwargs.get("device")
        if dev is None or isinstance(self, EmulatedTensor):
            return orig(self, *args, **kwargs)  # an emulated self goes through __torch_function__
        index = resolve(dev)
        if index is None:
            return orig(self, *args, **kwargs)
        hit(api)
        kwargs["device"] = target
        out = orig(self, *args, **kwargs)
        if session.options.emulate_identity and type(out) is torch.Tensor:
            promote(out, session.slot_class(index))
        return out

    new.__name__ = new.__qualname__ = name
    return new


def _make_pin_memory(session: Redirection) -> Callable[..., Any]:
    emulated = session.record.emulated

    def pin_memory(self: torch.Tensor, device: Any = None) -> Any:
        if isinstance(self, EmulatedTensor):
            return _TensorBase.pin_memory(self)  # raises as CUDA does, through __torch_function__
        emulated("Tensor.pin_memory")
        if is_marked_pinned(self):
            return self  # already pinned: CUDA returns the tensor itself
        return mark_pinned(self.clone())  # a new host copy, reported pinned (redirect/pinned.py)

    return pin_memory


def _make_record_stream(session: Redirection) -> Callable[..., Any]:
    orig = _TensorBase.record_stream
    emulated = session.record.emulated
    real_stream = torch.Stream

    def record_stream(self: torch.Tensor, stream: Any) -> Any:
        if isinstance(stream, real_stream):
            return orig(self, stream)
        # an emulated torch.cuda.Stream: torch's argument parser would refuse it before any dispatch
        emulated("Tensor.record_stream")
        return None

    return record_stream


def patches(session: Redirection) -> list[Patch | ItemPatch]:
    makers: dict[str, Callable[..., Any]] = {
        "to": _make_to(session),
        "type": _make_type(session),
    }
    if "cuda" in session.sources:
        makers["cuda"] = _make_cuda(session)
    for name in _NEW_METHODS:
        makers[name] = _make_new(session, name)
    if session.target.type != "cuda":
        makers["pin_memory"] = _make_pin_memory(session)
        makers["record_stream"] = _make_record_stream(session)
        makers["is_pinned"] = is_pinned_patch(session)
    out: list[Patch | ItemPatch] = []
    for name, fn in makers.items():
        method = PatchedMethod(fn, getattr(_TensorBase, name, None), name)
        out.append(Patch(torch.Tensor, name, method, f"redirect Tensor.{name}"))
        out.extend(method_routes(name, method))
    return out
