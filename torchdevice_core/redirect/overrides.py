"""torch's Python ``handle_torch_function``, short-cut for emulated tensors, in the modules of Python functionals.

``F.relu``, ``F.cross_entropy`` and the other Python-level functions of ``torch.nn.functional``,
``torch.functional`` and ``torch._tensor`` reach a tensor subclass's ``__torch_function__`` through
``torch.overrides.handle_torch_function``, which sorts the overloaded arguments in Python
(``_get_overloaded_args``) before it calls the first of them: ~2 us per call on a training step's
``F.relu`` and ``F.cross_entropy``.  Where the answer is known without sorting (every tensor argument is an
emulated tensor of one virtual device, a plain tensor or None; no TorchFunctionMode; not compiling) this calls
that device's ``__torch_function__`` directly, as torch would have; everything else goes to torch's function.
See Note [the hot path's shortcuts].
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import torch
import torch.overrides as _overrides

from ..active_state import IN_COMPILED
from ..patching import Patch
from ..session import Redirection
from ..tensor import EXACT_TYPES, EmulatedTensor
from .compiling import COMPILER, dynamo_compiling

# the modules whose functions call ``handle_torch_function`` by its module-level name
CALLERS = ("torch.nn.functional", "torch.functional", "torch._tensor")

_original: Callable[..., Any] = _overrides.handle_torch_function
_torch_function: Callable[..., Any] = EmulatedTensor.__torch_function__.__func__  # type: ignore[attr-defined]
_mode_enabled = torch._C._is_torch_function_mode_enabled
_enabled = torch._C._is_torch_function_enabled
# what may stand beside emulated tensors without changing whose __torch_function__ torch calls first: a plain
# Tensor sorts after every subclass of it, a Parameter and None are not overloaded at all
_BYSTANDERS = frozenset({torch.Tensor, torch.nn.Parameter, type(None)})


def handle_torch_function(public_api: Callable[..., Any], relevant_args: Any, *args: Any, **kwargs: Any) -> Any:
    rtype = type(relevant_args)
    if (rtype is tuple or rtype is list) and not (IN_COMPILED[0] or dynamo_compiling() or
                                                    COMPILER._is_compiling_flag or _mode_enabled()) and _enabled():
        types = set(map(type, relevant_args))
        own = types & EXACT_TYPES
        if own and types - own <= _BYSTANDERS:
            cls: Any = own.pop()
            if not own or own <= cls._td_own_types:  # one virtual device (its tensors, its parameters)
                return _torch_function(cls, public_api, (cls,), args, kwargs)
    return _original(public_api, relevant_args, *args, **kwargs)


handle_torch_function.__doc__ = _original.__doc__
handle_torch_function.__wrapped__ = _original  # type: ignore[attr-defined]


def patches(session: Redirection) -> list[Patch]:
    if not session.options.emulate_identity or session.native:
        return []
    out = []
    for name in CALLERS:
        module = importlib.import_module(name)
        if vars(module).get("handle_torch_function") is _original:
            out.append(Patch(module, "handle_torch_function", handle_torch_function,
                             "emulated tensors' __torch_function__ without torch's Python argument sort"))
    return out
