"""The emulated ``torch.cuda`` namespace: self-consistent, real where torch asks, refusing what it can't."""

from __future__ import annotations

import gc
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import torch

import torchdevice_core as td

from ._callers import ask_from

MiB = 1024 * 1024


@pytest.fixture
def handle() -> Iterator[td.Handle]:
    with td.redirected("cpu") as h:
        yield h


@pytest.fixture
def two() -> Iterator[td.Handle]:
    with td.redirected("cpu", device_count=2) as h:
        yield h


# ------------------------------------------------------------------------------------ devices
def test_availability_and_count(handle: td.Handle) -> None:
    assert torch.cuda.is_available() is True
    assert torch.cuda.device_count() == 1
    assert torch.cuda.is_initialized()
    torch.cuda.init()
    assert torch.cuda.current_device() == 0


def test_set_device_is_validated_against_device_count(two: td.Handle) -> None:
    assert torch.cuda.device_count() == 2
    torch.cuda.set_device(1)
    assert torch.cuda.current_device() == 1
    assert torch.randn(1, device="cuda").device == torch.device("cuda:1")
    assert torch.ones(1).cuda().get_device() == 1
    torch.cuda.set_device("cuda:0")
    assert torch.cuda.current_device() == 0
    torch.cuda.set_device(torch.device("cuda", 1))
    assert torch.cuda.current_device() == 1
    for bad in (2, "cuda:2", torch.device("cuda", 5)):
        with pytest.raises(RuntimeError, match="invalid device ordinal"):
            torch.cuda.set_device(bad)
    assert torch.cuda.current_device() == 1
    with pytest.raises(ValueError, match="Expected a cuda device"):
        torch.cuda.set_device("cpu")


def test_device_context_manager(two: td.Handle) -> None:
    assert torch.cuda.current_device() == 0
    with torch.cuda.device(1):
        assert torch.cuda.current_device() == 1
        assert torch.zeros(1, device="cuda").device == torch.device("cuda:1")
        with torch.cuda.device(0):
            assert torch.cuda.current_device() == 0
        assert torch.cuda.current_device() == 1
    assert torch.cuda.current_device() == 0
    x = torch.ones(1, device="cuda:1")
    with torch.cuda.device_of(x):
        assert torch.cuda.current_device() == 1
    with torch.cuda.device_of(torch.ones(1)):  # not a cuda tensor: no-op
        assert torch.cuda.current_device() == 0
    with pytest.raises(RuntimeError, match="invalid device ordinal"):
        torch.cuda.device(2)


def test_device_properties(handle: td.Handle) -> None:
    props = torch.cuda.get_device_properties(0)
    assert (props.major, props.minor) == (8, 0)
    assert props.total_memory > 0
    assert props.multi_processor_count > 0
    assert torch.cuda.get_device_name() == props.name == torch.cuda.get_device_name(0)
    assert torch.cuda.get_device_capability() == (8, 0)
    assert torch.cuda.get_device_capability(torch.device("cuda:0")) == (8, 0)
    assert torch.cuda.is_bf16_supported()
    assert torch.cuda.get_arch_list() == ["sm_80"]
    assert "_CudaDeviceProperties(" in repr(props)
    with pytest.raises(RuntimeError, match="invalid device ordinal"):
        torch.cuda.get_device_properties(1)


def test_capability_and_name_options() -> None:
    with td.redirected("cpu", capability=(7, 0), device_name="Tesla V100"):
        assert torch.cuda.get_device_capability() == (7, 0)
        assert torch.cuda.get_device_name() == "Tesla V100"
        assert not torch.cuda.is_bf16_supported()


def test_synchronize(handle: td.Handle) -> None:
    x = torch.randn(64, 64, device="cuda") @ torch.randn(64, 64, device="cuda")
    assert torch.cuda.synchronize() is None
    torch.cuda.synchronize(0)
    torch.cuda.synchronize("cuda")
    with pytest.raises(RuntimeError, match="invalid device ordinal"):
        torch.cuda.synchronize(1)
    assert x.is_cuda


_INTERNAL = '''
import torch

def ask():
    return torch.cuda.is_available(), torch.cuda.device_count()
'''



def test_torch_internal_callers_see_the_real_machine(handle: td.Handle) -> None:
    with handle.suspended():
        real = (torch.cuda.is_available(), torch.cuda.device_count())
    assert real == (False, 0)
    assert ask_from("torch.fake", _INTERNAL)() == real
    assert ask_from("torch", _INTERNAL)() == real
    assert ask_from("torchvision_like", _INTERNAL)() == (True, 1)  # "torch" is a package name, not a prefix
    assert ask_from("user_code", _INTERNAL)() == (True, 1)
    assert (torch.cuda.is_available(), torch.cuda.device_count()) == (True, 1)


