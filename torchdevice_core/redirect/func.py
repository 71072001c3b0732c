"""``torch.func`` transforms (vmap, grad, jacrev, jacfwd, hessian, vjp, jvp, linearize...) on emulated tensors.

functorch wraps the inputs of a transformed function in C++ tensors of its own (batched, grad-tracking,
dual) that are plain ``torch.Tensor`` objects: the emulated class is lost on them, results come back plain
CPU tensors, and an emulated tensor the function closes over (a model's parameter) would meet the plain
wrappers and raise a device-mismatch error CUDA never raises.  So a transformed function called with
emulated tensors runs on the real tensors, and its outputs come back emulated, as they come back CUDA
tensors on CUDA (the ``torch.compile`` boundary again, ``real.py``).  Functions a transform returns
(``vjp``'s and ``linearize``'s) are wrapped the same way.  Under ``torch.compile`` the originals are used
untouched, so dynamo still recognises the transforms it traces.  ``functional_call`` is not a transform (it
swaps a module's parameters and calls it): it keeps running on the emulated tensors it is given, so other
tensor subclasses it is handed (ExpandedWeights' per-sample-gradient weights) keep their own dispatch.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
import torch.func as _func
from torch.utils._pytree import tree_map

from ..patching import Patch
from ..session import Redirection
from ..tensor import plain_alias
from .compiling import compiling, is_compiling
from .real import adopt, first_emulated, real_devices

# transforms that return a function to call later / that compute now
_MAKERS = ("vmap", "grad", "grad_and_value", "jacrev", "jacfwd", "hessian", "functionalize")
_NOW = ("vjp", "jvp", "linearize")


def _run_real(fn: Callable[..., Any], args: tuple, kwargs: dict, alias: bool = False) -> Any:
    """``fn`` on the real tensors when an input is emulated; returned tensors emulated, functions wrapped.

    ``alias``: hand ``fn`` plain (autograd-connected) aliases of emulated inputs: ``linearize`` traces with
    ``make_fx``, whose dispatch mode refuses tensor subclasses.
    """
    if compiling():
        return fn(*args, **kwargs)
    cls = first_emulated((args, kwargs))
    if cls is None:
        return fn(*args, **kwargs)
    if alias:
        args, kwargs = tree_map(lambda leaf: plain_alias(leaf) if isinstance(leaf, torch.Tensor) else leaf,
                                (args, kwargs))
    with real_devices():
        out = fn(*args, **kwargs)
    out = adopt(out, cls, (args, kwargs))
    return tree_map(lambda leaf: _later(leaf) if callable(leaf) and not isinstance(leaf, torch.Tensor) else leaf,
                    out)


def _later(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        return _run_real(fn, args, kwargs)

    return run


def _make_maker(orig: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(orig)
    def transform(*args: Any, **kwargs: Any) -> Any:
        inner = orig(*args, **kwargs)
        if is_compiling() or not callable(inner):
            return inner
        return _later(inner)

    return transform


def _make_now(orig: Callable[..., Any], name: str) -> Callable[..., Any]:
    @functools.wraps(orig)
    def transform(*args: Any, **kwargs: Any) -> Any:
        if is_compiling():
            return orig(*args, **kwargs)
        return _run_real(orig, args, kwargs, alias=name == "linearize")

    return transform


def patches(session: Redirection) -> list[Patch]:
    if not session.options.emulate_identity:
        return []
    why = "torch.func transforms of emulated tensors give emulated outputs"
    out = []
    for name in _MAKERS:
        out.append(Patch(_func, name, _make_maker(getattr(_func, name)), why))
    for name in _NOW:
        out.append(Patch(_func, name, _make_now(getattr(_func, name), name), why))
    # its own object: see Note [dynamo: one function object per patched name]
    out.append(Patch(torch, "vmap", _make_maker(torch.vmap), why))
    return out
