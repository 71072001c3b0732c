"""What a user sees of our frames: warnings at their line, short tracebacks through our patches."""

from __future__ import annotations

import pytest

SUITE = """
import torch

def test_copy_construct():
    source = torch.ones(2)
    torch.tensor(source, device="cuda")

def test_deprecated_autocast():
    with torch.cuda.amp.autocast():
        pass

def test_bad_ordinal():
    torch.ones(2, device="cuda:3")

def test_failure_inside_torch():
    torch.ones(2, 3, device="cuda") @ torch.ones(2, 3, device="cuda")
"""


def test_warnings_point_at_the_test_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest("--target-device=cpu", "-k", "copy or autocast")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([
        "*test_suite.py:5: UserWarning: To copy construct from a tensor*",
        "*test_suite.py:8: FutureWarning: `torch.cuda.amp.autocast(args...)` is deprecated*",
    ])
    assert "torchdevice_core" not in result.stdout.str()


def test_tracebacks_through_our_patches_are_short(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest("--target-device=cpu", "-k", "ordinal or inside_torch")
    result.assert_outcomes(failed=2)
    out = result.stdout.str()
    assert "torchdevice_core" not in out
    assert "During handling of the above exception" not in out
    result.stdout.fnmatch_lines([
        ">       torch.ones(2, device=\"cuda:3\")",
        "E       RuntimeError: CUDA error: invalid device ordinal 3*",
        ">       torch.ones(2, 3, device=\"cuda\") @ torch.ones(2, 3, device=\"cuda\")",
        "E       RuntimeError: mat1 and mat2 shapes cannot be multiplied*",
    ])
    full = pytester.runpytest("--target-device=cpu", "-k", "ordinal", "--full-trace")
    assert "torchdevice_core" in full.stdout.str()  # still there for whoever debugs us


def test_a_warning_turned_error_is_short_too(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest("--target-device=cpu", "-k", "copy", "-W", "error::UserWarning")
    result.assert_outcomes(failed=1)
    assert "torchdevice_core" not in result.stdout.str()
    result.stdout.fnmatch_lines([">       torch.tensor(source, device=\"cuda\")", "E       UserWarning: To copy*"])
