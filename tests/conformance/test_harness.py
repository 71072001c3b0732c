"""The harness itself: it must see each kind of difference it claims to count, or its 100 % means nothing."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import torch

import torchdevice_core as td
from benchmarks.conformance import __main__ as cli
from benchmarks.conformance import ops
from benchmarks.conformance.compare import Emulator, Mismatch, Summary, compare_outputs, compare_tensor
from torchdevice_core.tensor import plain_alias


def _cause(native: Any, emulated: Any) -> str | None:
    try:
        compare_outputs(native, emulated)
    except Mismatch as m:
        return m.cause
    return None


def test_compare_sees_device_dtype_shape_value_and_accepts_nan() -> None:
    native = torch.tensor([1.0, float("nan")])
    with td.redirected("cpu"):
        same = native.cuda()
        assert _cause(native, same) is None  # NaN == NaN, exactly equal otherwise
        assert _cause(native, plain_alias(same)) == "device report"
        assert _cause(native, same.double()) == "dtype"
        assert _cause(native, same[:1]) == "shape"
        assert _cause(native, same + 1) == "value"
        assert _cause(native, same * (1 + 1e-7)) in ("value (within tolerance)", None)
        assert _cause(native, same.nextafter(same + 1)) == "value (within tolerance)"
        assert _cause((native, native), [same, same]) == "output structure"
        with pytest.raises(Mismatch, match="grad device report"):
            compare_tensor(native, plain_alias(same), "g", device_cause="grad device report")


def test_emulator_moves_as_user_code_and_keeps_aliasing_and_view_layout() -> None:
    base = torch.arange(10.0)
    view = base[2:8:2]
    x = torch.ones(2, requires_grad=True)
    with td.redirected("cpu"):
        conv = Emulator()
        a, b, v, dev, leaf = conv((base, base, view, "cpu", x))
        assert a is b and a.is_cuda and str(a.device) == "cuda:0"
        assert v.is_cuda and v.storage_offset() == 2 and v.stride() == (2,)
        assert torch.equal(v.cpu(), view)
        assert dev == "cuda" and conv.touched
        assert leaf.is_leaf and leaf.requires_grad and conv.leaves[0][0] is x


def _broken(op: Any, wrap: Any) -> Any:
    fake = copy.copy(op)
    fake.op = wrap
    fake.inplace_variant = None
    return fake


def test_run_op_reports_a_result_that_lost_the_emulated_class() -> None:
    (sin,) = ops.select(ops.op_db(), ["sin"])
    summary = Summary()
    ops.run_op(_broken(sin, lambda x: plain_alias(x).sin()), summary, limit=2)
    assert {o.cause for o in summary.outcomes} == {"device report"}


def test_run_op_reports_gradients_and_exceptions_only_under_emulation() -> None:
    (sin,) = ops.select(ops.op_db(), ["sin"])

    def wrong_grad(x: torch.Tensor) -> torch.Tensor:
        return (x * 2).sin() if td.is_emulated(x) and x.requires_grad else x.sin()

    summary = Summary()
    ops.run_op(_broken(sin, wrong_grad), summary, limit=2)
    assert "value" in {o.cause for o in summary.outcomes if o.dtype == "float32"}

    def raises(x: torch.Tensor) -> torch.Tensor:
        if td.is_emulated(x):
            raise RuntimeError("only on the emulated side")
        return x.sin()

    summary = Summary()
    ops.run_op(_broken(sin, raises), summary, limit=1)
    assert {o.cause for o in summary.outcomes} == {"exception only under emulation"}


def test_command_line_writes_the_table_as_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.json"
    assert cli.main(["--db", "op_db,optim_db", "--ops", "neg,SGD", "--limit", "2", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "| op_db |" in out and "| optim_db |" in out
    data = json.loads(path.read_text())
    assert data["counts"]["op_db"]["identical"] > 0 and data["mismatches"] == []
    assert data["command"].startswith("python -m benchmarks.conformance")
