"""requires_cuda, skip_device, xfail_device, devices; --strict-markers; bad marker arguments."""

from __future__ import annotations

import pytest

MARKED = """
import pytest, torch

@pytest.mark.requires_cuda
def test_real_cuda():
    pass

@pytest.mark.skip_device("cpu", reason="too slow on cpu")
def test_skip_cpu():
    pass

@pytest.mark.skip_device("mps")
def test_skip_mps_only():
    pass

@pytest.mark.xfail_device("cpu", reason="numerics differ", strict=True)
def test_xfail_cpu():
    assert False

@pytest.mark.devices("cpu", "mps")
def test_each(target_device):
    assert torch.ones(1, device="cuda").is_cuda
    assert target_device.type == "cpu"
"""


def test_markers_on_cpu_target(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(MARKED)
    result = pytester.runpytest("--target-device=cpu", "--strict-markers", "-rsx", "-v")
    result.stdout.fnmatch_lines([
        "*test_each?cpu? PASSED*",
        "*test_each?mps? SKIPPED*",
        "*requires real CUDA hardware (the target device is cpu)*",
        "*too slow on cpu*",
        "*numerics differ*",
    ])
    result.assert_outcomes(passed=2, skipped=3, xfailed=1)


def test_markers_are_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.requires_cuda:*", "@pytest.mark.skip_device*",
                                 "@pytest.mark.xfail_device*", "@pytest.mark.devices*"])


def test_devices_marker_runs_without_a_session_target(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest, torch

        @pytest.mark.devices("cpu")
        def test_on_cpu(torchdevice):
            assert torchdevice.active
            assert torch.zeros(1, device="cuda").is_cuda

        def test_after():
            assert not torch.cuda.is_available()
    """)
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


@pytest.mark.parametrize("marker", ['skip_device("gpu")', "devices()", 'xfail_device("cpu", reson="x")'])
def test_bad_marker_arguments_are_errors(pytester: pytest.Pytester, marker: str) -> None:
    pytester.makepyfile(f"import pytest\n@pytest.mark.{marker}\ndef test_x():\n    pass\n")
    result = pytester.runpytest("--target-device=cpu")
    assert result.ret != pytest.ExitCode.OK
    assert "pytest.mark." in result.stdout.str() + result.stderr.str()


def test_unemulatable_api_is_skipped_with_its_reason(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest, torch

        @pytest.fixture
        def graph():
            return torch.cuda.CUDAGraph()

        def test_in_call():
            torch.cuda.nccl.all_reduce([])

        def test_in_fixture(graph):
            pass

        def test_wrapped():
            try:
                torch.cuda.make_graphed_callables(None, None)
            except NotImplementedError as exc:
                raise RuntimeError("library wrapped it") from exc
    """)
    result = pytester.runpytest("--target-device=cpu", "-rs")
    result.assert_outcomes(skipped=3)
    result.stdout.fnmatch_lines(["*torch.cuda.nccl.all_reduce cannot be emulated on target 'cpu'*"])
    strict = pytester.runpytest("--target-device=cpu", "--torchdevice-strict")
    strict.assert_outcomes(failed=2, errors=1)


def test_a_test_that_swallows_an_unemulatable_error_does_not_pass(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import torch

        def test_falls_back_silently():
            try:
                torch.cuda.CUDAGraph()
            except Exception:
                pass  # "no graphs here": on CUDA this test would have exercised them
    """)
    result = pytester.runpytest("--target-device=cpu", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*called torch.cuda.CUDAGraph, which cannot be emulated on cpu (the test caught*"])
    pytester.runpytest("--target-device=cpu", "--torchdevice-strict").assert_outcomes(failed=1)


def test_unemulatable_hook_can_choose(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("""
        def pytest_torchdevice_unemulatable(item, error):
            return "xfail"
    """)
    pytester.makepyfile("import torch\ndef test_x():\n    torch.cuda.CUDAGraph()\n")
    pytester.runpytest("--target-device=cpu").assert_outcomes(xfailed=1)
