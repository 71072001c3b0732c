"""The redirect record: counts per kind, call sites only when asked."""

from __future__ import annotations

import inspect

import pytest
import torch

import torchdevice_core as td


def _line() -> int:
    frame = inspect.currentframe()
    assert frame is not None and frame.f_back is not None
    return frame.f_back.f_lineno


def test_counts_by_kind() -> None:
    with td.redirected("cpu") as handle:
        torch.randn(2, device="cuda")
        torch.zeros(2, device="cuda")
        torch.ones(2).cuda()
        torch.cuda.synchronize()
        torch.cuda.is_available()
        with pytest.raises(td.UnemulatableError):
            torch.cuda.CUDAGraph()
        snap = handle.record.snapshot()
        assert snap.total("redirected") == 3
        assert snap.total("emulated") == 2
        assert snap.total("refused") == 1
        assert snap.total() == 6
        assert snap.apis("redirected") == ["Tensor.cuda", "torch.randn", "torch.zeros"]
        data = snap.as_dict()
        assert data == {"redirected": {"Tensor.cuda": 1, "torch.randn": 1, "torch.zeros": 1},
                        "emulated": {"torch.cuda.is_available": 1, "torch.cuda.synchronize": 1},
                        "refused": {"torch.cuda.CUDAGraph": 1}, "mps": {}, "target_gap": {}}  # the report's shape
        assert snap.sources() == ["cuda"]  # three tensors put on the (emulated) cuda device
        assert snap.counts[("source", "cuda")] == 3


def test_plain_work_is_not_counted() -> None:
    with td.redirected("cpu") as handle:
        x = torch.randn(3)
        torch.zeros(2, device="cpu")
        _ = x + x
        assert handle.record.snapshot().as_dict() == {"redirected": {}, "emulated": {}, "refused": {}, "mps": {},
                                                      "target_gap": {}}


def test_torchs_own_calls_into_the_emulated_namespace_are_not_counted() -> None:
    """torch.manual_seed calls torch.cuda.manual_seed_all itself: that is no query of the test's."""
    with td.redirected("cpu") as handle:
        torch.manual_seed(0)
        assert handle.record.snapshot().apis("emulated") == []
        torch.cuda.manual_seed_all(0)  # the test's own call is counted
        state = torch.cuda.get_rng_state()
        torch.cuda.set_rng_state(state)
        assert handle.record.snapshot().apis("emulated") == [
            "torch.cuda.get_rng_state", "torch.cuda.manual_seed_all", "torch.cuda.set_rng_state"]


def test_call_sites_name_this_file_and_line() -> None:
    with td.redirected("cpu", call_sites=True) as handle:
        torch.randn(2, device="cuda"); randn_line = _line()  # noqa: E702
        torch.ones(2).to("cuda"); to_line = _line()  # noqa: E702
        torch.cuda.synchronize(); sync_line = _line()  # noqa: E702
        for _ in range(2):
            torch.zeros(1, device="cuda"); loop_line = _line()  # noqa: E702
        data = handle.record.snapshot().as_dict()
    here = __file__
    sites = data["call_sites"]
    assert sites["redirected:torch.randn"] == {f"{here}:{randn_line}": 1}
    assert sites["redirected:Tensor.to"] == {f"{here}:{to_line}": 1}
    assert sites["emulated:torch.cuda.synchronize"] == {f"{here}:{sync_line}": 1}
    assert sites["redirected:torch.zeros"] == {f"{here}:{loop_line}": 2}
    assert data["redirected"]["torch.zeros"] == 2


def test_snapshot_difference() -> None:
    with td.redirected("cpu") as handle:
        torch.randn(1, device="cuda")
        first = handle.record.snapshot()
        torch.randn(1, device="cuda")
        torch.ones(1, device="cuda")
        diff = handle.record.snapshot().minus(first)
        assert diff.counts == {("redirected", "torch.randn"): 1, ("redirected", "torch.ones"): 1,
                               ("source", "cuda"): 2}
        handle.record.clear()
        assert handle.record.snapshot().total() == 0


def test_each_activation_starts_a_fresh_record() -> None:
    with td.redirected("cpu") as first:
        torch.randn(1, device="cuda")
    with td.redirected("cpu") as second:
        assert second.record.snapshot().total() == 0
    assert first.record.snapshot().total("redirected") == 1
