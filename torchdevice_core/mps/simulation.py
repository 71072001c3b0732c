"""Apple MPS limits enforced on another target (``Options.simulate_limits="mps"``), so a Linux CI run
predicts which tests would fail on a Mac.

A TorchDispatchMode sees every aten op after composite ops have decomposed, as the MPS backend would.
Ops touching redirected tensors are checked against, in this order: the release's explicit CPU fallbacks
(``opdata``: ``MPSFallback.mm``'s registrations and what they decompose into), which run and warn once
whatever ``PYTORCH_ENABLE_MPS_FALLBACK`` says; the installed torch's ops without an MPS kernel
(``limits.missing_mps_kernels``): with ``PYTORCH_ENABLE_MPS_FALLBACK=1`` they run and warn once, as MPS's
CPU fallback does, otherwise they raise MPS's NotImplementedError; the release's dtype gaps of ops that do
have an MPS kernel (``common_mps.py``), which raise.  Results of dtype float64 / complex128 raise under the
``error`` float64 policy.  The mode exists only while simulating.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from ..session import Redirection
from ..tensor import EmulatedTensor
from . import opdata
from .limits import UNSUPPORTED_DTYPES, fallback_enabled, fallback_warning, missing_mps_kernels, not_implemented


def op_name(func: Any) -> str:
    name = func._schema.name.split("::", 1)[-1]
    overload = func._overloadname
    return name if overload == "default" else f"{name}.{overload}"


class SimulatedMpsLimits(TorchDispatchMode):
    def __init__(self, session: Redirection) -> None:
        super().__init__()
        self.session = session
        self.missing = missing_mps_kernels()
        self.data = opdata.load()
        self.fallback = fallback_enabled()
        self.float64_error = session.options.mps_float64 == "error"
        self.warned: set[str] = set()

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if not any(issubclass(t, EmulatedTensor) for t in types) and not _has_emulated(args, kwargs):
            return func(*args, **kwargs)
        name = op_name(func)
        always = self.data.fallback_for(name)
        if always is not None:  # registered with the CPU fallback whatever the variable says
            self._fell_back(f"aten::{always}")
        elif name in self.missing:
            op = f"aten::{name}"
            if not self.fallback:
                self.session.record.hit("mps", f"{op} (no MPS kernel)")
                raise not_implemented(op)
            self._fell_back(op)
        else:
            gaps = self.data.dtype_gaps.get(name.partition(".")[0])
            if gaps:
                self._check_dtypes(name, gaps, args, kwargs)
        out = func(*args, **kwargs)
        if self.float64_error:
            for leaf in tree_flatten(out)[0]:
                if isinstance(leaf, torch.Tensor) and leaf.dtype in UNSUPPORTED_DTYPES:
                    # an op (not a conversion) making float64 on MPS: MPS's RuntimeError, not the TypeError
                    # of conversions (which Python would swallow inside binary operators)
                    self.session.record.hit("mps", f"{str(leaf.dtype).removeprefix('torch.')} (error)")
                    raise RuntimeError(f"{str(leaf.dtype).removeprefix('torch.')} is not supported on MPS")
        return out

    def _fell_back(self, op: str) -> None:
        self.session.record.hit("mps", f"{op} (cpu fallback)")
        if op not in self.warned:
            self.warned.add(op)
            warnings.warn(fallback_warning(op), UserWarning, stacklevel=3)

    def _check_dtypes(self, name: str, gaps: frozenset[str], args: tuple, kwargs: dict) -> None:
        for leaf in tree_flatten((args, kwargs))[0]:
            if isinstance(leaf, torch.Tensor):
                dtype = str(leaf.dtype).removeprefix("torch.")
                if dtype in gaps:
                    self.session.record.hit("mps", f"aten::{name} ({dtype}: no MPS kernel)")
                    raise RuntimeError(
                        f"MPS has no kernel for aten::{name} with dtype {dtype} [torchdevice: predicted from torch "
                        f"{self.data.release}'s common_mps.py UNIMPLEMENTED_XFAILLIST]"
                    )


def _has_emulated(args: tuple, kwargs: dict) -> bool:
    return any(isinstance(leaf, EmulatedTensor) for leaf in tree_flatten((args, kwargs))[0])
