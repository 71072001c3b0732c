"""Acceptance test on real third-party suites: do CUDA-written test suites run unchanged on a CPU box?

Why this exists: the project's own tests check the cases we thought of. The promise of pytest-torchdevice is
that *other people's* suites, written for CUDA, run on a CPU-only machine without edits. This script takes
published libraries whose test suites have CUDA branches (gpytorch, linear_operator, pytorch_optimizer),
downloads their PyPI sdists (which ship the tests) at run time, installs each in a throwaway venv together
with this project (editable, so fixes in the work tree are picked up on the next run) and runs the chosen
test paths three ways:

    (a) natively on CPU, plugin disabled           pytest -p no:torchdevice
    (b) with the plugin redirecting cuda -> cpu    pytest --target-device=cpu --torchdevice-report=...
    (c) as (b), under pytest-xdist                 pytest --target-device=cpu ... -n 2

and prints, per suite: tests collected, pass/fail/skip per way, how many tests executed CUDA code paths
(from the plugin's report), regressions (pass natively, fail with the plugin), the failing CUDA-path tests
grouped by cause, and wall times with the overhead ratio. The project's goals: 0 regressions, >= 95 % of the
tests that execute CUDA code paths pass, (b)/(a) <= 1.03.

Usage:
    python benchmarks/real_suites.py [--suite NAME ...] [--json PATH] [--workdir DIR] [--keep]

Nothing third-party is committed: sdists are downloaded into the work dir (default ``.real_suites/``,
gitignored). Without ``--keep`` the venvs and unpacked sources are removed at the end; logs, per-run results
and the JSON summary stay. With ``--keep`` a later run reuses the venv (same pins) and skips the install.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import venv
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
TORCH_PIN = "torch==2.13.0"
TOOL_PINS = ("pytest==9.2.0", "pytest-xdist==3.8.0")
XDIST_WORKERS = 2
PASS = frozenset({"passed", "xpassed"})
FAIL = frozenset({"failed", "error"})
SKIP = frozenset({"skipped", "xfailed"})


@dataclass(frozen=True)
class Suite:
    """One third-party library and how to run its tests."""

    name: str
    dist: str  # PyPI distribution name
    version: str
    test_args: tuple[str, ...]  # paths (relative to the unpacked sdist) and selection flags, all ways
    subset_note: str = ""  # why test_args is not simply the whole test dir, shown in the table
    requirements: tuple[str, ...] = ()  # pinned extra packages the tests need
    common_args: tuple[str, ...] = ()  # extra pytest args for all ways
    native_args: tuple[str, ...] = ()  # extra pytest args for (a) only
    plugin_args: tuple[str, ...] = ()  # extra pytest args for (b) and (c)
    timeout_s: int = 900  # per pytest run
    # nodeid -> why the test fails on real CUDA hardware too (a bug in the test or the library that only its
    # CUDA branch reaches). Still counted as regressions, but shown apart, so the unexplained ones stand out.
    fails_on_cuda_too: dict[str, str] = field(default_factory=dict)

    @property
    def spec(self) -> str:
        return f"{self.dist}=={self.version}"


# Timings below are this 2-core box, natively, sequential: gpytorch's whole test/ takes ~490 s,
# pytorch_optimizer's tests/ ~200 s, linear_operator's test/ ~70 s. Three ways per suite must fit 20 minutes.
_GPYTORCH_SLOW = (
    # test/examples files that take > 3 s natively (together ~190 s); the cheap example files with
    # CUDA branches stay in.
    "test/examples/test_batch_decoupled_ppgpr_regression.py",
    "test/examples/test_batch_gp_regression.py",
    "test/examples/test_batch_multitask_gp_regression.py",
    "test/examples/test_batch_svgp_gp_regression.py",
    "test/examples/test_decoupled_svgp_regression.py",
    "test/examples/test_dspp_regression.py",
    "test/examples/test_kissgp_additive_classification.py",
    "test/examples/test_kissgp_gp_classification.py",
    "test/examples/test_kissgp_gp_regression.py",
    "test/examples/test_kissgp_kronecker_product_classification.py",
    "test/examples/test_kronecker_multitask_ski_gp_regression.py",
    "test/examples/test_lmc_svgp_regression.py",
    "test/examples/test_missing_data.py",
    "test/examples/test_svgp_gp_regression.py",
    "test/utils/test_nearest_neighbors.py",
)

_LKJ_ETA = "LKJ priors keep eta as a plain attribute, not a buffer: Module.cuda() leaves it on the CPU"

SUITES: dict[str, Suite] = {
    s.name: s
    for s in (
        Suite(
            name="linear_operator",
            dist="linear_operator",
            version="0.6.1",
            test_args=("test",),
        ),
        Suite(
            name="gpytorch",
            dist="gpytorch",
            version="1.15.2",
            test_args=("test", "--ignore=test/variational", *(f"--ignore={p}" for p in _GPYTORCH_SLOW)),
            subset_note=(
                "test/ minus test/variational (~220 s) and the 15 slowest example/util files (~190 s): "
                "the whole dir takes ~8 min natively"
            ),
            requirements=("linear_operator==0.6.1",),
            fails_on_cuda_too={
                f"test/priors/{nodeid}": why
                for nodeid, why in (
                    (
                        "test_half_cauchy_prior.py::TestHalfCauchyPrior::test_half_cauchy_prior_to_gpu",
                        "calls .cuda() on torch.distributions.HalfCauchy, which has no such method",
                    ),
                    (
                        "test_half_normal_prior.py::TestHalfNormalPrior::test_half_normal_prior_to_gpu",
                        "asserts on HalfNormalPrior.concentration, an attribute it does not have",
                    ),
                    ("test_lkj_prior.py::TestLKJPrior::test_lkj_prior_to_gpu", _LKJ_ETA),
                    (
                        "test_lkj_prior.py::TestLKJCholeskyFactorPrior::test_lkj_cholesky_factor_prior_to_gpu",
                        _LKJ_ETA,
                    ),
                    ("test_lkj_prior.py::TestLKJCovariancePrior::test_lkj_covariance_prior_to_gpu", _LKJ_ETA),
                    (
                        "test_multivariate_normal_prior.py::TestMultivariateNormalPrior"
                        "::test_multivariate_normal_prior_to_gpu",
                        "Prior.__setattr__ and the lazy covariance_matrix recurse after .cuda()/.cpu() "
                        "(the same RecursionError natively after .cpu())",
                    ),
                )
            },
        ),
        Suite(
            name="pytorch_optimizer",
            dist="pytorch_optimizer",
            version="4.1.0",
            test_args=(
                "tests",
                "-k",
                "not (test_create_compiled_optimizer and not adamw) and not test_sharded_updates",
            ),
            subset_note=(
                "tests/ minus test_muon's test_sharded_updates and the torch.compile cases of "
                "test_create_compiled_optimizer except those whose id mentions adamw (13 of 104 kept); "
                "the two take ~45% of the native time"
            ),
            # its addopts asks for pytest-cov; coverage is not what we measure
            common_args=("-o", "addopts=-p no:pastebin -p no:doctest"),
            plugin_args=("--device=cuda",),  # its conftest's option; default (cpu) natively
        ),
    )
}

# ----------------------------------------------------------------------------------------------------
# The result collector: a tiny pytest plugin written into the work dir and loaded with -p in every run.
# Runs in the controller only under xdist (workers' reports arrive there through pytest_runtest_logreport).

COLLECTOR_MODULE = "real_suites_collector"
COLLECTOR_SOURCE = '''\
"""Written by pytest-torchdevice's benchmarks/real_suites.py: per-test outcome, duration and cause as JSON."""
import json
import os

