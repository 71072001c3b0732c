"""Redirected tensors present themselves as CUDA tensors, and behave like them where it shows."""

from __future__ import annotations

import copy
import io
import pickle
from collections.abc import Iterator

import pytest
import torch

import torchdevice_core as td

CUDA0 = torch.device("cuda:0")


@pytest.fixture(autouse=True)
def _active() -> Iterator[td.Handle]:
    with td.redirected("cpu") as h:
        yield h


# ------------------------------------------------------------------------------------------ what it says
def test_reports_cuda_device() -> None:
    x = torch.randn(3, device="cuda")
    assert x.device == CUDA0
    assert x.device.type == "cuda" and x.device.index == 0
    assert str(x.device) == "cuda:0"
    assert x.is_cuda and not x.is_cpu and not x.is_mps
    assert x.get_device() == 0
    assert x.type() == "torch.cuda.FloatTensor"
    assert torch.randn(2, device="cuda", dtype=torch.float16).type() == "torch.cuda.HalfTensor"
    assert isinstance(x, torch.cuda.FloatTensor)
    assert not isinstance(x, torch.cuda.DoubleTensor)
    assert not isinstance(torch.ones(2), torch.cuda.FloatTensor)
    assert isinstance(torch.arange(3, device="cuda"), torch.cuda.LongTensor)
    assert td.real_device(x) == torch.device("cpu")
    assert isinstance(x, td.EmulatedTensor) and isinstance(x, torch.Tensor)


def test_repr_shows_cuda_device() -> None:
    x = torch.tensor([1.0, 2.0], device="cuda")
    assert repr(x) == "tensor([1., 2.], device='cuda:0')"
    assert "CudaTensor" not in repr(x)
    w = torch.nn.Linear(1, 1).cuda().weight
    assert repr(w).startswith("Parameter containing:\ntensor(")
    assert "device='cuda:0', requires_grad=True" in repr(w)


def test_plain_cpu_tensors_are_untouched() -> None:
    y = torch.ones(3)
    assert type(y) is torch.Tensor
    assert not y.is_cuda and y.device == torch.device("cpu")
    assert type(y + y) is torch.Tensor


# ------------------------------------------------------------------------------------------ moving back
@pytest.mark.parametrize("back", [lambda t: t.cpu(), lambda t: t.to("cpu"),
                                  lambda t: t.to(torch.device("cpu")),
                                  lambda t: t.to(device="cpu", dtype=torch.float32)])
def test_moving_to_cpu_gives_a_plain_copy(back: object) -> None:
    x = torch.zeros(3, device="cuda")
    y = back(x)  # type: ignore[operator]
    assert type(y) is torch.Tensor
    assert y.device == torch.device("cpu") and not y.is_cuda
    y[0] = 5.0
    assert x[0].item() == 0.0  # a real device->host transfer copies


@pytest.mark.parametrize("forth", [lambda t: t.cuda(), lambda t: t.to("cuda"), lambda t: t.to(0),
                                   lambda t: t.type(torch.cuda.FloatTensor)])
def test_moving_to_cuda_gives_a_copy(forth: object) -> None:
    host = torch.zeros(3)
    dev = forth(host)  # type: ignore[operator]
    assert dev.is_cuda
    dev[0] = 5.0
    assert host[0].item() == 0.0  # STYLE fact 13: natively on CPU this would be the same tensor


def test_same_device_moves_return_self_as_on_cuda() -> None:
    x = torch.ones(2, device="cuda")
    assert x.cuda() is x
    assert x.to("cuda") is x
    assert x.to("cuda:0", torch.float32) is x
    assert x.to(torch.float64).is_cuda and x.to(torch.float64).dtype == torch.float64


