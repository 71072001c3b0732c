"""``torch.accelerator`` and ``torch.Stream``/``torch.Event`` emulated for the source device, per caller."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest
import torch

import torchdevice_core as td

from ._callers import ask_from

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")

_ASK = """
import torch
def ask():
    acc = torch.accelerator
    return acc.is_available(), acc.current_accelerator(), acc.device_count()
"""



@pytest.fixture
def two() -> Iterator[td.Handle]:
    with td.redirected("cpu", device_count=2) as h:
        yield h


def test_the_idiom_takes_the_cuda_path(two: td.Handle) -> None:
    device = acc.type if (acc := torch.accelerator.current_accelerator()) else "cpu"
    assert device == "cuda"
    assert torch.accelerator.is_available()
    assert torch.accelerator.current_accelerator(check_available=True) == torch.device("cuda")
    assert torch.accelerator.device_count() == 2
    x = torch.ones(2, device=torch.accelerator.current_accelerator())
    assert x.is_cuda and str(x.device) == "cuda:0"
    assert torch.get_device_module() is torch.cuda
    assert torch.get_device_module("cpu") is torch.cpu


def test_torch_internals_see_the_real_machine(two: td.Handle) -> None:
    with two.suspended():
        real = (torch.accelerator.is_available(), torch.accelerator.current_accelerator(),
                torch.accelerator.device_count())
    assert ask_from("torch.fake_internal", _ASK)() == real
    assert ask_from("user_tests", _ASK)() == (True, torch.device("cuda"), 2)


def test_device_index_follows_torch_cuda(two: td.Handle) -> None:
    acc = torch.accelerator
    assert acc.current_device_index() == 0
    acc.set_device_index(1)
    assert torch.cuda.current_device() == 1 and acc.current_device_index() == 1
    assert torch.zeros(1, device="cuda").get_device() == 1
    with acc.device_index(0):
        assert torch.cuda.current_device() == 0
    assert acc.current_device_index() == 1
    with acc.device_index(None):
        assert acc.current_device_index() == 1
    acc.set_device_index("cuda:0")
    assert torch.cuda.current_device() == 0
    acc.set_device_index(-1)  # a no-op, as in torch
    assert torch.cuda.current_device() == 0
    with pytest.raises(RuntimeError, match="invalid device ordinal"):
        acc.set_device_index(2)
    with pytest.raises(ValueError, match="doesn't match the current accelerator"):
        acc.set_device_index("cpu")
    with pytest.raises(ValueError, match="specified index"):
        acc.set_device_index("cuda")
    with pytest.warns(FutureWarning, match="current_device_index"):
        assert acc.current_device_idx() == 0


def test_synchronize_streams_and_capability(two: td.Handle) -> None:
    acc = torch.accelerator
    acc.synchronize()
    acc.synchronize("cuda:1")
    acc.synchronize(0)
    stream = torch.cuda.Stream(device=1)
    acc.set_stream(stream)
    assert acc.current_stream(1) is stream and torch.cuda.current_stream(1) is stream
    assert acc.current_device_index() == 1  # set_stream also selects the stream's device
    assert acc.current_stream(0) is torch.cuda.default_stream(0)
    caps = acc.get_device_capability()
    assert {torch.float32, torch.float64, torch.bfloat16, torch.int64}.issubset(caps["supported_dtypes"])
    with pytest.raises(ValueError, match="doesn't match"):
        acc.get_device_capability("mps")


def test_memory_is_the_torch_cuda_ledger(two: td.Handle) -> None:
    acc = torch.accelerator
    acc.empty_cache()
    base = acc.memory_allocated()
    x = torch.empty(1024, device="cuda")
    assert acc.memory_allocated() == torch.cuda.memory_allocated() == base + 4096
    assert acc.memory.memory_allocated(0) == base + 4096
    assert acc.max_memory_allocated() >= base + 4096
    assert acc.memory_stats()["allocated_bytes.all.current"] == base + 4096
    assert acc.memory_reserved() >= acc.memory_allocated()
    assert acc.memory_allocated(1) == 0
    del x
    assert acc.memory_allocated() == base
    acc.reset_peak_memory_stats()
    assert acc.max_memory_allocated() == base
    free, total = acc.get_memory_info()
    assert 0 < free <= total
    acc.reset_accumulated_memory_stats()
    acc.empty_host_cache()


def test_each_name_has_its_own_function_object(two: td.Handle) -> None:
    assert torch.accelerator.memory_allocated is not torch.accelerator.memory.memory_allocated
    assert torch.accelerator.empty_cache is not torch.accelerator.memory.empty_cache


def test_graphs_are_refused(two: td.Handle) -> None:
    with pytest.raises(td.UnemulatableError, match=r"torch\.accelerator\.Graph"):
        torch.accelerator.Graph()
    assert "torch.accelerator.Graph" in two.record.snapshot().apis("refused")


def test_torch_stream_and_event_with_the_source_device(two: td.Handle) -> None:
    stream = torch.Stream(device="cuda:1")
    assert isinstance(stream, torch.Stream) and isinstance(stream, torch.cuda.Stream)
    assert stream.device == torch.device("cuda", 1) and stream.device_type == 1 and stream.query()
    real = torch.Stream(device="cpu")
    assert isinstance(real, torch.Stream) and real.device_type == 0
    start, end = torch.Event(device="cuda", enable_timing=True), torch.Event(enable_timing=True)
    assert isinstance(start, torch.Event) and isinstance(start, torch.cuda.Event)
    start.record(stream)
    torch.randn(64, 64, device="cuda") @ torch.randn(64, 64, device="cuda")
    end.record()
    torch.accelerator.synchronize()
    assert start.elapsed_time(end) >= 0.0 and end.query()
    with stream:
        assert torch.accelerator.current_stream() is stream
    with pytest.raises(ValueError, match="enable_timing"):
        torch.Event(device="cuda").elapsed_time(torch.Event(device="cuda"))
    assert type(torch.Event(device="cpu")).__name__ == "Event"


def test_mps_source_answers_mps() -> None:
    with td.redirected("cpu", source="mps"):
        assert torch.accelerator.current_accelerator() == torch.device("mps")
        assert torch.accelerator.device_count() == 1
        x = torch.ones(4, device=torch.accelerator.current_accelerator())
        assert x.is_mps
        assert torch.accelerator.memory_allocated() >= 16
        assert torch.float64 not in torch.accelerator.get_device_capability()["supported_dtypes"]
        torch.accelerator.synchronize()
        event = torch.Event(device="mps", enable_timing=True)
        event.record()
        assert event.device == torch.device("mps", 0)


def test_compile_and_optimizers_work_while_active() -> None:
    torch._dynamo.reset()
    with td.redirected("cpu"):
        device = torch.accelerator.current_accelerator()
        model = torch.nn.Linear(4, 2).to(device)
        opt = torch.optim.AdamW(model.parameters(), lr=0.1)

        def step(x: torch.Tensor) -> torch.Tensor:
            loss = model(x).pow(2).sum()
            loss.backward()
            return loss

        compiled = torch.compile(step, backend="eager")
        x = torch.randn(8, 4, device=device)
        before = model.weight.detach().clone()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # dynamo's one-time note about .grad of tensor subclasses
            loss = compiled(x)
        opt.step()
        assert loss.is_cuda and not torch.equal(model.weight.detach(), before)

        def fn(a: torch.Tensor) -> torch.Tensor:
            return torch.sin(a) + 1

        inductor = torch.compile(fn)
        # inductor's sin differs from eager's in the last bits (also without the plugin): float32 tolerance
        torch.testing.assert_close(inductor(x), fn(x))
    torch._dynamo.reset()
    assert torch.compile(lambda t: t * 2)(torch.ones(2)).tolist() == [2.0, 2.0]
