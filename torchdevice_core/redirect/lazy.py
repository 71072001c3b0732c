"""Lazy modules (``nn.LazyLinear``...) under redirection, as natively and as on CUDA.

torch's ``UninitializedTensorMixin`` lets only a fixed list of methods through its ``__torch_function__``,
and that list holds the original ``Tensor.to`` / ``Tensor.cuda`` objects: with those patched, torch hands
the mixin our replacements and ``LazyLinear(4).to("cpu")`` would raise "Attempted to use an uninitialized
parameter".  The list gets the replacements too, for as long as they are installed.
``UninitializedParameter(device="cuda")`` (what ``nn.LazyLinear(4, device="cuda")`` builds) becomes the
emulated uninitialized twin (see ``torchdevice_core/uninitialized.py``), so it reports ``cuda:0`` and
materializes on the emulated device.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.nn.parameter import UninitializedBuffer, UninitializedParameter

from ..patching import ItemPatch, Patch
from ..session import Redirection
from ..uninitialized import UninitializedTensorMixin, emulated_uninitialized


def _allowed_methods(earlier: list[Patch | ItemPatch]) -> list[Any]:
    original = list(UninitializedTensorMixin._allowed_methods)
    extra: list[Any] = []
    for patch in earlier:
        if not isinstance(patch, Patch) or patch.owner is not torch.Tensor:
            continue
        before = getattr(torch._C.TensorBase, patch.name, None)
        if before is not None and any(before is m for m in original):
            extra.append(patch.replacement)
            fn = getattr(patch.replacement, "fn", None)
            if fn is not None:
                extra.append(fn)
    return original + extra


def _make_new(session: Redirection, base: type) -> Callable[..., Any]:
    orig = base.__dict__["__new__"]
    fn = orig.__func__ if isinstance(orig, staticmethod) else orig
    resolve = session.resolve

    def __new__(cls: type, *args: Any, **kwargs: Any) -> Any:
        obj = fn(cls, *args, **kwargs)
        if cls is base:
            device = kwargs["device"] if "device" in kwargs else (args[1] if len(args) > 1 else None)
            if device is None:
                device = torch.get_default_device()  # (reports cuda:0 under set_default_device("cuda"))
            index = resolve(device)
            if index is not None:
                obj.__class__ = emulated_uninitialized(base, session.slot_class(index))
        return obj

    __new__.__wrapped__ = fn  # type: ignore[attr-defined]
    return __new__


def patches(session: Redirection, earlier: list[Patch | ItemPatch]) -> list[Patch]:
    """``earlier``: the patches collected so far (the Tensor method replacements the list must allow)."""
    out = [Patch(UninitializedTensorMixin, "_allowed_methods", _allowed_methods(earlier),
                 "let lazy modules' uninitialized tensors through the patched Tensor.to/cuda")]
    if session.options.emulate_identity:
        for base in (UninitializedParameter, UninitializedBuffer):
            out.append(Patch(base, "__new__", staticmethod(_make_new(session, base)),
                             f"{base.__name__}(device='cuda') on the emulated device"))
    return out
