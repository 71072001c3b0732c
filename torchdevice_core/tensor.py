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

This module holds the class, its hot ``__torch_function__`` and the primitives that give or take the class
(``promote``, ``adopt``, ``demote``, ``plain_alias``); the ops it hands off live in ``handlers.py`` (their
table is ``active_state.HANDLERS``), the device checks in ``checks.py``, ``.to``/``.cuda``/``.type`` in
``conversions.py``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch._C import DisableTorchFunctionSubclass as _Disable

from .active_state import ACTIVE, CHECKS, HANDLERS, IN_COMPILED, LEDGER, TARGET, WRAPPER_IDENTITY
from .gaps import target_gap as _target_gap
from .redirect.compiling import COMPILER as _COMPILER
from .redirect.compiling import compiled_method as _compiled_method
from .redirect.compiling import dynamo_compiling as _dynamo

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
_mode_enabled = torch._C._is_torch_function_mode_enabled
_device_getter = _TensorBase.device.__get__
_return_types = torch.return_types.max.__module__
# torch.Tensor's binary dunders (__pow__, __rsub__...) are Python wrappers that re-dispatch torch functions and
# turn TypeError into NotImplemented; inside dynamo's eager fallback that re-dispatch fails, so under
# compilation the C function they wrap is called directly.
_DUNDER_WRAPPER_CODE = getattr(torch.Tensor.__pow__, "__code__", None)
# (Below, ``IN_COMPILED[0] or _dynamo() or _COMPILER._is_compiling_flag`` is ``redirect.compiling.compiling()``
# written out: these run on every op and attribute read of an emulated tensor, where the call would cost ~50 ns.)

# Argument types that cannot put an op on another device (nothing in them is a tensor): an op whose arguments
# are all of these or of one virtual device's own classes needs no device check.  See Note [the hot path's
# shortcuts].
NO_CHECK_TYPES: frozenset[type] = frozenset({
    type(None), bool, int, float, complex, str, slice, type(Ellipsis), torch.dtype, torch.device, torch.layout,
    torch.memory_format, torch.Size,
})


