"""The hot path's shortcuts (Note [the hot path's shortcuts] in docs/notes.md): each skips work only where the
skipped work could not have changed the answer, so every case where it could is tested here to still get
torch's (or the device check's) answer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch
import torch.nn.functional as F
import torch.overrides

import torchdevice_core as td
from torchdevice_core.redirect import overrides
from torchdevice_core.tensor import EmulatedTensor

MISMATCH = "Expected all tensors to be on the same device"


@pytest.fixture
def handle() -> Iterator[td.Handle]:
    with td.redirected("cpu") as h:
        yield h


# ------------------------------------------------------------------------------------- device checks kept
@pytest.mark.parametrize("call", [
    pytest.param(lambda e, c: torch.add(e, c), id="positional"),
    pytest.param(lambda e, c: torch.add(e, e, out=c), id="out-keyword"),
    pytest.param(lambda e, c: torch.cat([e, c]), id="in-a-list"),
    pytest.param(lambda e, c: F.relu(e) + c, id="after-a-python-functional"),
    pytest.param(lambda e, c: F.mse_loss(e, c), id="python-functional-itself"),
])
def test_a_real_cpu_tensor_beside_an_emulated_one_still_raises(handle: td.Handle, call: Any) -> None:
    emulated, real = torch.ones(3, device="cuda"), torch.ones(3)
    with pytest.raises(RuntimeError, match=MISMATCH):
        call(emulated, real)


def test_another_virtual_device_still_raises() -> None:
    with td.redirected("cpu", device_count=2):
        a, b = torch.ones(3, device="cuda:0"), torch.ones(3, device="cuda:1")
        with pytest.raises(RuntimeError, match=MISMATCH):
            a + b
        with pytest.raises(RuntimeError, match=MISMATCH):
            F.mse_loss(a, b)  # (the functional's shortcut needs one virtual device: this takes torch's path)


def test_a_zero_dim_cpu_tensor_is_still_accepted(handle: td.Handle) -> None:
    out = torch.ones(3, device="cuda") * torch.tensor(2.0)
    assert out.device == torch.device("cuda", 0)
    assert out.tolist() == [2.0, 2.0, 2.0]


def test_a_plain_argument_handed_back_stays_plain() -> None:
    with td.redirected("cpu", device_checks=False):
        real = torch.ones(3)
        out = real.add_(torch.ones(3, device="cuda"))  # in place on the plain tensor: its own object back
        assert out is real
        assert type(out) is torch.Tensor


def test_ops_on_one_devices_tensors_and_plain_values_give_emulated_results(handle: td.Handle) -> None:
    p = torch.nn.Parameter(torch.ones(2, 2, device="cuda"))
    x = torch.ones(2, 2, device="cuda")
    for out in (x @ p, torch.clamp(x, min=0.5, max=None), x.view(torch.Size([4])), x[..., 0:1], x.to(torch.float64)):
        assert isinstance(out, EmulatedTensor)
        assert out.device == torch.device("cuda", 0)


# ------------------------------------------------------------------------------------- Python functionals
def test_python_functionals_skip_torchs_argument_sort(handle: td.Handle, monkeypatch: pytest.MonkeyPatch) -> None:
    sorted_calls: list[Any] = []
    original = torch.overrides._get_overloaded_args

    def counting(*args: Any, **kwargs: Any) -> Any:
        sorted_calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(torch.overrides, "_get_overloaded_args", counting)
    x = torch.randn(4, 5, device="cuda")
    y = torch.randint(0, 5, (4,), device="cuda")
    loss = F.cross_entropy(F.relu(x), y)
    assert isinstance(loss, EmulatedTensor)
    assert not sorted_calls
    F.relu(torch.randn(3))  # (a plain tensor never reaches handle_torch_function at all)
    assert not sorted_calls


def test_another_subclass_beside_an_emulated_tensor_takes_torchs_path(handle: td.Handle,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []

    class Tagged(torch.Tensor):
        @classmethod
        def __torch_function__(cls, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            seen.append(func)
            return super().__torch_function__(func, types, args, kwargs)

    sorted_calls: list[Any] = []
    original = torch.overrides._get_overloaded_args
    monkeypatch.setattr(torch.overrides, "_get_overloaded_args",
                        lambda *a, **k: sorted_calls.append(a) or original(*a, **k))
    tagged = torch.zeros(3).as_subclass(Tagged)
    F.mse_loss(tagged, torch.zeros(3, device="cuda"))
    assert sorted_calls  # torch's own handle_torch_function ran: the first argument's class was asked first
    assert F.mse_loss in seen


def test_a_torch_function_mode_still_sees_python_functionals(handle: td.Handle) -> None:
    seen: list[Any] = []

    class Recording(torch.overrides.TorchFunctionMode):
        def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            seen.append(func)
            return func(*args, **(kwargs or {}))

    x = torch.randn(3, device="cuda")
    with Recording():
        out = F.relu(x)
    assert F.relu in seen
    assert out.device == torch.device("cuda", 0)


def test_functional_modules_are_restored_and_untouched_without_identity() -> None:
    originals = {name: vars(__import__(name, fromlist=["_"]))["handle_torch_function"] for name in overrides.CALLERS}
    assert all(f is torch.overrides.handle_torch_function for f in originals.values())
    with td.redirected("cpu"):
        assert F.handle_torch_function is overrides.handle_torch_function  # type: ignore[attr-defined]
    with td.redirected("cpu", emulate_identity=False):
        assert F.handle_torch_function is torch.overrides.handle_torch_function  # type: ignore[attr-defined]
    for name, f in originals.items():
        assert vars(__import__(name, fromlist=["_"]))["handle_torch_function"] is f


def test_the_shortcut_gives_what_torchs_handle_torch_function_gives(handle: td.Handle) -> None:
    x = torch.randn(4, 6, device="cuda")
    fast = F.layer_norm(x, (6,))
    slow = torch.overrides.handle_torch_function(F.layer_norm, (x,), x, (6,))
    assert type(fast) is type(slow)
    torch.testing.assert_close(fast, slow)
    parts = torch.functional.split(x, 2)  # torch.functional: a tuple of emulated results
    assert all(isinstance(p, EmulatedTensor) for p in parts)


# ----------------------------------------------------------------------------------------- optimizer kernels
def test_sgd_with_momentum_over_two_virtual_devices_keeps_each_devices_class() -> None:
    with td.redirected("cpu", device_count=2):
        a = torch.nn.Parameter(torch.ones(3, device="cuda:0"))
        b = torch.nn.Parameter(torch.ones(3, device="cuda:1"))
        opt = torch.optim.SGD([a, b], lr=0.1, momentum=0.9)
        for _ in range(2):
            opt.zero_grad()
            (a.sum() + b.sum().to("cuda:0")).backward()
            opt.step()
        assert opt.state[a]["momentum_buffer"].device == torch.device("cuda", 0)
        assert opt.state[b]["momentum_buffer"].device == torch.device("cuda", 1)
        torch.testing.assert_close(a.detach().cpu(), torch.full((3,), 1 - 0.1 - 0.19))


def test_adam_runs_its_kernel_beside_its_cpu_step_count_and_keeps_the_state_emulated(handle: td.Handle) -> None:
    p = torch.nn.Parameter(torch.ones(3, device="cuda"))
    opt = torch.optim.Adam([p], lr=0.1)
    p.sum().backward()
    opt.step()
    state = opt.state[p]
    assert type(state["step"]) is torch.Tensor and state["step"].dim() == 0  # on the CPU, as on CUDA
    assert state["exp_avg"].device == torch.device("cuda", 0)
    assert p.device == torch.device("cuda", 0)
    torch.testing.assert_close(p.detach().cpu(), torch.full((3,), 0.9))


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_foreach_over_an_emulated_and_a_real_cpu_parameter_groups_per_device_as_cuda_does(
        handle: td.Handle, momentum: float) -> None:
    emulated = torch.nn.Parameter(torch.ones(3, device="cuda"))
    real = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([emulated, real], lr=0.1, momentum=momentum, foreach=True)
    for _ in range(2):
        opt.zero_grad()
        (emulated.sum() + real.sum().to("cuda")).backward()
        opt.step()  # CUDA: one foreach group per device; torch alone sees both on the CPU, in one group
    expected = 1 - 0.2 if momentum == 0 else 1 - 0.1 - 0.19
    torch.testing.assert_close(emulated.detach().cpu(), torch.full((3,), expected))
    torch.testing.assert_close(real.detach(), torch.full((3,), expected))
    assert emulated.device == torch.device("cuda", 0) and type(real) is torch.nn.Parameter
    if momentum:
        assert opt.state[emulated]["momentum_buffer"].device == torch.device("cuda", 0)
        assert type(opt.state[real]["momentum_buffer"]) is torch.Tensor
