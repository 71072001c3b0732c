"""The active redirection: target, options, the virtual device state and the device-argument policy.

One ``Redirection`` is in effect per process (``active_state.ACTIVE[0]``); every patched entry point
consults it.
"""

from __future__ import annotations

import sys
from typing import Any

import torch

from .active_state import ACTIVE, LEDGER
from .backends import Backend
from .memory import StorageLedger
from .mps.limits import FLOAT64_POLICIES, UNSUPPORTED_DTYPES, float64_error
from .patching import Patch, Patcher
from .profiles import DeviceProfile, get_profile
from .record import RedirectRecord
from .records import Record
from .spec import SOURCE_TYPES, Target
from .tensor import EmulatedTensor, emulated_class

_CURRENT = -1  # cache marker: "the current virtual device" (a bare "cuda")
_CACHE_LIMIT = 4096


class Options(Record):
    """How the emulation behaves. Defaults aim at "a CUDA test passes here iff it passes on one GPU"."""

    device_count: int = 1
    """Virtual source devices (``torch.cuda.device_count()``); all of them live on the one target."""
    capability: tuple[int, int] = (8, 0)
    """What ``get_device_capability()`` reports (8.0 = A100: bf16 and TF32 exist)."""
    emulate_identity: bool = True
    """Redirected tensors report the source device (``x.is_cuda``); off: they report the target (faster)."""
    device_checks: bool = True
    """Mixing an emulated tensor with a real CPU tensor raises as it would on CUDA."""
    call_sites: bool = False
    """Record the user's file:line for every redirected or emulated call (costs a frame walk each)."""
    real_callers: tuple[str, ...] = ("torch",)
    """Modules (and their submodules) that get the machine's real answers from availability queries."""
    emulated_callers: tuple[str, ...] = ("torch.testing._internal", "torch.utils.data")
    """Modules under ``real_callers`` that are test code all the same (PyTorch's own device-type test
    framework; the DataLoader, whose only question is where to pin memory): they get the emulated answers,
    so ``instantiate_device_type_tests`` makes CUDA variants and ``pin_memory=True`` takes the GPU path."""
    autocast_dtype: torch.dtype | None = None
    """Autocast dtype for ``autocast("cuda")`` without one; None: the backend's choice (float16)."""
    device_name: str | None = None
    track_memory: bool = False
    """Count redirected storages from activation on (per-op cost); default: from the first memory query."""
    simulate_limits: str | None = None
    """``"mps"``: run on the target but enforce Apple MPS limits, predicting failures on a Mac."""
    mps_float64: str = "error"
    """float64/complex128 where MPS limits apply: ``error`` (as MPS), ``downcast`` (float32), ``cpu`` (stay)."""

    profile: str | None = None
    """A device profile (``a100``, ``h100``, ``l4``, ``t4``, ``v100``: ``profiles.PROFILES``): name, capability,
    memory, SM count, bf16/TF32 support and arch list of that GPU; it sets ``capability`` and ``device_name``."""

    def __post_init__(self) -> None:
        chosen = get_profile(self.profile)
        if chosen is not None:
            object.__setattr__(self, "profile", self.profile.strip().lower() if self.profile else None)
            object.__setattr__(self, "capability", chosen.capability)
            if self.device_name is None:
                object.__setattr__(self, "device_name", chosen.name)
        if not isinstance(self.device_count, int) or self.device_count < 1:
            raise ValueError(f"device_count must be a positive integer, not {self.device_count!r}")
        if self.simulate_limits not in (None, "mps"):
            raise ValueError(f"simulate_limits={self.simulate_limits!r} is not supported; valid choices: mps")
        if self.mps_float64 not in FLOAT64_POLICIES:
            raise ValueError(
                f"mps_float64={self.mps_float64!r} is not a policy; valid choices: {', '.join(FLOAT64_POLICIES)}"
            )


