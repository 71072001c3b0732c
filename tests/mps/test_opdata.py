"""The MPS op-coverage data kept per torch release (``torchdevice_core/mps/data``), the generator that builds it
from a torch source tree, and what the simulation does with it."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch

import torchdevice_core as td
from torchdevice_core.mps import opdata
from torchdevice_core.mps.limits import missing_mps_kernels, native_functions_yaml

COMMON_MPS = Path(torch.__file__).parent / "testing" / "_internal" / "common_mps.py"
SHIPPED = opdata.data_file(opdata.release_of(torch.__version__))


def test_the_installed_release_has_data_with_provenance() -> None:
    data = opdata.load()
    assert data.release == opdata.release_of(torch.__version__)
    assert "MPSFallback.mm" in data.provenance["commit"] and "035290b7" in data.provenance["commit"]
    assert data.provenance["traced_with"].startswith(data.release)
    assert {"linalg_svd", "linalg_svd.U", "embedding_renorm_"} <= data.always_fallback
    assert data.fallback_for("_linalg_svd") == "linalg_svd"  # what linalg_svd decomposes into
    assert data.fallback_for("add.Tensor") is None
    assert "int32" in data.dtype_gaps["avg_pool2d"] and "float32" not in data.dtype_gaps["avg_pool2d"]


def test_an_unknown_release_has_no_data() -> None:
    assert opdata.load("1.0.0") == opdata.MpsOpData()


def test_fallback_registrations_are_parsed() -> None:
    text = (
        'TORCH_LIBRARY_IMPL(aten, MPS, m) {\n'
        '  m.impl("foo_", torch::CppFunction::makeFromBoxedFunction<&mps_fallback>());\n'
        '  m.impl("bar.out", torch::CppFunction::makeFromBoxedFunction<&mps_fallback>());\n'
        '  m.impl("_baz", baz_mps);\n'  # a device check, not the CPU fallback
        "}\n"
    )
    assert opdata.parse_fallback_registrations(text) == ["foo_", "bar.out"]


def test_common_mps_lists_are_read_without_running_them() -> None:
    text = (
        "def mps_ops_modifier(ops):\n"
        "    UNIMPLEMENTED_XFAILLIST: dict = {\n"
        "        # no kernel\n"
        '        "foo": None,\n'
        '        "nn.functional.bar": [torch.int8, torch.bool],\n'
        "        # returned output on CPU is float64\n"
        '        "baz": [torch.int32],\n'
        "    }\n"
    )
    entries = opdata.parse_unimplemented_entries(text)
    assert entries["foo"] == (None, "no kernel")
    assert entries["nn.functional.bar"][0] == ["bool", "int8"]
    ops = {"bar": ({"CPU", "MPS"}, None), "baz": ({"CPU", "MPS"}, None), "foo": ({"CPU"}, None)}
    gaps, left_out = opdata.unambiguous_dtype_gaps(entries, ops)
    assert gaps == {"bar": ["bool", "int8"]}
    assert "output" in left_out["baz"] and "every dtype" in left_out["foo"]
    # the real file of the installed wheel parses too
    real = opdata.parse_unimplemented_dtypes(COMMON_MPS.read_text())
    assert real["heaviside"] is None and len(real) > 50


def test_the_generator_reproduces_the_shipped_data(tmp_path: Path) -> None:
    """Rebuild the data from a source tree made of the installed wheel's yaml and common_mps.py and the
    MPSFallback.mm registrations the shipped file records: the same ops, decompositions and gaps come out."""
    shipped = json.loads(SHIPPED.read_text())
    yaml = native_functions_yaml()
    assert yaml is not None
    (tmp_path / "aten/src/ATen/native").mkdir(parents=True)
    (tmp_path / "aten/src/ATen/mps").mkdir(parents=True)
    (tmp_path / "torch/testing/_internal").mkdir(parents=True)
    (tmp_path / "aten/src/ATen/native/native_functions.yaml").write_text(yaml.read_text())
    (tmp_path / "torch/testing/_internal/common_mps.py").write_text(COMMON_MPS.read_text())
    registered = [*shipped["always_fallback"], *shipped["provenance"]["dropped_fallbacks"]]
    (tmp_path / "aten/src/ATen/mps/MPSFallback.mm").write_text("".join(
        f'  m.impl("{op}", torch::CppFunction::makeFromBoxedFunction<&mps_fallback>());\n' for op in registered))
    (tmp_path / "version.txt").write_text(torch.__version__.split("+")[0] + "\n")
    out = tmp_path / "out.json"
    assert opdata.main(["--torch-source", str(tmp_path), "--out", str(out), "--commit", "test"]) == 0
    rebuilt = json.loads(out.read_text())
    for key in ("release", "always_fallback", "reached_through", "dtype_gaps"):
        assert rebuilt[key] == shipped[key], key
    assert rebuilt["provenance"]["dropped_fallbacks"] == shipped["provenance"]["dropped_fallbacks"]


def test_svd_runs_through_the_explicit_fallback_even_without_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """yaml alone says _linalg_svd has no MPS kernel; MPSFallback.mm's linalg_svd registration catches it."""
    monkeypatch.setenv("PYTORCH_ENABLE_MPS_FALLBACK", "0")
    assert "_linalg_svd" in missing_mps_kernels()
    with td.redirected("cpu", source="mps", simulate_limits="mps") as handle, warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        a = torch.randn(4, 3, device="mps")
        u, s, vh = torch.linalg.svd(a, full_matrices=False)
        assert u.is_mps and torch.allclose(u @ torch.diag(s) @ vh, a, atol=1e-4)
        assert any("aten::linalg_svd" in str(x.message) and "fall back" in str(x.message) for x in w)
        assert handle.record.snapshot().as_dict()["mps"] == {"aten::linalg_svd (cpu fallback)": {"count": 1}}
        with pytest.raises(NotImplementedError, match="aten::heaviside"):  # a plain missing kernel still raises
            torch.heaviside(a, a)


def test_dtype_gaps_raise_and_other_dtypes_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTORCH_ENABLE_MPS_FALLBACK", "1")
    with td.redirected("cpu", source="mps", simulate_limits="mps") as handle:
        assert torch.median(torch.tensor([1.0, 3.0, 2.0], device="mps")).item() == 2.0
        with pytest.raises(RuntimeError, match=r"aten::median with dtype bool .*common_mps\.py"):
            torch.median(torch.tensor([True, False, True], device="mps"))
        assert "aten::median (bool: no MPS kernel)" in handle.record.snapshot().as_dict()["mps"]
    # without the simulation nothing predicts it: the CPU target's own error (it lacks the kernel too)
    with td.redirected("cpu", source="mps"), pytest.raises(NotImplementedError, match="median_cpu"):
        torch.median(torch.tensor([True, False, True], device="mps"))
