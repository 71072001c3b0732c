"""Device-agnostic tests: run them with ``--device=mps`` to see what a Mac would say."""

import torch
from torch import nn


def test_training_step(device):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1)).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    x = torch.randn(32, 4, device=device)
    losses = []
    for _ in range(10):
        opt.zero_grad()
        loss = model(x).pow(2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert model[0].weight.device.type == device.type


def test_float64_accumulation(device):
    x = torch.arange(10, dtype=torch.float64, device=device)
    assert x.sum().item() == 45.0


def test_svd_reconstructs(device):
    a = torch.randn(5, 3, device=device)
    u, s, vh = torch.linalg.svd(a, full_matrices=False)
    assert torch.allclose(u @ torch.diag(s) @ vh, a, atol=1e-4)


def test_where_with_a_host_condition(device):
    cond = torch.tensor(True)  # a 0-dim host tensor: torch's where moves it to the device itself
    x, y = torch.ones(2, 3, device=device), torch.zeros(2, 3, device=device)
    assert torch.where(cond, x, y).sum().item() == 6


def test_step_function(device):
    x = torch.tensor([-1.0, 0.0, 2.0], device=device)
    assert torch.heaviside(x, torch.tensor([0.5], device=device)).tolist() == [0.0, 0.5, 1.0]