# ------------------------------------------------------------------------------------------ ops
def test_results_of_ops_stay_emulated() -> None:
    x = torch.randn(4, 4, device="cuda")
    results = [x + 1, x @ x, x.sum(), torch.relu(x), x[0], x.t(), x.view(16), torch.cat([x, x]),
               torch.nn.functional.softmax(x, dim=0), x.detach(), x.clone(), x.data, torch.zeros_like(x),
               x.new_ones(2), x.max(0).values, torch.where(x > 0)[0], torch.stack([x, x])]
    for r in results:
        assert r.is_cuda and r.device == CUDA0, r
        assert td.is_emulated(r)
    values, indices = torch.sort(x, dim=1)
    assert values.is_cuda and indices.is_cuda
    assert isinstance(x.sum().item(), float)
    assert x.tolist() == x.cpu().tolist()


def test_result_asked_on_cpu_is_not_cuda() -> None:
    x = torch.randn(3, device="cuda")
    y = torch.zeros_like(x, device="cpu")
    assert not y.is_cuda and type(y) is torch.Tensor  # STYLE fact 20
    z = x.new_zeros(2, device="cpu")
    assert not z.is_cuda
    w = torch.randn(3)
    assert not w.is_cuda


def test_numpy_raises_like_cuda() -> None:
    x = torch.randn(2, device="cuda")
    with pytest.raises(TypeError, match="can't convert cuda:0 device type tensor to numpy"):
        x.numpy()
    np = pytest.importorskip("numpy")
    with pytest.raises(TypeError, match="cuda:0"):
        np.asarray(x)
    assert x.cpu().numpy().shape == (2,)


def test_pin_memory_of_a_cuda_tensor_raises() -> None:
    with pytest.raises(RuntimeError, match=r"cannot pin 'torch\.cuda\.FloatTensor'"):
        torch.randn(2, device="cuda").pin_memory()
    pinned = torch.ones(2).pin_memory()  # plain host tensor: allowed, a copy
    assert type(pinned) is torch.Tensor


# ------------------------------------------------------------------------------------------ copies
def test_deepcopy_of_tensors() -> None:
    x = torch.randn(4, device="cuda")
    views = copy.deepcopy([x, x[1:]])
    assert all(v.is_cuda for v in views)
    views[0][1] = 100.0
    assert views[1][0].item() == 100.0  # storage sharing survives the copy
    assert x[1].item() != 100.0


def test_deepcopy_of_a_leaf_that_requires_grad() -> None:
    x = torch.randn(3, device="cuda", requires_grad=True)
    (x * 2).sum().backward()
    y = copy.deepcopy(x)
    assert y.is_cuda and y.requires_grad and y.is_leaf
    assert y.grad is not None and y.grad is not x.grad and y.grad.is_cuda
    assert torch.equal(y.grad, x.grad)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="graph leaves"):
        copy.deepcopy(x * 2)


@pytest.mark.parametrize("how", ["cuda()", "device="])
def test_deepcopy_of_modules(how: str) -> None:
    if how == "cuda()":
        model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.BatchNorm1d(3)).cuda()
    else:
        model = torch.nn.Sequential(torch.nn.Linear(3, 3, device="cuda"),
                                    torch.nn.BatchNorm1d(3, device="cuda"))
    clone = copy.deepcopy(model)
    for a, b in zip(model.state_dict().values(), clone.state_dict().values(), strict=True):
        assert b.is_cuda and torch.equal(a, b)
    assert all(isinstance(p, torch.nn.Parameter) and p.is_cuda for p in clone.parameters())
    with torch.no_grad():
        clone[0].weight.zero_()
    assert model[0].weight.abs().sum().item() > 0


def test_parameter_of_an_emulated_tensor_is_a_cuda_parameter() -> None:
    p = torch.nn.Parameter(torch.randn(2, device="cuda"))
    assert isinstance(p, torch.nn.Parameter) and p.is_cuda and p.requires_grad
    assert repr(p).startswith("Parameter containing:")
    layer = torch.nn.Linear(2, 2, device="cuda")
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    assert all(type(q) is type(layer.weight) for q in layer.parameters())
    assert type(layer.weight) is type(torch.nn.Linear(2, 2).cuda().weight)