import pytest

_tests = {}
_collected = []


def _is_subtest(report):
    return type(report).__name__ == "SubtestReport" or getattr(report, "context", None) is not None


def _cause(report):
    lr = report.longrepr
    if lr is None:
        return None
    if isinstance(lr, tuple) and len(lr) == 3:
        return str(lr[2])
    crash = getattr(lr, "reprcrash", None)
    if crash is not None and getattr(crash, "message", None):
        return str(crash.message)
    lines = [line.strip() for line in str(lr).splitlines() if line.strip()]
    for line in lines:
        if line.startswith("E "):
            return line[1:].strip()
    return lines[-1] if lines else None


def _entry(nodeid):
    return _tests.setdefault(nodeid, {"when": {}, "subtest_failed": False, "duration": 0.0,
                                      "wasxfail": False, "cause": None,
                                      "cause_failed": False})


def pytest_runtest_logreport(report):
    e = _entry(report.nodeid)
    if _is_subtest(report):
        if report.failed:
            e["subtest_failed"] = True
            if not e["cause_failed"]:
                e["cause"], e["cause_failed"] = _cause(report), True
        return
    e["when"][report.when] = report.outcome
    e["duration"] += float(getattr(report, "duration", 0.0) or 0.0)
    if hasattr(report, "wasxfail"):
        e["wasxfail"] = True
    if report.failed and not e["cause_failed"]:
        e["cause"], e["cause_failed"] = _cause(report), True
    elif report.skipped and e["cause"] is None:
        e["cause"] = _cause(report)


