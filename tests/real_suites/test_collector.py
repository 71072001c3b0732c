"""The collector plugin, run for real: an inner pytest session in a subprocess loads the copy provisioning
installs (``-p real_suites_collector``) and its JSON is compared with what the inner tests did."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks.real_suites.collector import RESULTS_ENV, Entry, cause_of
from benchmarks.real_suites.provision import COLLECTOR_MODULE, install_collector

INNER = """
import unittest
import pytest

def test_passes():
    pass

def test_fails():
    raise ValueError("boom 123")

def test_skipped():
    pytest.skip("not here")

@pytest.mark.xfail(reason="known")
def test_xfails():
    assert False

@pytest.mark.xfail(reason="known")
def test_xpasses():
    pass

@pytest.fixture
def broken_setup():
    raise RuntimeError("setup broke")

def test_setup_error(broken_setup):
    pass

@pytest.fixture
def broken_teardown():
    yield
    raise RuntimeError("teardown broke")

def test_teardown_error(broken_teardown):
    pass

class TestSub(unittest.TestCase):
    def test_one_subtest_fails(self):
        for i in range(3):
            with self.subTest(i=i):
                self.assertNotEqual(i, 1)
"""


def _run_inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, *args: str) -> dict[str, Any]:
    install_collector(pytester.path)
    pytester.makepyfile(test_inner=INNER)
    pytester.makepyfile(test_broken_import="import no_such_module_here\n")
    out = pytester.path / "results.json"
    monkeypatch.setenv(RESULTS_ENV, str(out))
    monkeypatch.setenv("PYTHONPATH", str(pytester.path))
    pytester.runpytest_subprocess("-p", COLLECTOR_MODULE, "-p", "no:torchdevice", "-p", "no:cacheprovider", *args)
    data: dict[str, Any] = json.loads(out.read_text())
    return data


def _outcomes(data: dict[str, Any]) -> dict[str, str]:
    return {nodeid.split("::", 1)[-1]: t["outcome"] for nodeid, t in data["tests"].items()}


EXPECTED = {
    "test_passes": "passed",
    "test_fails": "failed",
    "test_skipped": "skipped",
    "test_xfails": "xfailed",
    "test_xpasses": "xpassed",
    "test_setup_error": "error",
    "test_teardown_error": "error",
    "TestSub::test_one_subtest_fails": "failed",
    "test_broken_import.py": "error",
}


def test_one_verdict_per_test_with_its_first_failure(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _run_inner(pytester, monkeypatch, "--continue-on-collection-errors")
    assert _outcomes(data) == EXPECTED
    tests = data["tests"]
    assert tests["test_inner.py::test_fails"]["cause"] == "ValueError: boom 123"
    assert "setup broke" in tests["test_inner.py::test_setup_error"]["cause"]
    assert "teardown broke" in tests["test_inner.py::test_teardown_error"]["cause"]
    assert "not here" in tests["test_inner.py::test_skipped"]["cause"]
    assert "no_such_module_here" in tests["test_broken_import.py"]["cause"]
    assert data["collected"] == 8  # the broken module collects nothing
    assert data["exitstatus"] == 1
    assert all(t["duration"] >= 0 for t in tests.values())


def test_under_xdist_the_controller_writes_every_workers_results(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _run_inner(pytester, monkeypatch, "-n", "2", "--continue-on-collection-errors")
    assert _outcomes(data) == EXPECTED
    assert data["collected"] == 8


def test_the_installed_copy_is_the_module_itself(tmp_path: Path) -> None:
    from benchmarks.real_suites import collector

    copy = install_collector(tmp_path)
    assert copy.name == f"{COLLECTOR_MODULE}.py"
    assert copy.read_text() == Path(collector.__file__).read_text()


def test_outcome_precedence() -> None:
    assert Entry(when={"setup": "passed", "call": "passed", "teardown": "failed"}).outcome() == "error"
    assert Entry(when={"setup": "passed", "call": "failed", "teardown": "failed"}).outcome() == "failed"
    assert Entry(when={"setup": "passed", "call": "passed"}, subtest_failed=True).outcome() == "failed"
    assert Entry(when={"setup": "skipped"}, wasxfail=True).outcome() == "xfailed"
    assert Entry(when={}).outcome() == "error"  # a test that never reported a call did not pass


def test_cause_of_the_shapes_of_longrepr() -> None:
    assert cause_of(None) is None
    assert cause_of(("f.py", 3, "Skipped: why")) == "Skipped: why"
    assert cause_of("Traceback\nE   KeyError: 'x'\nmore") == "KeyError: 'x'"
    assert cause_of("only line") == "only line"
