"""Autocast, GradScaler, optimizers and a whole CUDA-style training loop with checkpoint and resume."""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch

import torchdevice_core as td
from torchdevice_core.tensor import EmulatedTensor


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


# ------------------------------------------------------------------------- optimizer kernels without dispatch
_KERNEL_CASES = {
    "SGD-momentum": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9),
    "SGD-momentum-single": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, foreach=False),
    "SGD-fused": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, fused=True),
    "Adam": lambda ps: torch.optim.Adam(ps, lr=0.05, amsgrad=True),
    "Adam-single": lambda ps: torch.optim.Adam(ps, lr=0.05, foreach=False),
    "Adam-fused": lambda ps: torch.optim.Adam(ps, lr=0.05, fused=True),
    "AdamW": lambda ps: torch.optim.AdamW(ps, lr=0.05, weight_decay=0.1),
    "RMSprop": lambda ps: torch.optim.RMSprop(ps, lr=0.01, momentum=0.5),
    "Adagrad": lambda ps: torch.optim.Adagrad(ps, lr=0.1),
    "NAdam": lambda ps: torch.optim.NAdam(ps, lr=0.05),
    "RAdam": lambda ps: torch.optim.RAdam(ps, lr=0.05),
    "Adamax": lambda ps: torch.optim.Adamax(ps, lr=0.05),
    "ASGD": lambda ps: torch.optim.ASGD(ps, lr=0.05),
    "Rprop": lambda ps: torch.optim.Rprop(ps, lr=0.05),
    "Adadelta": lambda ps: torch.optim.Adadelta(ps, lr=0.5),
}


def _three_steps(make: Callable, device: str) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3).to(device)
    opt = make(model.parameters())
    x = torch.randn(8, 4, device=device)
    for _ in range(3):
        opt.zero_grad()
        model(x).square().mean().backward()
        opt.step()
    return model, opt


def _state(opt: torch.optim.Optimizer) -> list[tuple[str, str, str]]:
    return [(key, type(v).__name__, str(v.device)) for s in opt.state.values() for key, v in s.items()
            if isinstance(v, torch.Tensor)]


@pytest.mark.parametrize("name", list(_KERNEL_CASES))
def test_optimizer_kernels_without_dispatch_match_the_dispatching_ones(name: str) -> None:
    from torchdevice_core.redirect.optim import kernel_targets

    native_model, _ = _three_steps(_KERNEL_CASES[name], "cpu")
    calls: list[Any] = []
    with td.redirected("cpu"):
        fast = [getattr(module, attr) for module, attr in kernel_targets()]
        for (module, attr), kernel in zip(kernel_targets(), fast, strict=True):
            setattr(module, attr, kernel.__wrapped__)  # every op of the kernel dispatches, as before
        try:
            slow_model, slow_opt = _three_steps(_KERNEL_CASES[name], "cuda")
        finally:
            for (module, attr), kernel in zip(kernel_targets(), fast, strict=True):
                setattr(module, attr, kernel)
        dispatch = vars(EmulatedTensor)["__torch_function__"]

        def counting(cls: type, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
            calls.append(func)
            return dispatch.__func__(cls, func, types, args, kwargs)

        EmulatedTensor.__torch_function__ = classmethod(counting)  # type: ignore[method-assign, assignment]
        try:
            model, opt = _three_steps(_KERNEL_CASES[name], "cuda")
        finally:
            EmulatedTensor.__torch_function__ = dispatch  # type: ignore[method-assign]
        assert _state(opt) == _state(slow_opt)  # state of the same class, on the same device
        for p, q, n in zip(model.parameters(), slow_model.parameters(), native_model.parameters(), strict=True):
            assert type(p) is type(q) and p.is_cuda
            torch.testing.assert_close(p.detach().cpu(), q.detach().cpu())
            torch.testing.assert_close(p.detach().cpu(), n.detach())
    assert any(getattr(f, "__name__", "") == "linear" for f in calls)  # the model's ops did dispatch
    # the update arithmetic did not (what a step still dispatches: _init_group's torch.is_complex checks)
    assert not [f for f in calls if getattr(f, "__name__", "").startswith(("_foreach", "_fused", "add", "mul"))]


def test_an_optimizer_kernel_given_a_real_cpu_state_tensor_still_raises_as_on_cuda(handle: td.Handle) -> None:
    model = torch.nn.Linear(4, 3).cuda()
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    model(torch.randn(2, 4, device="cuda")).sum().backward()
    opt.step()
    opt.state[model.weight]["exp_avg"] = torch.zeros(3, 4)  # a real CPU tensor
    with pytest.raises(RuntimeError, match="same device"):
        opt.step()


_TWO_GPU_OPTIMIZERS = ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "NAdam", "RAdam", "Adamax", "ASGD", "Adadelta",
                       "Rprop"]


def _train_two_layers(name: str, second: str, **options: Any) -> tuple[torch.Tensor, torch.Tensor, set[str]]:
    torch.manual_seed(0)
    a, b = torch.nn.Linear(4, 4).to("cuda:0"), torch.nn.Linear(4, 4).to(second)
    params = [*a.parameters(), *b.parameters()]
    opt = getattr(torch.optim, name)(params, lr=0.1, **(dict(momentum=0.9) if name == "SGD" else {}), **options)
    for _ in range(2):
        opt.zero_grad()
        loss = a(torch.randn(2, 4, device="cuda:0")).sum() + b(torch.randn(2, 4, device=second)).sum().to("cuda:0")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
    state = {str(v.device) for s in opt.state.values() for v in s.values() if torch.is_tensor(v) and v.dim()}
    return a.weight.detach().cpu(), b.weight.detach().cpu(), state


@pytest.mark.parametrize("options", [{}, {"foreach": False}, {"fused": True}], ids=["default", "for-loop", "fused"])
@pytest.mark.parametrize("name", _TWO_GPU_OPTIMIZERS)
def test_one_optimizer_over_two_emulated_gpus_steps_each_on_its_own(name: str, options: dict) -> None:
    # torch groups foreach tensors by real device, where both emulated GPUs are the one CPU: unsplit, the
    # foreach kernel saw cuda:0 and cuda:1 tensors in one list and raised a device mismatch CUDA never raises
    if options.get("fused") and name not in ("SGD", "Adam", "AdamW", "Adagrad"):
        pytest.skip(f"{name} has no fused implementation")
    with td.redirected("cpu", device_count=2):
        one_a, one_b, _ = _train_two_layers(name, "cuda:0", **options)
        two_a, two_b, state = _train_two_layers(name, "cuda:1", **options)
    torch.testing.assert_close(two_a, one_a)
    torch.testing.assert_close(two_b, one_b)
    assert state == {"cuda:0", "cuda:1"}  # (each parameter's state on its own device)


def test_backward_of_an_emulated_loss_reaches_torch_function_modes(handle: td.Handle) -> None:
    w = torch.randn(3, device="cuda", requires_grad=True)
    (w * 2).backward(torch.ones(3, device="cuda"))
    assert w.grad is not None and w.grad.is_cuda
    w.grad = None
    seen: list[Any] = []

    class Spy(torch.overrides.TorchFunctionMode):
        def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
            seen.append(func)
            return func(*args, **(kwargs or {}))

    with Spy():
        (w * 2).sum().backward()
    assert torch.Tensor.backward in seen
    assert w.grad is not None and w.grad.is_cuda
    torch.testing.assert_close(w.grad.cpu(), torch.full((3,), 2.0))
