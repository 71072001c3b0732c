"""``torch.utils.checkpoint`` in both modes: the recomputation sees the tensors the forward saw.

Backward passes started from emulated tensors run with subclass ``__torch_function__`` disabled (the
``backward()`` / ``autograd.grad`` call itself is dispatched through the emulated class, and autograd runs
its graph under the state it was called with), and tensors saved for backward come back as plain aliases.
A checkpoint's recomputation would then run the user's function on plain tensors: the non-reentrant mode's
determinism check finds ``cuda:0`` saved and ``cpu`` recomputed and raises ``CheckpointError``, and in both
modes code that branches on ``x.is_cuda`` or builds ``device="cuda"`` tensors would take another path than
the forward did.  So the recomputation runs with ``__torch_function__`` enabled, on inputs given back the
emulated class they had when they were saved: the forward again, tensor for tensor.  Its determinism
check compares the device each tensor really lives on (tensors that autograd's saved-tensor hooks detach
come back plain, whatever they were in the forward).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.utils.checkpoint as _checkpoint

from ..patching import Patch
from ..session import Redirection
from ..tensor import EmulatedTensor, promote, real_device

_Frame = _checkpoint._CheckpointFrame
_Function = _checkpoint.CheckpointFunction
_CLASSES = "_td_input_classes"  # on a frame: the emulated class of each saved input (None for others)


def _metadata(x: torch.Tensor) -> dict[str, Any]:
    """What checkpoint's default determinism check compares, with the real device."""
    return {"shape": x.shape, "dtype": x.dtype, "device": real_device(x)}


def _make_save_inputs(orig: Callable[..., Any]) -> Callable[..., Any]:
    def save_inputs(self: Any, *args: Any) -> Any:
        self.__dict__[_CLASSES] = [a._td_tensor_class if isinstance(a, EmulatedTensor) else None for a in args]
        return orig(self, *args)

    return save_inputs


def _make_get_inputs(orig: Callable[..., Any]) -> Callable[..., Any]:
    def get_inputs(self: Any) -> Any:
        inputs = orig(self)
        classes = self.__dict__.get(_CLASSES)
        if classes:
            for value, cls in zip(inputs, classes, strict=False):
                if cls is not None and type(value) is torch.Tensor:
                    promote(value, cls)
        return inputs

    return get_inputs


def _subclasses_disabled() -> bool:
    """Only subclass dispatch is off (what a backward started through an emulated tensor runs under)."""
    return not torch._C._is_torch_function_enabled() and not torch._C._is_torch_function_all_disabled()


def _make_recompute(orig: Callable[..., Any]) -> Callable[..., Any]:
    def _run_fn_with_dynamo_disabled(fn: Any, *args: Any, **kwargs: Any) -> Any:
        if not _subclasses_disabled():
            return orig(fn, *args, **kwargs)
        with torch._C._EnableTorchFunction():
            return orig(fn, *args, **kwargs)

    return _run_fn_with_dynamo_disabled


def _make_backward(orig: Callable[..., Any]) -> Callable[..., Any]:
    def backward(ctx: Any, *args: Any) -> Any:
        # the reentrant mode recomputes inside its own backward: saved inputs are the very (emulated) objects
        if not _subclasses_disabled():
            return orig(ctx, *args)
        with torch._C._EnableTorchFunction():
            return orig(ctx, *args)

    return backward


def patches(session: Redirection) -> list[Patch]:
    if not session.options.emulate_identity:
        return []
    why = "checkpoint recomputation sees the emulated tensors the forward saw"
    checks = dict(_checkpoint._allowed_determinism_checks_to_fns)
    checks[_checkpoint._DEFAULT_DETERMINISM_MODE] = _metadata
    return [
        Patch(_checkpoint, "_allowed_determinism_checks_to_fns", checks, why),
        Patch(_Frame, "save_inputs", _make_save_inputs(vars(_Frame)["save_inputs"]), why),
        Patch(_Frame, "get_inputs", _make_get_inputs(vars(_Frame)["get_inputs"]), why),
        Patch(_checkpoint, "_run_fn_with_dynamo_disabled", _make_recompute(_checkpoint._run_fn_with_dynamo_disabled),
              why),
        # (a plain function in the class: ``CheckpointFunction.backward`` is looked up on the class, unbound)
        Patch(_Function, "backward", _make_backward(_Function.backward), why),
    ]
