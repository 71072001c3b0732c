"""Redirected tensors that present themselves as source-device tensors.

A tensor redirected from ``cuda`` to the CPU really lives on the CPU, but the code under test asks
``x.device``, ``x.is_cuda``, ``str(x.device) == "cuda:0"``.  Such tensors get a Python subclass of
``torch.Tensor`` (one per virtual device) that answers those questions as CUDA would; ``__torch_function__``
hands the class on to the results of every op, ``.cpu()`` / ``.to("cpu")`` give back a plain copy, and
mixing an emulated tensor with a real CPU tensor raises as CUDA does.  Tensors that were never redirected
are untouched, so ops on them cost exactly what they cost without this library.

The class is given to a fresh result by ``__class__`` assignment (torch itself does this for
``UninitializedParameter``): no alias is made, so ``p.grad is p.grad`` still holds.  Inside
``torch.compile`` the tensors show their real device, so dynamo and inductor compile for what runs.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch._C import DisableTorchFunctionSubclass as _Disable

from . import session as _session
from .gaps import target_gap as _target_gap
from .mixing import MIXED_DEVICE_OK

_Tensor = torch.Tensor
_call_disabled = torch._C._disabled_torch_function_impl
_NO_KWARGS: dict[str, Any] = {}
_NO_TYPES: tuple[type, ...] = ()
_grad_descriptor: Any = vars(torch._C.TensorBase)["grad"]
_grad_get = _grad_descriptor.__get__
_grad_set = _grad_descriptor.__set__
_is_sparse_get = torch._C.TensorBase.is_sparse.__get__  # type: ignore[attr-defined]
_Parameter = torch.nn.Parameter
_TensorBase = torch._C.TensorBase
_compiling = torch.compiler.is_compiling
_mode_enabled = torch._C._is_torch_function_mode_enabled
_orig_to = _TensorBase.to
_orig_clone = _TensorBase.clone
_device_getter = _TensorBase.device.__get__
_return_types = torch.return_types.max.__module__
# torch.Tensor's binary dunders (__pow__, __rsub__...) are Python wrappers that re-dispatch torch functions and
# turn TypeError into NotImplemented; inside dynamo's eager fallback that re-dispatch fails, so under
# compilation the C function they wrap is called directly.
_DUNDER_WRAPPER_CODE = getattr(torch.Tensor.__pow__, "__code__", None)

Handler = Callable[[type, Any, tuple, dict], Any]
# Set by activation (one-element lists: read in the hot path without a module attribute lookup chain).
_CHECKS: list[bool] = [False]  # Options.device_checks of the active redirection
_LEDGER: list[Any] = [None]  # the StorageLedger once memory statistics were asked for (see memory.py)
# > 0 while a torch.compile'd callable runs (redirect/compile.py): its graphs were traced with real devices
# (factories inside bake in device="cpu"), so tensors are what they really are until the call returns.
IN_COMPILED: list[int] = [0]
# The target every emulated tensor really lives on: what they report inside compiled code (reading the
# tensor's own device there would send dynamo back into this class's ``device`` property, endlessly).
TARGET: list[torch.device | None] = [None]
SAVING = threading.local()  # .marks: storages of emulated tensors being pickled by torch.save -> their device
_HANDLERS: dict[Any, Handler] = {}
WRAPPER_IDENTITY: list[Any] = [None]  # set by activation: give a wrapper-subclass result the emulated identity

# ops that accept tensors of another device on purpose (CUDA allows these too): never device-checked;
# each with the torch source that says so (mixing.py)
_MIXED_DEVICE_OK = MIXED_DEVICE_OK
_LEGACY_NAMES = {
    torch.float32: "FloatTensor", torch.float64: "DoubleTensor", torch.float16: "HalfTensor",
    torch.bfloat16: "BFloat16Tensor", torch.int64: "LongTensor", torch.int32: "IntTensor",
    torch.int16: "ShortTensor", torch.int8: "CharTensor", torch.uint8: "ByteTensor", torch.bool: "BoolTensor",
    torch.complex64: "ComplexFloatTensor", torch.complex128: "ComplexDoubleTensor",
}
_LEGACY_DTYPES = {name: dtype for dtype, name in _LEGACY_NAMES.items()}


class EmulatedTensor(torch.Tensor):
    """Base of the per-virtual-device classes; ``isinstance(x, EmulatedTensor)`` means "redirected"."""

    __slots__ = ()
    _td_device: ClassVar[torch.device]
    _td_index: ClassVar[int]
    _td_slot: ClassVar[int]  # the session's virtual device (== _td_index except mps under an auto source)
    _td_type: ClassVar[str]
    _td_tensor_class: ClassVar[type[EmulatedTensor]]
    _td_param_class: ClassVar[type[EmulatedTensor]]
    _td_uninitialized_base: ClassVar[type | None] = None  # set on the lazy modules' twins (uninitialized.py)

    @property
    def device(self) -> torch.device:  # type: ignore[override]
        if IN_COMPILED[0] or _compiling():
            return TARGET[0] or real_device(self)
        return self._td_device

    @property
    def is_cuda(self) -> bool:  # type: ignore[override]
        # compiled code first: dynamo refuses to trace reads of the class attributes below
        if IN_COMPILED[0] or _compiling():
            return TARGET[0] is not None and TARGET[0].type == "cuda"
        return self._td_type == "cuda"

    @property
    def is_mps(self) -> bool:  # type: ignore[override]
        if IN_COMPILED[0] or _compiling():
            return TARGET[0] is not None and TARGET[0].type == "mps"
        return self._td_type == "mps"

    @property
    def is_cpu(self) -> bool:  # type: ignore[override]
        return bool(IN_COMPILED[0] or _compiling()) and (TARGET[0] or real_device(self)).type == "cpu"

    # ``.grad`` and ``.is_sparse`` are read dozens of times per optimizer step: as properties of the class
    # they cost a Python call instead of a __torch_function__ dispatch (~3 us each, measured)
    @property
    def grad(self) -> Any:
        # (torch's C helper, also while compiling: dynamo cannot trace into it and breaks the graph, where
        # reading the C getter itself would send it back to this property, endlessly)
        grad = _call_disabled(_grad_get, _NO_TYPES, (self,), _NO_KWARGS)
        if type(grad) is _Tensor and not (IN_COMPILED[0] or _compiling()):
            # made by autograd in C++: give the very object its emulated class
            promote(grad, self._td_tensor_class)
        return grad

    @grad.setter
    def grad(self, value: Any) -> None:
        if _CHECKS[0] and (type(value) is _Tensor or type(value) is _Parameter) and not (
            IN_COMPILED[0] or _compiling()
        ):
            raise RuntimeError(
                f"assigned grad has data located on a different device (a real {real_device(value)} tensor for "
                f"an emulated {self._td_device} one) [torchdevice: CUDA raises here too]"
            )
        _call_disabled(_grad_set, _NO_TYPES, (self, value), _NO_KWARGS)

    @property
    def is_sparse(self) -> bool:  # type: ignore[override]
        return bool(_call_disabled(_is_sparse_get, _NO_TYPES, (self,), _NO_KWARGS))

    def backward(self, gradient: Any = None, retain_graph: Any = None, create_graph: bool = False,
                 inputs: Any = None) -> None:
        # once per training step: torch's Tensor.backward reaches __torch_function__ through its Python
        # handle_torch_function (~5 us); this runs what that dispatch runs, autograd with subclass dispatch off
        if IN_COMPILED[0] or _compiling() or _mode_enabled():
            return _Tensor.backward(self, gradient, retain_graph, create_graph, inputs)
        # (no device check: autograd's entry points take gradients of any device, mixing.AUTOGRAD)
        with _Disable():
            torch.autograd.backward(self, gradient, retain_graph, create_graph, inputs=inputs)
        return None

    backward.__doc__ = _Tensor.backward.__doc__

    def get_device(self) -> int:
        if IN_COMPILED[0] or _compiling():
            target = TARGET[0]
            return -1 if target is None or target.type == "cpu" else (target.index or 0)
        return self._td_index

    @property
    def _is_param(self) -> bool:
        return type(self) is self._td_param_class

    @_is_param.setter
    def _is_param(self, value: bool) -> None:
        # ``nn.Parameter(t)`` of a tensor subclass returns ``t.detach()`` flagged ``_is_param``: make that the
        # parameter twin, so ``nn.Parameter(torch.empty(..., device="cuda"))`` is a Parameter as on CUDA
        self.__class__ = self._td_param_class if value else self._td_tensor_class

    @classmethod
    def __torch_function__(cls, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        # The hot path of every op on a redirected tensor: keep it flat (each attribute lookup shows up).
        if IN_COMPILED[0] or _compiling():
            if getattr(func, "__code__", None) is _DUNDER_WRAPPER_CODE:
                func = func.__wrapped__
            method = getattr(func, "_td_method", None)
            if method is not None:  # one of our patched Tensor methods: the plain method, device sent to target
                return _compiled_method(method, args, kwargs or {})
            with _Disable():
                return func(*args, **(kwargs or {}))
        handler = _HANDLERS.get(func)
        if handler is not None:
            return handler(cls, func, args, kwargs or {})
        tcls = cls._td_tensor_class
        if kwargs:
            dev = kwargs.get("device")
            if dev is not None:
                return _call_with_device(tcls, func, args, kwargs, dev)
            if _CHECKS[0]:
                _check_devices(tcls, func, args, kwargs)
        else:
            kwargs = _NO_KWARGS
            if _CHECKS[0]:
                _check_devices(tcls, func, args, None)
        # torch's own C helper: calls func with subclass dispatch off, ~0.8 us cheaper than the `with` block
        # (a try block costs nothing until something raises)
        try:
            ret = _call_disabled(func, types, args, kwargs)
        except (NotImplementedError, RuntimeError) as exc:
            gap = _target_gap(exc)
            if gap is None:
                raise
            raise gap from exc
        if type(ret) is _Tensor:
            for a in args:
                if a is ret:
                    return ret
            ledger = _LEDGER[0]
            if ledger is not None:
                ledger.track(ret, tcls._td_slot)
            ret.__class__ = tcls
            return ret
        return _adopt(ret, tcls, args)


class _EmulatedParameterMixin:
    """Parameters keep their identity when a module moves: ``Module._apply`` swaps their class in place."""

    __slots__ = ()

    def __new__(cls, data: torch.Tensor | None = None, requires_grad: bool = True) -> Any:
        param = _Parameter(plain_alias(data) if data is not None else None, requires_grad)  # type: ignore[arg-type]
        param.__class__ = cls  # type: ignore[assignment]
        return param


_CLASSES: dict[tuple[str, int, int], type[EmulatedTensor]] = {}


def emulated_class(source: str, index: int, slot: int | None = None) -> type[EmulatedTensor]:
    """The (cached) tensor class for virtual device ``source:index`` (the session's ``slot``, by default the
    index); its parameter twin is ``_td_param_class``."""
    slot = index if slot is None else slot
    cls = _CLASSES.get((source, index, slot))
    if cls is not None:
        return cls
    attrs = {
        "__slots__": (),
        "__module__": __name__,
        "_td_device": torch.device(source, index),
        "_td_index": index,
        "_td_slot": slot,
        "_td_type": source,
    }
    name = f"{source.capitalize()}Tensor"
    tcls: Any = type(name, (EmulatedTensor,), dict(attrs))
    pcls: Any = type(f"{source.capitalize()}Parameter", (_EmulatedParameterMixin, tcls, _Parameter), dict(attrs))
    tcls._td_tensor_class = pcls._td_tensor_class = tcls
    tcls._td_param_class = pcls._td_param_class = pcls
    _CLASSES[(source, index, slot)] = tcls
    return tcls


def _target_device_args(args: tuple, kwargs: dict, positional: bool = True) -> tuple[tuple, dict]:
    """``(self, "cuda", ...)`` / ``device="cuda"`` with the source device replaced by the target.

    ``positional=False``: only ``device=`` names a device (``x.new_zeros(50)``: 50 is a size, not an ordinal).
    """
    active = _session.ACTIVE
    if active is not None:
        dev = kwargs.get("device")
        if dev is not None:
            if active.resolve(dev) is not None:
                kwargs = dict(kwargs, device=active.target.device)
        elif (positional and len(args) > 1 and isinstance(args[1], (str, torch.device, int))
              and active.resolve(args[1]) is not None):
            args = (args[0], active.target.device, *args[2:])
    return args, kwargs


def _compiled_method(name: str, args: tuple, kwargs: dict) -> Any:
    """A patched Tensor method traced by dynamo: called as a plain tensor method (a builtin dynamo knows)."""
    if name == "cuda":
        active = _session.ACTIVE
        name, args = "to", (args[0], active.target.device if active is not None else "cuda")
        kwargs = {k: v for k, v in kwargs.items() if k in ("non_blocking", "memory_format")}
    elif name == "pin_memory":
        name, args, kwargs = "clone", args[:1], {}
    args, kwargs = _target_device_args(args, kwargs, positional=name == "to")
    with _Disable():
        return getattr(args[0], name)(*args[1:], **kwargs)


def compiled_call(orig: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A patched entry point inside compiled code: the original, with a source-device argument sent to the
    target and nothing else (no class changes, no record: dynamo traces this, and refuses ``__class__``).
    Only ``Tensor.to`` takes a device positionally; the ``new_*`` methods' positional arguments are sizes."""
    args, kwargs = _target_device_args(args, kwargs, positional=getattr(orig, "__name__", "") == "to")
    return orig(*args, **kwargs)


