"""``nn.Module.to("cuda")`` / ``.cuda()`` / ``.cpu()`` keep parameter identity, as on CUDA.

``Module._apply`` moves a parameter with ``param.data = moved`` so optimizers built before ``.cuda()`` keep
working; the moved data is right but the Parameter object keeps its old class.  The patched ``_apply``
watches what the conversion function returned for each parameter (and gradient) and gives the very same
object the matching class: emulated when it moved onto the virtual device, plain when it left it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..patching import Patch
from ..session import Redirection
from ..tensor import EmulatedTensor, demote

_Module = torch.nn.Module


def _retype(obj: torch.Tensor, result_type: type) -> None:
    """Give ``obj`` (a parameter or a grad) the class the conversion gave its data."""
    if issubclass(result_type, EmulatedTensor):
        wanted = result_type._td_param_class if isinstance(obj, torch.nn.Parameter) else result_type._td_tensor_class
        if type(obj) is not wanted:
            obj.__class__ = wanted
    elif isinstance(obj, EmulatedTensor):
        demote(obj)


def _make_apply(session: Redirection) -> Callable[..., Any]:
    orig = _Module._apply

    def _apply(self: torch.nn.Module, fn: Callable[..., Any], recurse: bool = True) -> Any:
        seen: dict[int, type] | None = getattr(fn, "_td_seen", None)
        if seen is None:
            seen = {}
            inner = fn

            def tracking(t: Any) -> Any:
                out = inner(t)
                if isinstance(t, torch.Tensor):
                    seen[id(t)] = type(out)
                return out

            tracking._td_seen = seen  # type: ignore[attr-defined]
            fn = tracking
        before = dict(self._parameters)
        grads = {k: p.grad for k, p in before.items() if p is not None}
        result = orig(self, fn, recurse)
        for key, param in self._parameters.items():
            old = before.get(key)
            if param is None or old is None or id(old) not in seen:
                continue
            _retype(param, seen[id(old)])
            grad = grads.get(key)
            if grad is not None and param.grad is grad and id(grad) in seen:
                _retype(grad, seen[id(grad)])
        return result

    return _apply


def patches(session: Redirection) -> list[Patch]:
    if not session.options.emulate_identity:
        return []
    return [Patch(_Module, "_apply", _make_apply(session), "keep parameter identity across Module.to/cuda/cpu")]