def pytest_collectreport(report):
    if report.failed:
        e = _entry(report.nodeid or "<collection>")
        e["when"]["collect"] = "failed"
        e["cause"], e["cause_failed"] = _cause(report), True


def pytest_collection_finish(session):
    if session.items:
        _collected.append(len(session.items))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node, ids):
    if not _collected:
        _collected.append(len(ids))


def _outcome(e):
    when = e["when"]
    if when.get("collect") == "failed":
        return "error"
    if when.get("call") == "failed" or e["subtest_failed"]:
        return "failed"
    if when.get("setup") == "failed":
        return "error"
    if "skipped" in (when.get("setup"), when.get("call")):
        return "xfailed" if e["wasxfail"] else "skipped"
    if when.get("teardown") == "failed":
        return "error"
    if when.get("call") == "passed":
        return "xpassed" if e["wasxfail"] else "passed"
    return "error"


def pytest_sessionfinish(session, exitstatus):
    if hasattr(session.config, "workerinput"):
        return
    path = os.environ.get("REAL_SUITES_RESULTS")
    if not path:
        return
    tests = {nodeid: {"outcome": _outcome(e), "duration": round(e["duration"], 6), "cause": e["cause"]}
             for nodeid, e in _tests.items()}
    with open(path, "w") as f:
        json.dump({"exitstatus": int(exitstatus), "collected": _collected[0] if _collected else None,
                   "tests": tests}, f)
