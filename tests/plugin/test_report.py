"""The terminal summary and the --torchdevice-report JSON (the per-test migration list)."""

from __future__ import annotations

import json

import pytest

SUITE = """
import torch

def test_redirects():
    x = torch.randn(4, device="cuda")
    x.cuda()
    torch.cuda.synchronize()

def test_plain():
    assert torch.zeros(1).device.type == "cpu"

def test_queries_only():
    assert torch.cuda.is_available()

def test_refused():
    torch.cuda.CUDAGraph()
"""


def test_json_report_per_test(pytester: pytest.Pytester) -> None:
    source = pytester.makepyfile(test_suite=SUITE)
    line = source.read_text().splitlines().index('    x = torch.randn(4, device="cuda")') + 1
    path = pytester.path / "out" / "report.json"
    pytester.runpytest("--target-device=cpu", f"--torchdevice-report={path}", "--torchdevice-call-sites")
    data = json.loads(path.read_text())
    assert (data["version"], data["source"], data["target"]) == (1, "auto", "cpu")
    assert data["sources_seen"] == ["cuda"]  # auto redirects cuda and mps; this suite only asked for cuda
    tests = data["tests"]
    red = tests["test_suite.py::test_redirects"]
    assert red["outcome"] == "passed" and red["cuda_path"] is True
    assert red["redirected"] == {"torch.randn": 1}
    assert red["emulated"] == {"torch.cuda.synchronize": 1}
    assert red["sources"] == ["cuda"]
    sites = red["call_sites"]["redirected:torch.randn"]
    assert sites == {f"{source.relative_to(pytester.path)}:{line}": 1}  # relative to the rootdir, as node ids
    assert tests["test_suite.py::test_plain"]["cuda_path"] is False
    queries = tests["test_suite.py::test_queries_only"]
    assert (queries["cuda_path"], queries["redirected"], queries["emulated"]) == (
        False, {}, {"torch.cuda.is_available": 1})
    refused = tests["test_suite.py::test_refused"]
    assert refused["outcome"] == "skipped" and refused["refused"] == {"torch.cuda.CUDAGraph": 1}
    assert "CUDA graphs" in refused["reason"]
    assert tests["test_suite.py::test_plain"]["sources"] == []


def test_terminal_summary(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest("--target-device=cpu")
    result.stdout.fnmatch_lines([
        "*torchdevice: cuda -> cpu*",
        "2 of 4 tests exercised redirected CUDA code paths (1 passed, 0 failed, 1 skipped); 1 more only queried "
        "the emulated torch.cuda",
        "redirected: torch.randn (1)",
        "emulated: *torch.cuda.synchronize (1)*",
        "unemulatable on cpu: 1 tests (1 skipped): torch.cuda.CUDAGraph",
    ])


def test_no_summary_when_off(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(): pass")
    assert "exercised" not in pytester.runpytest().stdout.str()


def test_seeding_is_not_a_query_of_the_emulated_cuda(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import torch

        def test_seeds_itself():
            torch.manual_seed(0)
            assert torch.rand(1).item() >= 0

        def test_plain():
            pass
    """)
    result = pytester.runpytest("--target-device=cpu", "--torchdevice-seed=3")
    result.stdout.fnmatch_lines(["0 of 2 tests exercised redirected * code paths; 0 more only queried the emulated*"])
