"""From the runs of one suite to its verdict: regressions first, then CUDA-path pass rates and overhead.

Pure functions of ``RunResult`` objects (no processes, no files), so the tests feed them hand-made runs.
A *regression* is a test that passes natively and fails (or does not run) with the plugin in some way: the
one number that must be 0, because a plugin that breaks passing tests is uninstalled on the spot.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from .run import WAY_LABEL, RunResult
from .suites import Suite

PASS = frozenset({"passed", "xpassed"})
FAIL = frozenset({"failed", "error"})
SKIP = frozenset({"skipped", "xfailed"})
PLUGIN_WAYS = ("plugin", "xdist")

_NORMALISERS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"0x[0-9a-fA-F]+"), "0x…"),
    (re.compile(r"(?<![\w.])/[^\s:'\"]+"), "<path>"),
    (re.compile(r"tensor\(.*"), "tensor(…)"),
    (re.compile(r"[-+]?\d+\.\d+(?:e[-+]?\d+)?"), "<num>"),
    (re.compile(r"(?<![\w:])\d{2,}"), "<n>"),
    (re.compile(r"\s+"), " "),
)


def normalise_cause(cause: str | None) -> str:
    """Exception type + first line of the message, with addresses, paths and numbers blanked, so that one
    cause met by many tests groups as one."""
    if not cause:
        return "(no message)"
    line = next((ln for ln in cause.strip().splitlines() if ln.strip()), "").strip()
    for pattern, repl in _NORMALISERS:
        line = pattern.sub(repl, line)
    return line[:160]


def ratio(n: float, d: float) -> float | None:
    return round(n / d, 3) if d > 0 else None


@dataclass(frozen=True)
class WaySummary:
    """Counts and timing of one way, as printed in the per-suite table."""

    label: str
    command: str
    wall_s: float
    load_before: float
    exitstatus: int | None
    collected: int | None
    passed: int
    failed: int
    skipped: int
    detail: dict[str, int]
    log: str

    @classmethod
    def of(cls, r: RunResult) -> WaySummary:
        c = r.counts()
        return cls(
            label=WAY_LABEL[r.way],
            command=" ".join(r.command),
            wall_s=round(r.wall_s, 2),
            load_before=round(r.load_before, 2),
            exitstatus=r.exitstatus,
            collected=r.collected,
            passed=c["passed"] + c["xpassed"],
            failed=c["failed"] + c["error"],
            skipped=c["skipped"] + c["xfailed"],
            detail=c,
            log=r.log,
        )


@dataclass(frozen=True)
class Regression:
    """A test that passes natively and not with the plugin."""

    nodeid: str
    ways: dict[str, str]  # way -> its outcome there ("not run" when the test id is missing)
    cause: str  # normalised, from the first way that has a message
    cuda_path: bool  # the plugin's report says it executed CUDA code paths
    fails_on_cuda_too: str | None  # why it fails on real CUDA hardware as well (suite config), if known


@dataclass(frozen=True)
class CudaPathSummary:
    """The tests the plugin's report says executed CUDA code paths, in one plugin way."""

    cuda_path_tests: int
    passed: int
    failed: int
    skipped: int
    pass_rate: float | None  # among those that ran to a verdict (skips excluded)
    pass_rate_excluding_cuda_too: float | None  # the same, leaving out the tests listed as failing on CUDA too
    native_failing_too: list[str]
    causes: dict[str, list[str]]  # normalised cause -> failing test ids, most frequent first
    refused_apis: dict[str, int]
    report_tests: int
    report_outcome_mismatches: list[str]  # report and collector disagree: a plugin bookkeeping problem
    report_outcome_mismatch_count: int


@dataclass(frozen=True)
class Timing:
    """Overhead (b)/(a) from per-test durations of the same runs, and wall times."""

    wall_s: dict[str, float]
    wall_ratio_b_over_a: float | None
    native_passing_tests: int
    ratio_b_over_a_native_passing: float | None
    native_passing_non_cuda_tests: int
    ratio_b_over_a_native_passing_non_cuda: float | None
    native_passing_cuda_tests: int
    ratio_b_over_a_native_passing_cuda: float | None
    ratio_a_over_c: float | None
    method: str = (
        "per-test durations (setup+call+teardown) from the same runs, summed over natively-passing tests; "
        "wall ratios include interpreter start, imports and collection"
    )


@dataclass
class SuiteResult:
    """Everything the tables print and the JSON holds for one suite."""

    suite: str
    version: str
    test_args: list[str]
    subset_note: str
    setup_error: str | None = None
    plugin_note: str | None = None  # why the plugin ways did not run
    collected: int | None = None
    ways: dict[str, WaySummary] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    regressions: list[Regression] = field(default_factory=list)
    cuda_path: dict[str, CudaPathSummary] = field(default_factory=dict)
    timing: Timing | None = None
    tests: dict[str, dict[str, Any]] = field(default_factory=dict)  # nodeid -> outcome per way, cuda_path

    @property
    def regressions_unexplained(self) -> list[Regression]:
        return [r for r in self.regressions if not r.fails_on_cuda_too]

    def regressions_in(self, way: str) -> list[Regression]:
        return [r for r in self.regressions if way in r.ways]

    def regressions_by_cause(self) -> dict[str, list[str]]:
        """Normalised cause -> regressed test ids, most frequent first: one line per bug to fix."""
        by: dict[str, list[str]] = {}
        for r in self.regressions:
            by.setdefault(r.cause, []).append(r.nodeid)
        return dict(sorted(by.items(), key=lambda kv: (-len(kv[1]), kv[0])))

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["regressions_unexplained"] = [r.nodeid for r in self.regressions_unexplained]
        out["regressions_by_cause"] = self.regressions_by_cause()
        return out


