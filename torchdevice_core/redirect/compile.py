"""``torch.compile`` under redirection.

Inside a compiled region redirected tensors show their real device (see ``tensor.py`` and ``compiling.py``),
so dynamo and inductor compile for the device that really runs the code. Two things are adjusted at the
boundary: aot-autograd's first-call custom-op aliasing check (a debugging aid that refuses tensor subclasses)
is switched off while active; while a compiled callable runs, tensors are what they really are (its graphs
were traced with real devices, and backends that run the graph eagerly would otherwise meet factories that
baked in ``device="cpu"``); and outputs of a call that took emulated inputs (arguments or the compiled
module's parameters) are handed back as emulated tensors, as the eager call would return them.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import torch
from torch.utils._pytree import tree_flatten, tree_map

from ..active_state import IN_COMPILED
from ..patching import Patch
from ..session import Redirection
from ..tensor import EmulatedTensor, promote, real_device


def _first_emulated(args: Any, module: Any) -> type[EmulatedTensor] | None:
    for leaf in tree_flatten(args)[0]:
        if isinstance(leaf, EmulatedTensor):
            return leaf._td_tensor_class
    if isinstance(module, torch.nn.Module):
        for tensor in module.parameters():
            if isinstance(tensor, EmulatedTensor):
                return tensor._td_tensor_class
    return None


def _wrap_call(session: Redirection, call: Callable[..., Any], module: Any) -> Callable[..., Any]:
    target = session.target.device

    @functools.wraps(call)
    def run(*args: Any, **kwargs: Any) -> Any:
        IN_COMPILED[0] += 1
        try:
            out = call(*args, **kwargs)
        finally:
            IN_COMPILED[0] -= 1
        cls = _first_emulated((args, kwargs), module)
        if cls is None:
            return out
        inputs = {id(leaf) for leaf in tree_flatten((args, kwargs))[0]}

        def adopt(leaf: Any) -> Any:
            if type(leaf) is torch.Tensor and id(leaf) not in inputs and real_device(leaf) == target:
                promote(leaf, cls)
            return leaf

        return tree_map(adopt, out)

    return run


def _never_a_root_frame() -> None:
    """Dynamo may inline ``__torch_function__`` while tracing, but must not compile it as a frame of its own.

    Entered from code running between graphs, dynamo would compile it, break at its ``with`` block, and
    resume into it again, endlessly.
    """
    from torch._dynamo.eval_frame import skip_code

    from .overrides import handle_torch_function

    skip_code(EmulatedTensor.__torch_function__.__func__.__code__)  # type: ignore[attr-defined]
    skip_code(handle_torch_function.__code__)  # (it calls the one above)


def _make_compile(session: Redirection) -> Callable[..., Any]:
    orig = torch.compile

    def compile(model: Any = None, **kwargs: Any) -> Any:
        if model is None:
            return lambda fn: compile(fn, **kwargs)
        _never_a_root_frame()
        late = aliasing_check_patch()
        if late is not None:
            session.apply_late(late)
        compiled = orig(model, **kwargs)
        if not session.options.emulate_identity:
            return compiled
        if isinstance(compiled, torch.nn.Module):
            inner = compiled.__dict__.get("forward")
            if callable(inner):
                compiled.__dict__["forward"] = _wrap_call(session, inner, compiled)
            return compiled
        owner = getattr(model, "__self__", None)
        return _wrap_call(session, compiled, owner if isinstance(owner, torch.nn.Module) else None)

    compile.__doc__ = orig.__doc__
    compile.__wrapped__ = orig  # type: ignore[attr-defined]
    return compile


def aliasing_check_patch() -> Patch | None:
    """The patch that switches aot-autograd's custom-op aliasing check off; None when it is off already."""
    import torch._functorch.config as functorch_config

    if not getattr(functorch_config, "check_custom_op_aliasing", False):
        return None  # absent in this torch, or already off (by the user, or by us)
    return Patch(functorch_config, "check_custom_op_aliasing", False,
                 "aot-autograd's first-call aliasing check refuses tensor subclasses")


def patches(session: Redirection) -> list[Patch]:
    out = [Patch(torch, "compile", _make_compile(session), "hand compiled outputs back as emulated tensors")]
    # importing torch._functorch.config costs ~5 ms: done now only if something already did it, else on the
    # first torch.compile (which imports it anyway)
    if "torch._functorch.config" in sys.modules:
        late = aliasing_check_patch()
        if late is not None:
            out.append(late)
    return out