'''

# ----------------------------------------------------------------------------------------------------


class SetupError(Exception):
    """A suite could not be downloaded or installed; the message says which step and why."""


@dataclass
class RunResult:
    """One pytest invocation (one of the three ways)."""

    way: str
    command: list[str]
    wall_s: float = 0.0
    load_before: float = 0.0  # 1-minute load average when the run started: other work skews timings
    exitstatus: int | None = None
    collected: int | None = None
    tests: dict[str, dict[str, Any]] = field(default_factory=dict)
    report: dict[str, Any] | None = None  # the plugin's --torchdevice-report, when asked for
    problem: str | None = None  # why the run or its report is unusable/incomplete
    log: str = ""

    def counts(self) -> dict[str, int]:
        c = Counter(t["outcome"] for t in self.tests.values())
        return {k: c.get(k, 0) for k in ("passed", "failed", "error", "skipped", "xfailed", "xpassed")}

    def outcome(self, nodeid: str) -> str | None:
        t = self.tests.get(nodeid)
        return None if t is None else str(t["outcome"])


def log(msg: str) -> None:
    print(f"[real_suites {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in text[-lines:])


def _run_logged(
    cmd: list[str],
    log_path: Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
) -> tuple[int, float, bool]:
    """Run cmd with stdout+stderr appended to log_path; return (exit code, wall seconds, timed out)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        start = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            rc = proc.wait(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            rc = proc.wait()
            timed_out = True
        wall = time.perf_counter() - start
        out.write(f"[exit {rc} after {wall:.1f}s{' (timed out)' if timed_out else ''}]\n")
    return rc, wall, timed_out


def _pip(py: Path, args: list[str], log_path: Path, step: str, timeout: float = 900) -> None:
    rc, _, timed_out = _run_logged([str(py), "-m", "pip", *args], log_path, timeout=timeout)
    if rc != 0 or timed_out:
        why = "timed out" if timed_out else f"exit code {rc}"
        raise SetupError(f"{step} failed ({why}); last lines of {log_path}:\n{_tail(log_path)}")


def _venv_python(venv_dir: Path) -> Path:
    return venv_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def prepare(suite: Suite, suite_dir: Path) -> tuple[Path, Path]:
    """Create the venv, download and unpack the sdist, install everything; return (python, source dir)."""
    venv_dir = suite_dir / "venv"
    src_parent = suite_dir / "src"
    py = _venv_python(venv_dir)
    install_log = suite_dir / "install.log"
    constraints = [TORCH_PIN, *suite.requirements, *TOOL_PINS, suite.spec]
    fingerprint = hashlib.sha256(json.dumps([constraints, str(REPO_ROOT), sys.version]).encode()).hexdigest()[
        :16
    ]
    marker = suite_dir / "installed.json"
    src_dir = src_parent / f"{suite.dist}-{suite.version}"

    if (
        marker.exists()
        and py.exists()
        and src_dir.is_dir()
        and json.loads(marker.read_text()).get("fingerprint") == fingerprint
    ):
        log(f"{suite.name}: reusing venv and sources in {suite_dir} (--keep from an earlier run)")
        return py, src_dir

    shutil.rmtree(venv_dir, ignore_errors=True)
    shutil.rmtree(src_parent, ignore_errors=True)
    marker.unlink(missing_ok=True)
    install_log.unlink(missing_ok=True)
    suite_dir.mkdir(parents=True, exist_ok=True)

    log(f"{suite.name}: creating venv")
    try:
        venv.EnvBuilder(with_pip=True, clear=True).create(venv_dir)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SetupError(f"creating the venv {venv_dir} failed: {exc}") from exc

    constraints_file = suite_dir / "constraints.txt"
    constraints_file.write_text("\n".join(constraints) + "\n")

    log(f"{suite.name}: installing {TORCH_PIN} (first, so nothing pulls a CUDA build)")
    _pip(py, ["install", "-q", TORCH_PIN], install_log, f"installing {TORCH_PIN}")

    log(f"{suite.name}: downloading the sdist {suite.spec}")
    dl_dir = suite_dir / "sdist"
    shutil.rmtree(dl_dir, ignore_errors=True)
    _pip(
        py,
        [
            "download",
            "-q",
            "--no-deps",
            "--no-binary",
            ":all:",
            "-c",
            str(constraints_file),
            suite.spec,
            "-d",
            str(dl_dir),
        ],
        install_log,
        f"downloading the sdist of {suite.spec} (network? PyPI reachable?)",
    )
    archives = sorted(p for p in dl_dir.iterdir() if p.name.endswith((".tar.gz", ".zip")))
    if not archives:
        raise SetupError(f"pip download of {suite.spec} produced no sdist in {dl_dir}")
    src_parent.mkdir(parents=True, exist_ok=True)
    _unpack(archives[0], src_parent)
    found = [p for p in src_parent.iterdir() if p.is_dir()]
    if len(found) != 1:
        raise SetupError(f"unexpected layout of {archives[0].name}: {[p.name for p in found]}")
    if found[0] != src_dir:
        found[0].rename(src_dir)

    log(
        f"{suite.name}: installing {suite.spec} from the sdist, its test needs, pytest, xdist and this "
        "project"
    )
    _pip(
        py,
        [
            "install",
            "-q",
            "-c",
            str(constraints_file),
            TORCH_PIN,
            str(src_dir),
            *suite.requirements,
            *TOOL_PINS,
            "-e",
            str(REPO_ROOT),
        ],
        install_log,
        f"installing {suite.spec} and the test tools",
    )

    (src_parent / f"{COLLECTOR_MODULE}.py").write_text(COLLECTOR_SOURCE)
    marker.write_text(json.dumps({"fingerprint": fingerprint, "constraints": constraints}))
    return py, src_dir


def _unpack(archive: Path, dest: Path) -> None:
    try:
        if archive.name.endswith(".zip"):
            shutil.unpack_archive(str(archive), str(dest))
        else:
            with tarfile.open(archive) as tar:
                tar.extractall(dest, filter="data")
    except (OSError, tarfile.TarError, shutil.ReadError) as exc:
        raise SetupError(f"unpacking {archive} failed: {exc}") from exc


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
    proc = subprocess.run(
        [
            str(py),
            "-m",
            "pytest",
            "--help",
            "-p",
            "no:cacheprovider",
            *pytest_config_args(cwd),
            *suite.common_args,
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )
    return "--target-device" in proc.stdout


WAYS = ("native", "plugin", "xdist")
WAY_LABEL = {
    "native": "(a) native, -p no:torchdevice",
    "plugin": "(b) --target-device=cpu",
    "xdist": f"(c) (b) + -n {XDIST_WORKERS}",
}


def run_way(suite: Suite, way: str, py: Path, src_dir: Path, out_dir: Path, threads: int) -> RunResult:
    """Run the suite's tests one way (a, b or c) and read back per-test results and the plugin's report."""
    name = way
    results_path = out_dir / f"{name}.results.json"
    report_path = out_dir / f"{name}.torchdevice.json"
    log_path = out_dir / f"{name}.log"
    for p in (results_path, report_path, log_path):
        p.unlink(missing_ok=True)
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
    args += list(suite.test_args)
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_TARGET_DEVICE", "PYTEST_ADDOPTS"))
    }
    if threads > 0:
        # torch's intra-op pool defaults to one thread per core in *each* process: under -n 2 on a 2-core box
        # that oversubscribes the cores (and OpenMP spin-waits make any outside load hurt far more). One
        # thread per process (default) keeps the three ways comparable and the timings stable.
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[var] = str(threads)
    env["REAL_SUITES_RESULTS"] = str(results_path)
    env["PYTHONPATH"] = os.pathsep.join([str(src_dir.parent), *filter(None, [env.get("PYTHONPATH")])])
    res = RunResult(way=way, command=args, log=str(log_path))
    res.load_before = os.getloadavg()[0]
    log(f"{suite.name}: {WAY_LABEL[way]} ... (load average {res.load_before:.2f})")
    rc, wall, timed_out = _run_logged(args, log_path, cwd=src_dir, env=env, timeout=suite.timeout_s)
    res.wall_s, res.exitstatus = wall, rc
    if timed_out:
        res.problem = f"timed out after {suite.timeout_s}s (killed); see {log_path}"
    try:
        data = json.loads(results_path.read_text())
        res.tests = data["tests"]
        res.collected = data.get("collected")
    except (OSError, ValueError, KeyError) as exc:
        res.problem = (res.problem or "") + (
            f" no per-test results ({type(exc).__name__}); pytest exit {rc}; last lines of {log_path}:\n"
            f"{_tail(log_path)}"
        )
    if rc not in (0, 1) and res.problem is None:
        res.problem = f"pytest exit code {rc}; last lines of {log_path}:\n{_tail(log_path, 8)}"
    if way != "native":
        try:
            rep = json.loads(report_path.read_text())
            if not isinstance(rep.get("tests"), dict):
                raise ValueError("no 'tests' object")
            res.report = rep
        except (OSError, ValueError, AttributeError) as exc:
            res.problem = (res.problem or "") + f" --torchdevice-report unusable: {type(exc).__name__}: {exc}"
    c = res.counts()
    log(
        f"{suite.name}: {name}: {c['passed']} passed, {c['failed'] + c['error']} failed, "
        f"{c['skipped'] + c['xfailed']} skipped in {wall:.1f}s (exit {rc})"
    )
    return res


_NORMALISERS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"0x[0-9a-fA-F]+"), "0x…"),
    (re.compile(r"(?<![\w.])/[^\s:'\"]+"), "<path>"),
    (re.compile(r"tensor\(.*"), "tensor(…)"),
    (re.compile(r"[-+]?\d+\.\d+(?:e[-+]?\d+)?"), "<num>"),
    (re.compile(r"(?<![\w:])\d{2,}"), "<n>"),
    (re.compile(r"\s+"), " "),
)


def normalise_cause(cause: str | None) -> str:
    """Exception type + first line of the message, with addresses, paths and numbers blanked."""
    if not cause:
        return "(no message)"
    line = next((ln for ln in cause.strip().splitlines() if ln.strip()), "").strip()
    for pattern, repl in _NORMALISERS:
        line = pattern.sub(repl, line)
    return line[:160]


def _pct(n: int, d: int) -> str:
    return f"{100.0 * n / d:.1f}%" if d else "n/a"


def _ratio(n: float, d: float) -> float | None:
    return round(n / d, 3) if d > 0 else None


def analyse(suite: Suite, runs: dict[str, RunResult], plugin_ok: bool) -> dict[str, Any]:
    native = runs["native"]
    out: dict[str, Any] = {
        "suite": suite.name,
        "version": suite.version,
        "test_args": list(suite.test_args),
        "subset_note": suite.subset_note,
        "collected": native.collected if native.collected is not None else len(native.tests),
        "ways": {},
        "problems": {w: r.problem for w, r in runs.items() if r.problem},
    }
    for way, r in runs.items():
        c = r.counts()
        out["ways"][way] = {
            "label": WAY_LABEL[way],
            "command": " ".join(r.command),
            "wall_s": round(r.wall_s, 2),
            "load_before": round(r.load_before, 2),
            "exitstatus": r.exitstatus,
            "collected": r.collected,
            "passed": c["passed"] + c["xpassed"],
            "failed": c["failed"] + c["error"],
            "skipped": c["skipped"] + c["xfailed"],
            "detail": c,
            "log": r.log,
        }
    if not plugin_ok:
        out["plugin"] = "not run: the installed pytest-torchdevice has no --target-device option"
        return out
    native_pass = {n for n, t in native.tests.items() if t["outcome"] in PASS}
    regressions: dict[str, dict[str, Any]] = {}
    for way in ("plugin", "xdist"):
        r = runs[way]
        for nodeid in sorted(native_pass):
            o = r.outcome(nodeid)
            if o is None or o in FAIL:
                entry = regressions.setdefault(
                    nodeid,
                    {"ways": {}, "cause": None, "fails_on_cuda_too": suite.fails_on_cuda_too.get(nodeid)},
                )
                entry["ways"][way] = o or "not run"
                if entry["cause"] is None and o is not None:
                    entry["cause"] = normalise_cause(r.tests[nodeid].get("cause"))
    out["regressions"] = regressions
    out["regressions_unexplained"] = sorted(n for n, r in regressions.items() if not r["fails_on_cuda_too"])

    cuda: dict[str, Any] = {}
    for way in ("plugin", "xdist"):
        r = runs[way]
        rep_tests: dict[str, Any] = (r.report or {}).get("tests", {})
        cuda_ids = {n for n, t in rep_tests.items() if isinstance(t, dict) and t.get("cuda_path")}
        passed = {n for n in cuda_ids if r.outcome(n) in PASS}
        failed = sorted(n for n in cuda_ids if r.outcome(n) in FAIL)
        skipped = {n for n in cuda_ids if r.outcome(n) in SKIP}
        causes: dict[str, list[str]] = {}
        for n in failed:
            causes.setdefault(normalise_cause(r.tests[n].get("cause")), []).append(n)
        refused: Counter[str] = Counter()
        for n in cuda_ids:
            refused.update(rep_tests[n].get("refused") or {})
        # tests whose outcome the report and the collector disagree on: a plugin bookkeeping problem
        mismatch = sorted(
            n
            for n, t in rep_tests.items()
            if isinstance(t, dict) and r.outcome(n) is not None and t.get("outcome") != r.outcome(n)
        )
        cuda[way] = {
            "cuda_path_tests": len(cuda_ids),
            "passed": len(passed),
            "failed": len(failed),
            "skipped": len(skipped),
            # pass rate among CUDA-path tests that ran to a verdict (skips excluded)
            "pass_rate": _ratio(len(passed), len(passed) + len(failed)),
            # the same, leaving out the tests listed as failing on real CUDA too
            "pass_rate_excluding_cuda_too": _ratio(
                len(passed), len(passed) + len([n for n in failed if n not in suite.fails_on_cuda_too])
            ),
            "native_failing_too": sorted(n for n in failed if native.outcome(n) in FAIL),
            "causes": dict(sorted(causes.items(), key=lambda kv: -len(kv[1]))),
            "refused_apis": dict(refused.most_common()),
            "report_tests": len(rep_tests),
            "report_outcome_mismatches": mismatch[:50],
            "report_outcome_mismatch_count": len(mismatch),
        }
    out["cuda_path"] = cuda
    cuda_ids_b = {
        n
        for n, t in ((runs["plugin"].report or {}).get("tests", {})).items()
        if isinstance(t, dict) and t.get("cuda_path")
    }

    # Overhead: per-test durations (setup+call+teardown) summed over the tests that pass natively and were
    # run both ways; once for all of them, once without the CUDA-path ones (which do extra work with the
    # plugin: natively their CUDA branch is skipped or returns early, so only the latter is pure overhead).
    def dsum(r: RunResult, ids: set[str]) -> float:
        return sum(float(r.tests[n]["duration"]) for n in ids if n in r.tests)

    b = runs["plugin"]
    common = {n for n in native_pass if n in b.tests}
    non_cuda = common - cuda_ids_b
    a_all, b_all = dsum(native, common), dsum(b, common)
    a_nc, b_nc = dsum(native, non_cuda), dsum(b, non_cuda)
    a_cp, b_cp = dsum(native, common & cuda_ids_b), dsum(b, common & cuda_ids_b)
    out["timing"] = {
        "wall_a_s": round(native.wall_s, 2),
        "wall_b_s": round(b.wall_s, 2),
        "wall_c_s": round(runs["xdist"].wall_s, 2),
        "wall_ratio_b_over_a": _ratio(b.wall_s, native.wall_s),
        "ratio_b_over_a_native_passing": _ratio(b_all, a_all),
        "native_passing_tests": len(common),
        "durations_a_s": round(a_all, 2),
        "durations_b_s": round(b_all, 2),
        "ratio_b_over_a_native_passing_non_cuda": _ratio(b_nc, a_nc),
        "native_passing_non_cuda_tests": len(non_cuda),
        "durations_a_non_cuda_s": round(a_nc, 2),
        "durations_b_non_cuda_s": round(b_nc, 2),
        "ratio_b_over_a_native_passing_cuda": _ratio(b_cp, a_cp),
        "native_passing_cuda_tests": len(common & cuda_ids_b),
        "ratio_a_over_c": _ratio(native.wall_s, runs["xdist"].wall_s),
        "method": "per-test durations (setup+call+teardown) from the same runs, summed over natively-passing "
        "tests; wall ratios include interpreter start, imports and collection",
    }
    return out


def print_table(res: dict[str, Any]) -> None:
    p = print
    head = f"{res['suite']} {res['version']}"
    p("=" * 110)
    ignores = [a for a in res["test_args"] if a.startswith("--ignore=")]
    shown = " ".join(shlex.quote(a) for a in res["test_args"] if a not in ignores)
    if ignores:
        shown += f" + {len(ignores)} --ignore=... (listed in the JSON)"
    p(f"{head}   tests: {shown}")
    if res.get("subset_note"):
        p(f"  subset: {res['subset_note']}")
    if res.get("setup_error"):
        p(f"  NOT RUN: {res['setup_error']}")
        return
    p(f"  tests collected: {res['collected']}")
    p(f"  {'way':40s} {'passed':>7s} {'failed':>7s} {'skipped':>8s} {'wall s':>8s}  {'load':>5s}  exit")
    for w in res["ways"].values():
        p(
            f"  {w['label']:40s} {w['passed']:7d} {w['failed']:7d} {w['skipped']:8d} {w['wall_s']:8.1f}  "
            f"{w['load_before']:5.2f}  {w['exitstatus']}"
        )
    for way, problem in res.get("problems", {}).items():
        p(f"  PROBLEM in {way}: {problem.strip()}")
    if "plugin" in res:
        p(f"  {res['plugin']}")
        return
    cb, cc = res["cuda_path"]["plugin"], res["cuda_path"]["xdist"]
    p(f"  tests executing CUDA code paths (report): (b) {cb['cuda_path_tests']}, (c) {cc['cuda_path_tests']}")
    for label, c in (("(b)", cb), ("(c)", cc)):
        rate = "n/a" if c["pass_rate"] is None else f"{100 * c['pass_rate']:.1f}%"
        adj = c["pass_rate_excluding_cuda_too"]
        adjusted = (
            ""
            if adj == c["pass_rate"] or adj is None
            else (f", {100 * adj:.1f}% without the tests that fail on real CUDA too")
        )
        p(
            f"  CUDA-path tests {label}: {c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped; "
            f"pass rate {rate}{adjusted} (goal >= 95%)"
            + (
                f"; {len(c['native_failing_too'])} of the failures fail natively too"
                if c["native_failing_too"]
                else ""
            )
        )
        if c["report_outcome_mismatch_count"]:
            p(
                f"    note: report and collector disagree on {c['report_outcome_mismatch_count']} outcomes "
                f"(e.g. {c['report_outcome_mismatches'][:3]})"
            )
    regs = res["regressions"]
    known = len(regs) - len(res["regressions_unexplained"])
    p(
        f"  regressions (pass natively, fail with the plugin): {len(regs)} (goal 0)"
        + (f"; {known} of them fail on real CUDA too (listed in the suite config)" if known else "")
    )
    for nodeid, r in regs.items():
        ways = ", ".join(f"{w}={o}" for w, o in r["ways"].items())
        p(f"    - {nodeid}  [{ways}]  {r['cause'] or ''}")
        if r["fails_on_cuda_too"]:
            p(f"        fails on real CUDA too: {r['fails_on_cuda_too']}")
    if cb["causes"]:
        p("  failing CUDA-path tests (b) by cause:")
        for cause, ids in cb["causes"].items():
            p(f"    {len(ids):4d}  {cause}")
            for n in ids[:3]:
                p(f"            e.g. {n}")
    extra_c = {k: v for k, v in cc["causes"].items() if len(v) != len(cb["causes"].get(k, []))}
    if extra_c:
        p("  failing CUDA-path tests (c) by cause, where (c) differs from (b):")
        for cause, ids in extra_c.items():
            p(f"    {len(ids):4d}  {cause}")
    if cb["refused_apis"]:
        p(f"  refused (unemulatable) APIs hit by CUDA-path tests (b): {cb['refused_apis']}")
    t = res["timing"]
    p(
        f"  wall: (a) {t['wall_a_s']:.1f}s  (b) {t['wall_b_s']:.1f}s  (c) {t['wall_c_s']:.1f}s;  "
        f"(b)/(a) wall {t['wall_ratio_b_over_a']};  (a)/(c) {t['ratio_a_over_c']} (xdist speed-up)"
    )
    p(
        f"  (b)/(a) over the {t['native_passing_tests']} natively-passing tests (summed per-test durations, "
        f"same runs): {t['ratio_b_over_a_native_passing']} (goal <= 1.03)"
    )
    p(
        f"  (b)/(a) over the {t['native_passing_non_cuda_tests']} natively-passing tests without CUDA paths "
        f"(pure overhead): {t['ratio_b_over_a_native_passing_non_cuda']}; over the "
        f"{t['native_passing_cuda_tests']} with CUDA paths (emulation cost, or work their skipped CUDA "
        "branch "
        f"does): {t['ratio_b_over_a_native_passing_cuda']}"
    )
    loads = [w["load_before"] for w in res["ways"].values()]
    if max(loads) > 1.5:
        p(
            f"  note: load average {min(loads):.1f}-{max(loads):.1f} when the runs started (this script's "
            "previous run included): other work on this machine skews the timings"
        )


def run_suite(suite: Suite, workdir: Path, threads: int) -> dict[str, Any]:
    suite_dir = workdir / suite.name
    try:
        py, src_dir = prepare(suite, suite_dir)
    except SetupError as exc:
        log(f"{suite.name}: SETUP FAILED: {exc}")
        return {
            "suite": suite.name,
            "version": suite.version,
            "test_args": list(suite.test_args),
            "subset_note": suite.subset_note,
            "setup_error": str(exc),
        }
    out_dir = suite_dir / "runs"
    out_dir.mkdir(parents=True, exist_ok=True)
    plugin_ok = plugin_has_target_device(suite, py, src_dir)
    if not plugin_ok:
        log(f"{suite.name}: pytest-torchdevice has no --target-device yet: running the native way only")
    runs = {"native": run_way(suite, "native", py, src_dir, out_dir, threads)}
    if plugin_ok:
        for way in ("plugin", "xdist"):
            runs[way] = run_way(suite, way, py, src_dir, out_dir, threads)
    res = analyse(suite, runs, plugin_ok)
    res["tests"] = {
        n: {w: runs[w].outcome(n) for w in runs}
        | {
            "cuda_path": bool(((runs["plugin"].report or {}).get("tests", {}).get(n) or {}).get("cuda_path"))
            if "plugin" in runs
            else None
        }
        for n in sorted(set().union(*(r.tests for r in runs.values())))
    }
    return res


def project_commit() -> str:
    """This repository's HEAD, +dirty when tracked files differ: the plugin version the numbers are for."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
        )
    except OSError:
        return "unknown"
    return (head.stdout.strip() or "unknown") + ("+dirty" if dirty.stdout.strip() else "")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument(
        "--suite",
        action="extend",
        nargs="+",
        choices=sorted(SUITES),
        metavar="NAME",
        help=f"suites to run (default: all): {', '.join(SUITES)}",
    )
    ap.add_argument("--workdir", type=Path, default=REPO_ROOT / ".real_suites")
    ap.add_argument("--json", type=Path, default=None, help="default: WORKDIR/results.json")
    ap.add_argument(
        "--keep", action="store_true", help="keep venvs and unpacked sources (a later run reuses them)"
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="OMP/MKL threads per pytest process (default 1; 0: torch's default, one per core)",
    )
    args = ap.parse_args(argv)
    workdir: Path = args.workdir.resolve()
    json_path: Path = (args.json or workdir / "results.json").resolve()
    names = list(dict.fromkeys(args.suite or SUITES))
    workdir.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    results = []
    for name in names:
        results.append(run_suite(SUITES[name], workdir, args.threads))
        if not args.keep:
            for sub in ("venv", "src", "sdist"):
                shutil.rmtree(workdir / name / sub, ignore_errors=True)
            (workdir / name / "installed.json").unlink(missing_ok=True)
    total = time.perf_counter() - started

    print()
    for res in results:
        print_table(res)
    print("=" * 110)
    threads = f"{args.threads} thread(s)" if args.threads else "torch's default threads"
    print(
        f"total time {total:.0f}s on {os.cpu_count()} CPUs, {threads} per pytest process; JSON: {json_path}"
    )
    summary = {
        "project_commit": project_commit(),
        "torch": TORCH_PIN,
        "tools": list(TOOL_PINS),
        "xdist_workers": XDIST_WORKERS,
        "threads_per_process": args.threads or "torch default",
        "cpus": os.cpu_count(),
        "total_s": round(total, 1),
        "suites": results,
    }
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(summary, indent=1) + "\n")
    return 2 if any("setup_error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