def find_regressions(suite: Suite, runs: dict[str, RunResult]) -> list[Regression]:
    """Tests passing natively that fail, error or are missing in any plugin way, sorted by test id."""
    native = runs["native"]
    cuda_ids = set().union(*(runs[w].cuda_path_ids() for w in PLUGIN_WAYS if w in runs))
    found: list[Regression] = []
    for nodeid in sorted(n for n, t in native.tests.items() if t["outcome"] in PASS):
        ways: dict[str, str] = {}
        cause: str | None = None
        for way in PLUGIN_WAYS:
            if way not in runs:
                continue
            o = runs[way].outcome(nodeid)
            if o is None or o in FAIL:
                ways[way] = o or "not run"
                if cause is None and o is not None:
                    cause = normalise_cause(runs[way].tests[nodeid].get("cause"))
        if ways:
            found.append(
                Regression(
                    nodeid=nodeid,
                    ways=ways,
                    cause=cause or "(not run with the plugin)",
                    cuda_path=nodeid in cuda_ids,
                    fails_on_cuda_too=suite.fails_on_cuda_too.get(nodeid),
                )
            )
    return found


def summarise_cuda_path(suite: Suite, native: RunResult, r: RunResult) -> CudaPathSummary:
    rep_tests: dict[str, Any] = (r.report or {}).get("tests", {})
    cuda_ids = r.cuda_path_ids()
    passed = {n for n in cuda_ids if r.outcome(n) in PASS}
    failed = sorted(n for n in cuda_ids if r.outcome(n) in FAIL)
    skipped = {n for n in cuda_ids if r.outcome(n) in SKIP}
    causes: dict[str, list[str]] = {}
    for n in failed:
        causes.setdefault(normalise_cause(r.tests[n].get("cause")), []).append(n)
    refused: Counter[str] = Counter()
    for n in cuda_ids:
        refused.update(rep_tests[n].get("refused") or {})
    mismatch = sorted(
        n
        for n, t in rep_tests.items()
        if isinstance(t, dict) and r.outcome(n) is not None and t.get("outcome") != r.outcome(n)
    )
    not_on_cuda_too = [n for n in failed if n not in suite.fails_on_cuda_too]
    return CudaPathSummary(
        cuda_path_tests=len(cuda_ids),
        passed=len(passed),
        failed=len(failed),
        skipped=len(skipped),
        pass_rate=ratio(len(passed), len(passed) + len(failed)),
        pass_rate_excluding_cuda_too=ratio(len(passed), len(passed) + len(not_on_cuda_too)),
        native_failing_too=sorted(n for n in failed if native.outcome(n) in FAIL),
        causes=dict(sorted(causes.items(), key=lambda kv: -len(kv[1]))),
        refused_apis=dict(refused.most_common()),
        report_tests=len(rep_tests),
        report_outcome_mismatches=mismatch[:50],
        report_outcome_mismatch_count=len(mismatch),
    )


def timing(runs: dict[str, RunResult]) -> Timing:
    """Per-test durations summed over the natively passing tests run both ways: all of them, those without
    CUDA paths (pure overhead) and those with (natively their CUDA branch is skipped or returns early, so
    with the plugin they do extra work)."""
    native, b = runs["native"], runs["plugin"]
    cuda_ids = b.cuda_path_ids()

    def dsum(r: RunResult, ids: set[str]) -> float:
        return sum(float(r.tests[n]["duration"]) for n in ids if n in r.tests)

    common = {n for n, t in native.tests.items() if t["outcome"] in PASS and n in b.tests}
    non_cuda = common - cuda_ids
    xdist = runs.get("xdist")
    return Timing(
        wall_s={w: round(r.wall_s, 2) for w, r in runs.items()},
        wall_ratio_b_over_a=ratio(b.wall_s, native.wall_s),
        native_passing_tests=len(common),
        ratio_b_over_a_native_passing=ratio(dsum(b, common), dsum(native, common)),
        native_passing_non_cuda_tests=len(non_cuda),
        ratio_b_over_a_native_passing_non_cuda=ratio(dsum(b, non_cuda), dsum(native, non_cuda)),
        native_passing_cuda_tests=len(common & cuda_ids),
        ratio_b_over_a_native_passing_cuda=ratio(dsum(b, common & cuda_ids), dsum(native, common & cuda_ids)),
        ratio_a_over_c=None if xdist is None else ratio(native.wall_s, xdist.wall_s),
    )


def analyse(suite: Suite, runs: dict[str, RunResult], plugin_ok: bool = True) -> SuiteResult:
    """The verdict for one suite; ``runs`` has "native" and any of the plugin ways."""
    native = runs["native"]
    res = SuiteResult(
        suite=suite.name,
        version=suite.version,
        test_args=list(suite.test_args),
        subset_note=suite.subset_note,
        collected=native.collected if native.collected is not None else len(native.tests),
        ways={w: WaySummary.of(r) for w, r in runs.items()},
        problems={w: r.problem for w, r in runs.items() if r.problem},
    )
    cuda_ids = set().union(*(runs[w].cuda_path_ids() for w in PLUGIN_WAYS if w in runs))
    res.tests = {
        n: {w: runs[w].outcome(n) for w in runs} | {"cuda_path": n in cuda_ids}
        for n in sorted(set().union(*(r.tests for r in runs.values())))
    }
    if not plugin_ok:
        res.plugin_note = "not run: the installed pytest-torchdevice has no --target-device option"
        return res
    res.regressions = find_regressions(suite, runs)
    res.cuda_path = {w: summarise_cuda_path(suite, native, runs[w]) for w in PLUGIN_WAYS if w in runs}
    if "plugin" in runs:
        res.timing = timing(runs)
    return res
