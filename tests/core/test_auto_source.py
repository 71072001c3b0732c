"""``source="auto"``: cuda and mps requests are both redirected, each tensor reports what it asked for."""

from __future__ import annotations

import pytest
import torch

import torchdevice_core as td
from torchdevice_core.session import redirected_sources


def test_auto_redirects_every_source_but_the_target() -> None:
    assert redirected_sources("auto", "cpu") == ("cuda", "mps")
    assert redirected_sources("auto", "cuda") == ("mps",)  # cuda stays native on a GPU runner
    assert redirected_sources("auto", "mps") == ("cuda",)  # mps stays native on a Mac
    assert redirected_sources("cuda", "cpu") == ("cuda",)


def test_each_tensor_reports_the_device_it_asked_for() -> None:
    with td.redirected("cpu", source="auto") as handle:
        a, b = torch.ones(2, device="cuda"), torch.ones(2, device="mps")
        assert (str(a.device), a.is_cuda, a.is_mps) == ("cuda:0", True, False)
        assert (str(b.device), b.is_mps, b.is_cuda, b.get_device()) == ("mps:0", True, False, 0)
        assert (a + a).is_cuda and (b * 2).is_mps
        assert b.to("cuda").is_cuda and a.to("mps").is_mps and b.cuda().is_cuda
        assert torch.nn.Linear(2, 2).to("mps").weight.is_mps
        with pytest.raises(RuntimeError, match="cuda:0 and mps:0"):
            a + b  # two devices, as on a machine that had both
        assert handle.session.describe() == "cuda, mps -> cpu"
        assert handle.record.snapshot().sources() == ["cuda", "mps"]


def test_both_namespaces_are_emulated() -> None:
    with td.redirected("cpu", source="auto"):
        assert torch.cuda.is_available() and torch.backends.mps.is_available()
        assert torch.mps.device_count() == 1 and torch.cuda.device_count() == 1
        before = torch.mps.current_allocated_memory()
        x = torch.empty(1024, device="mps")
        assert torch.mps.current_allocated_memory() - before >= x.numel() * 4
        torch.cuda.synchronize()
        torch.mps.synchronize()
        # one function object per patched name: dynamo refuses the same object under two names
        assert torch.cuda.synchronize is not torch.mps.synchronize
        assert torch.cuda.Event is not torch.mps.Event


def test_optimizer_step_and_compile_under_auto() -> None:
    with td.redirected("cpu", source="auto"):
        model = torch.nn.Linear(4, 1).to("mps")
        opt = torch.optim.Adam(model.parameters())
        model(torch.randn(3, 4, device="mps")).sum().backward()
        opt.step()
        compiled = torch.compile(lambda t: (t * 2).sin(), backend="eager")
        assert compiled(torch.randn(2, device="mps")).is_mps
        assert compiled(torch.randn(2, device="cuda")).is_cuda


def test_an_explicit_source_restricts_it() -> None:
    with td.redirected("cpu", source="cuda"):
        assert not torch.backends.mps.is_available()
        with pytest.raises((RuntimeError, NotImplementedError)):
            torch.ones(1, device="mps")  # not redirected: torch's own error on a machine without MPS
    with td.redirected("cpu", source="mps"):
        assert not torch.cuda.is_available()


def test_torch_is_restored_after_auto() -> None:
    owners = (torch, torch.cuda, torch.mps, torch.backends.mps, torch.Tensor)
    before = [dict(vars(o)) for o in owners]
    with td.redirected("cpu", source="auto"):
        torch.ones(1, device="mps") + 1
    for old, owner in zip(before, owners, strict=True):
        new = dict(vars(owner))
        assert old.keys() == new.keys()
        assert all(old[k] is new[k] for k in old)