def test_torch_own_code_paths_see_no_cuda(handle: td.Handle) -> None:
    interface = pytest.importorskip("torch._dynamo.device_interface")
    assert interface.CudaInterface.is_available() is False
    assert torch.cuda.is_available() is True


def test_real_callers_option() -> None:
    with td.redirected("cpu", real_callers=("torch", "mylib")):
        assert ask_from("mylib.sub", _INTERNAL)() == (False, 0)
        assert ask_from("mylibrary", _INTERNAL)() == (True, 1)


# ------------------------------------------------------------------------------------ events and streams
def test_event_timing_matches_sleep(handle: td.Handle) -> None:
    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    start.record()
    time.sleep(0.05)
    end.record()
    end.synchronize()
    assert start.query() and end.query()
    assert 40.0 <= start.elapsed_time(end) <= 500.0


def test_event_timing_covers_work(handle: td.Handle) -> None:
    a = torch.randn(256, 256, device="cuda")
    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    t0 = time.perf_counter()
    start.record()
    for _ in range(20):
        a = torch.tanh(a @ a)
    end.record()
    host_ms = (time.perf_counter() - t0) * 1000
    torch.cuda.synchronize()
    elapsed = start.elapsed_time(end)
    assert 0.0 < elapsed <= host_ms + 1.0  # the device (here: the host) did the work between the records
    assert elapsed >= 0.5 * host_ms - 1.0
    later = torch.cuda.Event(enable_timing=True)
    later.record()
    assert start.elapsed_time(later) >= elapsed


def test_event_without_timing_raises_value_error(handle: td.Handle) -> None:
    a, b = torch.cuda.Event(), torch.cuda.Event()
    a.record()
    b.record()
    b.synchronize()
    with pytest.raises(ValueError, match="enable_timing=True"):  # Note [Event.elapsed_time without enable_timing]
        a.elapsed_time(b)


def test_event_not_recorded_raises(handle: td.Handle) -> None:
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    with pytest.raises(RuntimeError, match="recorded"):
        a.elapsed_time(b)


def test_streams(handle: td.Handle) -> None:
    default = torch.cuda.default_stream()
    assert torch.cuda.current_stream() == default
    side = torch.cuda.Stream()
    assert side != default
    assert side.device == torch.device("cuda:0")
    with torch.cuda.stream(side):
        assert torch.cuda.current_stream() == side
        x = torch.ones(4, device="cuda") * 2
    assert torch.cuda.current_stream() == default
    with side:
        assert torch.cuda.current_stream() == side
    default.wait_stream(side)
    torch.cuda.current_stream().wait_stream(side)
    x.record_stream(side)
    torch.ones(2).record_stream(side)  # a plain tensor with an emulated stream does not trip torch's parser
    event = side.record_event()
    default.wait_event(event)
    event.wait(default)
    side.synchronize()
    assert side.query() and event.query()
    assert x.tolist() == [2.0] * 4
    with torch.cuda.stream(None):
        assert torch.cuda.current_stream() == default


def test_stream_on_second_device_sets_current_device(two: td.Handle) -> None:
    s = torch.cuda.Stream(device=1)
    with torch.cuda.stream(s):
        assert torch.cuda.current_device() == 1
        assert torch.cuda.current_stream() == s
    assert torch.cuda.current_device() == 0


# ------------------------------------------------------------------------------------ memory
def test_memory_stats_follow_allocations(handle: td.Handle) -> None:
    gc.collect()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    x = torch.empty(MiB, dtype=torch.uint8, device="cuda")
    assert torch.cuda.memory_allocated() - base >= MiB
    assert torch.cuda.memory_allocated(0) == torch.cuda.memory_allocated("cuda:0")
    peak = torch.cuda.max_memory_allocated()
    assert peak - base >= MiB
    assert torch.cuda.memory_reserved() >= torch.cuda.memory_allocated()
    view = x[10:]  # a view shares the storage: no new allocation
    assert torch.cuda.memory_allocated() - base < MiB + 4096
    del x, view
    gc.collect()
    assert torch.cuda.memory_allocated() == base
    assert torch.cuda.max_memory_allocated() == peak  # the peak stays ...
    torch.cuda.reset_peak_memory_stats()
    assert torch.cuda.max_memory_allocated() == base  # ... until it is reset