def redirected_sources(source: str, target_type: str) -> tuple[str, ...]:
    """The device types redirected for ``source``: ``auto`` is every source type except the target's own
    (on a CUDA runner ``cuda`` stays native, on a Mac ``mps`` does)."""
    if source == "auto":
        return tuple(s for s in SOURCE_TYPES if s != target_type)
    return (source,)


class Redirection:
    def __init__(self, source: str, target: Target, backend: Backend | None, options: Options) -> None:
        self.requested_source = source
        """As asked: ``auto``, ``cuda`` or ``mps``."""
        self.sources = redirected_sources(source, target.type)
        """The device types redirected to the target (``("cuda", "mps")`` for auto on a CPU)."""
        self.source = self.sources[0]
        """The primary source: what a bare integer ordinal, ``Tensor.cuda()`` and the legacy types mean."""
        # Virtual devices ("slots"): cuda:0..N-1 first (slot = ordinal), then mps:0. With one source the
        # slots are exactly today's indices, so cuda-only and mps-only sessions are unchanged.
        self.slots: list[tuple[str, int]] = []
        if "cuda" in self.sources:
            self.slots += [("cuda", i) for i in range(options.device_count)]
        self.mps_slot = len(self.slots) if "mps" in self.sources else -1
        if "mps" in self.sources:
            self.slots.append(("mps", 0))
        self.target = target
        self.backend = backend
        self.options = options
        self.record = RedirectRecord(call_sites=options.call_sites)
        self.ledger = StorageLedger()
        self.ledger_armed = False
        self.current_index = 0
        self.device_cache: dict[Any, int | None] = {}
        """Device argument -> slot (or ``_CURRENT``, or None): what ``resolve`` computed; the factories read it."""
        self.patcher = Patcher()
        """The undo stack of every change activating this redirection made (``activation`` fills it)."""
        self.shared: dict[str, Any] = {}  # objects several patch modules must agree on (the emulated streams)
        self._real_prefixes = tuple(p + "." for p in options.real_callers)
        self._real_names = frozenset(options.real_callers)
        self._emulated_prefixes = tuple(p + "." for p in options.emulated_callers)
        self._emulated_names = frozenset(options.emulated_callers)

    def apply_late(self, patch: Patch) -> None:
        """Apply one more patch, found to be needed only now (a module imported late), on the undo stack."""
        self.patcher.apply(patch)

    @property
    def profile(self) -> DeviceProfile | None:
        """The emulated GPU's profile (``Options.profile``), None for the default device."""
        return get_profile(self.options.profile)

    @property
    def mps_limits(self) -> bool:
        """Do Apple MPS limits apply to redirected tensors (a real MPS target, or the simulation)?"""
        return self.target.type == "mps" or self.options.simulate_limits == "mps"

    def limit_dtype(self, dtype: torch.dtype) -> torch.dtype | None:
        """The dtype a redirected tensor of ``dtype`` gets under MPS limits; None: it stays on the CPU."""
        if dtype not in UNSUPPORTED_DTYPES or not self.mps_limits:
            return dtype
        policy = self.options.mps_float64
        name = str(dtype).removeprefix("torch.")
        if policy == "error":
            self.record.hit("mps", f"{name} (error)")
            raise float64_error(dtype)
        if policy == "downcast":
            self.record.hit("mps", f"{name} (downcast)")
            return UNSUPPORTED_DTYPES[dtype]
        self.record.hit("mps", f"{name} (kept on cpu)")
        return None

    @property
    def native(self) -> bool:
        """The target is the source device type itself (cuda -> cuda:N): nothing to emulate."""
        return self.target.type == self.requested_source

    def slot_class(self, slot: int, count: bool = True) -> Any:
        """The emulated tensor class of virtual device ``slot``; ``count``: record that its source was asked
        for (the report's "sources seen")."""
        source, index = self.slots[slot]
        if count:
            self.record.counts[("source", source)] += 1
        return emulated_class(source, index, slot)

    def slot_of_source(self, source: str) -> int | None:
        """The slot a bare ``source`` names (``"cuda"``: the current device), None if it is not redirected."""
        if source == "mps":
            return self.mps_slot if self.mps_slot >= 0 else None
        return self.current_index if source == "cuda" and "cuda" in self.sources else None

    def describe(self) -> str:
        sources = ", ".join(self.sources)
        name = self.target.spec.partition(":")[0]
        if name in ("auto", self.target.type):
            return f"{sources} -> {self.target.device}"
        return f"{sources} -> {self.target.spec} ({self.target.device})"  # a registered target

    def armed_ledger(self) -> StorageLedger:
        """The memory ledger, counting from now on (and everything redirected that is still alive)."""
        if not self.ledger_armed:
            self.ledger.track_existing(EmulatedTensor, lambda t: t._td_slot)
            self.ledger_armed = True
            if ACTIVE[0] is self:
                LEDGER[0] = self.ledger
        return self.ledger

    # ---------------------------------------------------------------- device arguments
    def _classify(self, dev: Any) -> int | None:
        """A device argument -> its slot, ``_CURRENT`` (a bare ``cuda``) or None; raises on a bad ordinal."""
        if isinstance(dev, int):
            dev = torch.device("cuda", dev) if "cuda" in self.sources and dev >= 0 else None
        elif isinstance(dev, str):
            try:
                dev = torch.device(dev)
            except (RuntimeError, ValueError):
                return None  # not a device: torch raises its own error when it parses it
        if not isinstance(dev, torch.device) or dev.type not in self.sources:
            return None
        if dev.type == "mps":
            if dev.index not in (None, 0):
                raise RuntimeError(
                    f"Invalid device index {dev.index} for mps: only mps:0 exists (torchdevice)"
                ) from None
            return self.mps_slot
        if dev.index is None:
            return _CURRENT
        if dev.index >= self.options.device_count:
            raise RuntimeError(
                f"CUDA error: invalid device ordinal {dev.index} (torchdevice emulates "
                f"{self.options.device_count} cuda device(s) on {self.target.device})"
            ) from None  # (called from cache-miss handlers: their KeyError is no part of the user's error)
        return dev.index

    def resolve(self, dev: Any) -> int | None:
        """The virtual device slot ``dev`` names (the ordinal, for cuda), or None when it names anything else."""
        kind = type(dev)
        if kind is bool or not (kind is str or kind is int or kind is torch.device):
            return None
        try:
            index = self.device_cache[dev]
        except KeyError:
            index = self._classify(dev)  # (a bad ordinal raises, and is not cached: it raises every time)
            if len(self.device_cache) < _CACHE_LIMIT:
                self.device_cache[dev] = index
        if index == _CURRENT:
            return self.current_index
        return index

    def index_of(self, device: Any) -> int:
        """``torch.cuda.*(device=...)`` arguments: None/int/str/torch.device -> a valid virtual index."""
        if device is None:
            return self.current_index
        if isinstance(device, int) and not isinstance(device, bool):
            if device < 0:
                return self.current_index
            # an ordinal of the primary source: cuda:N, or mps:0 for an mps-only session
            limit = self.options.device_count if self.source == "cuda" else 1
            if device >= limit:
                raise RuntimeError(f"{self.source.upper()} error: invalid device ordinal {device}")
            return device if self.source == "cuda" else self.mps_slot
        index = self.resolve(device)
        if index is None:
            raise ValueError(f"Expected a {self.source} device, but got: {device}")
        return index

    # ---------------------------------------------------------------- callers
    def real_caller(self, depth: int = 2) -> bool:
        """True when the function ``depth`` frames up belongs to a module that must see the real machine."""
        try:
            name = sys._getframe(depth).f_globals.get("__name__", "")
        except ValueError:
            return False
        if not (name in self._real_names or name.startswith(self._real_prefixes)):
            return False
        return not (name in self._emulated_names or name.startswith(self._emulated_prefixes))