def is_emulated(obj: object) -> bool:
    return isinstance(obj, EmulatedTensor)


def real_device(t: torch.Tensor) -> torch.device:
    """Where the data of ``t`` really is, whatever it reports."""
    with _Disable():
        return _device_getter(t)


def plain_alias(t: torch.Tensor) -> torch.Tensor:
    """A plain ``torch.Tensor`` view of the same data (autograd-connected) for code that must see the truth."""
    if type(t) is _Tensor or not isinstance(t, EmulatedTensor):
        return t
    with _Disable():
        return t.as_subclass(_Tensor)


def promote(t: torch.Tensor, cls: type[EmulatedTensor]) -> torch.Tensor:
    """Give a fresh plain result the emulated class ``cls`` (and count its storage on that virtual device)."""
    ledger = _LEDGER[0]
    if ledger is not None:
        ledger.track(t, cls._td_slot)
    t.__class__ = cls
    return t


def demote(t: torch.Tensor) -> None:
    """Turn an emulated tensor (or parameter) back into a plain one, in place."""
    if isinstance(t, EmulatedTensor):
        t.__class__ = _Parameter if isinstance(t, _EmulatedParameterMixin) else _Tensor  # type: ignore[assignment]


def _adopt(ret: Any, cls: type[EmulatedTensor], args: tuple) -> Any:
    rtype = type(ret)
    if rtype is _Tensor:
        for a in args:
            if a is ret:
                return ret
        return promote(ret, cls)
    if rtype is tuple or rtype is list or (isinstance(ret, tuple) and rtype.__module__ == _return_types):
        for item in ret:
            itype = type(item)
            if itype is _Tensor:
                if not any(a is item for a in args):
                    promote(item, cls)
            elif itype is tuple or itype is list:  # histogramdd's bin_edges: a result inside a result
                _adopt(item, cls, args)
    elif isinstance(ret, _Tensor) and not isinstance(ret, EmulatedTensor) and WRAPPER_IDENTITY[0] is not None:
        # a wrapper subclass computed with emulated tensors (its own __torch_dispatch__ ran with torch functions
        # off, so what it wraps is plain): it lives on the target, so it reports the emulated device
        WRAPPER_IDENTITY[0](ret, cls._td_slot)
    return ret


