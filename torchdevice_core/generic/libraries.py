"""CUDA build and library queries: the device is emulated, NVIDIA's libraries are not.

The story (README, "Who sees the emulated answer"): questions about the *device* (``is_available``, the arch
list, capability, bf16/TF32 support, and ``torch.backends.cuda.is_built()``: "this build can drive the
device") get the emulated answer in user code.  Questions about *libraries* (``torch.version.cuda``,
``torch.backends.cudnn.is_available()`` / ``version()``, MAGMA) keep the machine's answer for everyone: there
is no cuDNN or CUDA toolkit to report, and code that keys on them (``cpp_extension``, cuDNN-only tests)
takes its no-cuDNN path, as on a ROCm build, where ``torch.version.cuda`` is None while
``torch.cuda.is_available()`` is True.

Consistently with that, ``torch.backends.cudnn.is_acceptable(t)`` answers False for an emulated tensor
without the "compiled without cuDNN" warning it gives for a real CUDA tensor on a CPU build: torch's RNN
modules ask it on every call, and a GPU with cuDNN would not warn.
"""

from __future__ import annotations

from typing import Any

import torch

from ..emulation.answers import per_caller
from ..patching import Patch
from ..session import Redirection
from ..tensor import EmulatedTensor


def patches(session: Redirection) -> list[Patch]:
    if session.backend is None or "cuda" not in session.sources:
        return []
    out: list[Patch] = []
    cudnn = torch.backends.cudnn
    original = cudnn.is_acceptable

    def is_acceptable(tensor: Any) -> bool:
        if isinstance(tensor, EmulatedTensor):
            return False  # no cuDNN kernels on the target: torch's native path runs, silently as on a GPU
        return bool(original(tensor))

    is_acceptable.__doc__ = original.__doc__
    out.append(Patch(cudnn, "is_acceptable", is_acceptable, "no cuDNN on the target, and no warning about it"))
    backends_cuda = torch.backends.cuda
    if hasattr(backends_cuda, "is_built"):
        out.append(per_caller(session, "is_built", lambda: True, owner=backends_cuda, source="cuda"))
    return out
