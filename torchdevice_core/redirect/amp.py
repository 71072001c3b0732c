"""``torch.autocast("cuda")``, ``torch.cuda.amp.autocast``, ``torch.amp.GradScaler("cuda")`` and
``torch.cuda.amp.GradScaler`` on the target, with a dtype the target supports.

The deprecated ``torch.cuda.amp`` classes subclass the ``torch.amp`` ones and call their ``__init__`` with
``"cuda"``, so patching the two base ``__init__`` methods covers all four spellings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.amp.autocast_mode import autocast as _autocast
from torch.amp.grad_scaler import GradScaler as _GradScaler

from ..patching import Patch
from ..session import Redirection


def autocast_dtype(session: Redirection) -> torch.dtype:
    if session.options.autocast_dtype is not None:
        return session.options.autocast_dtype
    assert session.backend is not None
    return session.backend.autocast_dtype()


def _make_autocast_init(session: Redirection) -> Callable[..., Any]:
    orig = _autocast.__init__
    target_type = session.target.type

    def __init__(self: Any, device_type: str, dtype: torch.dtype | None = None, enabled: bool = True,
                 cache_enabled: bool | None = None) -> None:
        if device_type in session.sources:
            session.record.redirected(f"torch.autocast({device_type!r})")
            device_type = target_type
            if dtype is None:
                dtype = autocast_dtype(session)
        orig(self, device_type, dtype=dtype, enabled=enabled, cache_enabled=cache_enabled)

    return __init__


def _make_scaler_init(session: Redirection) -> Callable[..., Any]:
    orig = _GradScaler.__init__
    target_type = session.target.type

    def __init__(self: Any, device: str = "cuda", *args: Any, **kwargs: Any) -> None:
        if device in session.sources:
            session.record.redirected(f"GradScaler({device!r})")
            device = target_type
        orig(self, device, *args, **kwargs)

    return __init__


def _make_lazy_init(session: Redirection) -> Callable[..., Any]:
    """The scaler's own scale/growth tensors live on the target as plain tensors, as they would natively.

    GradScaler creates them on ``outputs.device`` (the emulated device) and later compares their device with
    the real one (``!= torch.device("mps:0")`` decides whether to take a float64 reciprocal, which MPS lacks).
    """
    orig = _GradScaler._lazy_init_scale_growth_tracker

    def _lazy_init_scale_growth_tracker(self: Any, dev: Any) -> Any:
        if session.resolve(dev) is not None:
            dev = session.target.device
        return orig(self, dev)

    return _lazy_init_scale_growth_tracker


def _make_is_autocast_enabled(session: Redirection) -> Callable[..., Any]:
    orig = torch.is_autocast_enabled
    target_type = session.target.type

    def is_autocast_enabled(device_type: str | None = None) -> bool:
        # no argument means CUDA (legacy API); user code asking about the source sees the target's state
        asks_source = (device_type is None and "cuda" in session.sources) or device_type in session.sources
        if asks_source and not session.real_caller():
            return bool(orig(target_type))
        return bool(orig() if device_type is None else orig(device_type))

    is_autocast_enabled.__wrapped__ = orig  # type: ignore[attr-defined]  # TorchScript compiles it as torch's builtin
    return is_autocast_enabled


def patches(session: Redirection) -> list[Patch]:
    return [
        Patch(_autocast, "__init__", _make_autocast_init(session), "autocast on the target"),
        Patch(_GradScaler, "__init__", _make_scaler_init(session), "GradScaler on the target"),
        Patch(_GradScaler, "_lazy_init_scale_growth_tracker", _make_lazy_init(session), "scale tensors on the target"),
        Patch(torch, "is_autocast_enabled", _make_is_autocast_enabled(session), "report autocast on the target"),
    ]
