"""What an emulated tensor does instead of an op: ``EmulatedTensor.__torch_function__`` looks the torch
function up in ``active_state.HANDLERS`` and, when it is there, calls its handler instead of the op.

Handlers answer the identity questions in C (``device``, ``is_cuda``, ``get_device``), move (``to``,
``cuda``, ``cpu``, ``type``), refuse what CUDA refuses (``numpy``, ``pin_memory``), pickle and copy, and
give autograd's and the RNN kernels' plain results the emulated class.  Each takes ``(cls, func, args,
kwargs)``: the caller's emulated class, the torch function and its arguments.

The C methods' entries are fixed at import; the patched ``torch.Tensor`` methods of ``ROUTED_METHODS`` get
theirs while patched (``method_routes``: ``redirect/tensor_methods.py`` adds them to its patches).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch._C import DisableTorchFunctionSubclass as _Disable

from .active_state import ACTIVE, CHECKS, HANDLERS, SAVING, Handler
from .checks import check_devices
from .conversions import emulated_cuda, emulated_to, emulated_type, legacy_type_name
from .patching import ItemPatch
from .tensor import EmulatedTensor, adopt, plain_alias, promote, rebuild_emulated

_Tensor = torch.Tensor
_TensorBase = torch._C.TensorBase
_Parameter = torch.nn.Parameter

def _handles(*funcs: Any) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        for f in funcs:
            HANDLERS[f] = handler
        return handler

    return register


# Patched ``torch.Tensor`` methods that torch's C dispatch may hand to ``__torch_function__`` as themselves (it
# looks the method up on the class and finds the function inside the descriptor): while patched, each
# dispatches like the C method it replaces.
ROUTED_METHODS = ("to", "cuda", "type", "pin_memory", "is_pinned")


def method_routes(name: str, method: Any) -> list[ItemPatch]:
    """The handler-table entries patched Tensor method ``name`` needs (``method``: its ``PatchedMethod``)."""
    if name not in ROUTED_METHODS:
        return []
    handler = HANDLERS[getattr(_TensorBase, name)]
    why = f"Tensor.{name} handed to __torch_function__ as itself"
    return [ItemPatch(HANDLERS, key, handler, why) for key in (method, method.fn)]


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
    active = ACTIVE[0]
    if active is None or not active.mps_limits:
        with _Disable():
            return adopt(func(*args, **kwargs), cls._td_tensor_class, args)  # type: ignore[attr-defined]
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
    active = ACTIVE[0]
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
    if CHECKS[0] is not None:
        second = args[1] if len(args) > 1 else None
        packed = (type(second) is _Tensor and second.dtype == torch.int64 and second.dim() == 1)
        check_devices(tcls, func, (args[0], *args[2:]) if packed else args, kwargs or None)
    with _Disable():
        ret = func(*args, **kwargs)
    return adopt(ret, tcls, args)


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