def _device_mismatch(cls: type[EmulatedTensor], other: torch.Tensor) -> RuntimeError:
    both = isinstance(other, EmulatedTensor)
    other_dev = other._td_device if isinstance(other, EmulatedTensor) else real_device(other)
    active = _session.ACTIVE
    where = f"emulated on {active.target.device}" if active else "emulated"
    which = (f"the {cls._td_device} and {other_dev} tensors are both {where}" if both else
             f"the {cls._td_device} tensor is {where}; the {other_dev} tensor is a real one")
    return RuntimeError(
        f"Expected all tensors to be on the same device, but found at least two devices, {cls._td_device} and "
        f"{other_dev}! [torchdevice: {which}. CUDA would raise here too. Disable with device_checks=False / "
        f"--torchdevice-no-device-checks]"
    )


def _bad_arg(cls: type[EmulatedTensor], a: Any) -> bool:
    ta = type(a)
    if ta is cls or ta is cls._td_param_class:
        return False
    if ta is _Tensor or ta is _Parameter:
        return bool(a.dim() != 0)  # CUDA accepts CPU scalars (0-dim) as operands
    if isinstance(a, EmulatedTensor):
        return a._td_slot != cls._td_slot or a._td_type != cls._td_type
    return False


def _check_devices(cls: type[EmulatedTensor], func: Any, args: tuple, kwargs: dict | None) -> None:
    pcls = cls._td_param_class
    for a in args:
        ta = type(a)
        if ta is cls or ta is pcls:
            continue
        if ta is _Tensor or ta is _Parameter:
            if a.dim() != 0:  # CUDA accepts CPU scalars (0-dim) as operands
                _raise_mismatch(cls, func, a)
        elif ta is list or ta is tuple:
            for b in a:
                if isinstance(b, _Tensor) and _bad_arg(cls, b):
                    _raise_mismatch(cls, func, b)
        elif isinstance(a, EmulatedTensor) and (a._td_slot != cls._td_slot or a._td_type != cls._td_type):
            _raise_mismatch(cls, func, a)
    if kwargs:
        for a in kwargs.values():
            if isinstance(a, _Tensor) and _bad_arg(cls, a):
                _raise_mismatch(cls, func, a)


