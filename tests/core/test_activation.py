"""Turning redirection on and off: the API, nesting, threads, and that deactivation leaves torch as it was."""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

import pytest
import torch
import torch._functorch.config
import torch.amp.autocast_mode
import torch.amp.grad_scaler
import torch.cuda.nvtx
import torch.distributed
import torch.distributed.distributed_c10d
import torch.fft
import torch.nested
import torch.serialization
import torch.storage
import torch.utils._device

import torchdevice_core as td
from torchdevice_core import activation as _activation
from torchdevice_core import active_state
from torchdevice_core.patching import MISSING, Patch, Patcher

# ---------------------------------------------------------------------------------------------- the API


def test_activate_returns_an_active_handle_and_deactivate_undoes_it() -> None:
    real_randn = torch.randn
    handle = td.activate("cpu")
    assert handle.active
    assert td.active() is handle.session
    assert handle.target.device == torch.device("cpu")
    assert torch.randn is not real_randn
    assert torch.randn(2, device="cuda").is_cuda
    assert "cuda -> cpu" in repr(handle) and "(active)" in repr(handle)
    handle.deactivate()
    assert not handle.active
    assert td.active() is None
    assert torch.randn is real_randn
    assert "(inactive)" in repr(handle)
    handle.deactivate()  # a second time is a no-op
    assert td.active() is None


def test_redirected_context_manager_deactivates_on_error() -> None:
    with pytest.raises(KeyError), td.redirected("cpu") as handle:
        assert handle.active and torch.cuda.is_available()
        raise KeyError("boom")
    assert td.active() is None
    assert not torch.cuda.is_available()


def test_handle_is_a_context_manager() -> None:
    with td.activate("cpu") as handle:
        assert td.active() is handle.session
    assert td.active() is None


def test_nesting_with_same_settings_shares_one_session() -> None:
    outer = td.activate("cpu", device_count=2)
    inner = td.activate("cpu", device_count=2)
    assert inner.session is outer.session
    inner.deactivate()
    assert td.active() is outer.session and outer.active
    assert torch.cuda.device_count() == 2
    assert active_state.CHECKS[0] is not None and active_state.TARGET[0] == torch.device("cpu")
    inner.deactivate()  # closing the same handle twice must not release the outer level
    assert td.active() is outer.session
    outer.deactivate()
    assert td.active() is None


def test_nested_context_managers() -> None:
    with td.redirected("cpu"), td.redirected("cpu") as inner:
        assert inner.active
    assert td.active() is None


@pytest.mark.parametrize(
    "kwargs",
    [{"device_count": 2}, {"emulate_identity": False}, {"device_checks": False}, {"call_sites": True},
     {"source": "mps"}],
)
def test_different_settings_while_active_raise(kwargs: dict[str, Any]) -> None:
    with td.redirected("cpu") as handle:
        with pytest.raises(td.ActivationError, match="already active"):
            td.activate("cpu", **kwargs)
        assert td.active() is handle.session
        assert handle.session.options == td.Options()


def test_deactivate_function_releases_every_nesting_level() -> None:
    first = td.activate("cpu")
    second = td.activate("cpu")
    td.deactivate()
    assert td.active() is None
    assert not first.active and not second.active
    assert not torch.cuda.is_available()
    td.deactivate()  # nothing active: a no-op


def test_invalid_options_raise_before_anything_is_patched() -> None:
    real_randn = torch.randn
    with pytest.raises(ValueError, match="device_count"):
        td.activate("cpu", device_count=0)
    with pytest.raises(TypeError):
        td.activate("cpu", no_such_option=True)
    assert td.active() is None and torch.randn is real_randn


def test_suspended_runs_against_real_torch() -> None:
    with td.redirected("cpu") as handle:
        with handle.suspended():
            assert not torch.cuda.is_available()
            assert torch.randn(1).device.type == "cpu"
            with pytest.raises((RuntimeError, AssertionError)):
                torch.randn(1, device="cuda")
            assert td.active() is None and handle.active  # not in effect, still activated
        assert torch.cuda.is_available()
        assert torch.randn(1, device="cuda").is_cuda
        assert td.active() is handle.session


def test_stale_handle_does_not_release_a_later_activation() -> None:
    real_randn = torch.randn
    stale = td.activate("cpu")
    td.deactivate()
    current = td.activate("cpu")
    try:
        stale.deactivate()
        assert td.active() is current.session
        td.deactivate()
        assert torch.randn is real_randn
    finally:
        if torch.randn is not real_randn:  # the bug leaves torch patched with nothing active: undo by hand
            current._activation.patcher.undo_all()
            _activation._current = None


