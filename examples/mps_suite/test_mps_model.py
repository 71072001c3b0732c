"""An MPS-written suite: runs on Apple silicon, and with --target-device=cpu elsewhere."""

import pytest
import torch
from torch import nn

requires_mps = pytest.mark.skipif(not torch.backends.mps.is_available(), reason="MPS not available")


@requires_mps
def test_mps_tensor_identity():
    x = torch.ones(3, device="mps")
    assert x.is_mps and x.device.type == "mps"
    assert x.cpu().device.type == "cpu"


@requires_mps
def test_training_step():
    torch.mps.manual_seed(0)
    model = nn.Linear(4, 1).to("mps")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(16, 4, device="mps")
    first = None
    for _ in range(20):
        opt.zero_grad()
        loss = (model(x) - 1).pow(2).mean()
        loss.backward()
        opt.step()
        first = first if first is not None else loss.item()
    torch.mps.synchronize()
    assert loss.item() < first


@requires_mps
def test_mps_memory_and_events():
    before = torch.mps.current_allocated_memory()
    x = torch.empty(1024, 1024, device="mps")
    assert torch.mps.current_allocated_memory() >= before + x.numel() * 4
    start, end = torch.mps.Event(enable_timing=True), torch.mps.Event(enable_timing=True)
    start.record()
    (x @ x).sum()
    end.record()
    torch.mps.synchronize()
    assert start.elapsed_time(end) >= 0


@requires_mps
def test_autocast_on_mps():
    model = nn.Linear(4, 4).to("mps")
    with torch.autocast("mps", dtype=torch.float16):
        assert model(torch.randn(2, 4, device="mps")).dtype == torch.float16
