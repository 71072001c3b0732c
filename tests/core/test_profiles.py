"""Device profiles: every answer about the emulated GPU describes the same board."""

from __future__ import annotations

import pytest
import torch

import torchdevice_core as td
from torchdevice_core.profiles import PROFILES


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_a_profile_answers_consistently(name: str) -> None:
    profile = PROFILES[name]
    with td.redirected("cpu", profile=name):
        props = torch.cuda.get_device_properties(0)
        assert props.name == torch.cuda.get_device_name() == profile.name
        assert (props.major, props.minor) == torch.cuda.get_device_capability() == profile.capability
        assert props.total_memory == profile.total_memory == torch.cuda.mem_get_info()[1]
        assert torch.accelerator.get_memory_info()[1] == profile.total_memory
        assert props.multi_processor_count == profile.multi_processor_count
        assert props.L2_cache_size == profile.l2_cache_size
        assert torch.cuda.get_arch_list() == [f"sm_{profile.capability[0]}{profile.capability[1]}"]
        assert torch.cuda.is_bf16_supported(including_emulation=False) is profile.bf16
        assert torch.cuda.is_bf16_supported() is True  # bf16 tensors run on every board, emulated on old ones
        assert torch.cuda.is_tf32_supported() is profile.tf32
        free, total = torch.cuda.mem_get_info()
        assert 0 < free <= total


def test_free_memory_shrinks_with_what_is_allocated() -> None:
    with td.redirected("cpu", profile="t4"):
        before = torch.cuda.mem_get_info()[0]
        x = torch.empty(256 * 1024 * 1024, dtype=torch.uint8, device="cuda")
        assert torch.cuda.mem_get_info()[0] <= before - x.numel() or before < PROFILES["t4"].total_memory
        del x


def test_default_is_unchanged() -> None:
    with td.redirected("cpu") as handle:
        assert handle.session.profile is None
        assert torch.cuda.get_device_capability() == (8, 0)
        assert torch.cuda.get_arch_list() == ["sm_80"]
        assert torch.cuda.get_device_properties(0).total_memory == handle.session.backend.total_memory()


def test_a_capability_gate_sees_the_profile() -> None:
    with td.redirected("cpu", profile="t4"):
        assert torch.cuda.get_device_capability() < (8, 0)
    with td.redirected("cpu", profile="H100"):
        assert torch.cuda.get_device_capability() >= (9, 0)


def test_unknown_profile_names_the_choices() -> None:
    with pytest.raises(ValueError, match="valid choices: a100, h100, l4, t4, v100"):
        td.activate("cpu", profile="rtx9090")
    assert td.active() is None
