"""Expected failures in PyTorch's device-type framework follow the kernels that run.

An emulated CUDA (or MPS) variant runs the target's kernels. ``expectedFailureCUDA`` and
``DecorateInfo(unittest.expectedFailure, ..., device_type="cuda")`` say that the *CUDA* kernels fail
a test: they do not run here, so on an emulated variant such an expectation is dropped and the test is
reported as it is.  The target's own expectations (``expectedFailureCPU``, ``DecorateInfo(...,
device_type="cpu")``) describe the kernels that do run: they apply to the emulated variant too.  This is
torch-xpu-ops' rule (CUDA expectations move to the device whose kernels run, there XPU) with the kernels
being the target's.  Skips are left as they are: a skip never makes a test fail.

The replacements decide when a test runs, against the session active then: outside a session (or for a
variant of a device that is not emulated) they are torch's own rules.
"""

from __future__ import annotations

import unittest
from functools import wraps
from types import ModuleType
from typing import Any

from ..activation import active as _active
from ..patching import Patch

# See Note [expectations follow the kernels]


def kernel_device_type(device_type: str | None) -> str | None:
    """The device type whose kernels a variant of ``device_type`` runs: the target's for an emulated one."""
    active = _active()
    if active is None or device_type is None or device_type not in active.sources:
        return device_type
    return active.target.type


def expectation_applies(expected: str | None, device_type: str | None) -> bool:
    """Whether an expected failure written for ``expected`` (None: any device) holds for a variant."""
    if expected is None:
        return True
    kernels = kernel_device_type(device_type)
    return expected == kernels


def _variant_device_type(slf: Any) -> Any:
    if not hasattr(slf, "device_type") and hasattr(slf, "device") and isinstance(slf.device, str):
        return slf.device
    return slf.device_type


def _expected_failure_call(self: Any, fn: Any) -> Any:
    """``common_device_type.expectedFailure.__call__`` (torch 2.x), matching the device by its kernels."""

    @wraps(fn)
    def efail_fn(slf: Any, *args: Any, **kwargs: Any) -> Any:
        target_dtype = kwargs.get("dtype", getattr(slf, "dtype", None))
        device_matches = expectation_applies(self.device_type, _variant_device_type(slf))
        dtype_matches = self.dtype is None or self.dtype == target_dtype
        if device_matches and dtype_matches:
            try:
                fn(slf, *args, **kwargs)
            except Exception:
                return None
            else:
                slf.fail("expected test to fail, but it passed")
        return fn(slf, *args, **kwargs)

    return efail_fn


def _is_expectation(info: Any) -> bool:
    return any(d is unittest.expectedFailure for d in getattr(info, "decorators", ()))


def _decorate_info_is_active(original: Any) -> Any:
    def is_active(self: Any, cls_name: Any, test_name: Any, device_type: Any, dtype: Any, param_kwargs: Any) -> Any:
        if self.device_type is not None and _is_expectation(self):
            kernels = kernel_device_type(device_type)
            if kernels != device_type:
                if self.device_type != kernels:
                    return False  # the source device's expectation, or another device's
                device_type = self.device_type  # the target's expectation: it holds for its kernels
        return original(self, cls_name, test_name, device_type, dtype, param_kwargs)

    is_active.__qualname__ = "DecorateInfo.is_active"
    return is_active


def device_type_patches(module: ModuleType) -> list[Patch]:
    """``common_device_type``: its ``expectedFailure`` decorator (``expectedFailureCUDA`` and the others)."""
    cls = getattr(module, "expectedFailure", None)
    if not isinstance(cls, type) or "__call__" not in vars(cls):
        return []
    return [Patch(cls, "__call__", _expected_failure_call, "expected failures follow the kernels that run")]


def opinfo_patches(module: ModuleType) -> list[Patch]:
    """``opinfo.core``: ``DecorateInfo.is_active`` for the op database's device-specific expected failures."""
    cls = getattr(module, "DecorateInfo", None)
    original = vars(cls).get("is_active") if isinstance(cls, type) else None
    if original is None:
        return []
    return [Patch(cls, "is_active", _decorate_info_is_active(original), "expected failures follow the kernels")]
