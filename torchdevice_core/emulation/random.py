"""The source device's RNG, served by the target's default generator.

On a CPU target the emulated CUDA generator *is* ``torch.default_generator``: every random op on a
redirected tensor (dropout included) draws from it, so ``get_rng_state``/``set_rng_state`` round trips and
``manual_seed`` reproducibility hold for all of them; the price is that seeding CUDA also seeds the CPU.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..patching import Patch
from ..session import Redirection
from .answers import emulated, namespace


def patches(session: Redirection) -> list[Patch]:
    if session.backend is None:
        return []
    backend = session.backend
    count = session.options.device_count

    def manual_seed(seed: int) -> None:
        backend.manual_seed(int(seed))  # never torch.manual_seed: it calls manual_seed_all back

    def seed() -> None:
        backend.seed()

    def initial_seed() -> int:
        return int(backend.generator().initial_seed())

    def get_rng_state(device: Any = "cuda") -> torch.Tensor:
        session.index_of(device)
        return backend.generator().get_state()

    def set_rng_state(new_state: torch.Tensor, device: Any = "cuda") -> None:
        session.index_of(device)
        backend.generator().set_state(new_state.clone() if new_state.device.type == "cpu" else new_state.cpu())

    def get_rng_state_all() -> list[torch.Tensor]:
        return [backend.generator().get_state() for _ in range(count)]

    def set_rng_state_all(new_states: Any) -> None:
        for state in new_states:
            set_rng_state(state)

    functions: dict[str, Callable[..., Any]] = {
        "manual_seed": manual_seed,
        "manual_seed_all": manual_seed,
        "seed": seed,
        "seed_all": seed,
        "initial_seed": initial_seed,
        "get_rng_state": get_rng_state,
        "set_rng_state": set_rng_state,
        "get_rng_state_all": get_rng_state_all,
        "set_rng_state_all": set_rng_state_all,
    }
    out = [emulated(session, name, fn) for name, fn in functions.items()]
    generators = tuple(backend.generator() for _ in range(count))
    out.append(Patch(namespace(session), "default_generators", generators, "emulated"))
    return out