def test_pickle_round_trip_keeps_values() -> None:
    x = torch.randn(3, device="cuda")
    y = pickle.loads(pickle.dumps(x))
    assert torch.equal(y.cpu(), x.cpu())
    # a real CUDA tensor comes back on CUDA, and so does an emulated one (tests/core/test_subsystems_tensors.py)
    assert y.is_cuda and type(y) is type(x)
    model = pickle.loads(pickle.dumps(torch.nn.Linear(2, 2).cuda()))
    assert isinstance(model.weight, torch.nn.Parameter) and model.weight.is_cuda


def test_torch_save_of_a_tensor_round_trips_emulated() -> None:
    buf = io.BytesIO()
    x = torch.randn(3, device="cuda")
    torch.save(x, buf)
    buf.seek(0)
    y = torch.load(buf)
    assert y.is_cuda and torch.equal(y, x)


# ------------------------------------------------------------------------------------------ modules
def test_module_cuda_keeps_parameter_identity_and_optimizer_still_updates() -> None:
    model = torch.nn.Linear(3, 1)
    params = list(model.parameters())
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    assert model.cuda() is model
    assert all(a is b for a, b in zip(params, model.parameters(), strict=True))
    assert all(p.is_cuda and isinstance(p, torch.nn.Parameter) for p in model.parameters())
    before = model.weight.detach().clone()
    model(torch.ones(4, 3, device="cuda")).sum().backward()
    grad = model.weight.grad
    assert grad is not None and grad.is_cuda
    assert model.weight.grad is model.weight.grad
    opt.step()
    assert not torch.equal(model.weight, before)
    assert params[0] is model.weight


def test_module_cpu_makes_parameters_plain_again() -> None:
    model = torch.nn.Linear(2, 2).cuda()
    w = model.weight
    model(torch.ones(1, 2, device="cuda")).sum().backward()
    model.cpu()
    assert model.weight is w
    assert type(w) is torch.nn.Parameter and w.device.type == "cpu" and not w.is_cuda
    assert w.grad is not None and not w.grad.is_cuda
    model.to("cuda")
    assert model.weight is w and w.is_cuda and w.grad is not None and w.grad.is_cuda


def test_module_half_keeps_cuda() -> None:
    model = torch.nn.Linear(2, 2).cuda().half()
    assert model.weight.is_cuda and model.weight.dtype == torch.float16


# ------------------------------------------------------------------------------------------ device checks
def test_mixing_with_a_real_cpu_tensor_raises_like_cuda() -> None:
    x = torch.randn(3, device="cuda")
    host = torch.randn(3)
    for op in (lambda: x + host, lambda: host * x, lambda: torch.cat([x, host]),
               lambda: torch.nn.functional.linear(torch.ones(2, 3), x.view(1, 3))):
        with pytest.raises(RuntimeError, match="Expected all tensors to be on the same device"):
            op()
    model = torch.nn.Linear(3, 1).cuda()
    with pytest.raises(RuntimeError, match="cuda:0 and cpu"):
        model(torch.ones(2, 3))


def test_allowed_mixes() -> None:
    x = torch.zeros(3, device="cuda")
    assert (x + torch.tensor(2.0)).is_cuda  # a 0-dim cpu tensor is a scalar operand on CUDA too
    x.copy_(torch.ones(3))
    assert x.is_cuda and x.sum().item() == 3.0
    idx = torch.tensor([0, 2])
    assert x[idx].is_cuda
    x[idx] = torch.tensor([5.0, 6.0])
    assert x.tolist() == [5.0, 1.0, 6.0]
    assert torch.equal(x.cpu(), torch.tensor([5.0, 1.0, 6.0]))


def test_type_as_an_emulated_tensor_moves_onto_the_device() -> None:
    """``torch.eye(2).type_as(cuda_tensor)`` is a CUDA tensor on CUDA (gpytorch, linear_operator rely on it)."""
    with td.redirected("cpu"):
        a = torch.ones(2, 2, device="cuda", dtype=torch.float64)
        moved = torch.eye(2).type_as(a)
        assert moved.is_cuda and moved.dtype == torch.float64
        assert a.type_as(torch.zeros(1, dtype=torch.float16)).device.type == "cpu"  # and back, as CUDA does
        assert torch.ones(4).view_as(a).shape == (2, 2)  # shape-only ops accept any device, as on CUDA