def _raise_mismatch(cls: type[EmulatedTensor], func: Any, other: torch.Tensor) -> None:
    name = getattr(func, "__name__", "")
    if name in _MIXED_DEVICE_OK:
        return
    active = _session.ACTIVE
    if active is not None and active.mps_limits and _runs_through_mps_cpu_fallback(name):
        return  # mixing.MPS_CPU_FALLBACK: cpu_fallback copies every argument to the CPU itself
    raise _device_mismatch(cls, other)


def _runs_through_mps_cpu_fallback(name: str) -> bool:
    from .mps.limits import fallback_names

    return name in fallback_names()


def _call_with_device(cls: type[EmulatedTensor], func: Any, args: tuple, kwargs: dict, dev: Any) -> Any:
    """An op on an emulated tensor with an explicit ``device=`` (``new_zeros``, ``*_like``...)."""
    active = _session.ACTIVE
    index = active.resolve(dev) if active is not None else None
    if index is None:
        with _Disable():
            return func(*args, **kwargs)  # the result is wherever the caller asked: a plain tensor
    kwargs = dict(kwargs, device=active.target.device)  # type: ignore[union-attr]
    active.record.redirected(_api_name(func))  # type: ignore[union-attr]
    with _Disable():
        ret = func(*args, **kwargs)
    return _adopt(ret, active.slot_class(index), args)  # type: ignore[union-attr]