def test_concurrent_activation_from_threads_leaves_a_consistent_state() -> None:
    before = _namespace_state()
    failures: list[BaseException] = []
    start = threading.Barrier(6)

    def worker(n: int) -> None:
        try:
            start.wait()
            for i in range(25):
                with td.redirected("cpu") as handle:
                    x = torch.randn(3, device="cuda")
                    assert x.is_cuda and handle.active
                    assert torch.cuda.is_available()
                    if (i + n) % 5 == 0:  # a plain handle, closed explicitly
                        extra = td.activate("cpu")
                        assert (x + torch.ones(3, device="cuda")).is_cuda
                        extra.deactivate()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert td.active() is None
    assert active_state.ACTIVE[0] is None and active_state.CHECKS[0] is None and active_state.TARGET[0] is None
    assert not torch.cuda.is_available()
    assert _namespace_state() == before


# ------------------------------------------------------------------- deactivation restores torch exactly
_FUNCTORCH_CONFIG = torch._functorch.config
OWNERS: dict[str, Any] = {
    "torch": torch,
    "torch.cuda": torch.cuda,
    "torch.Tensor": torch.Tensor,
    "torch._C.TensorBase": torch._C.TensorBase,
    "torch.nn.Module": torch.nn.Module,
    "torch.serialization": torch.serialization,
    "torch.distributed": torch.distributed,
    "torch.distributed.distributed_c10d": torch.distributed.distributed_c10d,
    "autocast": torch.amp.autocast_mode.autocast,
    "GradScaler": torch.amp.grad_scaler.GradScaler,
    "DeviceContext": torch.utils._device.DeviceContext,
    "_StorageBase": torch.storage._StorageBase,
    "torch.cuda.nvtx": torch.cuda.nvtx,
    "torch.fft": torch.fft,
    "torch.nested": torch.nested,
    "torch.cuda.memory": torch.cuda.memory,
    "torch.nn.Parameter": torch.nn.Parameter,
    "torch.accelerator": torch.accelerator,
    "torch.accelerator.memory": torch.accelerator.memory,
}


class _Same:
    """Compares by identity, so a dict of these compares value-for-value with ``is``."""

    def __init__(self, obj: object) -> None:
        self.obj = obj

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Same) and other.obj is self.obj

    def __repr__(self) -> str:
        return f"<{type(self.obj).__name__} {id(self.obj):#x}>"


def _namespace_state() -> dict[str, dict[str, object]]:
    state: dict[str, dict[str, object]] = {
        name: {k: _Same(v) for k, v in vars(owner).items()} for name, owner in OWNERS.items()
    }
    config_keys = _FUNCTORCH_CONFIG._config  # type: ignore[attr-defined]
    state["torch._functorch.config"] = {k: _Same(getattr(_FUNCTORCH_CONFIG, k)) for k in config_keys}
    state["torch._functorch.config keys"] = {k: _Same(None) for k in vars(_FUNCTORCH_CONFIG)}
    state["default device"] = {"": torch.get_default_device()}  # compared by value
    return state


def _exercise() -> None:
    """Touch a bit of everything, so lazily built state (caches, classes) would show up as a difference."""
    x = torch.randn(4, device="cuda")
    model = torch.nn.Linear(4, 2).cuda()
    model(x).sum().backward()
    torch.cuda.synchronize()
    assert torch.cuda.is_available() and torch.cuda.device_count() >= 1
    torch.cuda.memory_allocated()
    torch.cuda.manual_seed(0)
    with torch.autocast("cuda"):
        model(x)
    torch.accelerator.synchronize()
    torch.accelerator.memory_allocated()
    torch.Event(device="cuda").record(torch.Stream(device="cuda"))
    torch.set_default_device("cuda")
    torch.zeros(1)


def _state_diff(before: dict[str, dict[str, object]], after: dict[str, dict[str, object]]) -> list[str]:
    problems = []
    for owner, old in before.items():
        new = after[owner]
        if old.keys() != new.keys():
            problems.append(f"{owner}: keys added {sorted(new.keys() - old.keys())}, "
                            f"removed {sorted(old.keys() - new.keys())}")
        changed = [k for k in old.keys() & new.keys() if old[k] != new[k]]
        problems += [f"{owner}.{k}: {old[k]} -> {new[k]}" for k in changed]
    return problems


