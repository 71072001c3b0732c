"""``torch.export`` under redirection: export, run and save/load programs of emulated models.

Exporting traces fake copies of the inputs and parameters; those are made from the real device (see
``fake.py``), so the program is traced for what really runs, and its state dict holds the module's own
(emulated) parameters, as an export on CUDA holds CUDA ones.  Factories inside the traced code bake the real
device into the graph (``aten.ones(..., device=cpu)``), so the module ``ExportedProgram.module()`` returns runs,
when it is given emulated tensors, on the real tensors, and its outputs come back emulated: the
``torch.compile`` boundary again (``real.py``).  Two module hooks mark that boundary (a forward pre-hook and
an always-called forward hook), so the module stays a plain ``GraphModule``: ``recompile()``, deepcopy and
pickling behave as without this library.  Programs exported from plain tensors (no emulated input, parameter,
buffer or constant) are left exactly as torch makes them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.export.exported_program import ExportedProgram

from ..active_state import IN_COMPILED
from ..patching import Patch
from ..session import Redirection
from .compiling import is_compiling
from .real import adopt, first_emulated

_MARK = "_td_emulated"  # set on programs exported from emulated inputs
_RUNNING: list[Any] = []  # one entry per running hooked module call: the class to adopt, or None


def _enter(module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
    if is_compiling():
        return
    cls = None if IN_COMPILED[0] else first_emulated((args, kwargs), module)
    _RUNNING.append(cls)
    if cls is not None:
        IN_COMPILED[0] += 1


def _leave(module: torch.nn.Module, args: tuple, kwargs: dict, output: Any) -> Any:
    if is_compiling() or not _RUNNING:
        return None
    cls = _RUNNING.pop()
    if cls is None:
        return None
    IN_COMPILED[0] -= 1
    return adopt(output, cls, (args, kwargs)) if output is not None else None


def _hook(gm: torch.nn.Module) -> None:
    gm.register_forward_pre_hook(_enter, prepend=True, with_kwargs=True)
    gm.register_forward_hook(_leave, with_kwargs=True, always_call=True)


def _make_export(orig: Callable[..., Any]) -> Callable[..., Any]:
    def export(mod: Any, args: Any, kwargs: Any = None, *rest: Any, **options: Any) -> Any:
        ep = orig(mod, args, kwargs, *rest, **options)
        if isinstance(ep, ExportedProgram) and first_emulated((args, kwargs), mod) is not None:
            ep.__dict__[_MARK] = True
        return ep

    export.__wrapped__ = orig  # type: ignore[attr-defined]
    export.__doc__ = orig.__doc__
    export.__name__ = export.__qualname__ = orig.__name__
    return export


def _make_decompositions(orig: Callable[..., Any]) -> Callable[..., Any]:
    def run_decompositions(self: ExportedProgram, *args: Any, **kwargs: Any) -> Any:
        ep = orig(self, *args, **kwargs)
        if self.__dict__.get(_MARK) and isinstance(ep, ExportedProgram):
            ep.__dict__[_MARK] = True
        return ep

    run_decompositions.__wrapped__ = orig  # type: ignore[attr-defined]
    run_decompositions.__doc__ = orig.__doc__
    return run_decompositions


def _make_module(orig: Callable[..., Any]) -> Callable[..., Any]:
    def module(self: ExportedProgram, *args: Any, **kwargs: Any) -> Any:
        gm = orig(self, *args, **kwargs)
        emulated = self.__dict__.get(_MARK) or first_emulated((self.state_dict, self.constants)) is not None
        if emulated and isinstance(gm, torch.nn.Module):
            _hook(gm)
            hooks = getattr(gm, "_deepcopy_hooks", None)
            if isinstance(hooks, list):
                hooks.append(_hook)  # GraphModule.__deepcopy__ drops forward hooks, then calls these on the copy
        return gm

    module.__wrapped__ = orig  # type: ignore[attr-defined]
    module.__doc__ = orig.__doc__
    return module


def patches(session: Redirection) -> list[Patch]:
    if not session.options.emulate_identity:
        return []
    decompositions = _make_decompositions(vars(ExportedProgram)["run_decompositions"])
    return [
        Patch(torch.export, "export", _make_export(torch.export.export), "mark programs exported from emulated inputs"),
        Patch(ExportedProgram, "run_decompositions", decompositions,
              "a decomposed program of an emulated one is emulated too"),
        Patch(ExportedProgram, "module", _make_module(vars(ExportedProgram)["module"]),
              "run exported programs of emulated models on the real tensors, outputs emulated"),
    ]
