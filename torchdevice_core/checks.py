"""Device checks: an op that mixes an emulated tensor with a real one (or with another virtual device's)
raises torch's "Expected all tensors to be on the same device", as it would on the source device.

``check_devices`` is what ``EmulatedTensor.__torch_function__`` calls through ``active_state.CHECKS`` while
``Options.device_checks`` is on.  Ops that take tensors of another device on purpose are exempt
(``mixing.MIXED_DEVICE_OK``), and under MPS limits so are the ops that run through the CPU fallback.
"""

from __future__ import annotations

from typing import Any

import torch

from .active_state import ACTIVE
from .mixing import MIXED_DEVICE_OK, OWN_DEVICE_CHECK, VALUES_ON_THE_DEVICE
from .tensor import EmulatedTensor, real_device

_Tensor = torch.Tensor
_Parameter = torch.nn.Parameter


def _mismatched(cls: type[EmulatedTensor], a: Any) -> bool:
    """Does tensor argument ``a`` put an op of class ``cls`` on two devices?"""
    ta = type(a)
    if ta is cls or ta is cls._td_param_class:
        return False
    if ta is _Tensor or ta is _Parameter:
        return bool(a.dim() != 0)  # CUDA accepts CPU scalars (0-dim) as operands
    if isinstance(a, EmulatedTensor):
        return a._td_slot != cls._td_slot or a._td_type != cls._td_type
    return False


def check_devices(cls: type[EmulatedTensor], func: Any, args: tuple, kwargs: dict | None) -> None:
    """Raise as the source device would when ``func``'s tensor arguments (one list or tuple of them deep,
    and keyword arguments) live on another device than ``cls``'s."""
    pcls = cls._td_param_class
    for a in args:
        ta = type(a)
        if ta is cls or ta is pcls:  # the common case, without a call (this runs on every op)
            continue
        if ta is list or ta is tuple:
            if cls._td_own_types.issuperset(map(type, a)):  # a foreach list on one device: a C-level loop
                continue
            for b in a:
                if isinstance(b, _Tensor) and _mismatched(cls, b):
                    _raise_mismatch(cls, func, b, args, kwargs)
        elif isinstance(a, _Tensor) and _mismatched(cls, a):
            _raise_mismatch(cls, func, a, args, kwargs)
    if kwargs:
        for a in kwargs.values():
            if isinstance(a, _Tensor) and _mismatched(cls, a):
                _raise_mismatch(cls, func, a, args, kwargs)


def device_mismatch(cls: type[EmulatedTensor], other: torch.Tensor) -> RuntimeError:
    both = isinstance(other, EmulatedTensor)
    other_dev = _device_of(other)
    active = ACTIVE[0]
    where = f"emulated on {active.target.device}" if active else "emulated"
    which = (f"the {cls._td_device} and {other_dev} tensors are both {where}" if both else
             f"the {cls._td_device} tensor is {where}; the {other_dev} tensor is a real one")
    return RuntimeError(
        f"Expected all tensors to be on the same device, but found at least two devices, {cls._td_device} and "
        f"{other_dev}! [torchdevice: {which}. CUDA would raise here too. Disable with device_checks=False / "
        f"--torchdevice-no-device-checks]"
    )


def _device_of(t: torch.Tensor) -> torch.device:
    return t._td_device if isinstance(t, EmulatedTensor) else real_device(t)


def _raise_mismatch(cls: type[EmulatedTensor], func: Any, other: torch.Tensor, args: tuple,
                    kwargs: dict | None) -> None:
    """Called only on a mismatch (not on the hot path): raise it unless a ``mixing`` rule lets it through."""
    name = getattr(func, "__name__", "")
    if name in MIXED_DEVICE_OK:
        if name in VALUES_ON_THE_DEVICE.ops:
            values = args[2] if len(args) > 2 else (kwargs or {}).get("values")
            if other is values:
                raise device_mismatch(cls, other)
        return
    if name in OWN_DEVICE_CHECK.ops and args and isinstance(args[0], torch.Tensor):
        got = cls._td_device if other is args[0] else _device_of(other)
        raise RuntimeError(f"Expected tensor to have {_device_of(args[0])} Device, but got tensor with {got} Device "
                           f"(while checking arguments for torch.{name}():)")
    active = ACTIVE[0]
    if active is not None and active.mps_limits and _runs_through_mps_cpu_fallback(name):
        return  # mixing.MPS_CPU_FALLBACK: cpu_fallback copies every argument to the CPU itself
    raise device_mismatch(cls, other)


def _runs_through_mps_cpu_fallback(name: str) -> bool:
    from .mps.limits import fallback_names

    return name in fallback_names()
