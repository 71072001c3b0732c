"""``python -m pytest_torchdevice report merge|table``: shards, machines and targets in one matrix."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_torchdevice.__main__ import main
from pytest_torchdevice.report_merge import merge_files, table

FIRST = """
import torch

def test_float64():
    torch.ones(2, device="cuda", dtype=torch.float64)

def test_sum():
    assert torch.ones(2, device="cuda").sum().item() == 2

def test_refused():
    torch.cuda.CUDAGraph()
"""
SECOND = """
import os
import pytest
import torch

def test_flaky():
    assert not os.environ.get("SUITE_BREAK")

@pytest.mark.parametrize("word", ["a|b", "c"])
def test_words(word):
    assert torch.zeros(1, device="cuda").is_cuda
"""
SIM = ("--target-device=cpu", "--simulate-limits=mps")


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_first=FIRST, test_second=SECOND)
    return pytester


def _report(pytester: pytest.Pytester, name: str, *args: str) -> str:
    path = pytester.path / "reports" / name
    pytester.runpytest(*args, f"--torchdevice-report={path}")
    return str(path)


def test_shards_merge_to_the_table_of_the_unsplit_run(suite: pytest.Pytester, capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    whole = _report(suite, "whole.json", *SIM)
    by_keyword = [_report(suite, "k1.json", *SIM, "-k", "float64 or words"),
                  _report(suite, "k2.json", *SIM, "-k", "not (float64 or words)")]
    by_file = [_report(suite, "f1.json", *SIM, "test_first.py"), _report(suite, "f2.json", *SIM, "test_second.py")]
    expected = table(merge_files([whole]))
    assert table(merge_files(by_keyword)) == expected
    assert table(merge_files(by_file)) == expected
    assert table(merge_files(by_file), "github") == table(merge_files([whole]), "github")
    lines = expected.splitlines()
    assert lines[0].split() == ["test", "cuda+mps->cpu", "simulate=mps"]
    rows = {line.split()[0]: " ".join(line.split()[1:]) for line in lines[1:7]}
    assert rows == {
        "test_first.py::test_float64": "failed (float64)",
        "test_first.py::test_refused": "skipped (unemulatable)",
        "test_first.py::test_sum": "passed",
        "test_second.py::test_flaky": "passed",
        "test_second.py::test_words[a|b]": "passed",
        "test_second.py::test_words[c]": "passed",
    }
    assert "  cuda+mps->cpu simulate=mps: 4 passed, 1 failed, 1 skipped, 5 on CUDA paths" in lines

    out = suite.path / "all.json"
    assert main(["report", "merge", *by_file, "-o", str(out)]) == 0
    assert "merged 2 reports: 6 tests in 1 configurations (0 conflicts)" in capsys.readouterr().out
    assert main(["report", "table", str(out)]) == 0
    assert capsys.readouterr().out == expected


def test_targets_side_by_side_and_conflicts_shown(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = _report(suite, "cpu.json", "--target-device=cpu")
    sim = _report(suite, "sim.json", *SIM)
    monkeypatch.setenv("SUITE_BREAK", "1")
    rerun = _report(suite, "sim-rerun.json", *SIM, "test_second.py")
    merged = merge_files([cpu, sim, rerun])
    assert merged["configurations"] == ["cuda+mps->cpu", "cuda+mps->cpu simulate=mps"]
    text = table(merged)
    float64 = next(line for line in text.splitlines() if "test_float64" in line)
    assert float64.split()[1:] == ["passed", "failed", "(float64)"]
    flaky = next(line for line in text.splitlines() if "test_flaky" in line)
    assert f"CONFLICT: failed (other) [{rerun}] / passed [{sim}]" in flaky
    words = next(line for line in text.splitlines() if "test_words[c]" in line)
    assert "CONFLICT" not in words  # the same result twice is one result
    assert merged["tests"]["test_second.py::test_words[c]"]["cuda+mps->cpu simulate=mps"][0]["from"] == sorted(
        [sim, rerun])
    assert "  cuda+mps->cpu simulate=mps: 3 passed, 1 failed, 1 skipped, 1 conflict, 5 on CUDA paths" in text
    # a merged report merges again to the same thing
    again = suite.path / "again.json"
    again.write_text(json.dumps(merge_files([cpu, sim])))
    assert table(merge_files([str(again), rerun])) == text


def test_github_markdown(suite: pytest.Pytester) -> None:
    sim = _report(suite, "sim.json", *SIM)
    markdown = table(merge_files([sim]), "github", rows="problems")
    lines = markdown.splitlines()
    assert lines[0] == "### torchdevice: 6 tests in 1 configurations"
    assert lines[2] == ("| configuration | passed | failed | error | skipped | xfailed | xpassed | conflict | "
                        "on CUDA paths |")
    assert "| `cuda+mps->cpu simulate=mps` | 4 | 1 | 0 | 1 | 0 | 0 | 0 | 5 |" in lines
    assert "| `test_first.py::test_float64` | ❌ failed (float64) |" in lines
    assert not any("test_words" in line for line in lines)  # passing everywhere: not a problem row
    everything = table(merge_files([sim]), "github")
    assert "| `test_second.py::test_words[a\\|b]` | ✅ passed |" in everything.splitlines()


def test_cli_in_a_subprocess(suite: pytest.Pytester) -> None:
    sim = _report(suite, "sim.json", *SIM)
    summary = suite.path / "summary.md"
    merged = suite.path / "out" / "all.json"
    run = [sys.executable, "-m", "pytest_torchdevice", "report"]
    subprocess.run([*run, "merge", sim, "-o", str(merged)], check=True, capture_output=True)
    subprocess.run([*run, "table", str(merged), "--format", "github", "-o", str(summary)], check=True)
    subprocess.run([*run, "table", str(merged), "--format", "github", "-o", str(summary)], check=True)
    assert summary.read_text().count("### torchdevice: 6 tests") == 2  # appended, as a step summary is
    bad = subprocess.run([*run, "table", str(suite.path / "nope.json")], capture_output=True, text=True)
    assert bad.returncode == 2 and "nope.json: cannot read a report" in bad.stderr


def test_reports_without_configuration_field(tmp_path: Path) -> None:
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"version": 1, "source": "cuda", "target": "mps", "tests": {
        "t.py::a": {"outcome": "failed", "reason": "TypeError: Cannot convert a MPS Tensor to float64 dtype as the "
                    "MPS framework doesn't support float64. Please use float32 instead."}}}))
    assert table(merge_files([str(old)])).splitlines()[:2] == ["test     cuda->mps", "t.py::a  failed (float64)"]


def test_the_cli_does_not_import_torch(suite: pytest.Pytester) -> None:
    sim = _report(suite, "sim.json", *SIM)
    code = ("import sys; from pytest_torchdevice.__main__ import main; main(['report', 'table', sys.argv[1]]); "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    done = subprocess.run([sys.executable, "-c", code, sim], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "test_first.py::test_float64" in done.stdout
