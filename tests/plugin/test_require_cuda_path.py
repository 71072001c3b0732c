"""--torchdevice-require-cuda-path=N: a lane that tested nothing on the device is red."""

from __future__ import annotations

import pytest

SUITE = """
import pytest
import torch

def test_redirected():
    torch.randn(2, device="cuda")

def test_moved():
    torch.zeros(2).cuda()

def test_queries_only():
    assert torch.cuda.is_available()

@pytest.mark.skip(reason="the GPU job forgot its extra")
def test_skipped():
    torch.randn(2, device="cuda")
"""


def test_met_and_not_met(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    met = pytester.runpytest("--target-device=cpu", "--torchdevice-require-cuda-path=2")
    met.assert_outcomes(passed=3, skipped=1)
    assert met.ret == pytest.ExitCode.OK
    short = pytester.runpytest("--target-device=cpu", "--torchdevice-require-cuda-path=3")
    short.assert_outcomes(passed=3, skipped=1)  # every test passed, and still the run fails
    assert short.ret == pytest.ExitCode.TESTS_FAILED
    short.stdout.fnmatch_lines([
        "*torchdevice: required CUDA code paths*",
        "FAILED --torchdevice-require-cuda-path=3 not met: 2 of 4 tests executed redirected CUDA code paths",
    ])


def test_plugin_off_is_red(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE.replace('device="cuda"', 'device="cpu"').replace(".cuda()", ""))
    result = pytester.runpytest("--torchdevice-require-cuda-path=1", "-k", "not queries")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["FAILED --torchdevice-require-cuda-path=1 not met: 0 of 0 tests*torchdevice is off*"])


def test_under_xdist(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest_subprocess("--target-device=cpu", "-n", "2", "--torchdevice-require-cuda-path=3")
    result.assert_outcomes(passed=3, skipped=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["FAILED --torchdevice-require-cuda-path=3 not met: 2 of 4 tests*"])
    ok = pytester.runpytest_subprocess("--target-device=cpu", "-n", "2", "--torchdevice-require-cuda-path=2")
    assert ok.ret == pytest.ExitCode.OK


def test_bad_value_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--torchdevice-require-cuda-path=many")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*'many' is not a non-negative integer*"])
