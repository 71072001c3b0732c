"""The reverse direction: MPS-written code (``device="mps"``, ``torch.mps.*``) on the CPU."""

from __future__ import annotations

import pytest
import torch

import torchdevice_core as td


def test_mps_code_runs_on_cpu() -> None:
    with td.redirected("cpu", source="mps") as handle:
        assert torch.backends.mps.is_available() and torch.backends.mps.is_built()
        assert torch.mps.device_count() == 1
        x = torch.randn(3, device="mps")
        assert (x.device, x.is_mps, x.is_cuda) == (torch.device("mps", 0), True, False)
        model = torch.nn.Linear(3, 1).to("mps")
        assert model.weight.is_mps and model(x).is_mps
        assert x.cpu().device.type == "cpu" and x.to("mps") is x
        assert not torch.cuda.is_available()  # only the source device is emulated
        assert handle.session.describe() == "mps -> cpu"


def test_mps_namespace_is_consistent() -> None:
    with td.redirected("cpu", source="mps"):
        torch.mps.manual_seed(3)
        a = torch.rand(4, device="mps")
        torch.mps.manual_seed(3)
        assert torch.equal(a, torch.rand(4, device="mps"))
        state = torch.mps.get_rng_state()
        b = torch.rand(4, device="mps")
        torch.mps.set_rng_state(state)
        assert torch.equal(b, torch.rand(4, device="mps"))
        before = torch.mps.current_allocated_memory()
        big = torch.empty(256, 1024, device="mps")
        assert torch.mps.current_allocated_memory() - before >= big.numel() * 4
        del big
        assert torch.mps.current_allocated_memory() == before
        assert torch.mps.recommended_max_memory() > 0
        start, end = torch.mps.Event(enable_timing=True), torch.mps.Event(enable_timing=True)
        start.record()
        end.record()
        torch.mps.synchronize()
        assert start.elapsed_time(end) >= 0
        with torch.autocast("mps", dtype=torch.float16):
            assert torch.nn.Linear(2, 2).to("mps")(torch.ones(1, 2, device="mps")).dtype == torch.float16


@pytest.mark.skipif(not hasattr(torch.mps, "compile_shader"),
                    reason=f"torch {torch.__version__} has no torch.mps.compile_shader")
def test_metal_shaders_are_refused() -> None:
    with td.redirected("cpu", source="mps"), pytest.raises(td.UnemulatableError, match=r"torch\.mps\.compile_shader"):
        torch.mps.compile_shader("kernel void f() {}")


def test_torch_internals_see_the_real_mps_answer() -> None:
    with td.redirected("cpu", source="mps"):
        namespace = {"__name__": "torch.fake_internal", "torch": torch}
        exec("answer = torch.backends.mps.is_available()", namespace)
        assert namespace["answer"] is False
        assert torch.backends.mps.is_available() is True


def test_torch_is_restored() -> None:
    before = dict(vars(torch.mps)), dict(vars(torch.backends.mps))
    with td.redirected("cpu", source="mps"):
        pass
    after = dict(vars(torch.mps)), dict(vars(torch.backends.mps))
    for old, new in zip(before, after, strict=True):
        assert old.keys() == new.keys()
        assert all(old[k] is new[k] for k in old)
