"""PyTorch's own device-type test framework (``torch.testing._internal``) under the plugin: CUDA variants.

The inner runs are subprocesses: the framework computes its flags when it is imported, once per process.
"""

from __future__ import annotations

import pytest

SUITE = """
import torch
from torch.testing._internal.common_device_type import (
    deviceCountAtLeast, dtypes, dtypesIfCUDA, instantiate_device_type_tests, largeTensorTest, onlyCPU, onlyCUDA,
    precisionOverride, skipCUDAIf, tol, toleranceOverride)
from torch.testing._internal.common_utils import TestCase
from torch.testing._internal.common_cuda import TEST_CUDA, TEST_MULTIGPU
from torch.testing._internal.common_distributed import skip_if_lt_x_gpu


class TestGeneric(TestCase):
    def test_add(self, device):
        x = torch.ones(3, device=device)
        self.assertEqual(x + x, torch.full((3,), 2.0, device=device))
        self.assertEqual(x.device.type, self.device_type)

    @onlyCUDA
    def test_only_cuda(self, device):
        self.assertTrue(torch.ones(1, device=device).is_cuda)
        self.assertTrue(TEST_CUDA)
        self.assertIsNot(torch.cuda.current_stream(), torch.cuda.default_stream())  # the framework's own stream

    @onlyCPU
    def test_only_cpu(self, device):
        self.assertFalse(torch.ones(1, device=device).is_cuda)

    @dtypes(torch.float32)
    @dtypesIfCUDA(torch.float16, torch.bfloat16)
    def test_dtypes(self, device, dtype):
        self.assertEqual(torch.ones(2, device=device, dtype=dtype).dtype, dtype)

    @deviceCountAtLeast(2)
    def test_two_devices(self, devices):
        self.assertEqual(devices, ["cuda:0", "cuda:1"])
        self.assertTrue(TEST_MULTIGPU)
        self.assertEqual(torch.ones(1, device=devices[1]).get_device(), 1)

    @onlyCUDA
    def test_distributed_gate(self, device):
        ran = []
        gated = skip_if_lt_x_gpu(2)(lambda owner: ran.append(torch.cuda.device_count()))
        if torch.cuda.device_count() >= 2:
            gated(None)
            self.assertEqual(ran, [2])
        else:  # outside a MultiProcessTestCase it exits with the "multi-gpu-2" code
            with self.assertRaises(SystemExit):
                gated(None)

    @largeTensorTest("1GB", device="cuda")
    def test_large(self, device):
        pass

    @largeTensorTest("100000GB", device="cuda")
    def test_huge(self, device):
        pass

    @skipCUDAIf(True, "not on cuda")
    def test_skip_cuda(self, device):
        pass

    @precisionOverride({torch.float32: 0.5})
    @dtypes(torch.float32)
    def test_precision(self, device, dtype):
        self.assertEqual(self.precision, 0.5)

    @toleranceOverride({torch.float32: tol(atol=0.25, rtol=0)})
    @dtypes(torch.float32)
    def test_tolerance(self, device, dtype):
        self.assertEqual(self.precision, 0.25)


instantiate_device_type_tests(TestGeneric, globals())
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytest.importorskip("expecttest")
    pytester.makepyfile(test_generic=SUITE)
    return pytester


def test_cuda_variants_are_instantiated_and_every_decorator_works(suite: pytest.Pytester) -> None:
    result = suite.runpytest_subprocess("--target-device=cpu", "-v", "-rs", "-W", "error::UserWarning")
    result.stdout.fnmatch_lines_random([
        "*TestGenericCPU::test_add_cpu PASSED*",
        "*TestGenericCUDA::test_add_cuda PASSED*",
        "*TestGenericCUDA::test_only_cuda_cuda PASSED*",
        "*TestGenericCPU::test_only_cpu_cpu PASSED*",
        "*TestGenericCUDA::test_dtypes_cuda_float16 PASSED*",
        "*TestGenericCUDA::test_dtypes_cuda_bfloat16 PASSED*",
        "*TestGenericCPU::test_dtypes_cpu_float32 PASSED*",
        "*TestGenericCUDA::test_large_cuda PASSED*",
        "*TestGenericCUDA::test_precision_cuda_float32 PASSED*",
        "*TestGenericCUDA::test_tolerance_cuda_float32 PASSED*",
        "*TestGenericCUDA::test_skip_cuda_cuda SKIPPED*",
        "*TestGenericCUDA::test_two_devices_cuda SKIPPED*",
        "*TestGenericCUDA::test_huge_cuda SKIPPED*",
    ])
    assert "test_dtypes_cuda_float32" not in result.stdout.str()
    result.assert_outcomes(passed=15, skipped=8)


def test_device_count_option_reaches_device_count_at_least(suite: pytest.Pytester) -> None:
    result = suite.runpytest_subprocess("--target-device=cpu", "--torchdevice-device-count=2", "-v")
    result.stdout.fnmatch_lines_random([
        "*TestGenericCUDA::test_two_devices_cuda PASSED*",
        "*TestGenericCUDA::test_distributed_gate_cuda PASSED*",
    ])


def test_without_the_plugin_only_cpu_variants(suite: pytest.Pytester) -> None:
    result = suite.runpytest_subprocess("-p", "no:torchdevice", "-v")
    assert "TestGenericCUDA" not in result.stdout.str()
    result.stdout.fnmatch_lines(["*TestGenericCPU::test_add_cpu PASSED*"])


def test_framework_imported_before_activation_is_patched() -> None:
    """A process that imported the framework first (another plugin did) still gets CUDA variants."""
    pytest.importorskip("expecttest")
    import torch
    import torch.testing._internal.common_cuda as common_cuda
    import torch.testing._internal.common_device_type as common_device_type
    import torch.testing._internal.common_utils as common_utils

    import torchdevice_core as td

    real_bases = common_device_type.device_type_test_bases
    real_stream_policy = common_utils.CudaNonDefaultStream
    real_flag = common_cuda.TEST_CUDA
    real_expectation = vars(common_device_type.expectedFailure)["__call__"]
    with td.redirected("cpu", device_count=2):
        assert vars(common_device_type.expectedFailure)["__call__"] is not real_expectation
        assert common_device_type.CUDATestBase in common_device_type.device_type_test_bases
        assert common_cuda.TEST_CUDA and common_cuda.TEST_MULTIGPU and common_utils.TEST_CUDA
        with common_utils.CudaNonDefaultStream():
            assert torch.cuda.current_stream(1) is not torch.cuda.default_stream(1)
        assert torch.cuda.current_stream(1) is torch.cuda.default_stream(1)
    assert common_device_type.device_type_test_bases is real_bases
    assert common_utils.CudaNonDefaultStream is real_stream_policy
    assert common_cuda.TEST_CUDA is real_flag
    assert vars(common_device_type.expectedFailure)["__call__"] is real_expectation


EXPECTATIONS = """
import unittest
import torch
from torch.testing._internal.common_device_type import (
    expectedFailureCPU, expectedFailureCUDA, instantiate_device_type_tests, ops)
