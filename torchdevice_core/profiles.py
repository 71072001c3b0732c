"""Device profiles: one coherent emulated GPU (``Options.profile`` / ``--torchdevice-profile=NAME``).

Capability-gated tests (``skipIf(capability < (8, 0))``, flash-attention paths) and expected-value tables
keyed by ``(device name, major)`` need every answer to describe the same GPU: name, capability, memory,
SM count, bf16/TF32 support and the arch list move together.  Figures are the public specifications of
each board (memory as ``total_memory`` reports it: the usable bytes, slightly under the nominal size).
"""

from __future__ import annotations

from .records import Record

GiB = 1024**3
MiB = 1024**2


class DeviceProfile(Record):
    name: str
    capability: tuple[int, int]
    total_memory: int
    multi_processor_count: int
    bf16: bool
    """Native bfloat16 (sm_80+); older boards still run bf16 tensors through emulation."""
    tf32: bool
    l2_cache_size: int

    @property
    def arch_list(self) -> list[str]:
        major, minor = self.capability
        return [f"sm_{major}{minor}"]

    def describe(self) -> str:
        return f"{self.name}, sm_{self.capability[0]}{self.capability[1]}, {self.total_memory / GiB:.0f} GiB"


PROFILES: dict[str, DeviceProfile] = {
    "a100": DeviceProfile("NVIDIA A100-SXM4-80GB", (8, 0), 81050 * MiB, 108, True, True, 40 * MiB),
    "h100": DeviceProfile("NVIDIA H100 80GB HBM3", (9, 0), 81559 * MiB, 132, True, True, 50 * MiB),
    "l4": DeviceProfile("NVIDIA L4", (8, 9), 22478 * MiB, 58, True, True, 48 * MiB),
    "t4": DeviceProfile("Tesla T4", (7, 5), 14930 * MiB, 40, False, False, 4 * MiB),
    "v100": DeviceProfile("Tesla V100-SXM2-16GB", (7, 0), 16151 * MiB, 80, False, False, 6 * MiB),
}


def profile_choices() -> str:
    return ", ".join(PROFILES)


def get_profile(name: str | None) -> DeviceProfile | None:
    """The profile called ``name`` (case-insensitive), None for None; ``ValueError`` naming the choices."""
    if name is None:
        return None
    profile = PROFILES.get(name.strip().lower())
    if profile is None:
        raise ValueError(f"profile={name!r} is not a device profile; valid choices: {profile_choices()}")
    return profile
