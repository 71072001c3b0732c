"""TorchScript under redirection: ``torch.jit.script`` / ``trace`` of code that calls patched torch functions.

TorchScript compiles a call to ``torch.randn`` by looking the function object up in its table of builtins
(``torch.jit._builtins``); a patched replacement is not in that table, so the compiler would try to compile
the replacement itself as Python source and fail ("module, class, method, function ... expected, got
builtin_function_or_method"), and a class whose compilation failed stays half-defined in TorchScript's
compilation unit (a later script of the same class then fails "Can't redefine method").  The table lookup
is answered for the replacements with the original's builtin: the compiled graph is exactly the one torch
compiles without this library.

Compiled code runs in C++ and sees tensors as they really are, so calls of scripted functions and methods
that get emulated tensors run on the real tensors and their outputs come back emulated (``real.py``).
Inside TorchScript code itself ``x.device`` is the real device, and a ``"cuda"`` device written in the
scripted source is not redirected (C++ raises CUDA's own error).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.jit._builtins as _builtins

from ..patching import Patch
from ..session import Redirection
from .real import call_real


def _make_table_getter(orig: Callable[[], dict[int, str]]) -> Callable[[], dict[int, str]]:
    extended: list[tuple[dict[int, str], dict[int, str]]] = []  # (torch's table, it extended)

    def _get_builtin_table() -> dict[int, str]:
        table = orig()
        if extended and extended[0][0] is table:
            return extended[0][1]
        out = dict(table)
        for mod in _builtins._modules_containing_builtins:
            for value in list(vars(mod).values()):
                original = getattr(value, "__wrapped__", None) if id(value) not in table else None
                if original is not None and id(original) in table:
                    out[id(value)] = table[id(original)]  # a patched replacement: its original's builtin
        extended[:] = [(table, out)]
        return out

    return _get_builtin_table


def _make_call(orig: Callable[..., Any]) -> Callable[..., Any]:
    def __call__(self: Any, *args: Any, **kwargs: Any) -> Any:
        return call_real(lambda *a, **k: orig(self, *a, **k), args, kwargs)

    return __call__


def patches(session: Redirection) -> list[Patch]:
    out = [Patch(_builtins, "_get_builtin_table", _make_table_getter(_builtins._get_builtin_table),
                 "TorchScript compiles patched torch functions as the builtins they replace")]
    if session.options.emulate_identity:
        for cls in (torch._C.ScriptFunction, torch._C.ScriptMethod):
            out.append(Patch(cls, "__call__", _make_call(vars(cls)["__call__"]),
                             "scripted code runs on the real tensors, outputs emulated"))
    return out
