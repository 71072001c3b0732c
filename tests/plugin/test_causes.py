"""The cause table: each cause from the exceptions the plugin and torch really raise."""

from __future__ import annotations

import pytest
import torch

import torchdevice_core as td
from pytest_torchdevice import causes


def _raised(fn: object) -> BaseException:
    try:
        fn()  # type: ignore[operator]
    except BaseException as exc:
        return exc
    raise AssertionError("did not raise")


def test_unemulatable_also_when_wrapped() -> None:
    with td.redirected("cpu"):
        error = _raised(torch.cuda.CUDAGraph)

    def wrapped() -> None:
        try:
            raise error
        except BaseException as inner:
            raise ValueError("a library wrapped it") from inner

    failure = causes.from_exception(_raised(wrapped))
    assert failure.exception == "ValueError"
    assert failure.chain[1] == "torchdevice_core.errors.UnemulatableError"
    assert causes.classify(failure) == "unemulatable"


def test_float64_missing_kernel_and_mismatch_from_real_errors() -> None:
    with td.redirected("cpu", simulate_limits="mps"):
        float64 = _raised(lambda: torch.ones(2, device="cuda", dtype=torch.float64))
        mixed = _raised(lambda: torch.ones(2, device="cuda") + torch.ones(2))
    assert causes.classify(causes.from_exception(float64)) == "float64"
    assert causes.classify(causes.from_exception(mixed)) == "device_mismatch"
    kernel = NotImplementedError("The operator 'aten::take' is not currently implemented for the MPS device.")
    assert causes.classify(causes.from_exception(kernel)) == "missing_mps_kernel"


def test_target_gap_only_on_redirected_code() -> None:
    error = RuntimeError('"avg_pool3d_out_frame" not implemented for \'Half\'')
    on_target = causes.Failure("RuntimeError", (str(error),), ("RuntimeError",), {"cuda_path": True})
    own_cpu = causes.Failure("RuntimeError", (str(error),), ("RuntimeError",), {"cuda_path": False})
    assert causes.classify(on_target) == "target_gap"
    assert causes.classify(own_cpu) == causes.OTHER


def test_every_cause_has_a_unique_name() -> None:
    assert len(set(causes.CAUSE_NAMES)) == len(causes.CAUSE_NAMES)
    assert causes.CAUSE_NAMES[-1] == causes.OTHER


@pytest.mark.parametrize("cls", [RuntimeError, torch.OutOfMemoryError, td.UnemulatableError])
def test_type_names_resolve_back(cls: type[BaseException]) -> None:
    assert causes.resolve_type(causes.type_name(cls)) is cls


def test_unknown_type_resolves_to_none() -> None:
    assert causes.resolve_type("no_such_module.Error") is None
    assert causes.resolve_type("NoSuchBuiltinError") is None


def test_classify_report_reads_old_reports() -> None:
    assert causes.classify_report({"outcome": "passed"}) is None
    assert causes.classify_report({"outcome": "skipped", "reason": "no GPU"}) is None
    refused = {"outcome": "skipped", "reason": "torchdevice: torch.cuda.CUDAGraph cannot be emulated on target 'cpu'",
               "refused": {"torch.cuda.CUDAGraph": 1}}
    assert causes.classify_report(refused) == "unemulatable"
    assert causes.classify_report({"outcome": "failed", "reason": "assert 1 == 2"}) == causes.OTHER
    assert causes.classify_report({"outcome": "failed", "cause": "float64"}) == "float64"
