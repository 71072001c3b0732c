"""Regressions, CUDA-path summaries, timing and the tables, from hand-made runs (no processes)."""

from __future__ import annotations

import json
from typing import Any

from benchmarks.real_suites.analysis import analyse, normalise_cause
from benchmarks.real_suites.run import RunResult
from benchmarks.real_suites.suites import SUITES, Suite
from benchmarks.real_suites.tables import print_suite, summary_rows

SUITE = Suite(
    name="demo",
    dist="demo",
    version="1.0",
    test_args=("tests",),
    fails_on_cuda_too={"t::known": "the test's own CUDA branch is wrong"},
)


def _run(way: str, tests: dict[str, str], cuda: set[str] = frozenset(), duration: float = 1.0) -> RunResult:  # type: ignore[assignment]
    r = RunResult(way=way, command=["pytest", way], wall_s=10.0 * len(tests))
    r.tests = {
        n: {
            "outcome": o,
            "duration": duration,
            "cause": None if o == "passed" else f"RuntimeError: at 0x{len(n):x}ff /tmp/{n.replace(':', '_')}.py",
        }
        for n, o in tests.items()
    }
    r.collected = len(tests)
    if way != "native":
        rep: dict[str, Any] = {n: {"cuda_path": n in cuda, "outcome": o} for n, o in tests.items()}
        r.report = {"tests": rep}
    return r


NATIVE = {
    "t::ok": "passed",
    "t::broken": "failed",  # fails natively: never a regression
    "t::lazy": "passed",
    "t::jit": "passed",
    "t::known": "passed",
    "t::gone": "passed",
    "t::cuda_ok": "skipped",
}
PLUGIN = {
    "t::ok": "passed",
    "t::broken": "failed",
    "t::lazy": "failed",
    "t::jit": "error",
    "t::known": "failed",
    "t::cuda_ok": "passed",
}  # t::gone did not run


def _result() -> Any:
    runs = {
        "native": _run("native", NATIVE),
        "plugin": _run("plugin", PLUGIN, cuda={"t::known", "t::cuda_ok"}, duration=1.5),
        "xdist": _run("xdist", {**PLUGIN, "t::lazy": "passed", "t::gone": "passed"}, cuda={"t::known", "t::cuda_ok"}),
    }
    return analyse(SUITE, runs)


def test_regressions_are_native_passes_that_fail_or_vanish_with_the_plugin() -> None:
    res = _result()
    regs = {r.nodeid: r for r in res.regressions}
    assert sorted(regs) == ["t::gone", "t::jit", "t::known", "t::lazy"]
    assert regs["t::lazy"].ways == {"plugin": "failed"}
    assert regs["t::jit"].ways == {"plugin": "error", "xdist": "error"}
    assert regs["t::gone"].ways == {"plugin": "not run"}
    assert regs["t::gone"].cause == "(not run with the plugin)"
    assert regs["t::known"].fails_on_cuda_too and regs["t::known"].cuda_path
    assert not regs["t::lazy"].cuda_path
    assert [r.nodeid for r in res.regressions_unexplained] == ["t::gone", "t::jit", "t::lazy"]
    assert len(res.regressions_in("xdist")) == 2


def test_regressions_group_by_normalised_cause() -> None:
    by = _result().regressions_by_cause()
    assert by == {
        "RuntimeError: at 0x… <path>": ["t::jit", "t::known", "t::lazy"],
        "(not run with the plugin)": ["t::gone"],
    }


def test_cuda_path_summary_and_timing() -> None:
    res = _result()
    cp = res.cuda_path["plugin"]
    assert (cp.cuda_path_tests, cp.passed, cp.failed, cp.skipped) == (2, 1, 1, 0)
    assert cp.pass_rate == 0.5
    assert cp.pass_rate_excluding_cuda_too == 1.0  # the one failure is a known CUDA-too failure
    assert cp.report_outcome_mismatch_count == 0
    t = res.timing
    assert t is not None
    # natively passing and run both ways: ok, lazy, jit, known (gone did not run with the plugin)
    assert t.native_passing_tests == 4
    assert t.ratio_b_over_a_native_passing == 1.5
    assert t.native_passing_non_cuda_tests == 3 and t.native_passing_cuda_tests == 1
    assert t.wall_s == {"native": 70.0, "plugin": 60.0, "xdist": 70.0}
    assert t.ratio_a_over_c == 1.0


def test_a_regression_run_without_xdist_and_a_clean_suite() -> None:
    runs = {
        "native": _run("native", {"a": "passed", "b": "skipped"}),
        "plugin": _run("plugin", {"a": "passed", "b": "passed"}),
    }
    res = analyse(SUITE, runs)
    assert res.regressions == []
    assert set(res.cuda_path) == {"plugin"}
    assert res.timing is not None and res.timing.ratio_a_over_c is None
    assert summary_rows([res])[2].split(" | ")[1] == "**0**"


def test_summary_table_puts_regressions_first() -> None:
    rows = summary_rows([_result()])
    header = [c.strip() for c in rows[0].strip("|").split("|")]
    assert header[0] == "suite" and header[1].startswith("regressions")
    cells = [c.strip() for c in rows[2].strip("|").split("|")]
    assert cells[0] == "demo 1.0"
    assert cells[1] == "**3** (+1 that fail on real CUDA too)"
    assert cells[3] == "5/1/1"  # native pass/fail/skip


def test_detail_lists_each_regression_cause_and_json_round_trips() -> None:
    res = _result()
    lines: list[str] = []
    print_suite(res, lines.append)
    text = "\n".join(lines)
    assert "REGRESSIONS (pass natively, fail with the plugin): 4" in text
    assert "fails on real CUDA too: the test's own CUDA branch is wrong" in text
    assert text.index("REGRESSIONS") < text.index("tests collected")
    data = json.loads(json.dumps(res.to_json()))
    assert data["regressions_unexplained"] == ["t::gone", "t::jit", "t::lazy"]
    assert data["tests"]["t::gone"] == {"native": "passed", "plugin": None, "xdist": "passed", "cuda_path": False}


def test_setup_errors_and_missing_plugin_are_shown_not_counted() -> None:
    res = analyse(SUITE, {"native": _run("native", {"a": "passed"})}, plugin_ok=False)
    assert res.plugin_note and res.regressions == []
    assert summary_rows([res])[2].split(" | ")[1] == "n/a"


def test_normalise_cause() -> None:
    assert normalise_cause(None) == "(no message)"
    assert normalise_cause("\n  AssertionError: 1.2345 != 12\nmore") == "AssertionError: <num> != <n>"


def test_every_suite_in_the_corpus_is_pinned_and_explains_its_subset() -> None:
    for suite in SUITES.values():
        assert suite.spec.count("==") == 1
        narrowed = any(a.startswith(("--ignore", "-k")) for a in suite.test_args) or suite.test_args[0].count("/")
        assert not narrowed or suite.subset_note, suite.name
    assert "torch_geometric" in SUITES and SUITES["torch_geometric"].tests_from_git is not None
