"""requires_cuda, skip_device, xfail_device, devices; --strict-markers; bad marker arguments."""

from __future__ import annotations

import fnmatch

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


@pytest.mark.parametrize(("marker", "message"), [
    ('skip_device("gpu")', "@pytest.mark.skip_device('gpu'): not a device; valid choices: cpu, mps, cuda, cuda:N"),
    ('devices("gpu")', "@pytest.mark.devices('gpu'): not a device; valid choices: cpu, mps, cuda, cuda:N"),
    ("devices()", "@pytest.mark.devices() needs at least one device*"),
    ('xfail_device("cpu", reson="x")', "@pytest.mark.xfail_device: *unexpected keyword argument 'reson'"),
    ('torchdevice_skip_device("gpu")', "@pytest.mark.skip_device('gpu'): not a device*"),
])
@pytest.mark.parametrize("target", [["--target-device=cpu"], []])
def test_bad_marker_arguments_are_usage_errors_naming_test_and_file(pytester: pytest.Pytester, marker: str,
                                                                     message: str, target: list[str]) -> None:
    pytester.makepyfile(test_bad=f"import pytest\n\n@pytest.mark.{marker}\ndef test_x():\n    pass\n")
    result = pytester.runpytest(*target)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    out = result.stdout.lines
    error = next(i for i, line in enumerate(out) if line.startswith("ERROR: test_bad.py:3 (test_bad.py::test_x): "))
    assert fnmatch.fnmatch(out[error], f"ERROR: test_bad.py:3 (test_bad.py::test_x): {message}")
    assert error < next(i for i, line in enumerate(out) if "no tests ran" in line)  # where the eye is


def test_every_marker_has_a_torchdevice_alias(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest, torch

        @pytest.mark.torchdevice_requires_cuda
        def test_real_cuda():
            pass

        @pytest.mark.torchdevice_skip_device("cpu")
        def test_skip_cpu():
            pass

        @pytest.mark.torchdevice_xfail_device("cpu", strict=True)
        def test_xfail_cpu():
            assert False

        @pytest.mark.torchdevice_devices("cpu", "mps")
        def test_each(target_device):
            assert target_device.type == "cpu"
    """)
    result = pytester.runpytest("--target-device=cpu", "--strict-markers", "-v")
    result.stdout.fnmatch_lines(["*test_each?cpu? PASSED*"])
    result.assert_outcomes(passed=1, skipped=3, xfailed=1)


SUITE_OWN_MARKER = """
import pytest, torch

@pytest.mark.requires_cuda
def test_cuda_path():
    assert torch.ones(1, device="cuda").is_cuda

@pytest.mark.torchdevice_requires_cuda
def test_real_hardware():
    pass
"""


@pytest.mark.parametrize("how", ["ini", "conftest"])
def test_a_suite_that_registers_requires_cuda_keeps_its_meaning(pytester: pytest.Pytester, how: str) -> None:
    if how == "ini":
        pytester.makeini("[pytest]\nmarkers =\n    requires_cuda: this suite's own: needs torch.cuda\n")
    else:
        pytester.makeconftest("""
            import pytest, torch

            def pytest_configure(config):
                config.addinivalue_line("markers", "requires_cuda: this suite's own: needs torch.cuda")

            def pytest_collection_modifyitems(config, items):
                for item in items:
                    if item.get_closest_marker("requires_cuda") and not torch.cuda.is_available():
                        item.add_marker(pytest.mark.skip(reason="suite: no CUDA"))
        """)
    pytester.makepyfile(SUITE_OWN_MARKER)
    result = pytester.runpytest("--target-device=cpu", "--strict-markers", "-v", "-rs")
    result.stdout.fnmatch_lines([
        "torchdevice: the suite registers its own marker(s) requires_cuda: left to the suite; "
        "the plugin's are @pytest.mark.torchdevice_requires_cuda",
    ])
    result.stdout.fnmatch_lines(["*test_cuda_path PASSED*", "*requires real CUDA hardware (the target device is cpu)*"])
    result.assert_outcomes(passed=1, skipped=1)
    markers = pytester.runpytest("--markers").stdout.str()
    assert markers.count("@pytest.mark.requires_cuda:") == 1 and "this suite's own" in markers


def test_without_a_suite_marker_the_header_says_nothing_about_markers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(): pass")
    assert "registers its own marker" not in pytester.runpytest("--target-device=cpu").stdout.str()


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
