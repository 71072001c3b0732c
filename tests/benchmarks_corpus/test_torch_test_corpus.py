"""The corpus script's bookkeeping: variants from class names, CPU/CUDA twins, JUnit parsing."""

from __future__ import annotations

from pathlib import Path

from benchmarks.torch_test_corpus import (
    Outcomes,
    cuda_failures,
    cuda_only_failures,
    parse_junit,
    rate,
    twin_key,
    variant_of,
)

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest">
  <testcase classname="test_indexing.TestIndexingCPU" name="test_index_cpu" />
  <testcase classname="test_indexing.TestIndexingCUDA" name="test_index_cuda" />
  <testcase classname="test_indexing.TestIndexingCPU" name="test_take_cpu_float32" />
  <testcase classname="test_indexing.TestIndexingCUDA" name="test_take_cuda_float32"><failure message="x"/></testcase>
  <testcase classname="test_indexing.TestIndexingCUDA" name="test_only_cuda_cuda"><skipped message="s"/></testcase>
  <testcase classname="test_indexing.TestIndexingCPU" name="test_bad_cpu"><error message="e"/></testcase>
  <testcase classname="test_indexing.TestIndexingCUDA" name="test_bad_cuda"><failure message="x"/></testcase>
  <testcase classname="test_indexing.Helpers" name="test_plain" />
</testsuite></testsuites>
"""


def test_variants_and_twins() -> None:
    assert variant_of("test_x.TestFooCUDA") == ("CUDA", "TestFoo")
    assert variant_of("test_x.TestFooCPU") == ("CPU", "TestFoo")
    assert variant_of("test_x.Helpers") is None
    assert twin_key("TestFoo", "test_y_cuda_float32", "CUDA") == twin_key("TestFoo", "test_y_cpu_float32", "CPU")


def test_parse_and_cuda_only_failures(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    path.write_text(JUNIT)
    parsed = parse_junit(path)
    outcomes = Outcomes(parsed)
    assert outcomes.counts("CPU") == {"passed": 2, "failed": 1}
    assert outcomes.counts("CUDA") == {"passed": 1, "failed": 2, "skipped": 1}
    # the CUDA failure whose CPU twin passes is listed; the one failing on both is not
    assert cuda_only_failures(outcomes) == ["TestIndexing::test_take*_float32"]
    # every CUDA failure, with what its CPU twin did (a CUDA-only test has none)
    assert cuda_failures(outcomes) == {"TestIndexing::test_bad*": "failed",
                                       "TestIndexing::test_take*_float32": "passed"}
    assert rate(outcomes.counts("CUDA")) == "1/3 (33.3 %), 1 skipped"
    assert parse_junit(tmp_path / "missing.xml") == {"CPU": {}, "CUDA": {}}
