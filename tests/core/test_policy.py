"""Which device arguments are redirected, and which are left exactly as torch would treat them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch

import torchdevice_core as td


@pytest.fixture
def handle() -> Iterator[td.Handle]:
    with td.redirected("cpu") as h:
        yield h


def _redirected(h: td.Handle) -> int:
    return h.record.snapshot().total("redirected")


@pytest.mark.parametrize("device", ["cuda", "cuda:0", torch.device("cuda"), torch.device("cuda", 0), 0])
def test_source_device_spellings_are_redirected(handle: td.Handle, device: Any) -> None:
    x = torch.randn(3, device=device)
    assert td.real_device(x) == torch.device("cpu")
    assert x.device == torch.device("cuda:0")
    assert td.is_emulated(x)
    assert _redirected(handle) == 1


@pytest.mark.parametrize(
    "make",
    [
        lambda d: torch.zeros(2, device=d),
        lambda d: torch.ones(2, 2, device=d),
        lambda d: torch.full((2,), 3.0, device=d),
        lambda d: torch.arange(4, device=d),
        lambda d: torch.tensor([1.0, 2.0], device=d),
        lambda d: torch.as_tensor([1, 2], device=d),
        lambda d: torch.eye(2, device=d),
        lambda d: torch.empty(2, device=d),
        lambda d: torch.rand_like(torch.ones(2), device=d),
        lambda d: torch.randint(0, 5, (3,), device=d),
        lambda d: torch.linspace(0, 1, 5, device=d),
        lambda d: torch.ones(2).to(d),
        lambda d: torch.ones(2).to(device=d, dtype=torch.float64),
        lambda d: torch.ones(2).new_zeros(3, device=d),
        lambda d: torch.ones(2).cuda(d),
    ],
)
def test_factories_and_conversions_redirect(handle: td.Handle, make: Any) -> None:
    x = make("cuda")
    assert x.is_cuda and td.real_device(x).type == "cpu"
    assert _redirected(handle) == 1


def test_meta_and_explicit_cpu_are_untouched(handle: td.Handle) -> None:
    meta = torch.randn(3, device="meta")
    cpu = torch.randn(3, device="cpu")
    cpu_dev = torch.zeros(3, device=torch.device("cpu"))
    moved = torch.ones(2).to("meta")
    for t, kind in ((meta, "meta"), (cpu, "cpu"), (cpu_dev, "cpu"), (moved, "meta")):
        assert type(t) is torch.Tensor
        assert t.device.type == kind
        assert not t.is_cuda
    assert _redirected(handle) == 0


def test_dtype_conversions_are_untouched(handle: td.Handle) -> None:
    model = torch.nn.Linear(2, 2).to(torch.float64)
    assert type(model.weight) is torch.nn.Parameter
    assert model.weight.dtype == torch.float64 and model.weight.device.type == "cpu"
    half = torch.ones(2).to(torch.float16)
    assert type(half) is torch.Tensor and half.dtype == torch.float16
    assert type(torch.ones(2).double()) is torch.Tensor
    assert _redirected(handle) == 0


def test_distribution_sampling_is_untouched(handle: td.Handle) -> None:
    plain = torch.distributions.Normal(torch.zeros(3), torch.ones(3)).sample((2,))
    assert type(plain) is torch.Tensor and plain.shape == (2, 3)
    cat = torch.distributions.Categorical(probs=torch.tensor([0.5, 0.5])).sample()
    assert type(cat) is torch.Tensor
    assert _redirected(handle) == 0
    # distributions built from emulated tensors sample emulated tensors, as they would on CUDA
    normal = torch.distributions.Normal(torch.zeros(3, device="cuda"), torch.ones(3, device="cuda"))
    emulated = normal.sample()
    assert emulated.is_cuda


def _native_error(fn: Any) -> str:
    with pytest.raises(Exception) as info:
        fn()
    return f"{type(info.value).__name__}: {info.value}"


@pytest.mark.parametrize("bad", ["cdua", "gpu", "cuda:x", "cuda0"])
def test_unknown_device_strings_raise_torchs_own_error(bad: str) -> None:
    native = _native_error(lambda: torch.randn(2, device=bad))
    native_to = _native_error(lambda: torch.ones(2).to(bad))
    with td.redirected("cpu") as h:
        assert _native_error(lambda: torch.randn(2, device=bad)) == native
        assert _native_error(lambda: torch.ones(2).to(bad)) == native_to
        assert _redirected(h) == 0


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="needs a machine without MPS")
def test_other_devices_are_not_redirected() -> None:
    native = _native_error(lambda: torch.ones(2, device="mps"))
    with td.redirected("cpu") as h:
        assert _native_error(lambda: torch.ones(2, device="mps")) == native
        assert _redirected(h) == 0


def test_cuda_1_is_an_invalid_ordinal_with_one_device(handle: td.Handle) -> None:
    for make in (lambda: torch.randn(2, device="cuda:1"), lambda: torch.ones(2).to("cuda:1"),
                 lambda: torch.ones(2).cuda(1), lambda: torch.randn(2, device="cuda").to("cuda:1")):
        with pytest.raises(RuntimeError, match="invalid device ordinal"):
            make()
    with pytest.raises(RuntimeError, match="invalid device ordinal"):
        torch.cuda.set_device(1)


def test_device_count_two_makes_cuda_1_valid_and_reported() -> None:
    with td.redirected("cpu", device_count=2):
        assert torch.cuda.device_count() == 2
        x = torch.randn(2, device="cuda:1")
        assert x.device == torch.device("cuda:1") and str(x.device) == "cuda:1"
        assert x.get_device() == 1
        y = torch.ones(2).to(1)
        assert y.device == torch.device("cuda", 1)
        z = x.to("cuda:0")
        assert z.device == torch.device("cuda:0") and z is not x
        with pytest.raises(RuntimeError, match="same device"):
            x + z
        with pytest.raises(RuntimeError, match="invalid device ordinal"):
            torch.randn(1, device="cuda:2")


def test_bool_is_not_a_device_index(handle: td.Handle) -> None:
    assert handle.session.resolve(True) is None
    assert handle.session.resolve(0) == 0
    assert handle.session.resolve("cpu") is None


def test_identity_off_keeps_redirecting_but_reports_the_target() -> None:
    with td.redirected("cpu", emulate_identity=False) as h:
        x = torch.randn(2, device="cuda")
        assert type(x) is torch.Tensor
        assert x.device == torch.device("cpu") and not x.is_cuda
        assert torch.cuda.is_available()
        assert (x + torch.ones(2)).device.type == "cpu"  # nothing to check against: all tensors are cpu
        model = torch.nn.Linear(2, 2).cuda()
        assert type(model.weight) is torch.nn.Parameter
        assert _redirected(h) == 3  # randn and the two parameters


def test_device_checks_off() -> None:
    with td.redirected("cpu", device_checks=False):
        x = torch.randn(3, device="cuda")
        y = x + torch.ones(3)
        assert y.is_cuda
        assert torch.cat([x, torch.ones(3)]).shape == (6,)


def test_pinned_host_buffers_next_to_emulated_tensors() -> None:
    """Offloading code: ``torch.empty_like(p_cuda, device="cpu", pin_memory=True)`` works on a CUDA machine."""
    with td.redirected("cpu") as handle:
        p = torch.randn(4, device="cuda")
        buffer = torch.empty_like(p, device="cpu", pin_memory=True)
        assert buffer.device.type == "cpu" and not buffer.is_cuda
        assert torch.zeros(3, pin_memory=True).device.type == "cpu"
        assert handle.record.snapshot().counts[("emulated", "torch.empty_like(pin_memory=True)")] == 1
