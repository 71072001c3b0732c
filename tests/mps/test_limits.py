"""MPS limits on this Linux machine: the kernel list from the installed torch, the float64 policies, and the
simulated backend (``simulate_limits="mps"``).  A real Mac is needed only for the tests marked below."""

from __future__ import annotations

import io
import warnings

import pytest
import torch

import torchdevice_core as td
from torchdevice_core.mps.limits import missing_mps_kernels, native_functions_yaml, parse_native_functions

needs_mac = pytest.mark.skipif(not torch.backends.mps.is_available(), reason="needs a real Apple-silicon Mac (MPS)")


def test_kernel_list_is_read_from_the_installed_torch() -> None:
    assert native_functions_yaml() is not None
    missing = missing_mps_kernels()
    # Note [MPS kernels: read native_functions.yaml]: no MPS kernel in torch 2.13 or 2.14 (geqrf and _ctc_loss
    # have one from 2.14 on) ...
    for op in ("heaviside.out", "take", "put_", "linalg_eig", "_pdist_forward",
               "adaptive_avg_pool3d.out", "segment_reduce", "_fused_adagrad_"):
        assert op in missing, op
    # ... and these have one (or decompose): they must not be predicted to fail
    for op in ("add.Tensor", "mm", "addmm", "relu", "softmax.int", "conv2d", "linalg_lstsq"):
        assert op not in missing, op


def test_parser_follows_structured_delegates_and_composites() -> None:
    ops = parse_native_functions(
        "- func: foo.out(Tensor self, *, Tensor(a!) out) -> Tensor(a!)\n"
        "  structured: True\n"
        "  dispatch:\n"
        "    CPU, CUDA: foo_out\n"
        "\n"
        "- func: foo(Tensor self) -> Tensor\n"
        "  structured_delegate: foo.out\n"
        "\n"
        "- func: bar(Tensor self) -> Tensor\n"
        "  dispatch:\n"
        "    CompositeExplicitAutograd: bar\n"
    )
    assert ops["foo.out"] == ({"CPU", "CUDA"}, None)
    assert ops["foo"] == (set(), "foo.out")
    assert ops["bar"] == ({"CompositeExplicitAutograd"}, None)


@pytest.fixture
def fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTORCH_ENABLE_MPS_FALLBACK", "1")


def test_missing_kernel_raises_like_mps_without_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTORCH_ENABLE_MPS_FALLBACK", raising=False)
    with td.redirected("cpu", simulate_limits="mps") as handle:
        x = torch.ones(3, device="cuda")
        with pytest.raises(NotImplementedError, match="aten::heaviside' is not currently implemented for the MPS"):
            torch.heaviside(x, x)
        assert (x + 1).is_cuda  # ops with kernels run
        assert handle.record.snapshot().apis("mps") == ["aten::heaviside (no MPS kernel)"]
        # plain CPU tensors are not on the (simulated) Mac GPU
        assert torch.heaviside(torch.ones(2), torch.ones(2)).tolist() == [1.0, 1.0]


def test_missing_kernel_falls_back_with_mps_warning(fallback: None) -> None:
    with td.redirected("cpu", simulate_limits="mps"):
        x = torch.ones(3, device="cuda")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = torch.heaviside(x, x)
            torch.heaviside(x, x)
        assert out.is_cuda and out.tolist() == [1.0, 1.0, 1.0]
        messages = [str(w.message) for w in caught if "MPS backend" in str(w.message)]
        assert len(messages) == 1  # once per operator, as MPS warns
        assert "will fall back to run on the CPU" in messages[0]


def test_float64_error_policy_everywhere_a_tensor_reaches_the_device(fallback: None) -> None:
    with td.redirected("cpu", simulate_limits="mps"):
        attempts = [
            lambda: torch.zeros(2, dtype=torch.float64, device="cuda"),
            lambda: torch.tensor([1.0], dtype=torch.float64, device="cuda"),
            lambda: torch.ones(2, dtype=torch.float64).cuda(),
            lambda: torch.ones(2, dtype=torch.float64).to("cuda"),
            lambda: torch.ones(2, device="cuda").double(),
            lambda: torch.ones(2, device="cuda").to(torch.float64),
            lambda: torch.ones(2, dtype=torch.complex128, device="cuda"),
        ]
        for attempt in attempts:
            with pytest.raises(TypeError, match="MPS"):
                attempt()
        with pytest.raises(RuntimeError, match="float64 is not supported on MPS"):
            torch.ones(2, device="cuda").sum(dtype=torch.float64)
        assert torch.tensor([1.5], device="cuda").dtype == torch.float32  # Python floats are fine


