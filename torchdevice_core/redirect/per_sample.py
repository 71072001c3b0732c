"""Per-sample gradients through ``torch.nn.utils._per_sample_grad.call_for_per_sample_grads`` (ExpandedWeights,
what differential-privacy libraries build on) for emulated parameters.

An ``ExpandedWeight`` is a tensor subclass whose ``__torch_function__`` routes ``F.linear``, convolutions,
embeddings and norms to autograd functions that record per-sample gradients.  Beside an emulated input it
would never be asked: the input's class comes first in torch's dispatch order, and the op ran without the
per-sample hooks (no ``grad_sample``).  So an ExpandedWeight of an emulated parameter gets a class derived
from both ``ExpandedWeight`` and the parameter's emulated class: a subclass is asked before its base, so
ExpandedWeights handle the op as they do natively, and the weight still reports the parameter's device.  The
per-sample gradients they compute (in backward, on plain tensors) get the parameter's emulated class, as on
CUDA they are CUDA tensors.

``call_for_per_sample_grads`` hands its ExpandedWeights to ``torch.func.functional_call``; that is where they
are given the class.  (Importing the ExpandedWeights package costs ~15 ms, so nothing is done at activation:
its patch is applied the first time such a weight is seen.)
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import torch
import torch.func as _func

from ..patching import Patch
from ..session import Redirection
from ..tensor import EmulatedTensor, promote

_IMPL = "torch.nn.utils._expanded_weights.expanded_weights_impl"
_CLASSES: dict[type, type] = {}


def _expanded_class(expanded_weight: type, cls: type[EmulatedTensor]) -> type:
    """``ExpandedWeight`` first (its ``__torch_function__``, ``device``...), then the emulated class."""
    combined = _CLASSES.get(cls)
    if combined is None:
        combined = type(f"Expanded{cls.__name__}", (expanded_weight, cls), {"__module__": __name__})
        _CLASSES[cls] = combined
    return combined


def _make_scale(orig: Callable[..., Any]) -> Callable[..., Any]:
    def maybe_scale_by_batch_size(grad_sample: Any, expanded_weight: Any) -> Any:
        out = orig(grad_sample, expanded_weight)
        weight = getattr(expanded_weight, "orig_weight", None)
        if isinstance(weight, EmulatedTensor) and type(out) is torch.Tensor:
            promote(out, weight._td_tensor_class)
        return out

    return maybe_scale_by_batch_size


def _make_functional_call(session: Redirection, orig: Callable[..., Any]) -> Callable[..., Any]:
    patched: list[bool] = []

    @functools.wraps(orig)
    def functional_call(module: Any, parameter_and_buffer_dicts: Any, *args: Any, **kwargs: Any) -> Any:
        impl = sys.modules.get(_IMPL)
        if impl is not None:
            dicts = parameter_and_buffer_dicts
            for params in (dicts if isinstance(dicts, (list, tuple)) else (dicts,)):
                for value in params.values() if isinstance(params, dict) else ():
                    weight = getattr(value, "orig_weight", None)
                    if type(value) is impl.ExpandedWeight and isinstance(weight, EmulatedTensor):
                        if not patched:
                            _late_patch(session)
                            patched.append(True)
                        value.__class__ = _expanded_class(impl.ExpandedWeight, weight._td_tensor_class)
        return orig(module, parameter_and_buffer_dicts, *args, **kwargs)

    return functional_call


def _late_patch(session: Redirection) -> None:
    from torch.nn.utils._expanded_weights import expanded_weights_utils as utils

    session.apply_late(Patch(utils, "maybe_scale_by_batch_size", _make_scale(utils.maybe_scale_by_batch_size),
                             "per-sample gradients of emulated parameters are emulated"))


def patches(session: Redirection) -> list[Patch]:
    if not session.options.emulate_identity:
        return []
    return [Patch(_func, "functional_call", _make_functional_call(session, _func.functional_call),
                  "ExpandedWeights of emulated parameters dispatch before the emulated input")]
