"""Target kernel gaps: an op on redirected tensors failing only because the target has no kernel for the dtype."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import torchdevice_core as td


def test_a_kernel_the_target_lacks_raises_a_target_gap() -> None:
    with td.redirected("cpu") as handle:
        x = torch.ones(1, 1, 4, 4, 4, device="cuda", dtype=torch.bfloat16)
        with pytest.raises(td.TargetGapError) as info:
            F.avg_pool3d(x, 2)
        gap = info.value
        assert isinstance(gap, NotImplementedError)  # code catching torch's error still catches it
        assert (gap.op, gap.dtype, gap.target) == ("avg_pool3d_out_frame", "BFloat16", "cpu")
        assert str(gap).startswith('"avg_pool3d_out_frame" not implemented for \'BFloat16\'')
        assert isinstance(gap.__cause__, NotImplementedError) and not isinstance(gap.__cause__, td.TargetGapError)
        assert handle.record.snapshot().as_dict()["target_gap"] == {"avg_pool3d_out_frame (BFloat16)": 1}


def test_the_same_error_on_the_tests_own_cpu_tensors_is_untouched() -> None:
    with td.redirected("cpu") as handle:
        with pytest.raises(NotImplementedError) as info:
            F.avg_pool3d(torch.ones(1, 1, 4, 4, 4, dtype=torch.half), 2)
        assert not isinstance(info.value, td.TargetGapError)
        assert handle.record.snapshot().as_dict()["target_gap"] == {}


def test_a_gap_in_backward_is_a_target_gap_too() -> None:
    with td.redirected("cpu"):
        x = torch.ones(1, 1, 4, 4, 4, device="cuda", dtype=torch.half, requires_grad=True)
        with pytest.raises(td.TargetGapError):
            F.avg_pool3d(x, 2).sum().backward()


def test_other_errors_pass_unchanged() -> None:
    with td.redirected("cpu"):
        with pytest.raises(RuntimeError, match="mat1 and mat2 shapes cannot be multiplied") as info:
            torch.ones(2, 3, device="cuda") @ torch.ones(2, 3, device="cuda")
        assert not isinstance(info.value, td.TargetGapError)


@pytest.mark.parametrize("op", [torch.nansum, torch.nanmean])
def test_a_cpu_kernel_refusing_complex_is_a_target_gap(op) -> None:
    """CUDA's nansum takes complex inputs; the CPU kernel says "nansum on CPU does not support complex inputs"
    (nanmean calls nansum): PyTorch's own CUDA variants of the nansum/nanmean reduction tests hit it."""
    with td.redirected("cpu") as handle:
        x = torch.ones(3, device="cuda", dtype=torch.complex64)
        with pytest.raises(td.TargetGapError, match=r"^nansum on CPU does not support complex inputs") as info:
            op(x)
        assert isinstance(info.value, RuntimeError)  # assertRaises(RuntimeError) in a suite still matches
        assert (info.value.op, info.value.dtype) == ("nansum", "complex")
        assert handle.record.snapshot().as_dict()["target_gap"] == {"nansum (complex)": 1}
        with pytest.raises(RuntimeError) as own:  # the test's own CPU tensors: untouched
            op(torch.ones(3, dtype=torch.complex64))
        assert not isinstance(own.value, td.TargetGapError)
