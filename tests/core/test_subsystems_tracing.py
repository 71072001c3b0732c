"""Subsystems with their own tensor machinery under redirection: export, fake tensors, torch.compile's
``new_*`` methods (and, below, checkpoint, gradcheck, torch.func, per-sample grads, TorchScript, fx).

Each works on emulated tensors and hands back emulated outputs, and code that never touches CUDA behaves
exactly as without the library.  Cases that could abort the interpreter (a C++ ``terminate`` cannot be
caught) run in a subprocess, so a regression fails one test instead of killing pytest.
"""

from __future__ import annotations

import io
import os
import pathlib
import subprocess
import sys
import tempfile
import textwrap

import pytest
import torch

import torchdevice_core as td


def _run_isolated(code: str) -> str:
    """Run ``code`` in a fresh interpreter with redirection active; fail (never abort) on a crash."""
    prelude = "import torch, torchdevice_core as td\ntd.activate('cpu')\n"
    env = {k: v for k, v in os.environ.items() if k != "TORCHDEVICE_SUBPROCESS"}
    with tempfile.TemporaryDirectory() as tmp:
        script = pathlib.Path(tmp, "case.py")  # a file: TorchScript reads the source of what it compiles
        script.write_text(prelude + textwrap.dedent(code))
        proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, f"rc={proc.returncode}\n{proc.stdout}\n{proc.stderr[-3000:]}"
    return proc.stdout


