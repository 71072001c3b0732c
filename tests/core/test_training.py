"""Autocast, GradScaler, optimizers and a whole CUDA-style training loop with checkpoint and resume."""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable, Iterator

import pytest
import torch

import torchdevice_core as td


@pytest.fixture
def handle() -> Iterator[td.Handle]:
    with td.redirected("cpu") as h:
        yield h


# ----------------------------------------------------------------------------------------------- autocast
def test_autocast_cuda_runs_linear_in_float16_on_the_target(handle: td.Handle) -> None:
    layer = torch.nn.Linear(8, 4).cuda()
    x = torch.randn(2, 8, device="cuda")
    with torch.autocast("cuda"):
        assert torch.is_autocast_enabled()
        assert torch.is_autocast_enabled("cuda")
        out = layer(x)
    assert out.dtype == torch.float16
    assert out.is_cuda
    assert layer(x).dtype == torch.float32
    assert not torch.is_autocast_enabled("cuda")
    assert ("redirected", "torch.autocast('cuda')") in handle.record.snapshot().counts


def test_autocast_explicit_and_option_dtype() -> None:
    with td.redirected("cpu", autocast_dtype=torch.bfloat16):
        layer = torch.nn.Linear(8, 4).cuda()
        x = torch.randn(2, 8, device="cuda")
        with torch.autocast("cuda"):
            assert layer(x).dtype == torch.bfloat16
        with torch.autocast("cuda", dtype=torch.float16):
            assert layer(x).dtype == torch.float16
        with torch.autocast("cuda", enabled=False):
            assert layer(x).dtype == torch.float32


def test_legacy_cuda_amp_autocast(handle: td.Handle) -> None:
    layer = torch.nn.Linear(8, 4).cuda()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        with torch.cuda.amp.autocast():
            out = layer(torch.randn(2, 8, device="cuda"))
    assert out.dtype == torch.float16


def test_autocast_cpu_is_untouched(handle: td.Handle) -> None:
    layer = torch.nn.Linear(8, 4)
    with torch.autocast("cpu"):
        assert layer(torch.randn(2, 8)).dtype == torch.bfloat16  # Note [CPU autocast defaults to bfloat16]


def _legacy_scaler() -> torch.amp.GradScaler:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.cuda.amp.GradScaler()


@pytest.mark.parametrize("make", [lambda: torch.amp.GradScaler("cuda"), lambda: torch.amp.GradScaler(),
                                  _legacy_scaler], ids=["amp-cuda", "amp-default", "cuda-amp"])
def test_grad_scaler_is_enabled_and_scales(handle: td.Handle,
                                           make: Callable[[], torch.amp.GradScaler]) -> None:
    scaler = make()
    assert scaler.is_enabled()
    loss = torch.tensor(2.0, device="cuda")
    scaled = scaler.scale(loss)
    assert scaled.item() == 2.0 * 65536.0
    assert scaled.is_cuda


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the native behaviour of a machine without CUDA")
def test_grad_scaler_natively_disables_itself_here() -> None:
    with pytest.warns(UserWarning, match="CUDA is not available"):
        scaler = torch.amp.GradScaler("cuda")
    assert not scaler.is_enabled()


def test_grad_scaler_skips_a_step_with_inf_grads_and_backs_off(handle: td.Handle) -> None:
    p = torch.nn.Parameter(torch.ones(2, device="cuda"))
    opt = torch.optim.SGD([p], lr=0.1)
    scaler = torch.amp.GradScaler("cuda", init_scale=4.0)
    scaler.scale((p * float("inf")).sum()).backward()
    scaler.step(opt)
    scaler.update()
    assert torch.equal(p.detach().cpu(), torch.ones(2))  # skipped
    assert scaler.get_scale() == 2.0
    opt.zero_grad()
    scaler.scale((p * 1.0).sum()).backward()
    scaler.step(opt)
    scaler.update()
    assert torch.allclose(p.detach().cpu(), torch.full((2,), 0.9))


# ----------------------------------------------------------------------------------------------- optimizers
@pytest.mark.parametrize("make", [lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9),
                                  lambda ps: torch.optim.Adam(ps, lr=0.05),
                                  lambda ps: torch.optim.AdamW(ps, lr=0.05)], ids=["SGD", "Adam", "AdamW"])
def test_optimizers_train_emulated_parameters(handle: td.Handle, make: Callable) -> None:
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1).cuda()
    opt = make(model.parameters())
    x = torch.randn(32, 4, device="cuda")
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]], device="cuda")
    losses = []
    for _ in range(40):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert all(p.is_cuda for p in model.parameters())
    for state in opt.state.values():
        for value in state.values():
            if isinstance(value, torch.Tensor) and value.dim() > 0:
                assert value.is_cuda


# ----------------------------------------------------------------------------------------------- the loop
def _model() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Dropout(0.1),
                               torch.nn.Linear(32, 1))


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before `optimizer.step\\(\\)`")
def test_cuda_style_training_loop_with_checkpoint_and_resume(handle: td.Handle) -> None:
    torch.manual_seed(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert device.type == "cuda"
    model = _model().to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=20, gamma=0.5)
    scaler = torch.amp.GradScaler("cuda")
    x = torch.randn(128, 8).cuda(non_blocking=True)
    y = x.sum(dim=1, keepdim=True).to(device)

    def train(steps: int) -> list[float]:
        out = []
        model.train()
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cuda"):
                pred = model(x)
            loss = torch.nn.functional.mse_loss(pred.float(), y)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            sched.step()
            torch.cuda.synchronize()
            out.append(loss.item())
        return out

    losses = train(30)
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                "scaler": scaler.state_dict(), "rng": torch.cuda.get_rng_state()}, buf)
    buf.seek(0)

    ckpt = torch.load(buf)
    model = _model().cuda()
    model.load_state_dict(ckpt["model"])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    opt.load_state_dict(ckpt["opt"])
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=20, gamma=0.5)
    sched.load_state_dict(ckpt["sched"])
    scaler = torch.amp.GradScaler("cuda")
    scaler.load_state_dict(ckpt["scaler"])
    torch.cuda.set_rng_state(ckpt["rng"])
    assert sched.last_epoch == 30
    assert all(v.is_cuda for s in opt.state.values() for v in s.values() if v.dim() > 0)

    losses += train(30)
    assert losses[-1] < 0.2 * losses[0], losses
    model.eval()
    with torch.no_grad():
        final = torch.nn.functional.mse_loss(model(x), y)
    assert final.is_cuda and final.item() < losses[0]


def test_optimizers_take_the_foreach_path_for_emulated_parameters() -> None:
    import torch.optim.optimizer as optimizer_module
    from torch.optim.optimizer import _default_to_fused_or_foreach

    supported = optimizer_module._foreach_supported_types
    with td.redirected("cpu"):
        params = list(torch.nn.Linear(4, 4).cuda().parameters())
        assert _default_to_fused_or_foreach(params, differentiable=False, use_fused=False) == (False, True)
        opt = torch.optim.Adam(params, lr=0.1)
        before = params[0].detach().clone()
        params[0].sum().backward()
        opt.step()
        assert not torch.equal(before, params[0].detach())
        assert type(opt.state[params[0]]["exp_avg"]).__name__ == "CudaTensor"
    assert optimizer_module._foreach_supported_types is supported
