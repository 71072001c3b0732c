"""``torch.compile`` while active (eager and inductor) and after deactivation.

See Note [dynamo: one function object per patched name] in docs/notes.md.
"""

from __future__ import annotations

import pytest
import torch
import torch._dynamo

import torchdevice_core as td

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")


def _fn(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.sin(a) * b + 1


def test_eager_backend_with_emulated_and_plain_inputs() -> None:
    torch._dynamo.reset()
    with td.redirected("cpu"):
        compiled = torch.compile(_fn, backend="eager")
        a, b = torch.randn(8, device="cuda"), torch.randn(8, device="cuda")
        out = compiled(a, b)
        assert out.is_cuda and td.is_emulated(out)
        assert torch.allclose(out, _fn(a, b))
        plain = compiled(a.cpu(), b.cpu())
        assert type(plain) is torch.Tensor and not plain.is_cuda
        assert torch.allclose(plain, out.cpu())


def test_eager_backend_compiled_module_and_optimizer_step() -> None:
    torch._dynamo.reset()
    with td.redirected("cpu"):
        model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1)).cuda()
        compiled = torch.compile(model, backend="eager")
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        x = torch.randn(16, 4, device="cuda")
        out = compiled(x)
        assert out.is_cuda
        out.sum().backward()
        opt.step()
        assert all(p.grad is not None and p.grad.is_cuda for p in model.parameters())


def test_inductor_while_active_then_after_deactivation() -> None:
    torch._dynamo.reset()
    with td.redirected("cpu"):
        compiled = torch.compile(_fn)  # the default backend: inductor, C++ for the CPU
        a, b = torch.randn(16, device="cuda"), torch.randn(16, device="cuda")
        out = compiled(a, b)
        assert out.is_cuda and torch.allclose(out, _fn(a, b), atol=1e-6)
        plain = compiled(a.cpu(), b.cpu())
        assert type(plain) is torch.Tensor and torch.allclose(plain, out.cpu(), atol=1e-6)
    torch._dynamo.reset()

    def noisy(n: torch.Tensor) -> torch.Tensor:
        return n * 2 + torch.randn(n.shape) * 0

    again = torch.compile(noisy)
    result = again(torch.ones(4))
    assert type(result) is torch.Tensor and torch.equal(result, torch.full((4,), 2.0))


def test_compile_works_after_deactivation() -> None:
    torch._dynamo.reset()
    with td.redirected("cpu"):
        torch.compile(_fn, backend="eager")(torch.ones(2, device="cuda"), torch.ones(2, device="cuda"))
        model = torch.nn.Linear(2, 2).cuda()
        torch.optim.SGD(model.parameters(), lr=0.1).step()
    torch._dynamo.reset()

    def uses_factories(n: int) -> torch.Tensor:
        return torch.randn(n) * 0 + torch.ones(n)

    assert torch.equal(torch.compile(uses_factories, backend="eager")(3), torch.ones(3))
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model(torch.ones(1, 2)).sum().backward()
    opt.step()  # Note [dynamo: one function object per patched name]: a left-over rule fails every step
    assert torch.compile(lambda x: x.cos(), backend="eager")(torch.zeros(2)).tolist() == [1.0, 1.0]


@pytest.mark.filterwarnings("ignore:Dynamo does not know how to trace the builtin")
def test_compile_with_a_backend_that_runs_the_graph_eagerly() -> None:
    """Custom backends (CompileCounter returns ``gm.forward``) run the traced graph with the real inputs.

    Traced with real devices, such a graph creates ``device="cpu"`` tensors next to the emulated inputs; the
    binary dunders (``**``), ``x.device`` and factories inside must all work, and the result stays emulated.
    """
    from torch._dynamo.testing import CompileCounter

    with td.redirected("cpu"):
        param = torch.nn.Parameter(torch.randn(4, device="cuda"))
        param.grad = torch.randn(4, device="cuda")

        def step(p: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                scale = torch.ones(4, device=p.device) * 0.5
                update = (p.grad ** 2.0) * scale
                p.add_(update, alpha=-0.1)
                return 2.0 - update

        before = param.detach().clone()
        counter = CompileCounter()
        out = torch.compile(step, backend=counter, dynamic=True)(param)
        # (dynamo refuses ``.grad`` of a tensor subclass: this frame may run eagerly; the result must be right)
        assert out.is_cuda and param.is_cuda
        assert not torch.equal(before, param.detach())


def test_compiled_optimizer_step_between_graph_breaks() -> None:
    """An optimizer step compiled with a graph-running backend: code between graphs calls the emulated class's
    ``__torch_function__``, which dynamo must not take as a frame of its own (it used to recurse forever)."""
    from torch._dynamo.testing import CompileCounter

    with td.redirected("cpu"):
        model = torch.nn.Linear(4, 1).cuda()
        opt = torch.optim.AdamW(model.parameters(), lr=0.5, weight_decay=0.001, foreach=False)
        step = torch.compile(type(opt).step, backend=CompileCounter(), dynamic=True)
        before = model.weight.detach().clone()
        for _ in range(2):
            model(torch.randn(8, 4, device="cuda")).sum().backward()
            step(opt)
        assert not torch.equal(before, model.weight.detach()) and model.weight.is_cuda


def test_fullgraph_compile_of_emulated_tensor_methods() -> None:
    with td.redirected("cpu"):
        tensors = [torch.randn(4, device="cuda") for _ in range(2)]

        def f(items: list[torch.Tensor]) -> list[torch.Tensor]:
            return [t.to(dtype=torch.float32).cuda() * 2 for t in items]

        out = torch.compile(f, backend="eager", fullgraph=True)(tensors)
        assert all(t.is_cuda for t in out)


def test_aot_eager_compiles_a_module_with_emulated_parameters() -> None:
    """aot-autograd's first-call aliasing check refuses tensor subclasses: it is switched off while active."""
    with td.redirected("cpu"):
        model = torch.nn.Linear(4, 2).cuda()
        out = torch.compile(model, backend="aot_eager")(torch.randn(3, 4, device="cuda"))
        out.sum().backward()
        assert out.is_cuda and model.weight.grad is not None and model.weight.grad.is_cuda
