"""Target gaps end to end: skipped with op, dtype and target named (failed under --torchdevice-strict), counted as
target_gap in the report and the summary; the same error on the test's own CPU tensors stays a failure."""

from __future__ import annotations

import json

import pytest

SUITE = """
import pytest
import torch
import torch.nn.functional as F

requires_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")


@requires_gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_mixed_precision_pool(dtype):
    x = torch.randn(1, 2, 4, 4, 4, device="cuda", dtype=dtype)
    assert F.avg_pool3d(x, 2).shape == (1, 2, 2, 2, 2)


def test_pool_on_the_cpu_itself():
    F.avg_pool3d(torch.randn(1, 2, 4, 4, 4, dtype=torch.float16), 2)


@requires_gpu
def test_float32_pool():
    assert F.avg_pool3d(torch.randn(1, 2, 4, 4, 4, device="cuda"), 2).is_cuda
"""


def test_target_gaps_are_skipped_and_counted(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    report = pytester.path / "r.json"
    result = pytester.runpytest("--target-device=cpu", f"--torchdevice-report={report}", "-rsf")
    result.assert_outcomes(passed=1, skipped=2, failed=1)
    result.stdout.fnmatch_lines([
        "target gaps on cpu: 2 tests (2 skipped): avg_pool3d_out_frame (Half) (1), avg_pool3d_out_frame (BFloat16) (1)",
        "SKIPPED*torchdevice: target gap: avg_pool3d_out_frame is not implemented for Half on target 'cpu'",
        "SKIPPED*torchdevice: target gap: avg_pool3d_out_frame is not implemented for BFloat16 on target 'cpu'",
        "FAILED test_suite.py::test_pool_on_the_cpu_itself - NotImplementedError*",
    ])
    tests = json.loads(report.read_text())["tests"]
    half = tests["test_suite.py::test_mixed_precision_pool[dtype0]"]
    assert half["outcome"] == "skipped" and half["target_gap"] == {"avg_pool3d_out_frame (Half)": 1}
    assert "target gap" in half["reason"]
    own = tests["test_suite.py::test_pool_on_the_cpu_itself"]
    assert own["outcome"] == "failed" and own["target_gap"] == {}


def test_strict_fails_target_gaps(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest("--target-device=cpu", "--torchdevice-strict")
    result.assert_outcomes(passed=1, failed=3)
    result.stdout.fnmatch_lines(["*TargetGapError: \"avg_pool3d_out_frame\" not implemented for *Half*target gap*"])