def test_deactivation_restores_every_namespace_identically() -> None:
    before = _namespace_state()
    handle = td.activate("cpu")
    _exercise()
    assert _state_diff(before, _namespace_state()) != []  # sanity: activation did change them
    handle.deactivate()
    assert _state_diff(before, _namespace_state()) == []


def test_five_activation_cycles_restore_torch_identically() -> None:
    before = _namespace_state()
    for _ in range(5):
        with td.redirected("cpu", device_count=2):
            _exercise()
        assert _state_diff(before, _namespace_state()) == []


def test_deactivation_restores_with_identity_emulation_off() -> None:
    before = _namespace_state()
    with td.redirected("cpu", emulate_identity=False):
        _exercise()
    assert _state_diff(before, _namespace_state()) == []


def _current(owner: Any, name: str) -> Any:
    if isinstance(owner, type):
        return vars(owner).get(name, MISSING)
    return getattr(owner, name, MISSING)


def test_every_applied_patch_changed_something_and_is_undone() -> None:
    handle = td.activate("cpu")
    applied = handle._activation.patcher.applied
    assert len(applied) > 100
    effective_before = {}
    for record in applied:
        patch = record.patch
        assert _current(patch.owner, patch.name) is patch.replacement, patch.qualname
        assert record.original is not patch.replacement, patch.qualname
        if record.original is not MISSING and not callable(patch.replacement):
            assert record.original != patch.replacement, patch.qualname  # e.g. a config flag really flipped
        # (a staticmethod, e.g. a class's ``__new__``, is seen through getattr as its function, a classmethod
        # as a method bound to the class)
        current = getattr(patch.owner, patch.name)
        if isinstance(patch.replacement, staticmethod):
            assert current is patch.replacement.__func__, patch.qualname
        elif isinstance(patch.replacement, classmethod):
            assert current.__func__ is patch.replacement.__func__, patch.qualname
        else:
            assert current is patch.replacement, patch.qualname
        assert patch.why, patch.qualname
        effective_before[(id(patch.owner), patch.name)] = record.original
    handle.deactivate()
    for record in applied:
        patch = record.patch
        now = _current(patch.owner, patch.name)
        assert now is record.original, patch.qualname
        assert getattr(patch.owner, patch.name, MISSING) is not patch.replacement, patch.qualname


def _hot_state() -> dict[str, Any]:
    """What the activation changes besides attributes: the hot flags, the handler table, modes and hooks."""
    return {
        "flags": [active_state.ACTIVE[0], active_state.CHECKS[0], active_state.TARGET[0], active_state.LEDGER[0],
                  active_state.WRAPPER_IDENTITY[0]],
        "handlers": dict(active_state.HANDLERS),
        "meta_path": list(sys.meta_path),
        "dispatch modes": torch._C._len_torch_dispatch_stack(),
        "function modes": torch._C._len_torch_function_stack(),
        "environment": dict(os.environ),
    }


def test_flags_handlers_and_modes_are_undone_by_suspension_and_deactivation() -> None:
    before = _hot_state()
    with td.redirected("cpu", simulate_limits="mps", track_memory=True) as handle:
        during = _hot_state()
        assert during["flags"][:2] == [handle.session, active_state.CHECKS[0]] and during["flags"][1] is not None
        assert during["flags"][3] is handle.session.ledger
        assert during["dispatch modes"] == before["dispatch modes"] + 1  # the MPS limits simulation
        routed = [k for k in during["handlers"] if getattr(k, "_td_method", None) in ("to", "cuda", "type")]
        assert len(routed) == 3 and vars(torch.Tensor)["to"] in routed
        with handle.suspended():
            assert _hot_state() == before
        again = _hot_state()
        assert again["flags"][0] is handle.session and again["dispatch modes"] == during["dispatch modes"]
        assert len(again["handlers"]) == len(during["handlers"])
    assert _hot_state() == before


class _FailingMode:
    def __init__(self, session: Any) -> None:
        pass

    def __enter__(self) -> None:
        raise RuntimeError("the last step of activation failed")

    def __exit__(self, *exc: object) -> None:
        raise AssertionError("never entered: never exited")


