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


TESTCASE_SUITE = """
import unittest

import torch
import torch.nn.functional as F


@unittest.skipIf(not torch.cuda.is_available(), "CUDA not available")
class TestPools(unittest.TestCase):
    def test_half_pool(self):
        x = torch.randn(1, 2, 4, 4, 4, device="cuda", dtype=torch.float16)
        self.assertEqual(F.avg_pool3d(x, 2).shape, (1, 2, 2, 2, 2))

    def test_graph(self):
        torch.cuda.CUDAGraph()

    def test_wrong_answer(self):
        self.assertEqual(torch.ones(2, device="cuda").sum().item(), 3.0)

    def test_pool_on_the_cpu_itself(self):
        F.avg_pool3d(torch.randn(1, 2, 4, 4, 4, dtype=torch.float16), 2)

    def test_float32_pool(self):
        self.assertTrue(F.avg_pool3d(torch.randn(1, 2, 4, 4, 4, device="cuda"), 2).is_cuda)
"""


def test_testcase_gaps_and_refusals_are_skipped_with_the_reason(pytester: pytest.Pytester) -> None:
    """unittest catches the error inside the TestCase, so it never reaches pytest_runtest_call: the report hook
    judges it the same way, and a real assertion failure stays a failure."""
    pytester.makepyfile(test_suite=TESTCASE_SUITE)
    report = pytester.path / "r.json"
    result = pytester.runpytest("--target-device=cpu", f"--torchdevice-report={report}", "-rsf")
    result.assert_outcomes(passed=1, skipped=2, failed=2)
    result.stdout.fnmatch_lines_random([
        "SKIPPED * test_suite.py:*: torchdevice: target gap: avg_pool3d_out_frame is not implemented for Half on "
        "target 'cpu'*",
        "SKIPPED * test_suite.py:*: torchdevice: *CUDAGraph*",
        "FAILED test_suite.py::TestPools::test_wrong_answer - AssertionError: 2.0 != 3.0",
        "FAILED test_suite.py::TestPools::test_pool_on_the_cpu_itself*",
        "target gaps on cpu: 1 tests (1 skipped): avg_pool3d_out_frame (Half) (1)",
        "unemulatable on cpu: 1 tests (1 skipped): torch.cuda.CUDAGraph",
    ])
    tests = json.loads(report.read_text())["tests"]
    half = tests["test_suite.py::TestPools::test_half_pool"]
    assert half["outcome"] == "skipped" and half["target_gap"] == {"avg_pool3d_out_frame (Half)": 1}
    assert half["reason"].startswith("torchdevice: target gap: avg_pool3d_out_frame")
    assert half["exception"] is None
    wrong = tests["test_suite.py::TestPools::test_wrong_answer"]
    assert wrong["outcome"] == "failed" and wrong["exception"] == "AssertionError"


def test_testcase_gaps_fail_when_strict_and_follow_the_hook(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=TESTCASE_SUITE)
    pytester.makeconftest("""
def pytest_torchdevice_unemulatable(item, error):
    return "xfail"
""")
    result = pytester.runpytest("--target-device=cpu", "-rsxf")
    result.assert_outcomes(passed=1, skipped=1, xfailed=1, failed=2)
    result.stdout.fnmatch_lines_random(["XFAIL test_suite.py::TestPools::test_graph - torchdevice: *CUDAGraph*"])
    result = pytester.runpytest("--target-device=cpu", "--torchdevice-strict")
    result.assert_outcomes(passed=1, xfailed=1, failed=3)  # the hook decides refusals before strict does
    result.stdout.fnmatch_lines(["*TargetGapError: \"avg_pool3d_out_frame\" not implemented for *Half*target gap*"])


@pytest.mark.skipif(int(pytest.__version__.split(".")[0]) < 9, reason="unittest subTest reports need pytest 9")
def test_a_gap_in_a_testcase_subtest_skips_that_subtest(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite="""
import unittest

import torch
import torch.nn.functional as F


class TestPools(unittest.TestCase):
    def test_dtypes(self):
        for dtype in (torch.float32, torch.float16):
            with self.subTest(dtype=dtype):
                self.assertTrue(F.avg_pool3d(torch.randn(1, 2, 4, 4, 4, device="cuda", dtype=dtype), 2).is_cuda)
""")
    # -q: pytest 9 hides skipped subtests at verbosity 0
    result = pytester.runpytest("--target-device=cpu", "-rA", "-q")
    result.stdout.fnmatch_lines([
        "SUBSKIPPED(dtype=torch.float16) * torchdevice: target gap: avg_pool3d_out_frame is not implemented for Half*",
    ])
    assert "failed" not in result.stdout.lines[-1]
