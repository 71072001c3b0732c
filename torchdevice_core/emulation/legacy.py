"""Legacy ``torch.cuda.FloatTensor``-style types: constructors that build on the target, and
``isinstance(t, torch.cuda.FloatTensor)`` that is true for an emulated float32 tensor."""

from __future__ import annotations

from typing import Any

import torch

from ..conversions import LEGACY_NAMES, to_target
from ..patching import Patch
from ..session import Redirection
from ..tensor import EmulatedTensor
from .answers import namespace


def _legacy_type(session: Redirection, dtype: torch.dtype, name: str) -> type:
    source = session.source
    cpu_type = getattr(torch, name)
    full = f"torch.{source}.{name}"

    class _LegacyMeta(type):
        def __instancecheck__(cls, instance: Any) -> bool:
            return isinstance(instance, EmulatedTensor) and instance._td_type == source and instance.dtype == dtype

        def __call__(cls, *args: Any, **kwargs: Any) -> Any:
            session.record.redirected(full)
            device = kwargs.pop("device", None)
            index = session.index_of(device)
            return to_target(cpu_type(*args, **kwargs), index)

        def __repr__(cls) -> str:
            return f"<class '{full}'>"

    legacy = _LegacyMeta(name, (), {"__module__": f"torch.{source}", "dtype": dtype, "is_cuda": source == "cuda",
                                    "is_sparse": False, "_td_legacy_name": full})
    return legacy


def patches(session: Redirection) -> list[Patch]:
    if session.backend is None or "cuda" not in session.sources:
        return []
    ns = namespace(session)
    return [
        Patch(ns, name, _legacy_type(session, dtype, name), "legacy constructor on the target")
        for dtype, name in LEGACY_NAMES.items()
        if hasattr(ns, name) and hasattr(torch, name)
    ]
