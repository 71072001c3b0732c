"""A CUDA-written suite in the style of real libraries: every CUDA test is gated on torch.cuda.is_available()."""

import io

import pytest
import torch
from torch import nn

requires_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")


def make_model():
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))


def test_forward_on_every_device(device):
    model = make_model().to(device)
    out = model(torch.randn(4, 8, device=device))
    assert out.shape == (4, 1)
    assert out.device.type == device


@requires_gpu
def test_cuda_tensor_identity():
    x = torch.randn(3, device="cuda")
    assert x.is_cuda and str(x.device) == "cuda:0"
    assert not x.cpu().is_cuda


@requires_gpu
def test_amp_training_loss_falls():
    torch.manual_seed(0)
    model = make_model().cuda()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    scaler = torch.amp.GradScaler("cuda")
    x = torch.randn(64, 8, device="cuda")
    y = x.sum(dim=1, keepdim=True)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        with torch.autocast("cuda"):
            loss = nn.functional.mse_loss(model(x).float(), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


@requires_gpu
def test_checkpoint_round_trip():
    model = make_model().cuda()
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer)
    assert all(t.is_cuda for t in state.values())
    make_model().cuda().load_state_dict(state)


@requires_gpu
def test_events_and_memory():
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    before = torch.cuda.memory_allocated()
    start.record()
    x = torch.randn(256, 256, device="cuda") @ torch.randn(256, 256, device="cuda")
    end.record()
    torch.cuda.synchronize()
    assert start.elapsed_time(end) >= 0
    assert torch.cuda.memory_allocated() > before
    del x


@requires_gpu
def test_float64_reference():
    a = torch.randn(16, 16, device="cuda", dtype=torch.float64)
    assert torch.allclose(a @ torch.eye(16, device="cuda", dtype=torch.float64), a)


@requires_gpu
def test_step_function():
    x = torch.linspace(-1, 1, 5, device="cuda")
    assert torch.heaviside(x, torch.zeros(1, device="cuda")).sum().item() == 2


@requires_gpu
def test_cuda_graphs():
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        pass
