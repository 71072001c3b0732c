"""Early activation (conftest and module level see the emulated CUDA), restoration, per-test isolation."""

from __future__ import annotations

import pytest
import torch


def test_conftest_and_module_level_code_see_emulated_cuda(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("""
        import torch
        DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        X = torch.ones(2, device="cuda") if torch.cuda.is_available() else None
    """)
    pytester.makepyfile("""
        import pytest, torch
        from conftest import DEVICES, X
        AT_IMPORT = torch.cuda.device_count()

        @pytest.mark.parametrize("device", DEVICES)
        def test_devices(device):
            assert torch.zeros(1, device=device).device.type == device

        def test_module_level():
            assert AT_IMPORT == 1 and X.is_cuda
    """)
    result = pytester.runpytest("--target-device=cpu", "-v")
    result.stdout.fnmatch_lines(["*test_devices?cuda? PASSED*"])
    result.assert_outcomes(passed=3)


def test_torch_is_restored_after_the_session(pytester: pytest.Pytester) -> None:
    before = {name: getattr(torch.cuda, name) for name in ("is_available", "device_count", "synchronize")}
    tensor_to = vars(torch.Tensor).get("to")
    pytester.makepyfile("import torch\ndef test_x():\n    assert torch.cuda.is_available()")
    pytester.runpytest("--target-device=cpu").assert_outcomes(passed=1)
    assert {name: getattr(torch.cuda, name) for name in before} == before
    assert vars(torch.Tensor).get("to") is tensor_to
    assert not torch.cuda.is_available()


def test_state_does_not_leak_between_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import torch

        def test_a_changes_everything():
            torch.cuda.set_device(1)
            torch.set_default_device("cuda")
            torch.autocast("cuda").__enter__()   # never exited
            assert torch.cuda.current_device() == 1

        def test_b_sees_defaults():
            assert torch.cuda.current_device() == 0
            assert torch.get_default_device() == torch.device("cpu")
            assert not torch.is_autocast_enabled("cpu")
            assert torch.autocast_increment_nesting() == 1  # the leaked __enter__ was unwound
            torch.autocast_decrement_nesting()
            assert torch.zeros(1).device.type == "cpu"
    """)
    pytester.runpytest("--target-device=cpu", "--torchdevice-device-count=2", "-p", "no:randomly").assert_outcomes(
        passed=2)


def test_seed_option_makes_each_test_reproducible(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import torch
        VALUES = []

        def test_one():
            VALUES.append(torch.randn(3, device="cuda").tolist())

        def test_two():
            VALUES.append(torch.randn(3, device="cuda").tolist())
            assert VALUES[0] == VALUES[1]
    """)
    pytester.runpytest("--target-device=cpu", "--torchdevice-seed=7").assert_outcomes(passed=2)
    pytester.runpytest("--target-device=cpu").assert_outcomes(passed=1, failed=1)


def test_fixtures_report_target_and_can_disable(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import torch

        def test_fixtures(target_device, torchdevice):
            assert target_device == torch.device("cpu")
            assert torchdevice.active and torchdevice.source == "cuda"
            torch.zeros(2, device="cuda")
            assert torchdevice.record().counts[("redirected", "torch.zeros")] == 1
            with torchdevice.disabled():
                assert not torch.cuda.is_available()
                assert torch.zeros(1).device.type == "cpu"
            assert torch.cuda.is_available()
    """)
    pytester.runpytest("--target-device=cpu").assert_outcomes(passed=1)


def test_fixtures_without_the_plugin_active(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import torch

        def test_fixtures(target_device, torchdevice):
            assert target_device == torch.device("cpu")
            assert not torchdevice.active and torchdevice.target is None
            with torchdevice.disabled():
                pass
    """)
    pytester.runpytest().assert_outcomes(passed=1)


def test_compile_and_optim_under_the_plugin(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import torch

        def test_optimizers_and_compile():
            model = torch.nn.Linear(4, 1).cuda()
            for opt_cls in (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW):
                opt = opt_cls(model.parameters(), lr=0.1)
                before = model.weight.detach().clone()
                model(torch.randn(8, 4, device="cuda")).sum().backward()
                opt.step()
                assert not torch.equal(before, model.weight.detach())
            f = torch.compile(lambda x: torch.sin(x) + 1, backend="eager")
            out = f(torch.randn(3, device="cuda"))
            assert out.is_cuda
    """)
    pytester.runpytest("--target-device=cpu").assert_outcomes(passed=1)


def test_track_memory_counts_from_the_start(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import gc, torch

        def test_history_before_the_first_query():
            dropped = torch.empty(1 << 20, dtype=torch.uint8, device="cuda")
            del dropped
            gc.collect()
            assert torch.cuda.max_memory_allocated() >= 1 << 20
    """)
    pytester.runpytest("--target-device=cpu", "--torchdevice-track-memory").assert_outcomes(passed=1)
    pytester.runpytest("--target-device=cpu").assert_outcomes(failed=1)  # default: counting starts at the query


def test_a_test_that_deactivates_the_library_does_not_break_later_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import torch, torchdevice_core

        def test_a_switches_it_off():
            torchdevice_core.deactivate()
            assert not torch.cuda.is_available()

        def test_b_switches_it_off_and_activates_its_own():
            torchdevice_core.deactivate()
            torchdevice_core.activate("cpu", device_count=3)
            assert torch.cuda.device_count() == 3

        def test_c_still_redirected():
            assert torch.cuda.is_available() and torch.cuda.device_count() == 1
            assert torch.ones(2, device="cuda").is_cuda
            assert torchdevice_core.active().options.device_count == 1
    """)
    result = pytester.runpytest("--target-device=cpu", "-p", "no:randomly")
    result.assert_outcomes(passed=3)


def test_the_plugins_environment_changes_are_undone_with_the_run(pytester: pytest.Pytester,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The fallback and subprocess variables go on the plugin's undo stack, which is empty after the run."""
    import os

    monkeypatch.delenv("PYTORCH_ENABLE_MPS_FALLBACK", raising=False)
    monkeypatch.setenv("TORCHDEVICE_SUBPROCESS", "inherited")
    pytester.makepyfile("""
        import json, os

        def test_set_during_the_run(pytestconfig):
            from pytest_torchdevice.fixtures import state_of
            assert os.environ["PYTORCH_ENABLE_MPS_FALLBACK"] == "1"
            assert json.loads(os.environ["TORCHDEVICE_SUBPROCESS"])["target"] == "cpu"
            assert [c.why for c in state_of(pytestconfig).changes.changes] == [
                "operators without an MPS kernel fall back to the CPU", "subprocesses activate the same redirection"]
    """)
    result = pytester.inline_run("--target-device=cpu", "--simulate-limits=mps")
    result.assertoutcome(passed=1)
    assert "PYTORCH_ENABLE_MPS_FALLBACK" not in os.environ
    assert os.environ["TORCHDEVICE_SUBPROCESS"] == "inherited"
    assert torch.cuda.is_available() is False
