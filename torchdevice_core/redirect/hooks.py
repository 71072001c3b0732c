"""Gradients that autograd hands to Python code are emulated, as they would be CUDA tensors on CUDA.

Autograd makes gradients in C++; for emulated tensors they come out plain (reporting the target).  Three
places hand them to user code: tensor hooks (``register_hook``, wrapped in ``handlers.py``), module backward
hooks, and the ``backward`` of a custom ``torch.autograd.Function``.  The last one matters beyond the device
it reports: ``return grad * saved`` with a plain ``grad`` and an emulated ``saved`` would raise CUDA's
device-mismatch error, which CUDA itself never raises there.

Custom Functions: ``Function.apply`` notes, on the autograd node it made (the ``ctx``), the emulated class of
each output; ``BackwardCFunction.apply`` (what the engine calls) gives each incoming gradient that class.

Module backward hooks (``register_full_backward_hook`` / ``..._pre_hook``):

torch's ``BackwardHook`` captures the gradients of a module's inputs and outputs with autograd ``Node``
hooks, which autograd calls with the plain tensors it made in C++.  On CUDA those say ``cuda:0``, and tests
assert on them (``grad_output[0].device``).  ``setup_input_hook`` / ``setup_output_hook`` see the tensors
themselves: their emulated classes are recorded there, and ``_pack_with_none`` (which builds the tuples the
user hooks receive, for inputs and for outputs) gives each gradient the class of its tensor.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch
from torch.utils.hooks import BackwardHook

from ..patching import Patch
from ..session import Redirection
from ..tensor import EmulatedTensor, promote
from .compiling import compiling

_plain = torch.Tensor


def _classes(args: Any) -> tuple[Any, ...]:
    items = args if isinstance(args, tuple) else (args,)
    return tuple(type(a)._td_tensor_class if isinstance(a, EmulatedTensor) else None for a in items)


def _make_setup(name: str, slot: str) -> Callable[..., Any]:
    orig = getattr(BackwardHook, name)

    def setup(self: BackwardHook, args: Any) -> Any:
        classes = _classes(args)
        if any(c is not None for c in classes):
            setattr(self, slot, classes)
        return orig(self, args)

    setup.__name__ = setup.__qualname__ = name
    setup.__wrapped__ = orig  # type: ignore[attr-defined]
    return setup


def _make_pack() -> Callable[..., Any]:
    orig = BackwardHook._pack_with_none

    def _pack_with_none(self: BackwardHook, indices: Any, values: Any, size: int) -> Any:
        res = orig(self, indices, values, size)
        state = vars(self)
        if indices is state.get("input_tensors_index"):
            classes = state.get("_td_inputs")
        elif indices is state.get("output_tensors_index"):
            classes = state.get("_td_outputs")
        else:
            return res
        if classes:
            for value, cls in zip(res, classes, strict=False):
                if cls is not None and type(value) is torch.Tensor:
                    promote(value, cls)
        return res

    _pack_with_none.__wrapped__ = orig  # type: ignore[attr-defined]
    return _pack_with_none


def _output_classes(out: Any) -> tuple[tuple[Any, ...], Any] | None:
    items = out if isinstance(out, tuple) else (out,)
    classes: list[Any] = []
    node = None
    for o in items:
        if isinstance(o, EmulatedTensor):
            classes.append(type(o)._td_tensor_class)
            if node is None:
                node = o.grad_fn
        else:
            classes.append(None)
    if node is None:
        return None
    return tuple(classes), node


def _make_function_apply() -> Any:
    descriptor = torch.autograd.Function.__dict__["apply"]
    orig = getattr(descriptor, "__func__", None)  # torch <= 2.13: a classmethod of a Python function
    if orig is None:  # torch 2.14: a C classmethod_descriptor, which has no __func__

        def orig(cls: Any, *args: Any, **kwargs: Any) -> Any:
            return descriptor.__get__(None, cls)(*args, **kwargs)

    def apply(cls: Any, *args: Any, **kwargs: Any) -> Any:
        out = orig(cls, *args, **kwargs)
        if compiling():
            return out
        found = _output_classes(out)
        if found is not None:
            classes, node = found
            with contextlib.suppress(AttributeError, TypeError):  # (functorch's custom_function_call: no node)
                node._td_grad_classes = classes
        return out

    apply.__wrapped__ = orig  # type: ignore[attr-defined]
    return classmethod(apply)


def _promote_grads(grads: Any, classes: tuple[Any, ...]) -> None:
    for grad, cls in zip(grads, classes, strict=False):
        if cls is not None and type(grad) is _plain:
            promote(grad, cls)


def _make_backward_apply(name: str) -> Any:
    orig = getattr(torch.autograd.function.BackwardCFunction, name)

    def apply(self: Any, *args: Any) -> Any:
        classes = getattr(self, "_td_grad_classes", None)
        if classes is not None:
            if len(args) == 1 and type(args[0]) is list:  # boxed_grads_call: one mutable list of grads
                _promote_grads(args[0], classes)
            else:
                _promote_grads(args, classes)
        return orig(self, *args)

    apply.__name__ = apply.__qualname__ = name
    apply.__wrapped__ = orig  # type: ignore[attr-defined]
    return apply


def patches(session: Redirection) -> list[Patch]:
    if not session.options.emulate_identity:
        return []
    why = "module backward hooks see emulated gradients"
    node = torch.autograd.function.BackwardCFunction
    fwhy = "custom autograd.Function backward sees emulated gradients"
    return [
        Patch(torch.autograd.Function, "apply", _make_function_apply(), fwhy),
        Patch(node, "apply", _make_backward_apply("apply"), fwhy),
        Patch(node, "apply_boxed", _make_backward_apply("apply_boxed"), fwhy),
        Patch(BackwardHook, "setup_input_hook", _make_setup("setup_input_hook", "_td_inputs"), why),
        Patch(BackwardHook, "setup_output_hook", _make_setup("setup_output_hook", "_td_outputs"), why),
        Patch(BackwardHook, "_pack_with_none", _make_pack(), why),
    ]
