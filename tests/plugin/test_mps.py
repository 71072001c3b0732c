"""The MPS options end to end: --simulate-limits=mps, --mps-float64, the fallback variable, --source-device=mps,
on the example suites shipped in examples/ (a CUDA-written one and an MPS-written one)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from torchdevice_core.mps.limits import missing_mps_kernels

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# What the simulation predicts follows the installed torch's native_functions.yaml: torch 2.6 has no MPS kernel
# for GradScaler's unscale op (2.13 has one), so the example's AMP test needs the CPU fallback there too.
AMP_UNSCALE_HAS_NO_MPS_KERNEL = "_amp_foreach_non_finite_check_and_unscale_" in missing_mps_kernels()


def _example(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, name: str) -> pytest.Pytester:
    """An example suite copied into the pytester folder, run with the CPU fallback left to its default."""
    monkeypatch.delenv("PYTORCH_ENABLE_MPS_FALLBACK", raising=False)
    shutil.copytree(EXAMPLES / name, pytester.path / name)
    return pytester


@pytest.fixture
def cuda_suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    return _example(pytester, monkeypatch, "cuda_suite")


def test_cuda_suite_passes_on_cpu(cuda_suite: pytest.Pytester) -> None:
    result = cuda_suite.runpytest("cuda_suite", "--target-device=cpu")
    result.assert_outcomes(passed=8, skipped=1)  # the skip: CUDA graphs, unemulatable


def test_simulated_mps_predicts_float64_failures(cuda_suite: pytest.Pytester) -> None:
    report = cuda_suite.path / "r.json"
    result = cuda_suite.runpytest("cuda_suite", "--target-device=cpu", "--simulate-limits=mps",
                                  f"--torchdevice-report={report}")
    hit = 3 if AMP_UNSCALE_HAS_NO_MPS_KERNEL else 2  # the AMP test falls back too on such a torch
    result.stdout.fnmatch_lines([
        "torchdevice: cuda, mps -> cpu (from --target-device); simulated MPS limits: float64=error, cpu fallback=on",
        f"MPS limits hit by {hit} tests (1 failed): *float64 (error) (1)*aten::heaviside (cpu fallback) (1)*",
    ])
    result.assert_outcomes(passed=7, failed=1, skipped=1)
    tests = json.loads(report.read_text())["tests"]
    assert tests["cuda_suite/test_model.py::test_float64_reference"]["mps"] == {"float64 (error)": 1}
    assert tests["cuda_suite/test_model.py::test_step_function"]["mps"] == {"aten::heaviside (cpu fallback)": 1}


def test_downcast_lets_float64_tests_run(cuda_suite: pytest.Pytester) -> None:
    result = cuda_suite.runpytest("cuda_suite", "--target-device=cpu", "--simulate-limits=mps",
                                  "--mps-float64=downcast")
    result.assert_outcomes(passed=8, skipped=1)


def test_without_fallback_missing_kernels_fail(cuda_suite: pytest.Pytester,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTORCH_ENABLE_MPS_FALLBACK", "0")
    result = cuda_suite.runpytest("cuda_suite", "--target-device=cpu", "--simulate-limits=mps",
                                  "--mps-float64=downcast")
    extra = 1 if AMP_UNSCALE_HAS_NO_MPS_KERNEL else 0  # the AMP test fails too on such a torch
    result.assert_outcomes(passed=7 - extra, failed=1 + extra, skipped=1)
    result.stdout.fnmatch_lines(["FAILED cuda_suite/test_model.py::test_step_function - NotImplementedError*"])


def test_mps_written_suite_runs_on_cpu(pytester: pytest.Pytester) -> None:
    shutil.copytree(EXAMPLES / "mps_suite", pytester.path / "mps_suite")
    result = pytester.runpytest("mps_suite", "--target-device=cpu", "--source-device=mps")
    result.stdout.fnmatch_lines(["torchdevice: mps -> cpu (from --target-device)"])
    result.assert_outcomes(passed=4)
    pytester.runpytest("mps_suite").assert_outcomes(skipped=4)


def test_mps_written_suite_runs_with_plain_target_device(pytester: pytest.Pytester) -> None:
    shutil.copytree(EXAMPLES / "mps_suite", pytester.path / "mps_suite")
    report = pytester.path / "r.json"
    result = pytester.runpytest("mps_suite", "--target-device=cpu", f"--torchdevice-report={report}")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines([
        "torchdevice: cuda, mps -> cpu (from --target-device)",
        "*= torchdevice: mps -> cpu =*",  # the summary names the source the suite really used
        "4 of 4 tests exercised redirected MPS code paths (4 passed, 0 failed, 0 skipped); 0 more only queried "
        "the emulated torch.mps",
    ])
    data = json.loads(report.read_text())
    assert (data["source"], data["sources_seen"]) == ("auto", ["mps"])


@pytest.fixture
def option_suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    return _example(pytester, monkeypatch, "device_option_suite")


def test_device_option_suite_predicted_for_mps(option_suite: pytest.Pytester) -> None:
    """A suite choosing its device with its own --device option: --device=mps is predicted without
    --source-device."""
    report = option_suite.path / "r.json"
    result = option_suite.runpytest("device_option_suite", "--target-device=cpu", "--simulate-limits=mps",
                                    "--device=mps", f"--torchdevice-report={report}")
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines(["FAILED device_option_suite/test_ops.py::test_float64_accumulation - TypeError*"])
    tests = json.loads(report.read_text())["tests"]
    assert tests["device_option_suite/test_ops.py::test_step_function"]["mps"] == {
        "aten::heaviside (cpu fallback)": 1}
    assert all(t["sources"] == ["mps"] for t in tests.values())
    # the same suite on its default device (cuda) under the same limits
    option_suite.runpytest("device_option_suite", "--target-device=cpu", "--simulate-limits=mps"
                           ).assert_outcomes(passed=4, failed=1)


def test_device_option_suite_without_the_plugin_skips(option_suite: pytest.Pytester) -> None:
    option_suite.runpytest("device_option_suite", "--device=mps", "-p", "no:torchdevice").assert_outcomes(skipped=5)


def test_mps_options_are_validated(pytester: pytest.Pytester) -> None:
    assert pytester.runpytest("--mps-float64=round").ret == pytest.ExitCode.USAGE_ERROR
    assert pytester.runpytest("--simulate-limits=tpu").ret == pytest.ExitCode.USAGE_ERROR
    assert pytester.runpytest("--source-device=xpu").ret == pytest.ExitCode.USAGE_ERROR
    pytester.makeini("[pytest]\ntarget_device = cpu\nmps_float64 = sometimes\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini mps_float64='sometimes' is not valid; valid choices: error, downcast, cpu*"])


def test_ini_keys_configure_the_simulation(cuda_suite: pytest.Pytester) -> None:
    cuda_suite.makeini("[pytest]\ntarget_device = cpu\nsimulate_limits = mps\nmps_float64 = downcast\n")
    cuda_suite.runpytest("cuda_suite").assert_outcomes(passed=8, skipped=1)
