"""PyTorch's own device-type test framework (``torch.testing._internal``) under a CUDA source.

Its modules are test code, so they get the emulated answers (``Options.emulated_callers``):
``instantiate_device_type_tests`` then makes the CUDA variants, and ``onlyCUDA``, ``dtypesIfCUDA``,
``deviceCountAtLeast``, ``largeTensorTest``, ``skipCUDAIf``, ``TEST_CUDA``/``TEST_MULTIGPU`` and
``skip_if_lt_x_gpu`` see the emulated devices.  What is patched besides:

- ``common_utils.CudaNonDefaultStream`` (wrapped around every CUDA variant) sets streams through
  ``torch._C._cuda_setStream``, which a CPU build lacks: it is replaced by one that does the same through
  the emulated ``torch.cuda`` streams.
- Modules imported *before* activation computed their flags with the real answers: ``TEST_CUDA``,
  ``TEST_MULTIGPU``, ``CUDA_DEVICE`` and the list of device-type test bases are set to the emulated values
  (modules imported later compute them themselves; a post-import hook patches ``CudaNonDefaultStream``).
- Expected failures (``expectedFailureCUDA``, ``DecorateInfo(unittest.expectedFailure, device_type=...)``)
  follow the kernels that run: see ``expectations``.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

import torch

from ..importhook import PostImportHook
from ..patching import Patch
from ..session import Redirection
from . import expectations

PACKAGE = "torch.testing._internal"
COMMON_UTILS = f"{PACKAGE}.common_utils"
COMMON_CUDA = f"{PACKAGE}.common_cuda"
COMMON_DEVICE_TYPE = f"{PACKAGE}.common_device_type"
OPINFO_CORE = f"{PACKAGE}.opinfo.core"
MODULES = (COMMON_UTILS, COMMON_CUDA, COMMON_DEVICE_TYPE, OPINFO_CORE)


def _non_default_stream_class(session: Redirection) -> type:
    class CudaNonDefaultStream:
        """Every emulated device gets a fresh current stream for the test, and its previous one back after it."""

        def __enter__(self) -> None:
            device = torch.cuda.current_device()
            self.before = []
            for index in range(torch.cuda.device_count()):
                previous = torch.cuda.current_stream(index)
                previous.synchronize()
                self.before.append(previous)
                torch.cuda.set_stream(torch.cuda.Stream(device=index))
            torch.cuda.set_device(device)

        def __exit__(self, *exc: object) -> None:
            device = torch.cuda.current_device()
            for previous in self.before:
                torch.cuda.set_stream(previous)
            torch.cuda.set_device(device)

    CudaNonDefaultStream.__module__ = COMMON_UTILS
    return CudaNonDefaultStream


def _flag(module: ModuleType, name: str, value: Any) -> list[Patch]:
    if not hasattr(module, name) or getattr(module, name) == value:
        return []
    return [Patch(module, name, value, "computed before activation with the real answer")]


def module_patches(session: Redirection, module: ModuleType) -> list[Patch]:
    """The patches one of ``MODULES`` needs, given what it computed when it was imported."""
    name = module.__name__
    count = session.options.device_count
    out: list[Patch] = []
    if name == COMMON_UTILS:
        if hasattr(module, "CudaNonDefaultStream"):
            out.append(Patch(module, "CudaNonDefaultStream", _non_default_stream_class(session),
                             "emulated streams instead of torch._C._cuda_setStream"))
        out += _flag(module, "TEST_CUDA", True)
    elif name == COMMON_CUDA:
        out += _flag(module, "TEST_CUDA", True)
        out += _flag(module, "TEST_MULTIGPU", count >= 2)
        out += _flag(module, "CUDA_DEVICE", torch.device("cuda:0"))
    elif name == COMMON_DEVICE_TYPE:
        bases = getattr(module, "device_type_test_bases", None)
        cuda_base = getattr(module, "CUDATestBase", None)
        if isinstance(bases, list) and cuda_base is not None and cuda_base not in bases:
            with_cuda = list(bases)
            cpu_base = getattr(module, "CPUTestBase", None)
            with_cuda.insert(with_cuda.index(cpu_base) + 1 if cpu_base in with_cuda else len(with_cuda), cuda_base)
            out.append(Patch(module, "device_type_test_bases", with_cuda,
                             "computed before activation with the real answer"))
        out += expectations.device_type_patches(module)
    elif name == OPINFO_CORE:
        out += expectations.opinfo_patches(module)
    return out


def applies(session: Redirection) -> bool:
    return session.backend is not None and "cuda" in session.sources and bool(session.options.emulated_callers)


def patches(session: Redirection) -> list[Patch]:
    """Patches for the framework modules already imported (the others are patched when they are)."""
    if not applies(session):
        return []
    out: list[Patch] = []
    for name in MODULES:
        module = sys.modules.get(name)
        if module is not None:
            out += module_patches(session, module)
    return out


def import_hook(session: Redirection) -> PostImportHook | None:
    """A hook that patches the framework modules not imported yet, when they are; None when all are."""
    if not applies(session):
        return None
    missing = [name for name in MODULES if name not in sys.modules]
    if not missing:
        return None

    def patch(module: ModuleType) -> None:
        for one in module_patches(session, module):
            session.apply_late(one)

    return PostImportHook(dict.fromkeys(missing, patch))