def _api_name(func: Any) -> str:
    name = str(getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func))
    if name.startswith("TensorBase."):
        name = "Tensor." + name[len("TensorBase.") :]
    return name if "." in name else f"torch.{name}"


# --------------------------------------------------------------------------------------------- conversions
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
    active = _session.ACTIVE
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
    active = _session.ACTIVE
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
        return out if out is self else _adopt(out, self._td_tensor_class, (self,))
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
    active = _session.ACTIVE
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
    return f"torch.{source}.{_LEGACY_NAMES.get(t.dtype, 'Tensor')}"


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


# ----------------------------------------------------------------------------------------------- handlers
def _handles(*funcs: Any) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        for f in funcs:
            _HANDLERS[f] = handler
        return handler

    return register


def register_handler(func: Any, like: Any) -> None:
    """Make ``func`` (a patched replacement) dispatch to the handler registered for ``like``."""
    _HANDLERS[func] = _HANDLERS[like]


def unregister_handler(func: Any) -> None:
    _HANDLERS.pop(func, None)


@_handles(_TensorBase.device.__get__)
def _h_device(cls: type, func: Any, args: tuple, kwargs: dict) -> Any:
    return cls._td_device  # type: ignore[attr-defined]


@_handles(_TensorBase.is_cuda.__get__)  # type: ignore[attr-defined]
def _h_is_cuda(cls: type, func: Any, args: tuple, kwargs: dict) -> Any:
    return cls._td_type == "cuda"  # type: ignore[attr-defined]


