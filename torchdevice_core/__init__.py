"""Run code written for CUDA on another device (CPU, Apple MPS), reversibly.

    import torchdevice_core as td
    with td.redirected("cpu"):
        x = torch.randn(3, device="cuda")   # lives on the CPU, reports cuda:0
        torch.cuda.synchronize()            # emulated

Public API: ``activate``, ``deactivate``, ``redirected``, ``active``, the error types and ``Options``.
"""

from __future__ import annotations

from .activation import Handle, activate, active, deactivate, redirected
from .errors import (
    ActivationError,
    TargetSpecError,
    TargetUnavailableError,
    TorchDeviceError,
    UnemulatableError,
)
from .report import RecordSnapshot, RedirectRecord
from .session import Options, Redirection
from .spec import TARGET_CHOICES, Target, available_devices, parse_target, resolve_target
from .tensor import EmulatedTensor, is_emulated, real_device

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
    "TargetSpecError",
    "TargetUnavailableError",
    "TorchDeviceError",
    "UnemulatableError",
    "activate",
    "active",
    "available_devices",
    "deactivate",
    "is_emulated",
    "parse_target",
    "real_device",
    "redirected",
    "resolve_target",
]
__version__ = "0.1.0"
