"""Running one suite one way: the pytest command line, its environment, and reading the results back.

The ways:

    native  (a) plugin disabled            pytest -p no:torchdevice
    plugin  (b) cuda redirected to cpu     pytest --target-device=cpu --torchdevice-report=...
    xdist   (c) as (b), under xdist        pytest --target-device=cpu ... -n 2
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .collector import RESULTS_ENV
from .provision import COLLECTOR_MODULE, log, run_logged, tail
from .suites import Suite

XDIST_WORKERS = 2
WAYS = ("native", "plugin", "xdist")
WAY_LABEL = {
    "native": "(a) native, -p no:torchdevice",
    "plugin": "(b) --target-device=cpu",
    "xdist": f"(c) (b) + -n {XDIST_WORKERS}",
}
OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")


@dataclass
class RunResult:
    """One pytest invocation (one of the ways) as the collector and the plugin's report saw it."""

    way: str
    command: list[str]
    wall_s: float = 0.0
    load_before: float = 0.0  # 1-minute load average when the run started: other work skews timings
    exitstatus: int | None = None
    collected: int | None = None
    tests: dict[str, dict[str, Any]] = field(default_factory=dict)  # nodeid -> outcome, duration, cause
    report: dict[str, Any] | None = None  # the plugin's --torchdevice-report, when asked for
    problem: str | None = None  # why the run or its report is unusable/incomplete
    log: str = ""

    def counts(self) -> dict[str, int]:
        c = Counter(t["outcome"] for t in self.tests.values())
        return {k: c.get(k, 0) for k in OUTCOMES}

    def outcome(self, nodeid: str) -> str | None:
        t = self.tests.get(nodeid)
        return None if t is None else str(t["outcome"])

    def cuda_path_ids(self) -> set[str]:
        """Tests the plugin's report says executed CUDA code paths (empty without a report)."""
        rep: dict[str, Any] = (self.report or {}).get("tests", {})
        return {n for n, t in rep.items() if isinstance(t, dict) and t.get("cuda_path")}


_PYTEST_CONFIGS = (
    ("pytest.ini", ""),
    (".pytest.ini", ""),
    ("pyproject.toml", "[tool.pytest.ini_options]"),
    ("tox.ini", "[pytest]"),
    ("setup.cfg", "[tool:pytest]"),
)


def pytest_config_args(src_dir: Path) -> list[str]:
    """Pin rootdir and config file to the unpacked sdist.

    Left alone, pytest walks up from an sdist without pytest settings (gpytorch, linear_operator) to the
    first file that has some: with the default work dir that is this repository's pyproject.toml, whose
    addopts and markers would leak into the third-party run and whose rootdir would prefix every nodeid.
    """
    for name, marker in _PYTEST_CONFIGS:
        path = src_dir / name
        if path.is_file() and marker in path.read_text(errors="replace"):
            return ["-c", str(path), f"--rootdir={src_dir}"]
    empty = src_dir.parent / "empty-pytest.ini"
    empty.write_text("[pytest]\n")
    return ["-c", str(empty), f"--rootdir={src_dir}"]


def plugin_has_target_device(suite: Suite, py: Path, cwd: Path) -> bool:
    """Whether the installed pytest-torchdevice is one that has the options the plugin ways use."""
    proc = subprocess.run(
        [str(py), "-m", "pytest", "--help", "-p", "no:cacheprovider", *pytest_config_args(cwd), *suite.common_args],
        cwd=cwd,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )
    return "--target-device" in proc.stdout


def command(suite: Suite, way: str, py: Path, src_dir: Path, report_path: Path) -> list[str]:
    args: list[str] = [
        str(py),
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-p",
        COLLECTOR_MODULE,
        "-q",
        *pytest_config_args(src_dir),
        *suite.common_args,
    ]
    if way == "native":
        args += ["-p", "no:torchdevice", *suite.native_args]
    else:
        args += ["--target-device=cpu", f"--torchdevice-report={report_path}", *suite.plugin_args]
        if way == "xdist":
            args += ["-n", str(XDIST_WORKERS)]
    return args + list(suite.test_args)


def environment(suite: Suite, src_dir: Path, results_path: Path, threads: int) -> dict[str, str]:
    """This process's environment without our own settings, plus the suite's, threads and the collector's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_TARGET_DEVICE", "PYTEST_ADDOPTS"))}
    if threads > 0:
        # torch's intra-op pool defaults to one thread per core in *each* process: under -n 2 on a 2-core box
        # that oversubscribes the cores (and OpenMP spin-waits make any outside load hurt far more). One
        # thread per process (default) keeps the three ways comparable and the timings stable.
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[var] = str(threads)
    env.update(suite.env)
    env[RESULTS_ENV] = str(results_path)
    env["PYTHONPATH"] = os.pathsep.join([str(src_dir.parent), *filter(None, [env.get("PYTHONPATH")])])
    return env


def read_results(res: RunResult, results_path: Path, report_path: Path | None) -> None:
    """Fill res from the collector's JSON and the plugin's report; say in res.problem what is missing."""
    try:
        data = json.loads(results_path.read_text())
        res.tests = data["tests"]
        res.collected = data.get("collected")
    except (OSError, ValueError, KeyError) as exc:
        res.problem = (res.problem or "") + (
            f" no per-test results ({type(exc).__name__}); pytest exit {res.exitstatus}; last lines of "
            f"{res.log}:\n{tail(Path(res.log))}"
        )
    if res.exitstatus not in (0, 1) and res.problem is None:
        res.problem = f"pytest exit code {res.exitstatus}; last lines of {res.log}:\n{tail(Path(res.log), 8)}"
    if report_path is None:
        return
    try:
        rep = json.loads(report_path.read_text())
        if not isinstance(rep.get("tests"), dict):
            raise ValueError("no 'tests' object")
        res.report = rep
    except (OSError, ValueError, AttributeError) as exc:
        res.problem = (res.problem or "") + f" --torchdevice-report unusable: {type(exc).__name__}: {exc}"


def run_way(suite: Suite, way: str, py: Path, src_dir: Path, out_dir: Path, threads: int) -> RunResult:
    """Run the suite's tests one way and read back per-test results and the plugin's report."""
    results_path = out_dir / f"{way}.results.json"
    report_path = out_dir / f"{way}.torchdevice.json"
    log_path = out_dir / f"{way}.log"
    for p in (results_path, report_path, log_path):
        p.unlink(missing_ok=True)
    args = command(suite, way, py, src_dir, report_path)
    env = environment(suite, src_dir, results_path, threads)
    res = RunResult(way=way, command=args, log=str(log_path))
    res.load_before = os.getloadavg()[0]
    log(f"{suite.name}: {WAY_LABEL[way]} ... (load average {res.load_before:.2f})")
    rc, wall, timed_out = run_logged(args, log_path, cwd=src_dir, env=env, timeout=suite.timeout_s)
    res.wall_s, res.exitstatus = wall, rc
    if timed_out:
        res.problem = f"timed out after {suite.timeout_s}s (killed); see {log_path}"
    read_results(res, results_path, None if way == "native" else report_path)
    c = res.counts()
    log(
        f"{suite.name}: {way}: {c['passed']} passed, {c['failed'] + c['error']} failed, "
        f"{c['skipped'] + c['xfailed']} skipped in {wall:.1f}s (exit {rc})"
    )
    return res