class EmulatedTensor(torch.Tensor):
    """Base of the per-virtual-device classes; ``isinstance(x, EmulatedTensor)`` means "redirected"."""

    __slots__ = ()
    _td_device: ClassVar[torch.device]
    _td_index: ClassVar[int]
    _td_slot: ClassVar[int]  # the session's virtual device (== _td_index except mps under an auto source)
    _td_type: ClassVar[str]
    _td_tensor_class: ClassVar[type[EmulatedTensor]]
    _td_param_class: ClassVar[type[EmulatedTensor]]
    _td_own_types: ClassVar[frozenset[type]]  # {tensor class, parameter class}: one device's exact types
    _td_no_check_types: ClassVar[frozenset[type]]  # _td_own_types | NO_CHECK_TYPES
    _td_uninitialized_base: ClassVar[type | None] = None  # set on the lazy modules' twins (uninitialized.py)

    @property
    def device(self) -> torch.device:  # type: ignore[override]
        if IN_COMPILED[0] or _dynamo() or _COMPILER._is_compiling_flag:
            return TARGET[0] or real_device(self)
        return self._td_device

    @property
    def is_cuda(self) -> bool:  # type: ignore[override]
        # compiled code first: dynamo refuses to trace reads of the class attributes below
        if IN_COMPILED[0] or _dynamo() or _COMPILER._is_compiling_flag:
            return TARGET[0] is not None and TARGET[0].type == "cuda"
        return self._td_type == "cuda"

    @property
    def is_mps(self) -> bool:  # type: ignore[override]
        if IN_COMPILED[0] or _dynamo() or _COMPILER._is_compiling_flag:
            return TARGET[0] is not None and TARGET[0].type == "mps"
        return self._td_type == "mps"

    @property
    def is_cpu(self) -> bool:  # type: ignore[override]
        if IN_COMPILED[0] or _dynamo() or _COMPILER._is_compiling_flag:
            return (TARGET[0] or real_device(self)).type == "cpu"
        return False

    # ``.grad`` and ``.is_sparse`` are read dozens of times per optimizer step: as properties of the class
    # they cost a Python call instead of a __torch_function__ dispatch (~3 us each, measured)
    @property
    def grad(self) -> Any:
        # (torch's C helper, also while compiling: dynamo cannot trace into it and breaks the graph, where
        # reading the C getter itself would send it back to this property, endlessly)
        grad = _call_disabled(_grad_get, _NO_TYPES, (self,), _NO_KWARGS)
        if type(grad) is _Tensor and not (IN_COMPILED[0] or _dynamo() or _COMPILER._is_compiling_flag):
            # made by autograd in C++: give the very object its emulated class
            promote(grad, self._td_tensor_class)
        return grad

    @grad.setter
    def grad(self, value: Any) -> None:
        if CHECKS[0] is not None and (type(value) is _Tensor or type(value) is _Parameter) and not (
            IN_COMPILED[0] or _dynamo() or _COMPILER._is_compiling_flag
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
        if IN_COMPILED[0] or _dynamo() or _COMPILER._is_compiling_flag or _mode_enabled():
            return _Tensor.backward(self, gradient, retain_graph, create_graph, inputs)
        # (no device check: autograd's entry points take gradients of any device, mixing.AUTOGRAD)
        with _Disable():
            torch.autograd.backward(self, gradient, retain_graph, create_graph, inputs=inputs)
        return None

    backward.__doc__ = _Tensor.backward.__doc__

    def get_device(self) -> int:
        if IN_COMPILED[0] or _dynamo() or _COMPILER._is_compiling_flag:
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
        if IN_COMPILED[0] or _dynamo() or _COMPILER._is_compiling_flag:
            if getattr(func, "__code__", None) is _DUNDER_WRAPPER_CODE:
                func = func.__wrapped__
            method = getattr(func, "_td_method", None)
            if method is not None:  # one of our patched Tensor methods: the plain method, device sent to target
                return _compiled_method(method, args, kwargs or {})
            with _Disable():
                return func(*args, **(kwargs or {}))
        handler = HANDLERS.get(func)
        if handler is not None:
            return handler(cls, func, args, kwargs or {})
        tcls = cls._td_tensor_class
        # (one C-level pass over the argument types: an op on one device's tensors and plain values skips the
        # device check, and its plain result cannot be one of the arguments)
        simple = tcls._td_no_check_types.issuperset(map(type, args))
        if kwargs:
            dev = kwargs.get("device")
            if dev is not None:
                return _call_with_device(tcls, func, args, kwargs, dev)
            check = CHECKS[0]  # (checks.check_devices, None when device checks are off)
            if check is not None and not (simple and tcls._td_no_check_types.issuperset(map(type, kwargs.values()))):
                check(tcls, func, args, kwargs)
        else:
            kwargs = _NO_KWARGS
            if not simple:
                check = CHECKS[0]
                if check is not None:
                    check(tcls, func, args, None)
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
            if not simple:
                for a in args:
                    if a is ret:
                        return ret
            ledger = LEDGER[0]
            if ledger is not None:
                ledger.track(ret, tcls._td_slot)
            ret.__class__ = tcls
            return ret
        return adopt(ret, tcls, args)


class EmulatedParameterMixin:
    """Parameters keep their identity when a module moves: ``Module._apply`` swaps their class in place."""

    __slots__ = ()

    def __new__(cls, data: torch.Tensor | None = None, requires_grad: bool = True) -> Any:
        param = _Parameter(plain_alias(data) if data is not None else None, requires_grad)  # type: ignore[arg-type]
        param.__class__ = cls  # type: ignore[assignment]
        return param


_CLASSES: dict[tuple[str, int, int], type[EmulatedTensor]] = {}
# every class ``emulated_class`` made (tensor and parameter classes): ``type(x) in EXACT_TYPES`` is the exact
# test the hot paths use where ``isinstance(x, EmulatedTensor)`` would also admit subclasses of ours
EXACT_TYPES: set[type[EmulatedTensor]] = set()


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
    pcls: Any = type(f"{source.capitalize()}Parameter", (EmulatedParameterMixin, tcls, _Parameter), dict(attrs))
    tcls._td_tensor_class = pcls._td_tensor_class = tcls
    tcls._td_param_class = pcls._td_param_class = pcls
    tcls._td_own_types = pcls._td_own_types = frozenset({tcls, pcls})
    tcls._td_no_check_types = pcls._td_no_check_types = NO_CHECK_TYPES | {tcls, pcls}
    EXACT_TYPES.update((tcls, pcls))
    _CLASSES[(source, index, slot)] = tcls
    return tcls


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
    ledger = LEDGER[0]
    if ledger is not None:
        ledger.track(t, cls._td_slot)
    t.__class__ = cls
    return t


def demote(t: torch.Tensor) -> None:
    """Turn an emulated tensor (or parameter) back into a plain one, in place."""
    if isinstance(t, EmulatedTensor):
        t.__class__ = _Parameter if isinstance(t, EmulatedParameterMixin) else _Tensor  # type: ignore[assignment]


def adopt(ret: Any, cls: type[EmulatedTensor], args: tuple) -> Any:
    """Give the fresh plain tensors of an op's result (a tensor, a tuple or list of them) the class ``cls``;
    a result that is one of the arguments is left as it is."""
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
                adopt(item, cls, args)
    elif isinstance(ret, _Tensor) and not isinstance(ret, EmulatedTensor) and WRAPPER_IDENTITY[0] is not None:
        # a wrapper subclass computed with emulated tensors (its own __torch_dispatch__ ran with torch functions
        # off, so what it wraps is plain): it lives on the target, so it reports the emulated device
        WRAPPER_IDENTITY[0](ret, cls._td_slot)
    return ret


def rebuild_emulated(reduced: tuple, source: str, index: int, state: Any = None) -> torch.Tensor:
    """Unpickle an emulated tensor: emulated again while redirecting ``source``; else onto the real device
    (where torch raises its own error if the machine has none, as for a CUDA pickle)."""
    t: torch.Tensor = reduced[0](*reduced[1])
    active = ACTIVE[0]
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


def _call_with_device(cls: type[EmulatedTensor], func: Any, args: tuple, kwargs: dict, dev: Any) -> Any:
    """An op on an emulated tensor with an explicit ``device=`` (``new_zeros``, ``*_like``...)."""
    active = ACTIVE[0]
    index = active.resolve(dev) if active is not None else None
    if index is None:
        with _Disable():
            return func(*args, **kwargs)  # the result is wherever the caller asked: a plain tensor
    kwargs = dict(kwargs, device=active.target.device)  # type: ignore[union-attr]
    active.record.redirected(_api_name(func))  # type: ignore[union-attr]
    with _Disable():
        ret = func(*args, **kwargs)
    return adopt(ret, active.slot_class(index), args)  # type: ignore[union-attr]


def _api_name(func: Any) -> str:
    name = str(getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func))
    if name.startswith("TensorBase."):
        name = "Tensor." + name[len("TensorBase.") :]
    return name if "." in name else f"torch.{name}"