@_handles(_TensorBase.is_mps.__get__)  # type: ignore[attr-defined]
def _h_is_mps(cls: type, func: Any, args: tuple, kwargs: dict) -> Any:
    return cls._td_type == "mps"  # type: ignore[attr-defined]


@_handles(_TensorBase.is_cpu.__get__)  # type: ignore[attr-defined]
def _h_is_cpu(cls: type, func: Any, args: tuple, kwargs: dict) -> Any:
    return False


@_handles(_TensorBase.get_device)
def _h_get_device(cls: type, func: Any, args: tuple, kwargs: dict) -> Any:
    return cls._td_index  # type: ignore[attr-defined]


@_handles(_TensorBase.to)
def _h_to(cls: type, func: Any, args: tuple, kwargs: dict) -> Any:
    return emulated_to(args[0], args[1:], kwargs)


@_handles(_TensorBase.cuda)
def _h_cuda(cls: type, func: Any, args: tuple, kwargs: dict) -> Any:
    return emulated_cuda(args[0], *args[1:], **kwargs)


@_handles(_TensorBase.type)
def _h_type(cls: type, func: Any, args: tuple, kwargs: dict) -> Any:
    return emulated_type(args[0], *args[1:], **kwargs)


@_handles(_TensorBase.double)
def _h_double(cls: type, func: Any, args: tuple, kwargs: dict) -> Any:
    active = _session.ACTIVE
    if active is None or not active.mps_limits:
        with _Disable():
            return _adopt(func(*args, **kwargs), cls._td_tensor_class, args)  # type: ignore[attr-defined]
    return emulated_to(args[0], (torch.float64,), kwargs)


@_handles(_TensorBase.type_as)
def _h_type_as(cls: type, func: Any, args: tuple, kwargs: dict) -> Any:
    # ``self.type(other.type())``, as torch defines it: a CPU tensor typed as an emulated CUDA one moves onto
    # the (emulated) device, as on CUDA; our patched Tensor.type does the redirecting
    self, other = args[0], (args[1] if len(args) > 1 else kwargs["other"])
    return torch.Tensor.type(self, torch.Tensor.type(other))


@_handles(_TensorBase.cpu)
def _h_cpu(cls: type, func: Any, args: tuple, kwargs: dict) -> Any:
    return emulated_to(args[0], ("cpu",), {k: v for k, v in kwargs.items() if k == "memory_format"})


def _numpy_error(t: Any) -> TypeError:
    return TypeError(
        f"can't convert {t._td_device} device type tensor to numpy. "
        "Use Tensor.cpu() to copy the tensor to host memory first."
    )


