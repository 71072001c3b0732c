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
from ..tensor import EmulatedParameterMixin, EmulatedTensor, demote
from ..uninitialized import retype as retype_uninitialized

_Module = torch.nn.Module


def _retype(obj: torch.Tensor, result_type: type) -> None:
    """Give ``obj`` (a parameter or a grad) the class the conversion gave its data."""
    if type(obj) is not torch.nn.Parameter and retype_uninitialized(obj, result_type):
        return
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


def _make_to(session: Redirection) -> Callable[..., Any]:
    orig = _Module.to

    def to(self: torch.nn.Module, *args: Any, **kwargs: Any) -> Any:
        # ``self.to(train_X)``: torch parses the tensor's real device (the target); CUDA moves the module onto
        # the tensor's device and dtype, and so does this
        if args and isinstance(args[0], EmulatedTensor):
            args = (args[0].device, args[0].dtype, *args[1:])
        elif isinstance(kwargs.get("tensor"), EmulatedTensor):
            kwargs = dict(kwargs)
            other = kwargs.pop("tensor")
            args = (other.device, other.dtype, *args)
        return orig(self, *args, **kwargs)

    to.__doc__ = orig.__doc__
    to.__wrapped__ = orig  # type: ignore[attr-defined]
    return to


def _make_parameter_new() -> Callable[..., Any]:
    orig = vars(torch.nn.Parameter)["__new__"]
    make_subclass = torch.Tensor._make_subclass
    disabled = torch._C.DisableTorchFunctionSubclass

    def __new__(cls: type, data: Any = None, requires_grad: bool = True) -> Any:
        # ``Parameter(p)`` of an emulated parameter (parametrizations re-wrap the original weight): a real CUDA
        # parameter takes torch's ``_make_subclass`` path, a new Parameter on the same data; so does this
        if cls is torch.nn.Parameter and isinstance(data, EmulatedParameterMixin):
            with disabled():
                param = make_subclass(cls, data, requires_grad)  # type: ignore[arg-type]
            param.__class__ = type(data)._td_param_class  # type: ignore[attr-defined]
            return param
        return orig(cls, data, requires_grad)

    __new__.__wrapped__ = orig  # type: ignore[attr-defined]
    return __new__


def patches(session: Redirection) -> list[Patch]:
    if not session.options.emulate_identity:
        return []
    return [Patch(_Module, "_apply", _make_apply(session), "keep parameter identity across Module.to/cuda/cpu"),
            Patch(_Module, "to", _make_to(session), "Module.to(tensor) of an emulated tensor"),
            Patch(torch.nn.Parameter, "__new__", staticmethod(_make_parameter_new()),
                  "nn.Parameter(p) of an emulated parameter")]
