"""--target-device / $PYTEST_TARGET_DEVICE / ini: parsing, precedence, errors, the header line, -p no:."""

from __future__ import annotations

import pytest

CUDA_GATED = """
import pytest, torch

@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs cuda")
def test_gated():
    assert torch.randn(2, device="cuda").is_cuda
"""


def test_header_names_redirection_and_its_source(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(CUDA_GATED)
    result = pytester.runpytest("--target-device=cpu")
    result.stdout.fnmatch_lines(["torchdevice: cuda, mps -> cpu (from --target-device)"])
    result.assert_outcomes(passed=1)


def test_off_by_default_changes_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(CUDA_GATED)
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    assert "torchdevice:" not in result.stdout.str()


@pytest.mark.parametrize("bad", ["tpu", "cuda:x", "mps:1", "cpu:0", ""])
def test_bad_command_line_value_is_a_usage_error(pytester: pytest.Pytester, bad: str) -> None:
    result = pytester.runpytest(f"--target-device={bad}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*argument --target-device: '{bad}' is not a valid target device; "
                                 "valid choices: cpu, mps, cuda, cuda:N, auto"])


def test_bad_environment_value_names_the_variable(pytester: pytest.Pytester,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_TARGET_DEVICE", "gpu")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*$PYTEST_TARGET_DEVICE='gpu' is not a valid target device; valid choices:*"])


def test_bad_ini_value_names_the_key(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ntarget_device = cuda-1\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini target_device='cuda-1' is not a valid target device*"])


def test_missing_device_is_a_usage_error_listing_what_exists(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--target-device=mps")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--target-device='mps': target device 'mps' is not available*available: cpu*"])


def test_precedence_command_line_over_env_over_ini(pytester: pytest.Pytester,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeini("[pytest]\ntarget_device = auto\n")
    pytester.makepyfile("def test_x(): pass")
    assert "(from ini target_device)" in pytester.runpytest().stdout.str()
    monkeypatch.setenv("PYTEST_TARGET_DEVICE", "cpu")
    assert "torchdevice: cuda, mps -> cpu (from $PYTEST_TARGET_DEVICE)" in pytester.runpytest().stdout.str()
    assert "(from --target-device)" in pytester.runpytest("--target-device=auto").stdout.str()


def test_case_and_whitespace_are_normalised(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(CUDA_GATED)
    pytester.runpytest("--target-device= CPU ").assert_outcomes(passed=1)


def test_disabled_with_p_no(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(CUDA_GATED)
    pytester.makeini("[pytest]\ntarget_device = cpu\n")
    result = pytester.runpytest("-p", "no:torchdevice")
    result.assert_outcomes(skipped=1)
    assert "torchdevice:" not in result.stdout.str()


def test_options_are_in_their_own_help_group(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["pytest-torchdevice: run CUDA-written tests on another device:",
                                 "*--target-device=DEVICE*"])


def test_bad_numeric_options(pytester: pytest.Pytester) -> None:
    assert pytester.runpytest("--torchdevice-device-count=0").ret == pytest.ExitCode.USAGE_ERROR
    assert pytester.runpytest("--torchdevice-seed=abc").ret == pytest.ExitCode.USAGE_ERROR


def test_a_plugin_can_register_a_target(pytester: pytest.Pytester) -> None:
    """``pytest_torchdevice_register_targets``: a new target name, valid on the command line, with its backend."""
    pytester.makepyfile(fakegpu_plugin="""
        from torchdevice_core.backends import CpuBackend

        class FakeGpu(CpuBackend):
            name = "fakegpu"

            def device_name(self):
                return "Fake GPU"

        CALLS = {"register": 0, "make_backend": 0}

        def make_backend(index):
            CALLS["make_backend"] += 1
            return FakeGpu()

        def pytest_torchdevice_register_targets(register):
            CALLS["register"] += 1
            register("fakegpu", make_backend)
    """)
    pytester.makepyfile(test_it="""
        import torch
        import fakegpu_plugin

        def test_runs_on_the_registered_target(target_device):
            assert torch.cuda.get_device_name() == "Fake GPU"
            assert torch.randn(2, device="cuda").is_cuda and target_device.type == "cpu"

        def test_registered_once_and_built_once():
            assert fakegpu_plugin.CALLS == {"register": 1, "make_backend": 1}
    """)
    pytester.syspathinsert()
    result = pytester.runpytest("-p", "fakegpu_plugin", "--target-device=fakegpu")
    result.stdout.fnmatch_lines(["torchdevice: cuda, mps -> fakegpu (cpu) (from --target-device)"])
    result.assert_outcomes(passed=2)
    bad = pytester.runpytest("-p", "fakegpu_plugin", "--target-device=fakegpu2")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*valid choices: cpu, mps, cuda, cuda:N, auto, fakegpu, fakegpu:N*"])
    unknown = pytester.runpytest("--target-device=fakegpu")  # the registration ends with its session
    assert unknown.ret == pytest.ExitCode.USAGE_ERROR


@pytest.mark.parametrize("key", ["torchdevice_strict", "torchdevice_device_checks", "torchdevice_track_memory",
                                 "torchdevice_plain_tensors"])
def test_bad_ini_boolean_names_the_key_and_the_choices(pytester: pytest.Pytester, key: str) -> None:
    pytester.makeini(f"[pytest]\ntarget_device = cpu\n{key} = maybe\n")
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*ini {key}='maybe' is not a boolean; valid choices: true, false*"])


@pytest.mark.parametrize(("word", "strict"), [("yes", True), ("On", True), ("0", False), ("false", False)])
def test_ini_booleans_accept_the_usual_words(pytester: pytest.Pytester, word: str, strict: bool) -> None:
    pytester.makeini(f"[pytest]\ntarget_device = cpu\ntorchdevice_strict = {word}\n")
    pytester.makepyfile("""
        def test_strict(torchdevice, pytestconfig):
            from pytest_torchdevice.fixtures import state_of
            assert state_of(pytestconfig).settings.strict is STRICT
    """.replace("STRICT", str(strict)))
    pytester.runpytest().assert_outcomes(passed=1)


def test_profile_option_header_and_ini(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import torch

        def test_t4():
            assert torch.cuda.get_device_name() == "Tesla T4"
            assert torch.cuda.get_device_capability() == (7, 5)
    """)
    result = pytester.runpytest("--target-device=cpu", "--torchdevice-profile=t4")
    result.stdout.fnmatch_lines(["torchdevice: * -> cpu (from --target-device); profile t4 (Tesla T4, sm_75, 15 GiB)"])
    result.assert_outcomes(passed=1)
    pytester.makeini("[pytest]\ntarget_device = cpu\ntorchdevice_profile = T4\n")
    pytester.runpytest().assert_outcomes(passed=1)


def test_bad_profile_is_a_usage_error_with_the_choices(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("--target-device=cpu", "--torchdevice-profile=rtx")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*'rtx' is not a device profile; valid choices: a100, h100, l4, t4, v100*"])
    pytester.makeini("[pytest]\ntarget_device = cpu\ntorchdevice_profile = rtx\n")
    bad = pytester.runpytest()
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*ini torchdevice_profile='rtx' is not valid; valid choices: a100, h100, l4, t4, v100*"])
