"""Mixing real CPU tensors with emulated device tensors: one row per case, each naming the rule (and through it
the PyTorch source) that decides it.  A false "Expected all tensors to be on the same device" is a false
failure; a missing one a false pass."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F

import torchdevice_core as td
from torchdevice_core import mixing

D = "cuda"


def dev(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.ones(*shape, device=D, dtype=dtype)


def cpu(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.ones(*shape, dtype=dtype)


Case = tuple[str, mixing.MixingRule, bool, Callable[[], Any]]
RULE = {r.what: r for r in mixing.RULES}
INDEXING, COPIES, LENGTHS, SHAPES = (mixing.RULES[i] for i in range(4))
SPLIT_INDICES, UNRAVEL_SHAPE = (RULE[w] for w in RULE if w.startswith(("tensor_split's", "unravel_index")))
def _grad_of_a_plain_output() -> Any:
    x = dev(3).requires_grad_()
    out = torch._C._functions.UndefinedGrad()(x.sin())  # a C++ autograd function: a plain result
    return torch.autograd.grad([out], [x], [torch.zeros_like(out)], allow_unused=True)


def _unravel_with_a_tensor_shape() -> None:
    with pytest.raises(TypeError, match="expected 'shape' to be int or sequence"):  # torch's own error, as on CUDA
        torch.unravel_index(torch.tensor([1], device=D), torch.tensor([1, 2, 3]))


CASES: list[Case] = [
    ("autograd.grad of a plain output for an emulated input", mixing.AUTOGRAD, True, _grad_of_a_plain_output),
    # TensorIterator's CPU-scalar rule
    ("add a 0-dim cpu tensor", mixing.CPU_SCALAR, True, lambda: dev(2, 3) + torch.tensor(2.0)),
    ("0-dim cpu tensor first", mixing.CPU_SCALAR, True, lambda: torch.tensor(2.0) * dev(3)),
    ("in-place mul_ by a 0-dim cpu tensor", mixing.CPU_SCALAR, True, lambda: dev(3).mul_(torch.tensor(2.0))),
    ("clamp with a 0-dim cpu bound", mixing.CPU_SCALAR, True, lambda: torch.clamp(dev(3), min=torch.tensor(0.0))),
    ("where with a 0-dim cpu condition", mixing.CPU_SCALAR, True,
     lambda: torch.where(torch.tensor(True), dev(2, 3), dev(2, 3))),
    ("where with 0-dim cpu self and other", mixing.CPU_SCALAR, True,
     lambda: torch.where(dev(3, dtype=torch.bool), torch.tensor(1.0), torch.tensor(0.0))),
    ("add a cpu tensor of shape [1]", mixing.NOT_A_SCALAR, False, lambda: dev(2, 3) + cpu(1)),
    ("add a cpu matrix", mixing.NOT_A_SCALAR, False, lambda: dev(2, 3) + cpu(2, 3)),
    ("where with a [1, 1, 1] cpu condition", mixing.NOT_A_SCALAR, False,
     lambda: torch.where(cpu(1, 1, 1, dtype=torch.bool), dev(2, 3), dev(2, 3))),
    ("matmul with a cpu matrix", mixing.NOT_A_SCALAR, False, lambda: dev(2, 3) @ cpu(3, 2)),
    ("cat with a cpu tensor", mixing.NOT_A_SCALAR, False, lambda: torch.cat([dev(2), cpu(2)])),
    ("linear with a cpu weight", mixing.NOT_A_SCALAR, False, lambda: F.linear(dev(2, 3), cpu(4, 3))),
    # CPU tensors by design
    ("index with cpu indices", INDEXING, True, lambda: dev(4, 3)[torch.tensor([0, 2])]),
    ("index_put_ with cpu indices", INDEXING, True,
     lambda: dev(4, 3).index_put_((torch.tensor([0, 1]),), torch.tensor(5.0))),
    ("setitem with a cpu mask", INDEXING, True, lambda: dev(4).__setitem__(torch.tensor([True, False] * 2), 0.0)),
    ("copy_ from a cpu tensor", COPIES, True, lambda: dev(3).copy_(cpu(3))),
    ("_pack_padded_sequence lengths on the cpu", LENGTHS, True,
     lambda: torch._pack_padded_sequence(dev(3, 2, 4), torch.tensor([3, 2]), False)),
    ("ctc_loss with cpu lengths", LENGTHS, True,
     lambda: F.ctc_loss(dev(5, 2, 4).log_softmax(2), torch.tensor([[1, 2], [1, 1]], device=D),
                        torch.tensor([5, 5]), torch.tensor([2, 2]))),
    ("view_as a cpu tensor", SHAPES, True, lambda: dev(6).view_as(cpu(2, 3))),
    ("expand_as a cpu tensor", SHAPES, True, lambda: dev(1, 3).expand_as(cpu(2, 3))),
    ("index_put_ with cpu indices and a cpu 0-dim value", INDEXING, True,
     lambda: dev(4).index_put_((torch.tensor([0, 1]),), torch.tensor(1.0), accumulate=True)),
    ("index_put_ with cpu values", mixing.VALUES_ON_THE_DEVICE, False,
     lambda: torch.index_put_(dev(5), (torch.tensor([0, 1]),), cpu(2))),
    ("index_put with cpu values, accumulating", mixing.VALUES_ON_THE_DEVICE, False,
     lambda: dev(5).index_put((torch.tensor([0, 1]),), cpu(2), accumulate=True)),
    ("tensor_split at cpu indices", SPLIT_INDICES, True, lambda: torch.tensor_split(dev(6), torch.tensor([1, 4]))),
    ("unravel_index with a tensor shape", UNRAVEL_SHAPE, True, _unravel_with_a_tensor_shape),
]


@pytest.mark.parametrize(("what", "rule", "allowed", "call"), CASES, ids=[c[0] for c in CASES])
def test_mixing_case(what: str, rule: mixing.MixingRule, allowed: bool, call: Callable[[], Any]) -> None:
    assert rule.torch_source  # every case is decided by a rule that names its source
    with td.redirected("cpu"):
        if allowed:
            call()
        else:
            with pytest.raises(RuntimeError, match="Expected all tensors to be on the same device"):
                call()


def test_every_rule_has_a_case_and_a_source() -> None:
    used = {c[1] for c in CASES}
    for rule in (*mixing.RULES, mixing.CPU_SCALAR, mixing.NOT_A_SCALAR):
        assert rule.torch_source.startswith(("aten/", "torch/")), rule
        assert rule in used or rule.what.startswith("Python-level"), f"no case for: {rule.what}"


def test_take_along_dim_raises_its_own_message() -> None:
    """OWN_DEVICE_CHECK: CUDA's take_along_dim names the devices itself (PyTorch's test_indexing matches it)."""
    assert mixing.OWN_DEVICE_CHECK.torch_source.startswith("aten/")
    with td.redirected("cpu"):
        t, indices = dev(2, 3), torch.zeros(2, 3, dtype=torch.long)
        pattern = r"Expected tensor to have cuda:0 Device, but got tensor with cpu Device .* torch.take_along_dim"
        with pytest.raises(RuntimeError, match=pattern):
            torch.take_along_dim(t, indices, dim=0)
        with pytest.raises(RuntimeError, match=r"to have cpu Device, but got tensor with cuda:0 Device"):
            torch.take_along_dim(t.cpu(), indices.to(D), dim=0)
        assert torch.take_along_dim(t, indices.to(D), dim=0).is_cuda


def test_an_op_through_the_mps_cpu_fallback_takes_cpu_tensors(monkeypatch: pytest.MonkeyPatch) -> None:
    """MPS_CPU_FALLBACK: heaviside has no MPS kernel in 2.13; with the fallback on, cpu_fallback moves every
    argument to the CPU, so a CPU ``values`` beside an MPS input runs on a Mac."""
    monkeypatch.setenv("PYTORCH_ENABLE_MPS_FALLBACK", "1")
    with td.redirected("cpu", source="mps", simulate_limits="mps"), pytest.warns(UserWarning, match="fall back"):
        out = torch.heaviside(torch.tensor([-1.0, 0.0, 2.0], device="mps"), torch.tensor([0.5]))
        assert out.tolist() == [0.0, 0.5, 1.0]


def test_the_fallback_rule_needs_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTORCH_ENABLE_MPS_FALLBACK", "1")
    with td.redirected("cpu", source="mps", simulate_limits="mps"), pytest.raises(RuntimeError, match="same device"):
        torch.add(torch.ones(3, device="mps"), torch.ones(3))  # add has an MPS kernel: no fallback moves it
    with td.redirected("cpu"), pytest.raises(RuntimeError, match="same device"):
        torch.heaviside(torch.ones(3, device="cuda"), torch.tensor([0.5]))  # CUDA has the kernel: it raises
