"""Target specs: parsing is pure, resolution asks a HardwareProbe what the machine has."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

import torchdevice_core as td
from torchdevice_core.spec import RealProbe, available_devices, parse_source


@dataclass
class FakeProbe:
    """A machine description for the selection logic (a plain value, not a mock of torch)."""

    cuda: int = 0
    mps: bool = False

    def cuda_device_count(self) -> int:
        return self.cuda

    def mps_available(self) -> bool:
        return self.mps


@pytest.mark.parametrize(
    ("given", "expected"),
    [("cpu", "cpu"), ("CPU", "cpu"), (" mps ", "mps"), ("cuda", "cuda"), ("cuda:0", "cuda:0"),
     ("CUDA:12", "cuda:12"), ("auto", "auto")],
)
def test_parse_target_normalises_valid_specs(given: str, expected: str) -> None:
    assert td.parse_target(given) == expected


@pytest.mark.parametrize("bad", ["gpu", "cpu:0", "mps:1", "auto:0", "", "   ", "cuda:", "cuda:-1", "cuda:x",
                                 "cuda:0:1", "cuda 0"])
def test_parse_target_rejects_malformed_specs_naming_value_and_choices(bad: str) -> None:
    with pytest.raises(td.TargetSpecError) as info:
        td.parse_target(bad)
    message = str(info.value)
    assert repr(bad) in message
    assert td.TARGET_CHOICES in message
    assert info.value.value == bad
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("bad", [None, 0, 1.5, torch.device("cpu")])
def test_parse_target_rejects_non_strings(bad: object) -> None:
    with pytest.raises(td.TargetSpecError, match="valid choices"):
        td.parse_target(bad)  # type: ignore[arg-type]


def test_spec_error_names_where_the_value_came_from() -> None:
    with pytest.raises(td.TargetSpecError, match=r"PYTEST_TARGET_DEVICE='tpu' is not a valid target device"):
        td.parse_target("tpu", source="PYTEST_TARGET_DEVICE")


def test_parse_source() -> None:
    assert parse_source(" CUDA") == "cuda"
    assert parse_source("mps") == "mps"
    with pytest.raises(td.TargetSpecError, match="cuda, mps"):
        parse_source("cpu")


@pytest.mark.parametrize(
    ("probe", "spec", "device"),
    [
        (FakeProbe(cuda=2, mps=True), "auto", torch.device("cuda", 0)),
        (FakeProbe(cuda=0, mps=True), "auto", torch.device("mps")),
        (FakeProbe(cuda=0, mps=False), "auto", torch.device("cpu")),
        (FakeProbe(cuda=2), "cuda", torch.device("cuda", 0)),
        (FakeProbe(cuda=2), "cuda:1", torch.device("cuda", 1)),
        (FakeProbe(mps=True), "mps", torch.device("mps")),
        (FakeProbe(), "cpu", torch.device("cpu")),
    ],
)
def test_resolve_target_with_probe(probe: FakeProbe, spec: str, device: torch.device) -> None:
    target = td.resolve_target(spec, probe)
    assert target.device == device
    assert target.spec == spec
    assert target.type == device.type
    assert str(target) == str(device)


@pytest.mark.parametrize(
    ("probe", "spec", "available"),
    [
        (FakeProbe(cuda=2), "cuda:2", ["cpu", "cuda:0", "cuda:1"]),
        (FakeProbe(cuda=0, mps=True), "cuda", ["cpu", "mps"]),
        (FakeProbe(cuda=1), "mps", ["cpu", "cuda:0"]),
    ],
)
def test_resolve_target_unavailable_lists_what_is_available(probe: FakeProbe, spec: str,
                                                            available: list[str]) -> None:
    with pytest.raises(td.TargetUnavailableError) as info:
        td.resolve_target(spec, probe)
    assert info.value.available == available
    assert info.value.target == spec
    assert f"available: {', '.join(available)}" in str(info.value)
    assert isinstance(info.value, RuntimeError)


def test_resolve_target_parses_before_probing() -> None:
    with pytest.raises(td.TargetSpecError):
        td.resolve_target("gpu", FakeProbe(cuda=4))


def test_available_devices_with_probe() -> None:
    assert available_devices(FakeProbe(cuda=2, mps=True)) == ["cpu", "mps", "cuda:0", "cuda:1"]
    assert available_devices(FakeProbe()) == ["cpu"]


# ------------------------------------------------------------------------------ this machine (no GPU, no MPS)
needs_cpu_only_machine = pytest.mark.skipif(
    RealProbe().cuda_device_count() > 0 or RealProbe().mps_available(),
    reason="checks the error on a machine without CUDA and MPS",
)


@needs_cpu_only_machine
@pytest.mark.parametrize("spec", ["mps", "cuda:1", "cuda"])
def test_unavailable_targets_on_this_machine(spec: str) -> None:
    with pytest.raises(td.TargetUnavailableError) as info:
        td.activate(spec)
    assert info.value.available == ["cpu"]
    assert "available: cpu" in str(info.value)
    assert td.active() is None


@needs_cpu_only_machine
def test_auto_resolves_to_cpu_here() -> None:
    assert td.resolve_target("auto").device == torch.device("cpu")
    with td.redirected("auto") as handle:
        assert handle.target.device == torch.device("cpu")
        assert torch.randn(2, device="cuda").is_cuda


def test_real_probe_is_not_fooled_by_the_emulation() -> None:
    before = (RealProbe().cuda_device_count(), RealProbe().mps_available())
    with td.redirected("cpu", device_count=3):
        assert torch.cuda.device_count() == 3
        assert (RealProbe().cuda_device_count(), RealProbe().mps_available()) == before
        assert td.resolve_target("auto").device == td.resolve_target("auto", FakeProbe(*before)).device


def test_registered_targets_parse_resolve_and_activate() -> None:
    from torchdevice_core.backends import CpuBackend

    made: list[int | None] = []

    def make_backend(index: int | None) -> CpuBackend:
        made.append(index)
        return CpuBackend()

    td.register_target("fakegpu", make_backend)
    try:
        assert td.parse_target(" FakeGPU:2 ") == "fakegpu:2"
        assert "fakegpu" in td.available_devices()
        with pytest.raises(td.TargetSpecError, match="fakegpu, fakegpu:N"):
            td.parse_target("fakegpuu")
        with td.redirected("fakegpu:1") as handle:
            assert handle.session.describe() == "cuda -> fakegpu:1 (cpu)"
            assert torch.ones(1, device="cuda").is_cuda
        assert made == [1]  # built once: backend_for hands on the backend resolve_target made
        td.register_target("sleepy", make_backend, is_available=lambda: False)
        with pytest.raises(td.TargetUnavailableError, match="sleepy"):
            td.resolve_target("sleepy")
    finally:
        td.unregister_target("fakegpu")
        td.unregister_target("sleepy")
    with pytest.raises(td.TargetSpecError):
        td.parse_target("fakegpu")
    for bad in ("cuda", "CPU", "9x", ""):
        with pytest.raises(ValueError, match="cannot be registered"):
            td.register_target(bad, make_backend)
