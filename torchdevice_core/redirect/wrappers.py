"""Wrapper tensor subclasses (``torch.Tensor._make_wrapper_subclass``) on the emulated device.

Graph and sparse libraries build their index types as wrapper subclasses whose device is the device of the
data they wrap: ``_make_wrapper_subclass(cls, size, device=data.device, ...)``.  With emulated data that
device says ``cuda:0``, and a wrapper really placed on ``cuda:0`` in a CPU build makes C++ abort the
interpreter the first time autograd or a device guard looks at it ("PyTorch is not linked with support for
cuda devices").  So the wrapper is made on the target, and given a subclass of its own class that only
answers ``device`` / ``is_cuda`` / ``get_device`` as CUDA would (named like the class; nothing else changes:
the class's own ``__torch_dispatch__`` does all the work, on the emulated tensors it wraps).

``.cuda()`` / ``.to("cuda")`` of a wrapper built on the CPU moves it through its own ``__torch_dispatch__``
onto the target and gives the result that identity too; the plain tensors the class put inside are its
business (they report the target device).  ``.cuda()`` of a wrapper already on the emulated device returns
it, and ``.cpu()`` / ``.to("cpu")`` copy it, as on CUDA (the class answers those two itself).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..active_state import ACTIVE, TARGET
from ..conversions import split_to_args
from ..patching import Patch
from ..session import Redirection
from ..tensor import EmulatedTensor, real_device
from .compiling import compiling

_CLASSES: dict[tuple[type, type], type] = {}
_orig_to = torch._C.TensorBase.to
_default_torch_function = vars(torch.Tensor)["__torch_function__"].__func__


def base_class(cls: type) -> type:
    base: type = getattr(cls, "_td_wrapped_base", cls)
    return base


def wrapped_index(t: Any) -> int | None:
    """The virtual device slot of a wrapper given the emulated identity, else None."""
    return getattr(type(t), "_td_wrapped_index", None)


def identity_class(base: type, tcls: type[EmulatedTensor]) -> type:
    """``base`` answering ``device``/``is_cuda``/``get_device`` as a tensor of emulated class ``tcls`` (cached)."""
    key = (base, tcls)
    known = _CLASSES.get(key)
    if known is not None:
        return known
    device = tcls._td_device
    source = tcls._td_type
    index = tcls._td_index

    def _real(self: Any) -> bool:
        return compiling()

    def _device(self: Any) -> torch.device:
        return (TARGET[0] or real_device(self)) if _real(self) else device

    def _is(kind: str) -> Callable[[Any], bool]:
        def check(self: Any) -> bool:
            return (TARGET[0] is not None and TARGET[0].type == kind) if _real(self) else source == kind

        return check

    def _is_cpu(self: Any) -> bool:
        return _real(self) and (TARGET[0] or real_device(self)).type == "cpu"

    def get_device(self: Any) -> int:
        return (-1 if TARGET[0] is None or TARGET[0].type == "cpu" else (TARGET[0].index or 0)) if _real(self) \
            else index

    def cpu(self: Any, memory_format: Any = torch.preserve_format) -> Any:
        # it really is on the target already, where torch would hand it back as is: CUDA copies it (through
        # the class's own __torch_dispatch__), and so does this
        return _orig_to(self, device="cpu", copy=True, memory_format=memory_format)

    def to(self: Any, *args: Any, **kwargs: Any) -> Any:
        parsed = split_to_args(args, kwargs)
        active = ACTIVE[0]
        if parsed is None or parsed[0] is None or active is None or active.resolve(parsed[0]) is not None:
            return torch.Tensor.to(self, *args, **kwargs)  # a dtype change, or onto an emulated device
        dest, dtype, non_blocking, _, memory_format = parsed
        return _orig_to(self, device=dest, dtype=dtype, non_blocking=non_blocking, copy=True,
                        memory_format=memory_format)

    attrs = {
        "__module__": base.__module__,
        "__qualname__": base.__qualname__,
        "device": property(_device),
        "is_cuda": property(_is("cuda")),
        "is_mps": property(_is("mps")),
        "is_cpu": property(_is_cpu),
        "get_device": get_device,
        "cpu": cpu,
        "to": to,
        "_td_wrapped_base": base,
        "_td_wrapped_index": tcls._td_slot,
    }
    if getattr(getattr(base, "__torch_function__", None), "__func__", None) is _default_torch_function:
        # torch's default would convert every result to this class, also ``.cpu()``'s: the class's own
        # __torch_dispatch__ builds each result, and so its device, from what it wraps
        attrs["__torch_function__"] = torch._C._disabled_torch_function_impl
    made: type = type(base.__name__, (base,), attrs)
    _CLASSES[key] = made
    return made


def give_identity(session: Redirection, out: Any, index: int) -> Any:
    """``out``, a wrapper subclass moved onto the target by ``.cuda()``/``.to("cuda")``: report ``cuda:index``."""
    cls = type(out)
    if cls is torch.Tensor or isinstance(out, EmulatedTensor) or not session.options.emulate_identity:
        return out
    if getattr(cls, "__torch_dispatch__", None) is getattr(torch.Tensor, "__torch_dispatch__", None):
        return out  # not a wrapper: a subclass of the caller's own keeps its type
    base = base_class(cls)
    out.__class__ = identity_class(base, session.slot_class(index))
    return out


def _make_wrapper(session: Redirection) -> Callable[..., Any]:
    orig = torch._C.TensorBase._make_wrapper_subclass
    resolve = session.resolve
    target = session.target.device

    def _make_wrapper_subclass(cls: type, *args: Any, **kwargs: Any) -> Any:
        dev = kwargs.get("device")
        index = resolve(dev) if dev is not None else None
        base = base_class(cls)
        out: Any
        if index is None:
            out = orig(cls, *args, **kwargs)
            if base is not cls and not compiling():
                out.__class__ = base  # type(x)(...) of an emulated-looking wrapper, built elsewhere
            return out
        kwargs["device"] = target
        out = orig(cls, *args, **kwargs)
        if session.options.emulate_identity and not compiling():
            session.record.redirected("Tensor._make_wrapper_subclass")
            out.__class__ = identity_class(base, session.slot_class(index))
        return out

    return _make_wrapper_subclass


def result_identity(session: Redirection) -> Callable[[Any, int], Any]:
    """For ``active_state.WRAPPER_IDENTITY``: a wrapper result of an op on emulated tensors, if it is on the target."""

    def give(out: Any, index: int) -> Any:
        if real_device(out) == session.target.device and wrapped_index(out) is None:
            give_identity(session, out, index)
        return out

    return give


def patches(session: Redirection) -> list[Patch]:
    return [Patch(torch.Tensor, "_make_wrapper_subclass", staticmethod(_make_wrapper(session)),
                  "wrapper subclasses on the emulated device live on the target")]