from torch.testing._internal.common_utils import TestCase
from torch.testing._internal.opinfo.core import DecorateInfo, OpInfo, SampleInput


def samples(op_info, device, dtype, requires_grad, **kwargs):
    yield SampleInput(torch.ones(2, device=device, dtype=dtype))


def xfail_on(device_type):
    return DecorateInfo(unittest.expectedFailure, "TestExpect", "test_op", device_type=device_type)


passes_but_cuda_xfails = OpInfo("passes_but_cuda_xfails", op=torch.neg, dtypes=(torch.float32,),
                                sample_inputs_func=samples, decorators=(xfail_on("cuda"),))
cpu_kernel_fails = OpInfo("cpu_kernel_fails", op=torch.neg, dtypes=(torch.float32,),
                          sample_inputs_func=samples, decorators=(xfail_on("cpu"),))


class TestExpect(TestCase):
    @expectedFailureCUDA
    def test_cuda_kernels_fail(self, device):
        self.assertEqual(torch.ones(1, device=device).item(), 1.0)  # what the target's kernels compute

    @expectedFailureCPU
    def test_cpu_kernels_fail(self, device):
        raise RuntimeError("the CPU kernel fails this test")

    @ops([passes_but_cuda_xfails, cpu_kernel_fails])
    def test_op(self, device, dtype, op):
        if op.name == "cpu_kernel_fails":
            raise RuntimeError("the CPU kernel fails this test")
        sample = next(op.sample_inputs(device, dtype))
        self.assertEqual(op(sample.input), -torch.ones(2, device=device))


instantiate_device_type_tests(TestExpect, globals())
"""


def test_expected_failures_follow_the_kernels_that_run(pytester: pytest.Pytester) -> None:
    """An emulated CUDA variant runs CPU kernels: CUDA's expected failures are dropped, the CPU's apply."""
    pytest.importorskip("expecttest")
    pytester.makepyfile(test_expect=EXPECTATIONS)
    result = pytester.runpytest_subprocess("--target-device=cpu", "--source-device=cuda", "-v", "-rxX")
    result.stdout.fnmatch_lines_random([
        "*TestExpectCUDA::test_cuda_kernels_fail_cuda PASSED*",  # not "expected test to fail, but it passed"
        "*TestExpectCUDA::test_cpu_kernels_fail_cuda PASSED*",  # the CPU's expectation holds for its kernels
        "*TestExpectCPU::test_cpu_kernels_fail_cpu PASSED*",
        "*TestExpectCUDA::test_op_passes_but_cuda_xfails_cuda_float32 PASSED*",  # not an unexpected success
        "*TestExpectCUDA::test_op_cpu_kernel_fails_cuda_float32 XFAIL*",
        "*TestExpectCPU::test_op_cpu_kernel_fails_cpu_float32 XFAIL*",
    ])
    result.assert_outcomes(passed=6, xfailed=2)


def test_expected_failures_unchanged_without_the_plugin(pytester: pytest.Pytester) -> None:
    pytest.importorskip("expecttest")
    pytester.makepyfile(test_expect=EXPECTATIONS)
    result = pytester.runpytest_subprocess("-p", "no:torchdevice", "-v")
    result.stdout.fnmatch_lines_random(["*TestExpectCPU::test_op_cpu_kernel_fails_cpu_float32 XFAIL*"])
    result.assert_outcomes(passed=3, xfailed=1)