class _Factories(torch.nn.Module):
    """Factories and moves inside the traced code: they bake the real device into an exported graph."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x) + torch.ones(2, 4, device="cuda") + x.new_zeros(4) + x.to("cuda")


def _assert_emulated(t: object) -> None:
    assert isinstance(t, torch.Tensor) and td.is_emulated(t) and t.is_cuda and str(t.device) == "cuda:0", t


# ------------------------------------------------------------------------------------------ torch.export
def test_export_of_a_cuda_model_does_not_abort_the_interpreter() -> None:
    out = _run_isolated("""
        model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU()).cuda()
        x = torch.randn(2, 4, device="cuda")
        ep = torch.export.export(model, (x,))
        y = ep.module()(x)
        print(type(y).__name__, y.device, torch.equal(y, model(x)))
    """)
    assert out.split() == ["CudaTensor", "cuda:0", "True"]


@pytest.mark.parametrize("strict", [False, True])
def test_export_run_and_save_load_round_trip(strict: bool) -> None:
    torch._dynamo.reset()
    with td.redirected("cpu"):
        model = _Factories().cuda()
        x = torch.randn(2, 4, device="cuda")
        expected = model(x)
        ep = torch.export.export(model, (x,), strict=strict)
        assert all(td.is_emulated(v) and v.is_cuda for v in ep.state_dict.values())
        got = ep.module()(x)
        _assert_emulated(got)
        assert torch.allclose(got, expected)
        got.sum().backward()  # the program's outputs stay connected to autograd
        buf = io.BytesIO()
        torch.export.save(ep, buf)
        buf.seek(0)
        loaded = torch.export.load(buf)
        assert all(td.is_emulated(v) and v.is_cuda for v in loaded.state_dict.values())
        again = loaded.module()(x)
        _assert_emulated(again)
        assert torch.allclose(again, expected)


def test_exported_program_decomposed_recompiled_and_copied_stays_emulated() -> None:
    import copy

    with td.redirected("cpu"):
        model = _Factories().cuda()
        x = torch.randn(2, 4, device="cuda")
        expected = model(x)
        ep = torch.export.export(model, (x,))
        for module in (ep.run_decompositions().module(), copy.deepcopy(ep.module())):
            out = module(x)
            _assert_emulated(out)
            assert torch.allclose(out, expected)
        gm = ep.module()
        gm.recompile()
        _assert_emulated(gm(x))


def test_export_of_a_parameter_free_function_of_emulated_inputs() -> None:
    class Fn(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.sin() + torch.zeros(3, device="cuda")

    with td.redirected("cpu"):
        x = torch.randn(3, device="cuda")
        out = torch.export.export(Fn(), (x,)).module()(x)
        _assert_emulated(out)
        assert torch.allclose(out, x.sin())


def test_export_of_plain_cpu_code_under_redirection_is_untouched() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU())
    x = torch.randn(2, 4)
    native_ep = torch.export.export(model, (x,))
    native_gm = native_ep.module()
    with td.redirected("cpu"):
        ep = torch.export.export(model, (x,))
        gm = ep.module()
        out = gm(x)
        assert type(out) is torch.Tensor and torch.equal(out, model(x))
        assert str(ep.graph) == str(native_ep.graph)
        # no hooks of ours on a program that never saw an emulated tensor
        assert len(gm._forward_pre_hooks) == len(native_gm._forward_pre_hooks)
        assert len(gm._forward_hooks) == len(native_gm._forward_hooks)


# ------------------------------------------------------------------------------------------ fake tensors
def test_fake_tensors_of_emulated_tensors_are_made_on_the_real_device() -> None:
    out = _run_isolated("""
        from torch._subclasses.fake_tensor import FakeTensorMode
        from torch.fx.experimental.proxy_tensor import make_fx
        mode = FakeTensorMode()
        lin = torch.nn.Linear(4, 3).cuda()
        x = torch.randn(2, 4, device="cuda")
        fx, fw = mode.from_tensor(x), mode.from_tensor(lin.weight)
        with mode:
            y = torch.nn.functional.linear(fx, fw)  # a fake CUDA tensor here aborted the interpreter
        print(y.device, tuple(y.shape))
        for tracing_mode in ("fake", "symbolic"):
            gm = make_fx(lambda a, w: torch.nn.functional.linear(a, w).relu(), tracing_mode=tracing_mode)(x, lin.weight)
            print(tracing_mode, len(list(gm.graph.nodes)) > 2)
    """)
    assert out.split() == ["cpu", "(2,", "3)", "fake", "True", "symbolic", "True"]


def test_aot_function_and_opcheck_on_emulated_tensors() -> None:
    out = _run_isolated("""
        from functorch.compile import aot_function, nop
        x = torch.randn(4, 3, device="cuda", requires_grad=True)
        y = aot_function(lambda a: (a * 2).sin(), nop)(x)
        print(type(y).__name__, y.device, torch.allclose(y, (x * 2).sin()))

        @torch.library.custom_op("torchdevice_tracing::sin_op", mutates_args=())
        def sin_op(a: torch.Tensor) -> torch.Tensor:
            return a.sin()

        @sin_op.register_fake
        def _(a):
            return torch.empty_like(a)

        print(type(sin_op(x)).__name__)
        torch.library.opcheck(sin_op, (x.detach(),))
        print("opcheck-passed")
    """)
    assert out.split() == ["CudaTensor", "cuda:0", "True", "CudaTensor", "opcheck-passed"]


# -------------------------------------------------------------------- torch.compile: new_* size arguments
@pytest.mark.parametrize("fullgraph", [False, True])
def test_compiled_new_methods_read_positional_sizes_as_sizes(fullgraph: bool) -> None:
    torch._dynamo.reset()
    with td.redirected("cpu"):

        def fn(x: torch.Tensor) -> torch.Tensor:
            return x.new_zeros(50).sum() + x.new_ones(4, 2).sum() + x.new_full((2,), 3.0).sum() + x.new_empty(3).numel()

        compiled = torch.compile(fn, backend="eager", fullgraph=fullgraph)
        x = torch.randn(3, device="cuda")
        out = compiled(x)
        _assert_emulated(out)
        assert out.item() == 50 * 0 + 8 + 6 + 3
        moved = torch.compile(lambda t: t.new_zeros(5, device="cuda") + t.to("cuda")[0], backend="eager",
                              fullgraph=fullgraph)(x)
        _assert_emulated(moved)
        assert moved.shape == (5,)


# ----------------------------------------------------------------------------------------------- checkpoint
def _checkpointed_grads(device: str, use_reentrant: bool, seen: list[bool]) -> list[torch.Tensor]:
    from torch.utils.checkpoint import checkpoint

    torch.manual_seed(0)
    lin = torch.nn.Linear(4, 4).to(device)
    drop = torch.nn.Dropout(0.5)
    x = torch.randn(2, 4, device=device, requires_grad=True)
    scale = torch.full((4,), 2.0, device=device)

    def block(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        seen.append(a.is_cuda)  # the recomputation must take the forward's path
        return drop(lin(a)).sin() * b + torch.ones(4, device=device)

    y = checkpoint(block, x, scale, use_reentrant=use_reentrant)
    assert y.is_cuda == (device == "cuda")
    y.sum().backward()
    assert x.grad is not None and lin.weight.grad is not None
    return [x.grad, lin.weight.grad, lin.bias.grad]


@pytest.mark.parametrize("use_reentrant", [False, True])
def test_checkpoint_gives_native_gradients_in_both_modes(use_reentrant: bool) -> None:
    native = _checkpointed_grads("cpu", use_reentrant, [])
    seen: list[bool] = []
    with td.redirected("cpu"):
        grads = _checkpointed_grads("cuda", use_reentrant, seen)
        for grad in grads:
            _assert_emulated(grad)
    assert seen == [True, True]  # forward and recomputation both saw an emulated CUDA tensor
    for got, want in zip(grads, native, strict=True):
        assert torch.equal(got.cpu(), want)


def test_checkpoint_of_plain_cpu_code_under_redirection_is_untouched() -> None:
    native = _checkpointed_grads("cpu", False, [])
    seen: list[bool] = []
    with td.redirected("cpu"):
        grads = _checkpointed_grads("cpu", False, seen)
    assert seen == [False, False]
    assert all(type(g) is torch.Tensor for g in grads)
    for got, want in zip(grads, native, strict=True):
        assert torch.equal(got, want)


# ------------------------------------------------------------------------------------------------ gradcheck
def _gradcheck_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(3, 4, dtype=torch.float64, device="cuda", requires_grad=True)
    w = torch.randn(2, 4, dtype=torch.float64, device="cuda", requires_grad=True)
    return x, w


def _two_outputs(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.nn.functional.linear(a, b).tanh(), a.exp().sum(0)


@pytest.mark.parametrize("fast_mode", [False, True])
def test_gradcheck_and_gradgradcheck_pass_on_emulated_inputs(fast_mode: bool) -> None:
    from torch.autograd import gradcheck, gradgradcheck

    with td.redirected("cpu"):
        x, w = _gradcheck_inputs()
        assert gradcheck(torch.sin, (x,), fast_mode=fast_mode)
        assert gradgradcheck(torch.sin, (x,), fast_mode=fast_mode)
        assert gradcheck(_two_outputs, (x, w), fast_mode=fast_mode, check_batched_grad=True,
                         check_forward_ad=True, check_batched_forward_grad=True)
        assert gradgradcheck(_two_outputs, (x, w), fast_mode=fast_mode)
        z = torch.randn(3, dtype=torch.complex128, device="cuda", requires_grad=True)
        assert gradcheck(torch.exp, (z,), fast_mode=fast_mode)


def test_gradcheck_still_finds_a_wrong_backward_on_emulated_inputs() -> None:
    from torch.autograd.gradcheck import GradcheckError

    class WrongSin(torch.autograd.Function):
        @staticmethod
        def forward(ctx: object, a: torch.Tensor) -> torch.Tensor:
            ctx.save_for_backward(a)  # type: ignore[attr-defined]
            return a.sin()

        @staticmethod
        def backward(ctx: object, grad: torch.Tensor) -> torch.Tensor:
            (a,) = ctx.saved_tensors  # type: ignore[attr-defined]
            return grad * a.cos() * 1.5

    with td.redirected("cpu"):
        x, _ = _gradcheck_inputs()
        with pytest.raises(GradcheckError, match="Jacobian mismatch"):
            torch.autograd.gradcheck(WrongSin.apply, (x,))
        assert not torch.autograd.gradcheck(WrongSin.apply, (x,), raise_exception=False, fast_mode=True)


# ------------------------------------------------------------------------------------------------ torch.func
def _func_results(device: str) -> dict[str, torch.Tensor]:
    from torch.func import functional_call, grad, grad_and_value, hessian, jacfwd, jacrev, jvp, linearize, vjp, vmap

    torch.manual_seed(0)
    x = torch.randn(3, 4, device=device)
    lin = torch.nn.Linear(4, 2).to(device)
    params = dict(lin.named_parameters())
    out, vjp_fn = vjp(torch.sin, x)
    _, jvp_fn = linearize(torch.sin, x)
    return {
        "vmap": vmap(torch.sin)(x),
        "vmap over a closure on parameters": vmap(lambda row: lin(row))(x),
        "torch.vmap": torch.vmap(torch.cos)(x),
        "grad": grad(lambda a: (a.sin() * lin.weight[0]).sum())(x[0]),
        "grad_and_value": grad_and_value(lambda a: a.sin().sum())(x[0])[0],
        "jacrev": jacrev(torch.sin)(x[0]),
        "jacfwd": jacfwd(lambda a: lin(a))(x[0]),
        "hessian": hessian(lambda a: a.sin().sum())(x[0]),
        "functional_call": functional_call(lin, params, (x,)),
        "per-sample grads": vmap(grad(lambda p, row: functional_call(lin, p, (row,)).sum()),
                                 in_dims=(None, 0))(params, x)["weight"],
        "vjp": vjp_fn(torch.ones_like(out))[0],
        "jvp": jvp(torch.sin, (x,), (torch.ones_like(x),))[1],
        "linearize": jvp_fn(torch.ones_like(x)),
        "mixed with the input": vmap(torch.sin)(x) + x,
    }


def test_torch_func_transforms_give_emulated_outputs_with_native_values() -> None:
    native = _func_results("cpu")
    with td.redirected("cpu"):
        emulated = _func_results("cuda")
        for name, value in emulated.items():
            assert td.is_emulated(value) and value.is_cuda, name
            assert torch.allclose(value.cpu(), native[name], atol=1e-6), name
        plain = _func_results("cpu")  # code that never asks for CUDA: plain tensors, as without the library
    for name, value in plain.items():
        assert type(value) is torch.Tensor, name
        assert torch.equal(value, native[name]), name


# ----------------------------------------------------------------------------------------------- TorchScript
def _scripted_fn(x: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(x) + torch.ones_like(x) + torch.randn(x.shape, device=x.device) * 0 + x.sin()


def test_script_of_a_function_calling_patched_torch_functions() -> None:
    with td.redirected("cpu"):
        scripted = torch.jit.script(_scripted_fn)
        assert isinstance(scripted, torch.jit.ScriptFunction)
        assert all(f"aten::{name}" in str(scripted.graph) for name in ("zeros_like", "ones_like", "randn"))
        x = torch.randn(3, device="cuda")
        out = scripted(x)
        _assert_emulated(out)
        assert torch.allclose(out, _scripted_fn(x))
        plain = scripted(x.cpu())
        assert type(plain) is torch.Tensor and torch.allclose(plain, out.cpu())


def test_script_of_a_module_twice_and_trace_give_emulated_outputs() -> None:
    with td.redirected("cpu"):
        mha = torch.nn.MultiheadAttention(4, 2).cuda()
        first, second = torch.jit.script(mha), torch.jit.script(mha)
        x = torch.randn(2, 1, 4, device="cuda")
        for scripted in (first, second):
            out = scripted(x, x, x)[0]
            _assert_emulated(out)
            assert torch.allclose(out, mha(x, x, x)[0], atol=1e-6)
        lin = torch.nn.Linear(4, 2).cuda()
        traced = torch.jit.trace(lin, torch.randn(3, 4, device="cuda"))
        y = torch.randn(5, 4, device="cuda")
        _assert_emulated(traced(y))
        assert torch.allclose(traced(y), lin(y))
        traced_fn = torch.jit.trace(lambda a: a.relu() * 2, (y,))
        _assert_emulated(traced_fn(y))


def test_scripting_plain_code_under_redirection_matches_native() -> None:
    native_fn = str(torch.jit.script(_scripted_fn).graph)
    native_module = torch.jit.script(torch.nn.MultiheadAttention(4, 2)).code
    with td.redirected("cpu"):
        assert str(torch.jit.script(_scripted_fn).graph) == native_fn
        for _ in range(2):  # scripting the same class again works, as natively
            mha = torch.jit.script(torch.nn.MultiheadAttention(4, 2))
            assert mha.code == native_module
        x = torch.randn(2, 1, 4)
        out = mha(x, x, x)[0]
        assert type(out) is torch.Tensor
    # and after deactivation scripting still resolves torch's own functions
    assert str(torch.jit.script(_scripted_fn).graph) == native_fn


def test_cuda_device_inside_scripted_code_raises_instead_of_aborting() -> None:
    out = _run_isolated("""
        @torch.jit.script
        def make(x: torch.Tensor) -> torch.Tensor:
            return x + torch.zeros(3, device="cuda")
        try:
            make(torch.randn(3, device="cuda"))
        except Exception as e:
            print("raised", type(e).__name__)
    """)
    assert out.startswith("raised")


# ------------------------------------------------------------------------------- per-sample grads (ExpandedWeights)
def _per_sample_grads(device: str, loss_reduction: str) -> list[torch.Tensor]:
    from torch.nn.utils._per_sample_grad import call_for_per_sample_grads

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv1d(2, 3, 3), torch.nn.Flatten(), torch.nn.Linear(12, 4), torch.nn.LayerNorm(4),
    ).to(device)
    x = torch.randn(5, 2, 6, device=device)
    out = call_for_per_sample_grads(model, loss_reduction=loss_reduction)(x)
    (out.mean() if loss_reduction == "mean" else out.sum()).backward()
    assert all(p.grad is None for p in model.parameters())  # ExpandedWeights fill grad_sample only
    return [p.grad_sample for p in model.parameters()]  # type: ignore[attr-defined]


@pytest.mark.parametrize("loss_reduction", ["sum", "mean"])
def test_per_sample_grads_of_emulated_parameters(loss_reduction: str) -> None:
    native = _per_sample_grads("cpu", loss_reduction)
    with td.redirected("cpu"):
        emulated = _per_sample_grads("cuda", loss_reduction)
        plain = _per_sample_grads("cpu", loss_reduction)
    assert len(emulated) == len(native) == 6
    for got, want, cpu in zip(emulated, native, plain, strict=True):
        _assert_emulated(got)
        assert torch.allclose(got.cpu(), want, atol=1e-6)
        assert type(cpu) is torch.Tensor and torch.equal(cpu, want)


def test_script_of_multihead_attention_which_asks_torch_is_autocast_enabled() -> None:
    # MultiheadAttention.forward calls torch.is_autocast_enabled(), which the library patches.  TorchScript
    # caches a class's compiled methods per process: a fresh interpreter compiles it under redirection first.
    code = textwrap.dedent("""
        import torch, torchdevice_core as td
        with td.redirected("cpu"):
            torch.manual_seed(0)
            scripted = torch.jit.script(torch.nn.MultiheadAttention(8, 2, batch_first=True))
            x = torch.randn(2, 3, 8, device="cuda")
            out, _ = scripted(x, x, x)
            assert out.is_cuda
            graph = str(scripted.forward.graph)
        torch.manual_seed(0)
        native = torch.nn.MultiheadAttention(8, 2, batch_first=True)
        expected, _ = native(x.cpu(), x.cpu(), x.cpu())
        torch.testing.assert_close(out.cpu(), expected)
        assert graph == str(torch.jit.script(native).forward.graph)
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-2000:]
