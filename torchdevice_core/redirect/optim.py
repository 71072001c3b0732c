"""Optimizers and grad clipping take the path they take on CUDA for emulated parameters, at near-native cost.

``torch.optim`` defaults to its multi-tensor ``foreach`` kernels only for parameters whose exact type is in
``_foreach_supported_types`` (DTensor adds itself there the same way); otherwise it falls back to a
per-parameter loop.  Listing the emulated classes keeps the CUDA code path, and its speed.

The update kernels themselves (``torch.optim.adam._multi_tensor_adam`` and the other ``_multi_tensor_*``,
``_single_tensor_*`` and ``_fused_*`` functions of torch's optimizers) run with subclass dispatch off when
every tensor they are given is on one emulated device: their arithmetic is in place on the parameters and
the state, so each op would only hand the class back to the object it already has (Adam's foreach kernel is
7 dispatches per step).  A tensor the kernel stores into one of its list arguments (SGD's first momentum
buffers) is given the class afterwards, as the dispatch would have.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Iterator
from operator import is_not
from typing import Any

import torch
import torch.optim.optimizer as _optimizer
import torch.utils._foreach_utils as _foreach_utils
from torch._C import DisableTorchFunctionSubclass as _Disable

from ..gaps import target_gap
from ..patching import Patch
from ..session import Redirection
from ..tensor import EXACT_TYPES, EmulatedTensor, promote
from .compiling import compiling

_Tensor = torch.Tensor
_Parameter = torch.nn.Parameter
_enabled = torch._C._is_torch_function_enabled
# torch.optim modules whose update kernels are module-level functions looked up at each step
_KERNEL_MODULES = ("adadelta", "adagrad", "adam", "adamax", "asgd", "nadam", "radam", "rmsprop", "rprop", "sgd",
                   "_adafactor")
_KERNEL_PREFIXES = ("_multi_tensor_", "_single_tensor_", "_fused_")
_PLAIN_TENSORS = frozenset({_Tensor, _Parameter})


def _one_device(types: set[type], args: tuple, kwargs: dict) -> type[EmulatedTensor] | None:
    """The emulated class every tensor argument has (0-dim plain tensors allowed: Adam's CPU ``step``, as on
    CUDA), or None: then the kernel dispatches as usual (and mixed devices raise as they do there).

    ``types`` holds the type of every argument and of every item of a list or tuple argument."""
    own = types & EXACT_TYPES
    if not own:
        return None
    cls: Any = own.pop()
    cls = cls._td_tensor_class
    rest = types - cls._td_no_check_types
    if not rest:
        return cls  # (the common case: set operations, no loop in Python)
    if not rest <= _PLAIN_TENSORS:
        return None  # another device, or another subclass: its own dispatch decides
    # plain tensors: only 0-dim ones (a CPU scalar is a valid operand on CUDA too)
    return cls if all(map(_scalar_or_emulated, _tensors(args, kwargs))) else None


def _tensors(args: tuple, kwargs: dict) -> Iterator[Any]:
    for a in (*args, *kwargs.values()):
        if type(a) is list or type(a) is tuple:
            yield from a
        else:
            yield a


def _scalar_or_emulated(t: Any) -> bool:
    return not (type(t) is _Tensor or type(t) is _Parameter) or t.dim() == 0


def undispatched(kernel: Callable[..., Any]) -> Callable[..., Any]:
    """``kernel`` run with subclass dispatch off where its tensors are on one emulated device."""
    # See Note [optimizer kernels without dispatch]
    def run(*args: Any, **kwargs: Any) -> Any:
        if compiling():
            return kernel(*args, **kwargs)
        # the types of every argument and list item, and the lists as they are before the kernel, in one pass
        types = set(map(type, kwargs.values()))
        lists = []
        for a in args:
            ta = type(a)
            if ta is list:
                types.update(map(type, a))  # (C-level loops: a step passes dozens of tensors)
                lists.append((a, a[:]))
            elif ta is tuple:
                types.update(map(type, a))
            else:
                types.add(ta)
        cls = _one_device(types, args, kwargs)
        if cls is None:
            return kernel(*args, **kwargs)
        try:
            with _Disable():
                out = kernel(*args, **kwargs)
        except (NotImplementedError, RuntimeError) as exc:
            gap = target_gap(exc)
            if gap is None:
                raise
            raise gap from exc
        for now, before in lists:  # what the kernel stored there was made from emulated tensors: emulated
            if len(now) != len(before) or any(map(is_not, now, before)):
                for i, t in enumerate(now):
                    if type(t) is _Tensor and (i >= len(before) or t is not before[i]):
                        promote(t, cls)
        return out

    run.__name__ = run.__qualname__ = kernel.__name__
    run.__doc__ = kernel.__doc__
    run.__wrapped__ = kernel  # type: ignore[attr-defined]
    return run


@functools.cache
def kernel_targets() -> tuple[tuple[Any, str], ...]:
    """(module, name) of every update kernel of torch's optimizers (found once per process, before any patch)."""
    out = []
    for name in _KERNEL_MODULES:
        try:
            module = importlib.import_module(f"torch.optim.{name}")
        except ImportError:  # (a torch without this optimizer)
            continue
        for attr, value in vars(module).items():
            if attr.startswith(_KERNEL_PREFIXES) and callable(value) and getattr(value, "__module__", "") == \
                    module.__name__:
                out.append((module, attr))
    return tuple(out)


