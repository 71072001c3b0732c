"""pytest-xdist: per-worker device assignment (pure function), every --dist mode, the select hook."""

from __future__ import annotations

import json

import pytest

from pytest_torchdevice.xdist import assign_device, worker_index


@pytest.mark.parametrize(
    ("requested", "worker", "gpus", "expected"),
    [
        ("cuda", "gw0", 2, "cuda:0"),
        ("cuda", "gw1", 2, "cuda:1"),
        ("cuda", "gw2", 2, "cuda:0"),
        ("cuda", "gw5", 4, "cuda:1"),
        ("cuda", "", 2, "cuda"),
        ("cuda:1", "gw0", 2, "cuda:1"),
        ("cpu", "gw3", 2, "cpu"),
        ("mps", "gw1", 0, "mps"),
    ],
)
def test_assignment_is_round_robin_over_gpus(requested: str, worker: str, gpus: int, expected: str) -> None:
    assert assign_device(requested, worker_index(worker), gpus) == expected


def test_worker_index() -> None:
    assert worker_index("gw12") == 12
    assert worker_index("master") is None


XDIST_SUITE = """
import os, pytest, torch

@pytest.mark.parametrize("i", range(4))
def test_redirected(i, request):
    assert torch.randn(2, device="cuda").is_cuda
    assert os.environ.get("PYTEST_XDIST_WORKER", "").startswith("gw")
    assert request.config.workerinput["torchdevice_target"] == "cpu"
"""


@pytest.mark.parametrize("dist", ["load", "loadscope", "loadfile", "loadgroup", "worksteal", "each"])
def test_every_dist_mode(pytester: pytest.Pytester, dist: str) -> None:
    pytester.makepyfile(XDIST_SUITE)
    path = pytester.path / "r.json"
    result = pytester.runpytest_subprocess("--target-device=cpu", "-n", "2", f"--dist={dist}",
                                           f"--torchdevice-report={path}")
    result.assert_outcomes(passed=8 if dist == "each" else 4)
    tests = json.loads(path.read_text())["tests"]
    assert len(tests) == 4 and all(t["cuda_path"] for t in tests.values())


def test_n_auto_and_select_hook(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("""
        ASKED = []

        def pytest_torchdevice_select_device(config, worker_id, requested):
            if worker_id:
                return "cpu"
    """)
    pytester.makepyfile(XDIST_SUITE)
    result = pytester.runpytest_subprocess("--target-device=auto", "-n", "auto")
    result.assert_outcomes(passed=4)