@pytest.mark.parametrize("where", ["a patch half-way", "the last step"])
def test_a_failure_during_activation_unwinds_everything(monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    import torchdevice_core.mps.simulation as simulation

    options: dict[str, Any] = {}
    if where == "the last step":  # everything else was applied by then
        monkeypatch.setattr(simulation, "SimulatedMpsLimits", _FailingMode)
        options = {"simulate_limits": "mps", "track_memory": True}
    else:
        collect = _activation.collect_patches

        def failing(session: Any) -> list[Any]:
            patches = collect(session)
            half = len(patches) // 2
            return [*patches[:half], Patch(int, "immutable", 1, "int refuses new attributes"), *patches[half:]]

        monkeypatch.setattr(_activation, "collect_patches", failing)
    before, hot = _namespace_state(), _hot_state()
    with pytest.raises((TypeError, RuntimeError)):
        td.activate("cpu", **options)
    assert td.active() is None
    assert _state_diff(before, _namespace_state()) == []
    assert _hot_state() == hot
    monkeypatch.undo()
    with td.redirected("cpu"):  # and nothing is left half-active that would stop the next activation
        assert torch.randn(2, device="cuda").is_cuda


def test_patcher_undo_restores_inherited_and_missing_attributes() -> None:
    class Base:
        def method(self) -> str:
            return "base"

    class Child(Base):
        present = 1

    patcher = Patcher()
    patcher.apply(Patch(Child, "method", lambda self: "patched", "test"))
    patcher.apply(Patch(Child, "present", 2, "test"))
    patcher.apply(Patch(Child, "absent", 3, "test"))
    with pytest.raises(ValueError, match="patched twice"):
        patcher.apply(Patch(Child, "present", 4, "test"))
    assert Child().method() == "patched" and Child.present == 2
    assert Child.absent == 3  # type: ignore[attr-defined]
    patcher.undo_all()
    assert "method" not in vars(Child) and Child().method() == "base"
    assert Child.present == 1
    assert not hasattr(Child, "absent")
    assert patcher.applied == ()


# ---------------------------------------------------------------------- the factory list is torch's own
def _schema_device_functions() -> set[str]:
    """Public ``torch.*`` functions whose aten schema takes ``device``, computed afresh.

    See Note [torch's own list of functions that take a device] in docs/notes.md.
    """
    names = set()
    for schema in torch._C._jit_get_all_schemas():
        if not schema.name.startswith("aten::"):
            continue
        name = schema.name[len("aten::"):]
        takes_device = any(a.name == "device" for a in schema.arguments)
        if takes_device and not name.startswith("_") and hasattr(torch, name):
            names.add(name)
    return names


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors:UserWarning")
def test_every_device_taking_function_of_torch_is_patched() -> None:
    schema_names = _schema_device_functions()
    assert len(schema_names) >= 40  # 42 in torch 2.13: a tiny set would mean the schema query broke
    assert {"randn", "zeros_like", "normal", "from_file", "tensor", "arange"} <= schema_names
    constructors = torch.utils._device._device_constructors()
    with td.redirected("cpu") as handle:
        patched = {(id(a.patch.owner), a.patch.name) for a in handle._activation.patcher.applied}
        patched_torch = {name for (owner, name) in patched if owner == id(torch)}
        missing = sorted(schema_names - patched_torch)
        assert missing == [], f"device-taking torch functions left unredirected: {missing}"
        replaced = {id(a.original) for a in handle._activation.patcher.applied if a.original is not MISSING}
        unpatched = sorted(getattr(f, "__name__", repr(f)) for f in constructors if id(f) not in replaced)
        assert unpatched == [], f"torch.utils._device constructors left unredirected: {unpatched}"
        # each really redirects
        assert torch.empty_like(torch.ones(2), device="cuda").is_cuda
        assert torch.normal(0.0, 1.0, (2,), device="cuda").is_cuda
        assert torch.fft.fftfreq(4, device="cuda").is_cuda
        assert torch.nested.nested_tensor([torch.ones(2)], device="cuda").device == torch.device("cuda:0")


@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning")
def test_quantized_empty_factories_are_redirected() -> None:
    """PyTorch's own view tests build quantized tensors with device="cuda"; CUDA has the kernels, a CPU build
    raises "Torch not compiled with CUDA enabled" unless the call is redirected."""
    with td.redirected("cpu"):
        q = torch._empty_affine_quantized([2, 3], scale=2, zero_point=3, dtype=torch.quint8, device="cuda")
        assert q.is_cuda and q.is_quantized and q.ravel().shape == (6,)
        per_channel = torch._empty_per_channel_affine_quantized(
            [2, 3], scales=torch.ones(2, dtype=torch.double), zero_points=torch.zeros(2, dtype=torch.long),
            axis=0, dtype=torch.quint8, device="cuda")
        assert per_channel.is_cuda and per_channel.is_quantized