@_handles(_TensorBase.numpy)
def _h_numpy(cls: type, func: Any, args: tuple, kwargs: dict) -> Any:
    if kwargs.get("force") or (len(args) > 1 and args[1]):
        return emulated_to(args[0], ("cpu",), {}).numpy()
    raise _numpy_error(args[0])


@_handles(_Tensor.__array__)
def _h_array(cls: type, func: Any, args: tuple, kwargs: dict) -> Any:
    raise _numpy_error(args[0])


@_handles(_TensorBase.pin_memory)
def _h_pin_memory(cls: type, func: Any, args: tuple, kwargs: dict) -> Any:
    raise RuntimeError(f"cannot pin '{legacy_type_name(args[0], cls._td_type)}' only dense CPU tensors can be pinned")  # type: ignore[attr-defined]


@_handles(_TensorBase.is_pinned)
def _h_is_pinned(cls: type, func: Any, args: tuple, kwargs: dict) -> Any:
    return False


@_handles(_Tensor.is_shared)
def _h_is_shared(cls: type, func: Any, args: tuple, kwargs: dict) -> Any:
    return True  # "Always True for CUDA tensors"


@_handles(_TensorBase.record_stream)
def _h_record_stream(cls: type, func: Any, args: tuple, kwargs: dict) -> Any:
    active = _session.ACTIVE
    if active is not None:
        active.record.emulated("Tensor.record_stream")
    return None


@_handles(_Tensor.__reduce_ex__)
def _h_reduce_ex(cls: type, func: Any, args: tuple, kwargs: dict) -> Any:
    # Pickled as the plain tensor it is; torch.save (patched) tags its storage with the emulated device.
    self = args[0]
    alias = plain_alias(self)
    marks = getattr(SAVING, "marks", None)
    if marks is not None:
        storage = alias.untyped_storage()
        marks[id(storage)] = (str(self._td_device), storage)
        return alias.__reduce_ex__(*args[1:], **kwargs)
    # pickle, copy.copy, multiprocessing queues: the plain tensor, and the device to give it back (a CUDA
    # tensor unpickles onto CUDA)
    state = torch._utils._get_obj_state(self)
    return (rebuild_emulated, (alias.__reduce_ex__(*args[1:], **kwargs), self._td_type, self._td_index, state))


def rebuild_emulated(reduced: tuple, source: str, index: int, state: Any = None) -> torch.Tensor:
    """Unpickle an emulated tensor: emulated again while redirecting ``source``; else onto the real device
    (where torch raises its own error if the machine has none, as for a CUDA pickle)."""
    t: torch.Tensor = reduced[0](*reduced[1])
    active = _session.ACTIVE
    slot = None if active is None else active.resolve(torch.device(source, index))  # (a bad ordinal raises)
    if active is None or slot is None:
        t = t.to(torch.device(source, index))
    else:
        if real_device(t) != active.target.device:
            t = t.to(active.target.device)
        if active.options.emulate_identity and type(t) is _Tensor:
            promote(t, active.slot_class(slot))
    if state:
        torch._utils._set_obj_state(t, state)
    return t


@_handles(_Tensor.__deepcopy__)
def _h_deepcopy(cls: type, func: Any, args: tuple, kwargs: dict) -> Any:
    self, memo = args[0], (args[1] if len(args) > 1 else kwargs.get("memo", {}))
    if id(self) in memo:
        return memo[id(self)]
    if not self.is_leaf:
        raise RuntimeError(
            "Only Tensors created explicitly by the user (graph leaves) support the deepcopy protocol at the moment."
        )
    with _Disable():
        alias = _TensorBase.detach(self)  # a plain leaf: torch refuses to deepcopy an autograd alias of one
    result = copy.deepcopy(alias, memo)
    result.__dict__.update(copy.deepcopy(self.__dict__, memo))
    promote(result, type(self)._td_tensor_class)
    memo[id(self)] = result
    if self.requires_grad:
        result.requires_grad_()
    grad = self.grad
    if grad is not None:
        result.grad = copy.deepcopy(grad, memo)
    return result