def test_float64_downcast_policy(fallback: None) -> None:
    with td.redirected("cpu", simulate_limits="mps", mps_float64="downcast") as handle:
        assert torch.zeros(2, dtype=torch.float64, device="cuda").dtype == torch.float32
        assert torch.ones(2, dtype=torch.float64).cuda().dtype == torch.float32
        assert torch.ones(2, device="cuda").double().dtype == torch.float32
        assert torch.ones(2, dtype=torch.complex128, device="cuda").dtype == torch.complex64
        assert handle.record.snapshot().counts[("mps", "float64 (downcast)")] == 3


def test_float64_cpu_policy_keeps_float64_on_the_cpu(fallback: None) -> None:
    with td.redirected("cpu", simulate_limits="mps", mps_float64="cpu"):
        x = torch.zeros(2, dtype=torch.float64, device="cuda")
        assert (x.dtype, x.device.type) == (torch.float64, "cpu")
        y = torch.ones(2, device="cuda").double()
        assert (y.dtype, y.device.type) == (torch.float64, "cpu")
        assert torch.ones(2, device="cuda").is_cuda


def test_default_dtype_float64_is_seen(fallback: None) -> None:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        with td.redirected("cpu", simulate_limits="mps"), pytest.raises(TypeError, match="float64"):
            torch.zeros(2, device="cuda")
    finally:
        torch.set_default_dtype(previous)


def test_gradscaler_avoids_float64_under_mps_limits(fallback: None) -> None:
    with td.redirected("cpu", simulate_limits="mps"):
        model = torch.nn.Linear(4, 1).cuda()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        scaler = torch.amp.GradScaler("cuda")
        scaler.scale(model(torch.randn(2, 4, device="cuda")).sum()).backward()
        scaler.step(opt)
        scaler.update()


def test_without_simulation_float64_is_untouched() -> None:
    with td.redirected("cpu"):
        assert torch.zeros(2, dtype=torch.float64, device="cuda").dtype == torch.float64


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="valid choices: mps"):
        td.activate("cpu", simulate_limits="tpu")
    with pytest.raises(ValueError, match="error, downcast, cpu"):
        td.activate("cpu", mps_float64="round")


def test_checkpoint_with_float64_under_limits(fallback: None) -> None:
    buffer = io.BytesIO()
    with td.redirected("cpu"):
        torch.save({"w": torch.ones(2, device="cuda"), "d": torch.ones(2, dtype=torch.float64, device="cuda")}, buffer)
    with td.redirected("cpu", simulate_limits="mps"):
        buffer.seek(0)
        with pytest.raises(TypeError, match="float64"):
            torch.load(buffer)
    with td.redirected("cpu", simulate_limits="mps", mps_float64="downcast"):
        buffer.seek(0)
        state = torch.load(buffer)
        assert state["w"].is_cuda and state["d"].is_cuda and state["d"].dtype == torch.float32
    with td.redirected("cpu", simulate_limits="mps", mps_float64="cpu"):
        buffer.seek(0)
        state = torch.load(buffer)
        assert state["w"].is_cuda and (state["d"].device.type, state["d"].dtype) == ("cpu", torch.float64)


@needs_mac
def test_real_mps_backend_events_and_memory() -> None:
    with td.redirected("mps"):
        x = torch.ones(1024, 1024, device="cuda")
        assert torch.cuda.memory_allocated() >= x.numel() * 4
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        (x @ x).sum()
        end.record()
        torch.cuda.synchronize()
        assert start.elapsed_time(end) >= 0


class _SimulatedDeviceEvent:
    """Stands in for torch.mps.Event on Linux: a device event that times with the host clock."""

    def __init__(self, enable_timing: bool = False) -> None:
        assert enable_timing
        self.at: float | None = None

    def record(self) -> None:
        import time

        self.at = time.perf_counter()

    def query(self) -> bool:
        return self.at is not None

    def synchronize(self) -> None:
        return None

    def elapsed_time(self, end: _SimulatedDeviceEvent) -> float:
        assert self.at is not None and end.at is not None
        return (end.at - self.at) * 1000


def test_device_event_logic_of_the_mps_and_cuda_backends() -> None:
    import time

    from torchdevice_core.backends.base import DeviceEvent

    start, end = DeviceEvent(_SimulatedDeviceEvent), DeviceEvent(_SimulatedDeviceEvent)
    with pytest.raises(RuntimeError, match="must be recorded"):
        start.elapsed_ms(end)
    start.record()
    time.sleep(0.02)
    end.record()
    assert start.query() and 15 <= start.elapsed_ms(end) <= 500
