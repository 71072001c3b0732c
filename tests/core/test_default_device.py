"""``torch.set_default_device("cuda")`` and ``with torch.device("cuda"):`` build emulated tensors."""

from __future__ import annotations

import pytest
import torch

import torchdevice_core as td

CUDA0 = torch.device("cuda:0")


def test_set_default_device_cuda() -> None:
    assert torch.get_default_device() == torch.device("cpu")
    with td.redirected("cpu") as handle:
        torch.set_default_device("cuda")
        assert torch.get_default_device() == CUDA0
        x = torch.randn(3)
        assert x.is_cuda and x.device == CUDA0 and td.real_device(x).type == "cpu"
        assert torch.zeros(2, 2).is_cuda and torch.arange(3).is_cuda
        layer = torch.nn.Linear(2, 2)
        assert layer.weight.is_cuda and isinstance(layer.weight, torch.nn.Parameter)
        assert not torch.zeros(1, device="cpu").is_cuda
        assert (x + 1).is_cuda
        assert handle.record.snapshot().counts[("redirected", "torch.set_default_device")] >= 3
    assert torch.get_default_device() == torch.device("cpu")  # deactivation restores the default device
    assert type(torch.zeros(1)) is torch.Tensor


def test_device_context_manager() -> None:
    with td.redirected("cpu"):
        with torch.device("cuda"):
            assert torch.get_default_device() == CUDA0
            y = torch.ones(2)
            assert y.is_cuda
        assert torch.get_default_device() == torch.device("cpu")
        assert not torch.ones(2).is_cuda


def test_default_device_on_second_virtual_device() -> None:
    with td.redirected("cpu", device_count=2):
        with torch.device("cuda:1"):
            assert torch.empty(1).device == torch.device("cuda:1")
        torch.set_default_device("cuda")
        torch.cuda.set_device(1)
        assert torch.empty(1).device == torch.device("cuda:1")


def test_default_device_set_before_activation_is_restored() -> None:
    torch.set_default_device("meta")
    try:
        with td.redirected("cpu"):
            assert torch.zeros(1).device.type == "meta"
            torch.set_default_device("cuda")
            assert torch.zeros(1).is_cuda
        assert torch.get_default_device() == torch.device("meta")
    finally:
        torch.set_default_device(None)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the native behaviour of a machine without CUDA")
def test_default_device_cuda_without_the_library_fails() -> None:
    torch.set_default_device("cuda")
    try:
        with pytest.raises((RuntimeError, AssertionError)):
            torch.zeros(1)
    finally:
        torch.set_default_device(None)