def test_moves_and_op_results_are_counted(handle: td.Handle) -> None:
    base = torch.cuda.memory_allocated()
    y = torch.ones(MiB // 4).cuda()
    z = y * 2
    assert torch.cuda.memory_allocated() - base >= 2 * MiB
    del y, z
    gc.collect()
    assert torch.cuda.memory_allocated() == base


def test_empty_cache_lowers_reserved_to_allocated(handle: td.Handle) -> None:
    torch.cuda.memory_allocated()  # accounting starts at the first memory query (or with track_memory=True)
    keep = torch.empty(MiB, dtype=torch.uint8, device="cuda")
    drop = torch.empty(2 * MiB, dtype=torch.uint8, device="cuda")
    del drop
    gc.collect()
    assert torch.cuda.memory_reserved() >= torch.cuda.memory_allocated() + 2 * MiB
    torch.cuda.empty_cache()
    assert torch.cuda.memory_reserved() == torch.cuda.memory_allocated()
    assert torch.cuda.max_memory_reserved() >= 3 * MiB
    assert keep.is_cuda


def test_memory_stats_keys_and_info(handle: td.Handle) -> None:
    x = torch.empty(MiB, dtype=torch.uint8, device="cuda")
    stats = torch.cuda.memory_stats()
    for key in ("allocated_bytes.all.current", "allocated_bytes.all.peak", "reserved_bytes.all.current",
                "active_bytes.all.current", "num_alloc_retries", "num_ooms", "allocation.all.current"):
        assert key in stats, key
    assert stats["allocated_bytes.all.current"] == torch.cuda.memory_allocated()
    nested = torch.cuda.memory_stats_as_nested_dict()
    assert nested["allocated_bytes"]["all"]["current"] == stats["allocated_bytes.all.current"]
    free, total = torch.cuda.mem_get_info()
    assert 0 < free <= total
    assert total == torch.cuda.get_device_properties(0).total_memory
    assert "Allocated memory" in torch.cuda.memory_summary()
    assert x.numel() == MiB


def test_memory_is_counted_per_virtual_device(two: td.Handle) -> None:
    base0, base1 = torch.cuda.memory_allocated(0), torch.cuda.memory_allocated(1)
    x = torch.empty(MiB, dtype=torch.uint8, device="cuda:1")
    assert torch.cuda.memory_allocated(1) - base1 >= MiB
    assert torch.cuda.memory_allocated(0) == base0
    del x


# ------------------------------------------------------------------------------------ RNG
def test_manual_seed_reproduces_factories_and_dropout(handle: td.Handle) -> None:
    ones = torch.ones(1000, device="cuda")
    draws = []
    for _ in range(2):
        torch.cuda.manual_seed(1234)
        draws.append((torch.randn(5, device="cuda"), torch.nn.functional.dropout(ones, 0.5)))
    (a1, d1), (a2, d2) = draws
    assert torch.equal(a1, a2) and torch.equal(d1, d2)
    assert d1.is_cuda and 0 < (d1 == 0).sum().item() < 1000
    torch.cuda.manual_seed(4321)
    assert not torch.equal(torch.randn(5, device="cuda"), a1)
    torch.cuda.manual_seed_all(1234)
    assert torch.equal(torch.randn(5, device="cuda"), a1)
    assert torch.cuda.initial_seed() == 1234


def test_rng_state_round_trip(handle: td.Handle) -> None:
    state = torch.cuda.get_rng_state()
    assert state.dtype == torch.uint8 and not state.is_cuda
    first = torch.randn(4, device="cuda")
    torch.cuda.set_rng_state(state)
    assert torch.equal(torch.randn(4, device="cuda"), first)
    states = torch.cuda.get_rng_state_all()
    assert len(states) == 1
    second = torch.rand(3, device="cuda")
    torch.cuda.set_rng_state_all(states)
    assert torch.equal(torch.rand(3, device="cuda"), second)


def test_fork_rng_restores(handle: td.Handle) -> None:
    torch.manual_seed(0)  # Note [torch.manual_seed seeds CUDA too]: must not recurse
    before = torch.cuda.get_rng_state()
    with torch.random.fork_rng(devices=[0]):
        torch.cuda.manual_seed(99)
        torch.randn(10, device="cuda")
    assert torch.equal(torch.cuda.get_rng_state(), before)
    expected = torch.randn(3, device="cuda")
    torch.cuda.set_rng_state(before)
    with torch.random.fork_rng(devices=[0]):
        torch.randn(100, device="cuda")
    assert torch.equal(torch.randn(3, device="cuda"), expected)


def test_torch_manual_seed_reproduces_cuda_draws(handle: td.Handle) -> None:
    torch.manual_seed(7)
    a = torch.randn(3, device="cuda")
    torch.manual_seed(7)
    assert torch.equal(torch.randn(3, device="cuda"), a)


def test_cuda_generator(handle: td.Handle) -> None:
    g = torch.Generator(device="cuda")
    assert isinstance(g, torch.Generator)
    assert isinstance(torch.default_generator, torch.Generator)
    g.manual_seed(5)
    a = torch.randn(3, device="cuda", generator=g)
    g.manual_seed(5)
    assert torch.equal(torch.randn(3, device="cuda", generator=g), a)
    assert a.is_cuda
    assert torch.Generator().device == torch.device("cpu")
    assert len(torch.cuda.default_generators) == 1


# ------------------------------------------------------------------------------------ legacy types, nvtx
def test_legacy_constructors(handle: td.Handle) -> None:
    f = torch.cuda.FloatTensor(3)
    assert f.is_cuda and f.dtype == torch.float32 and f.shape == (3,)
    longs = torch.cuda.LongTensor([1, 2])
    assert longs.is_cuda and longs.dtype == torch.int64 and longs.tolist() == [1, 2]
    assert isinstance(longs, torch.cuda.LongTensor)
    assert torch.cuda.HalfTensor([1.0]).dtype == torch.float16
    assert "torch.cuda.FloatTensor" in repr(torch.cuda.FloatTensor)


def test_nvtx_is_a_no_op(handle: td.Handle) -> None:
    assert torch.cuda.nvtx.range_push("outer") == 0
    assert torch.cuda.nvtx.range_push("inner") == 1
    assert torch.cuda.nvtx.range_pop() == 1
    assert torch.cuda.nvtx.range_pop() == 0
    with torch.cuda.nvtx.range("block"):
        x = torch.ones(2, device="cuda") + 1
    torch.cuda.nvtx.mark("here")
    assert x.tolist() == [2.0, 2.0]
    assert handle.record.snapshot().counts[("emulated", "torch.cuda.nvtx")] == 4


# ------------------------------------------------------------------------------------ unemulatable
def test_jiterator_functions_are_made_as_natively_and_refused_when_called(handle: td.Handle) -> None:
    # torch's op_db makes one at import (common_methods_invocations): making must work, as it does without CUDA
    fn = torch.cuda.jiterator._create_jit_fn("template <typename T> T f(T x) { return x; }")
    assert handle.record.snapshot().apis("refused") == []
    with pytest.raises(td.UnemulatableError, match="jiterator compiles CUDA C"):
        fn(torch.ones(1, device="cuda"))
    assert handle.record.snapshot().apis("refused") == ["torch.cuda.jiterator._create_jit_fn"]


@pytest.mark.parametrize(
    ("call", "api"),
    [
        (lambda: torch.cuda.CUDAGraph(), "torch.cuda.CUDAGraph"),
        (lambda: torch.cuda.graph(None), "torch.cuda.graph"),
        (lambda: torch.cuda.nccl.all_reduce, "torch.cuda.nccl.all_reduce"),
        (lambda: torch.cuda.jiterator._create_jit_fn("template <typename T> T f(T x) { return x; }")(
            torch.ones(1, device="cuda")), "torch.cuda.jiterator._create_jit_fn"),
        (lambda: torch.cuda.MemPool(), "torch.cuda.MemPool"),
        (lambda: torch.cuda.Event(interprocess=True), "torch.cuda.Event(interprocess=True)"),
        (lambda: torch.cuda.make_graphed_callables(None, None), "torch.cuda.make_graphed_callables"),
    ],
)
def test_unemulatable_apis_raise_and_are_counted(handle: td.Handle, call: Any, api: str) -> None:
    with pytest.raises(td.UnemulatableError) as info:
        call()
    assert isinstance(info.value, NotImplementedError)
    assert api in str(info.value)
    assert "target 'cpu'" in str(info.value)
    assert info.value.api == api and info.value.target == "cpu"
    assert info.value.why
    record = handle.record.snapshot()
    assert record.counts.get(("refused", api)) == 1
    assert record.apis("refused") == [api]


def test_torchs_op_db_imports_under_redirection() -> None:
    # PyTorch's own test files import it; its module-level jiterator OpInfos must not refuse at import
    code = ("import torchdevice_core as td; td.activate('cpu')\n"
            "from torch.testing._internal.common_methods_invocations import op_db\n"
            "print(len(op_db) > 500)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.stdout.strip() == "True", out.stderr[-2000:]
