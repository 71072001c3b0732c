"""Patched code that runs inside ``torch.compile``: the one test for it, and the calls it makes there.

While dynamo traces, or a compiled callable runs (``active_state.IN_COMPILED``, counted by
``redirect/compile.py``), redirected tensors show their real device and patched entry points hand their
device argument to the target and do nothing else (no class changes, no record: dynamo refuses
``__class__`` assignment and cannot trace our bookkeeping).
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import torch
from torch._C import DisableTorchFunctionSubclass as _Disable

from ..active_state import ACTIVE, IN_COMPILED

is_compiling = torch.compiler.is_compiling

# ``torch.compiler.is_compiling()`` is ``dynamo_compiling() or COMPILER._is_compiling_flag`` in two calls fewer:
# dynamo folds ``is_dynamo_compiling()`` to True while it traces (one of its "tracing state" functions, like
# ``is_compiling``) and it is a plain ``return False`` in eager code; the flag is what torch.export (strict or
# not) and a compile session set.  Dynamo's call comes first, so tracing never reads (and guards on) the flag.
dynamo_compiling: Callable[[], bool] = getattr(torch.compiler, "is_dynamo_compiling", is_compiling)
COMPILER: Any = torch.compiler if hasattr(torch.compiler, "_is_compiling_flag") else types.SimpleNamespace(
    _is_compiling_flag=False)


def compiling() -> bool:
    """Is compiled code running (or being traced) now?

    The hottest paths (``EmulatedTensor``'s properties and ``__torch_function__``, the factories) write the
    same expression out, ``IN_COMPILED[0] or dynamo_compiling() or COMPILER._is_compiling_flag``: a call
    costs them ~50 ns each time, ``torch.compiler.is_compiling()`` ~140 ns (measured, torch 2.13).
    """
    return bool(IN_COMPILED[0] or dynamo_compiling() or COMPILER._is_compiling_flag)


def target_device_args(args: tuple, kwargs: dict, positional: bool = True) -> tuple[tuple, dict]:
    """``(self, "cuda", ...)`` / ``device="cuda"`` with the source device replaced by the target.

    ``positional=False``: only ``device=`` names a device (``x.new_zeros(50)``: 50 is a size, not an ordinal).
    """
    active = ACTIVE[0]
    if active is not None:
        dev = kwargs.get("device")
        if dev is not None:
            if active.resolve(dev) is not None:
                kwargs = dict(kwargs, device=active.target.device)
        elif (positional and len(args) > 1 and isinstance(args[1], (str, torch.device, int))
              and active.resolve(args[1]) is not None):
            args = (args[0], active.target.device, *args[2:])
    return args, kwargs


def compiled_method(name: str, args: tuple, kwargs: dict) -> Any:
    """A patched Tensor method traced by dynamo: called as a plain tensor method (a builtin dynamo knows)."""
    if name == "cuda":
        active = ACTIVE[0]
        name, args = "to", (args[0], active.target.device if active is not None else "cuda")
        kwargs = {k: v for k, v in kwargs.items() if k in ("non_blocking", "memory_format")}
    elif name == "pin_memory":
        name, args, kwargs = "clone", args[:1], {}
    args, kwargs = target_device_args(args, kwargs, positional=name == "to")
    with _Disable():
        return getattr(args[0], name)(*args[1:], **kwargs)


def compiled_call(orig: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A patched entry point inside compiled code: the original, with a source-device argument sent to the
    target and nothing else (no class changes, no record: dynamo traces this, and refuses ``__class__``).
    Only ``Tensor.to`` takes a device positionally; the ``new_*`` methods' positional arguments are sizes."""
    args, kwargs = target_device_args(args, kwargs, positional=getattr(orig, "__name__", "") == "to")
    return orig(*args, **kwargs)