# Where torch's foreach code groups tensors by device: the helper itself and the modules that imported it by name.
_GROUPING_MODULES = ("torch.utils._foreach_utils", "torch.optim.optimizer", "torch.nn.utils.clip_grad",
                     "torch.optim.swa_utils")


def _slot_of(t: Any) -> int:
    return t._td_slot if isinstance(t, EmulatedTensor) else -1


def split_by_emulated_device(group: Callable[..., Any]) -> Callable[..., Any]:
    """``_group_tensors_by_device_and_dtype`` that tells two emulated devices apart.

    torch groups by the real device, where every emulated device is the one target: parameters on ``cuda:0``
    and ``cuda:1`` of one optimizer came back as one group, and so did an emulated ``cuda`` parameter and a real
    CPU one, and the foreach kernel then mixed two devices (a device-mismatch error CUDA never raises: there
    each device is a group of its own).  A group whose tensors are on several devices (emulated ones, or
    emulated and real) is split into one group per device, keyed by that device as on CUDA; a group on one
    device is returned as torch made it.
    """

    def _group_tensors_by_device_and_dtype(tensorlistlist: Any, with_indices: bool = False) -> Any:
        grouped = group(tensorlistlist, with_indices)
        # (subclass dispatch off: an optimizer kernel ``undispatched`` found on one device, the every-step case,
        # where torch's grouping is already per device)
        if compiling() or not _enabled():
            return grouped
        out: dict[Any, Any] = {}
        for key, (lists, indices) in grouped.items():
            first = lists[0] if lists else []
            by_slot: dict[int, list[int]] = {}
            if len(set(map(type, first))) > 1:  # (one type: one device, the common case, without a loop)
                for i, t in enumerate(first):
                    by_slot.setdefault(_slot_of(t), []).append(i)
            if len(by_slot) < 2:
                out[key] = (lists, indices)
                continue
            for slot, where in by_slot.items():
                device = first[where[0]]._td_device if slot >= 0 else key[0]
                part = [[lst[i] for i in where] if len(lst) == len(first) else lst for lst in lists]  # ([]: none)
                out[(device, key[1])] = (part, [indices[i] for i in where] if len(indices) == len(first) else indices)
        return out

    _group_tensors_by_device_and_dtype.__doc__ = group.__doc__
    _group_tensors_by_device_and_dtype.__wrapped__ = group  # type: ignore[attr-defined]
    return _group_tensors_by_device_and_dtype


def patches(session: Redirection) -> list[Patch]:
    out: list[Patch] = []
    if session.options.emulate_identity and not session.native:
        for name in _GROUPING_MODULES:
            module = importlib.import_module(name)
            original = vars(module).get("_group_tensors_by_device_and_dtype")
            if original is not None:
                out.append(Patch(module, "_group_tensors_by_device_and_dtype", split_by_emulated_device(original),
                                 "foreach groups per device, as on CUDA (emulated devices share the real one)"))
    if not session.options.emulate_identity:
        return out
    classes = []
    for slot in range(len(session.slots)):
        cls = session.slot_class(slot, count=False)
        classes += [cls, cls._td_param_class]
    out += [
        Patch(_optimizer, "_foreach_supported_types", [*_optimizer._foreach_supported_types, *classes],
              "foreach optimizers for emulated parameters"),
        Patch(_foreach_utils, "_foreach_supported_types", [*_foreach_utils._foreach_supported_types, *classes],
              "foreach grad clipping for emulated tensors"),
    ]
    for module, name in kernel_targets():
        out.append(Patch(module, name, undispatched(getattr(module, name)),
                         "optimizer kernels on one emulated device run without subclass dispatch"))
    return out
