"""Lazy modules: ``UninitializedParameter`` / ``UninitializedBuffer`` on the emulated device.

On CUDA, ``nn.LazyLinear(4).cuda()`` keeps its weight an ``UninitializedParameter`` that now says
``cuda:0``, and the first forward materializes it there (``materialize`` reads ``self.data.device``).
Moving an uninitialized tensor normally keeps its class, because torch's ``__torch_function__`` converts the
result of every allowed method back to it.  An emulated uninitialized tensor is an instance of a class that
derives from both the uninitialized class and the emulated one (one per virtual device and kind, named like
torch's, so ``repr`` and torch's own error messages read as on CUDA): torch's mixin still refuses every op
but the few it allows, those go on to the emulated ``__torch_function__`` (which reports ``cuda:0``), and
``materialize`` turns it into the emulated parameter/tensor class.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn.parameter import UninitializedBuffer, UninitializedParameter

from .tensor import EmulatedTensor

UninitializedTensorMixin: Any = vars(torch.nn.parameter)["UninitializedTensorMixin"]  # (not in torch's stubs)
_Tensor = torch.Tensor
_mixin_torch_function = UninitializedTensorMixin.__dict__["__torch_function__"].__func__
_CLASSES: dict[tuple[type, type], type] = {}


def emulated_uninitialized(base: type, tcls: type[EmulatedTensor]) -> type:
    """The emulated twin of ``base`` (UninitializedParameter or UninitializedBuffer) on ``tcls``'s device."""
    key = (base, tcls)
    cls = _CLASSES.get(key)
    if cls is not None:
        return cls
    is_param = base is UninitializedParameter
    emulated = tcls._td_param_class if is_param else tcls._td_tensor_class

    def __torch_function__(cls: type, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        # torch's mixin: refuse all but the allowed methods, then on to the emulated __torch_function__;
        # then what torch's own conversion does: the result is uninitialized again, wherever it now is
        ret = _mixin_torch_function(cls, func, types, args, kwargs)
        return convert(cls, ret, args)

    def __reduce_ex__(self: Any, proto: int) -> Any:
        # torch's own reduction, under torch's own name: no device (a pickled CUDA one comes back on the CPU)
        return (base, (self.requires_grad,))

    attrs = {
        "__module__": base.__module__,
        "__qualname__": base.__qualname__,
        "__torch_function__": classmethod(__torch_function__),
        "__reduce_ex__": __reduce_ex__,
        "cls_to_become": emulated,
        "_td_uninitialized_base": base,
    }
    cls = type(base.__name__, (base, emulated), attrs)
    _CLASSES[key] = cls
    return cls


def base_of(t: Any) -> type | None:
    """UninitializedParameter / UninitializedBuffer for torch's own uninitialized classes and their twins."""
    cls = type(t)
    base = getattr(cls, "_td_uninitialized_base", None)
    if base is not None:
        return base
    return cls if cls is UninitializedParameter or cls is UninitializedBuffer else None


def convert(owner: Any, out: Any, args: tuple = ()) -> Any:
    """Give ``out``, a result computed from an uninitialized tensor, the uninitialized class for where it is.

    ``owner`` is the uninitialized tensor or its class. Results that are one of ``args`` are left alone.
    """
    if not isinstance(out, _Tensor) or any(out is a for a in args):
        return out
    base = getattr(owner, "_td_uninitialized_base", None) or base_of(owner)
    if base is None:
        return out
    if isinstance(out, EmulatedTensor):
        wanted = emulated_uninitialized(base, out._td_tensor_class)
    elif type(out) is _Tensor or type(out) is torch.nn.Parameter:
        wanted = base
    else:
        return out
    if type(out) is not wanted:
        out.__class__ = wanted
    return out


def retype(obj: Any, result_type: type) -> bool:
    """``Module._apply`` moved uninitialized ``obj`` (``param.data = moved``): give it the class for where the
    data went. False when ``obj`` is not one of torch's uninitialized tensors."""
    base = base_of(obj)
    if base is None:
        return False
    if issubclass(result_type, EmulatedTensor):
        wanted = emulated_uninitialized(base, result_type._td_tensor_class)
    else:
        wanted = base
    if type(obj) is not wanted:
        obj.__class__ = wanted
    return True


def is_uninitialized(t: Any) -> bool:
    return isinstance(t, UninitializedTensorMixin)
