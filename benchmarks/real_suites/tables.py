"""Printing: the summary table (regressions in the first column, markdown, as the README shows it) and
the per-suite detail (ways, regressions with causes, failing CUDA-path tests by cause, overhead)."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable

from .analysis import SuiteResult
from .run import XDIST_WORKERS

Printer = Callable[[str], None]
RULE = "=" * 110


def _pct(rate: float | None) -> str:
    return "n/a" if rate is None else f"{100 * rate:.1f} %"


def _pfs(res: SuiteResult, way: str) -> str:
    w = res.ways.get(way)
    return "-" if w is None else f"{w.passed}/{w.failed}/{w.skipped}"


def regression_cell(res: SuiteResult) -> str:
    """The count of regressions nobody has explained (the goal is 0), then those that fail on real CUDA too."""
    if res.setup_error:
        return "not run"
    if res.plugin_note:
        return "n/a"
    unexplained = len(res.regressions_unexplained)
    known = len(res.regressions) - unexplained
    cell = f"**{unexplained}**"
    if known:
        cell += f" (+{known} that fail on real CUDA too)"
    return cell


def summary_rows(results: Iterable[SuiteResult]) -> list[str]:
    """The markdown summary: one row per suite, regressions first."""
    rows = [
        "| suite | regressions (pass natively, fail with the plugin) | collected | native pass/fail/skip "
        "| plugin pass/fail/skip | tests on CUDA paths | of those passing | (b)/(a) | (b)/(a) without CUDA paths "
        "| (a)/(c) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for res in results:
        name = f"{res.suite} {res.version}" + (" (subset)" if res.subset_note else "")
        cp = res.cuda_path.get("plugin")
        t = res.timing
        cells = [
            name,
            regression_cell(res),
            str(res.collected if res.collected is not None else "-"),
            _pfs(res, "native"),
            _pfs(res, "plugin"),
            "-" if cp is None else str(cp.cuda_path_tests),
            "-" if cp is None else f"{cp.passed} ({_pct(cp.pass_rate)})",
            "-" if t is None else str(t.ratio_b_over_a_native_passing),
            "-" if t is None else str(t.ratio_b_over_a_native_passing_non_cuda),
            "-" if t is None or t.ratio_a_over_c is None else str(t.ratio_a_over_c),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def print_summary(results: list[SuiteResult], p: Printer = print) -> None:
    for row in summary_rows(results):
        p(row)


def print_suite(res: SuiteResult, p: Printer = print) -> None:
    """The detail of one suite; the regressions come first, grouped by cause."""
    p(RULE)
    ignores = [a for a in res.test_args if a.startswith("--ignore=")]
    shown = " ".join(shlex.quote(a) for a in res.test_args if a not in ignores)
    if ignores:
        shown += f" + {len(ignores)} --ignore=... (listed in the JSON)"
    p(f"{res.suite} {res.version}   tests: {shown}")
    if res.subset_note:
        p(f"  subset: {res.subset_note}")
    if res.setup_error:
        p(f"  NOT RUN: {res.setup_error}")
        return
    if not res.plugin_note:
        _print_regressions(res, p)
    p(f"  tests collected: {res.collected}")
    p(f"  {'way':40s} {'passed':>7s} {'failed':>7s} {'skipped':>8s} {'wall s':>8s}  {'load':>5s}  exit")
    for w in res.ways.values():
        p(
            f"  {w.label:40s} {w.passed:7d} {w.failed:7d} {w.skipped:8d} {w.wall_s:8.1f}  "
            f"{w.load_before:5.2f}  {w.exitstatus}"
        )
    for way, problem in res.problems.items():
        p(f"  PROBLEM in {way}: {problem.strip()}")
    if res.plugin_note:
        p(f"  {res.plugin_note}")
        return
    _print_cuda_paths(res, p)
    _print_timing(res, p)


def _print_regressions(res: SuiteResult, p: Printer) -> None:
    regs = res.regressions
    known = len(regs) - len(res.regressions_unexplained)
    per_way = ", ".join(f"{way} {len(res.regressions_in(way))}" for way in res.cuda_path)
    p(
        f"  REGRESSIONS (pass natively, fail with the plugin): {len(regs)} (goal 0; {per_way})"
        + (f"; {known} of them fail on real CUDA too (listed in the suite config)" if known else "")
    )
    by_id = {r.nodeid: r for r in regs}
    for cause, ids in res.regressions_by_cause().items():
        on_cuda = sum(1 for n in ids if by_id[n].cuda_path)
        p(f"    {len(ids):4d}  {cause}" + (f"   [{on_cuda} on CUDA paths]" if on_cuda else ""))
        for n in ids[:5]:
            r = by_id[n]
            ways = ", ".join(f"{w}={o}" for w, o in r.ways.items())
            p(f"            {n}  [{ways}]")
            if r.fails_on_cuda_too:
                p(f"              fails on real CUDA too: {r.fails_on_cuda_too}")
        if len(ids) > 5:
            p(f"            ... and {len(ids) - 5} more (all in the JSON)")


def _print_cuda_paths(res: SuiteResult, p: Printer) -> None:
    counts = ", ".join(f"{way} {c.cuda_path_tests}" for way, c in res.cuda_path.items())
    p(f"  tests executing CUDA code paths (report): {counts}")
    for way, c in res.cuda_path.items():
        adj = c.pass_rate_excluding_cuda_too
        adjusted = "" if adj == c.pass_rate or adj is None else f", {_pct(adj)} without those failing on CUDA too"
        native_too = f"; {len(c.native_failing_too)} of the failures fail natively too" if c.native_failing_too else ""
        p(
            f"  CUDA-path tests ({way}): {c.passed} passed, {c.failed} failed, {c.skipped} skipped; "
            f"pass rate {_pct(c.pass_rate)}{adjusted} (goal >= 95 %){native_too}"
        )
        if c.report_outcome_mismatch_count:
            p(
                f"    note: report and collector disagree on {c.report_outcome_mismatch_count} outcomes "
                f"(e.g. {c.report_outcome_mismatches[:3]})"
            )
    cb = res.cuda_path.get("plugin")
    if cb is not None and cb.causes:
        p("  failing CUDA-path tests (plugin) by cause:")
        for cause, ids in cb.causes.items():
            p(f"    {len(ids):4d}  {cause}")
            for n in ids[:3]:
                p(f"            e.g. {n}")
    cc = res.cuda_path.get("xdist")
    if cb is not None and cc is not None:
        extra = {k: v for k, v in cc.causes.items() if len(v) != len(cb.causes.get(k, []))}
        if extra:
            p(f"  failing CUDA-path tests (xdist, -n {XDIST_WORKERS}) by cause, where they differ from (plugin):")
            for cause, ids in extra.items():
                p(f"    {len(ids):4d}  {cause}")
    if cb is not None and cb.refused_apis:
        p(f"  refused (unemulatable) APIs hit by CUDA-path tests (plugin): {cb.refused_apis}")


def _print_timing(res: SuiteResult, p: Printer) -> None:
    t = res.timing
    if t is None:
        return
    walls = "  ".join(f"{w} {s:.1f}s" for w, s in t.wall_s.items())
    xdist = "" if t.ratio_a_over_c is None else f";  (a)/(c) {t.ratio_a_over_c} (xdist speed-up)"
    p(f"  wall: {walls};  (b)/(a) wall {t.wall_ratio_b_over_a}{xdist}")
    p(
        f"  (b)/(a) over the {t.native_passing_tests} natively-passing tests (summed per-test durations, "
        f"same runs): {t.ratio_b_over_a_native_passing} (goal <= 1.03)"
    )
    p(
        f"  (b)/(a) over the {t.native_passing_non_cuda_tests} natively-passing tests without CUDA paths "
        f"(pure overhead): {t.ratio_b_over_a_native_passing_non_cuda}; over the {t.native_passing_cuda_tests} "
        f"with CUDA paths (emulation cost, or work their skipped CUDA branch does): "
        f"{t.ratio_b_over_a_native_passing_cuda}"
    )
    loads = [w.load_before for w in res.ways.values()]
    if loads and max(loads) > 1.5:
        p(
            f"  note: load average {min(loads):.1f}-{max(loads):.1f} when the runs started: other work on this "
            "machine skews the timings"
        )
