"""The emulated ``torch.mps`` and ``torch.backends.mps`` for MPS-written code on a CPU or CUDA target.

The same backend, ledger and record serve it as serve the emulated ``torch.cuda``; only the names differ
(``current_allocated_memory`` for ``memory_allocated``, one device, no streams).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..emulation import streams
from ..emulation.answers import emulated, per_caller
from ..emulation.unemulatable import raiser
from ..patching import Patch
from ..session import Redirection

MACOS_VERSION = (15, 0)  # what is_macos_or_newer() answers against: a current, fully supported macOS


def patches(session: Redirection) -> list[Patch]:
    if session.backend is None or "mps" not in session.sources:
        return []
    backend = session.backend
    target = str(session.target.device)
    mps = torch.mps
    fraction = {"value": 1.0}

    def manual_seed(seed: int) -> None:
        backend.manual_seed(int(seed))

    def seed() -> None:
        backend.seed()

    def get_rng_state(device: Any = "mps") -> torch.Tensor:
        return backend.generator().get_state()

    def set_rng_state(new_state: torch.Tensor, device: Any = "mps") -> None:
        backend.generator().set_state(new_state.clone())

    def current_allocated_memory() -> int:
        return session.armed_ledger().device(session.mps_slot).allocated

    def driver_allocated_memory() -> int:
        reserved = backend.driver_reserved_memory()
        return session.armed_ledger().device(session.mps_slot).reserved if reserved is None else reserved

    def set_per_process_memory_fraction(value: float) -> None:
        if not 0 <= value <= 2:
            raise ValueError(f"invalid fraction value: {value}; allowed range: 0~2")
        fraction["value"] = float(value)

    def empty_cache() -> None:
        session.armed_ledger().empty_cache()
        backend.empty_cache()

    functions: dict[str, Callable[..., Any]] = {
        "synchronize": lambda: backend.synchronize(),
        "manual_seed": manual_seed,
        "seed": seed,
        "get_rng_state": get_rng_state,
        "set_rng_state": set_rng_state,
        "empty_cache": empty_cache,
        "set_per_process_memory_fraction": set_per_process_memory_fraction,
        "current_allocated_memory": current_allocated_memory,
        "driver_allocated_memory": driver_allocated_memory,
        "recommended_max_memory": lambda: backend.total_memory(),
    }
    out = [emulated(session, name, fn, source="mps") for name, fn in functions.items() if hasattr(mps, name)]
    out += [per_caller(session, "device_count", lambda: 1, source="mps")]
    if hasattr(mps, "is_available"):
        out.append(per_caller(session, "is_available", lambda: True, source="mps"))
    out.append(Patch(mps, "Event", streams.build(session, "mps")["Event"], "emulated"))
    for name in ("compile_shader", "load_metallib"):
        if hasattr(mps, name):
            why = "Metal shaders run only on Apple GPUs"
            out.append(Patch(mps, name, raiser(f"torch.mps.{name}", target, why, session, getattr(mps, name)),
                             "unemulatable"))
    backends_mps = torch.backends.mps
    out += [
        per_caller(session, "is_available", lambda: True, owner=backends_mps, source="mps"),
        per_caller(session, "is_built", lambda: True, owner=backends_mps, source="mps"),
        per_caller(session, "is_macos_or_newer", lambda major, minor: (major, minor) <= MACOS_VERSION,
                   owner=backends_mps, source="mps"),
    ]
    if hasattr(backends_mps, "is_macos13_or_newer"):
        out.append(per_caller(session, "is_macos13_or_newer", lambda minor=0: True, owner=backends_mps,
                              source="mps"))
    return out
