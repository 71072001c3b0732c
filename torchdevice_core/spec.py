"""Target specifications: parsing (pure) and resolution against what the machine really has."""

from __future__ import annotations

from typing import Any, Protocol

import torch

from .errors import TargetSpecError, TargetUnavailableError
from .grammar import SOURCE_CHOICES, SOURCE_TYPES, TARGET_CHOICES
from .records import Record, field
from .registry import normalise_target, registered_target, target_choices, target_names

__all__ = ["SOURCE_CHOICES", "SOURCE_TYPES", "TARGET_CHOICES", "HardwareProbe", "RealProbe", "Target",
           "available_devices", "parse_source", "parse_target", "resolve_target"]

# Captured at import, before any redirection: availability must always be the machine's truth.
_real_cuda_is_available = torch.cuda.is_available
_real_cuda_device_count = torch.cuda.device_count
_real_mps_is_available = torch.backends.mps.is_available


def parse_target(value: str, source: str = "") -> str:
    """Normalise a target spec (``"CUDA:1 "`` -> ``"cuda:1"``); raise on anything malformed (the grammar is
    ``grammar.normalise_target``: only cuda and registered targets take an index).  ``source`` (public API,
    kept) is where the value came from, for the message."""
    text = normalise_target(value)
    if text is None:
        raise TargetSpecError(value, target_choices(), source)
    return text


class HardwareProbe(Protocol):
    """What the machine has. The default reads the real torch; tests of selection logic pass their own."""

    def cuda_device_count(self) -> int: ...

    def mps_available(self) -> bool: ...


class RealProbe:
    def cuda_device_count(self) -> int:
        return int(_real_cuda_device_count()) if _real_cuda_is_available() else 0

    def mps_available(self) -> bool:
        return bool(_real_mps_is_available())


def available_devices(probe: HardwareProbe | None = None) -> list[str]:
    probe = probe or RealProbe()
    found = ["cpu"]
    if probe.mps_available():
        found.append("mps")
    found.extend(f"cuda:{i}" for i in range(probe.cuda_device_count()))
    found.extend(name for name in target_names() if _registered_available(name))
    return found


def _registered_available(name: str) -> bool:
    entry = registered_target(name)
    return entry is not None and bool(entry.is_available())


class Target(Record):
    """A resolved target: the spec as given and the real device tensors will live on.

    ``backend`` is the one a registered target's ``make_backend`` built while resolving (None for built-ins):
    ``backends.backend_for`` hands it on, so ``make_backend`` runs once per activation.
    """

    spec: str
    device: torch.device
    backend: Any = field(default=None, compare=False, repr=False)

    @property
    def type(self) -> str:
        return self.device.type

    def __str__(self) -> str:
        return str(self.device)


def resolve_target(value: str, probe: HardwareProbe | None = None, source: str = "") -> Target:
    """Parse ``value`` and check the machine has it; ``auto`` picks cuda, then mps, then cpu."""
    spec = parse_target(value, source)
    probe = probe or RealProbe()
    name, _, index = spec.partition(":")
    entry = registered_target(name)
    if entry is not None:
        if not entry.is_available():
            raise TargetUnavailableError(spec, available_devices(probe), f"the {name} backend says it is unavailable")
        backend = entry.make_backend(int(index) if index else None)
        return Target(spec, backend.device, backend)
    if name == "auto":
        if probe.cuda_device_count() > 0:
            return Target(spec, torch.device("cuda", 0))
        if probe.mps_available():
            return Target(spec, torch.device("mps"))
        return Target(spec, torch.device("cpu"))
    if name == "cpu":
        return Target(spec, torch.device("cpu"))
    if name == "mps":
        if not probe.mps_available():
            raise TargetUnavailableError(spec, available_devices(probe), "torch.backends.mps.is_available() is False")
        return Target(spec, torch.device("mps"))
    count = probe.cuda_device_count()
    wanted = int(index) if index else 0
    if wanted >= count:
        reason = f"{count} CUDA device(s) visible" if count else "torch.cuda.is_available() is False"
        raise TargetUnavailableError(spec, available_devices(probe), reason)
    return Target(spec, torch.device("cuda", wanted))


def parse_source(value: str) -> str:
    text = value.strip().lower()
    if text not in SOURCE_CHOICES:
        raise TargetSpecError(value, ", ".join(SOURCE_CHOICES), "source")
    return text