def promote_grads(grads: Any, cls: type[EmulatedTensor]) -> Any:
    """Gradients made by autograd in C++ for an emulated tensor are plain: give them its class (in place)."""
    if type(grads) is _Tensor:
        promote(grads, cls)
    elif type(grads) is tuple or type(grads) is list:
        for g in grads:
            if type(g) is _Tensor:
                promote(g, cls)
    return grads


@_handles(_Tensor.register_hook)
def _h_register_hook(cls: type, func: Any, args: tuple, kwargs: dict) -> Any:
    # the hook sees the gradient as a CUDA hook would: emulated (it reports cuda:0)
    self, hook = args[0], (args[1] if len(args) > 1 else kwargs["hook"])
    tcls = cls._td_tensor_class  # type: ignore[attr-defined]

    def emulated_hook(grad: Any) -> Any:
        return hook(promote_grads(grad, tcls))

    emulated_hook.__wrapped__ = hook  # type: ignore[attr-defined]
    with _Disable():
        return func(self, emulated_hook)


@_handles(torch._pack_padded_sequence, torch._pad_packed_sequence)
def _h_packed(cls: type, func: Any, args: tuple, kwargs: dict) -> Any:
    # (data, lengths/batch_sizes): lengths and batch_sizes live on the CPU, on CUDA too; the data is emulated
    with _Disable():
        ret = func(*args, **kwargs)
    first = ret[0]
    if type(first) is _Tensor and not any(a is first for a in args):
        promote(first, cls._td_tensor_class)  # type: ignore[attr-defined]
    return ret


@_handles(torch.lstm, torch.gru, torch.rnn_tanh, torch.rnn_relu)
def _h_rnn(cls: type, func: Any, args: tuple, kwargs: dict) -> Any:
    # on a packed sequence the second argument is its batch_sizes: a CPU tensor, as on CUDA
    tcls = cls._td_tensor_class  # type: ignore[attr-defined]
    if _CHECKS[0]:
        second = args[1] if len(args) > 1 else None
        packed = (type(second) is _Tensor and second.dtype == torch.int64 and second.dim() == 1)
        _check_devices(tcls, func, (args[0], *args[2:]) if packed else args, kwargs or None)
    with _Disable():
        ret = func(*args, **kwargs)
    return _adopt(ret, tcls, args)


@_handles(_Tensor.__format__)
def _h_format(cls: type, func: Any, args: tuple, kwargs: dict) -> Any:
    # torch formats a 0-dim plain tensor as its value (f"{t:.2f}"), everything else as its str; a subclass
    # would get object.__format__ (the subclass's name, and TypeError for any format spec)
    self = args[0]
    spec = args[1] if len(args) > 1 else kwargs.get("format_spec", "")
    with _Disable():
        scalar = self.dim() == 0 and not self.is_meta and not isinstance(self, _Parameter)
    if scalar:
        return self.item().__format__(spec)
    if spec:
        kind = "Parameter" if isinstance(self, _Parameter) else "Tensor"
        raise TypeError(f"unsupported format string passed to {kind}.__format__")
    return str(self)


@_handles(_Tensor.__repr__)
def _h_repr(cls: type, func: Any, args: tuple, kwargs: dict) -> Any:
    with _Disable():
        text = func(*args, **kwargs)
    if isinstance(args[0], _Parameter) and text.startswith("Parameter(") and text.endswith(")"):
        text = text[len("Parameter(") : -1]  # torch wraps non-plain parameters; a CUDA one is not wrapped
    name = f"{type(args[0]).__name__}("
    head, sep, tail = text.partition(name)
    if not sep:
        return text
    extra = " " * (len(name) - len("tensor("))
    tail = "\n".join(line[len(extra) :] if line.startswith(extra) else line for line in tail.split("\n"))
    return f"{head}tensor({tail}"
