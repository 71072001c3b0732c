"""Run code written for CUDA on another device (CPU, Apple MPS), reversibly.

    import torchdevice_core as td
    with td.redirected("cpu"):
        x = torch.randn(3, device="cuda")   # lives on the CPU, reports cuda:0
        torch.cuda.synchronize()            # emulated

Public API: ``activate``, ``deactivate``, ``redirected``, ``active``, the error types and ``Options``.
The names load on first use (PEP 562), so ``torchdevice_core.registry`` can be imported without torch:
the pytest plugin reads registered targets while parsing its command line, before anything needs torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    ActivationError,
    TargetGapError,
    TargetSpecError,
    TargetUnavailableError,
    TorchDeviceError,
    UnemulatableError,
    UnsupportedTorchError,
)
from .registry import register_target, unregister_target

if TYPE_CHECKING:
    from .activation import Handle, activate, active, deactivate, redirected
    from .record import RecordSnapshot, RedirectRecord
    from .session import Options, Redirection
    from .spec import TARGET_CHOICES, Target, available_devices, parse_target, resolve_target
    from .tensor import EmulatedTensor, is_emulated, real_device

_LAZY = {
    "Handle": "activation", "activate": "activation", "active": "activation", "deactivate": "activation",
    "redirected": "activation", "RecordSnapshot": "record", "RedirectRecord": "record", "Options": "session",
    "Redirection": "session", "TARGET_CHOICES": "spec", "Target": "spec", "available_devices": "spec",
    "parse_target": "spec", "resolve_target": "spec", "EmulatedTensor": "tensor", "is_emulated": "tensor",
    "real_device": "tensor",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'torchdevice_core' has no attribute {name!r}")
    try:
        imported = importlib.import_module(f".{module}", __name__)
    except (ImportError, AttributeError):
        from . import compat  # a torch too old (or too new) for a module-level import: say which and why

        compat.check()
        raise
    value = getattr(imported, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "TARGET_CHOICES",
    "ActivationError",
    "EmulatedTensor",
    "Handle",
    "Options",
    "RecordSnapshot",
    "RedirectRecord",
    "Redirection",
    "Target",
    "TargetGapError",
    "TargetSpecError",
    "TargetUnavailableError",
    "TorchDeviceError",
    "UnemulatableError",
    "UnsupportedTorchError",
    "activate",
    "active",
    "available_devices",
    "deactivate",
    "is_emulated",
    "parse_target",
    "real_device",
    "redirected",
    "register_target",
    "resolve_target",
    "unregister_target",
]
__version__ = "0.1.0"
