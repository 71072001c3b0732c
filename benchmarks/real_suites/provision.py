"""Provisioning: one throwaway venv per suite, with torch's CPU wheel first, the suite from its sdist, the
test tools, this project (editable, so a fix in the work tree is picked up by the next run) and the collector.

A fingerprint of the pins is written beside the venv; ``--keep`` runs reuse a venv whose fingerprint matches.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import venv
from dataclasses import dataclass
from pathlib import Path

from . import collector
from .suites import TOOL_PINS, TORCH_PIN, Suite

REPO_ROOT = Path(__file__).resolve().parents[2]
COLLECTOR_MODULE = "real_suites_collector"


class SetupError(Exception):
    """A suite could not be downloaded or installed; the message says which step and why."""


@dataclass(frozen=True)
class Provisioned:
    """A suite ready to run: its venv's interpreter and the unpacked sources (tests included)."""

    python: Path
    src_dir: Path


def log(msg: str) -> None:
    print(f"[real_suites {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log, indented, for an error message."""
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in text[-lines:])


def run_logged(
    cmd: list[str],
    log_path: Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
) -> tuple[int, float, bool]:
    """Run cmd with stdout+stderr appended to log_path; return (exit code, wall seconds, timed out).

    The child gets its own process group, so a timeout kills pytest together with its xdist workers.
    """
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
    rc, _, timed_out = run_logged([str(py), "-m", "pip", *args], log_path, timeout=timeout)
    if rc != 0 or timed_out:
        why = "timed out" if timed_out else f"exit code {rc}"
        raise SetupError(f"{step} failed ({why}); last lines of {log_path}:\n{tail(log_path)}")


def venv_python(venv_dir: Path) -> Path:
    return venv_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def constraints_for(suite: Suite) -> list[str]:
    return [TORCH_PIN, *suite.requirements, *TOOL_PINS, suite.spec]


def fingerprint(suite: Suite) -> str:
    """Changes whenever a pin, the tests' origin, this checkout's location or the interpreter changes."""
    origin = None if suite.tests_from_git is None else [suite.tests_from_git.tag, *suite.tests_from_git.paths]
    data = [constraints_for(suite), origin, str(REPO_ROOT), sys.version]
    return hashlib.sha256(json.dumps(data).encode()).hexdigest()[:16]


def prepare(suite: Suite, suite_dir: Path, git_mirror: Path | None = None) -> Provisioned:
    """Create the venv, download and unpack the sdist (and the tests, if they come from git), install all."""
    venv_dir = suite_dir / "venv"
    src_parent = suite_dir / "src"
    py = venv_python(venv_dir)
    install_log = suite_dir / "install.log"
    constraints = constraints_for(suite)
    marker = suite_dir / "installed.json"
    src_dir = src_parent / f"{suite.dist}-{suite.version}"
    wanted = fingerprint(suite)

    if (
        marker.exists()
        and py.exists()
        and src_dir.is_dir()
        and json.loads(marker.read_text()).get("fingerprint") == wanted
    ):
        log(f"{suite.name}: reusing venv and sources in {suite_dir} (--keep from an earlier run)")
        install_collector(src_parent)  # the collector may have changed since
        return Provisioned(py, src_dir)

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
    unpack(archives[0], src_parent)
    found = [p for p in src_parent.iterdir() if p.is_dir()]
    if len(found) != 1:
        raise SetupError(f"unexpected layout of {archives[0].name}: {[p.name for p in found]}")
    if found[0] != src_dir:
        found[0].rename(src_dir)
    if suite.tests_from_git is not None:
        add_git_tests(suite, src_dir, install_log, git_mirror)

    log(f"{suite.name}: installing {suite.spec} from the sdist, its test needs, pytest, xdist and this project")
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
    install_collector(src_parent)
    marker.write_text(json.dumps({"fingerprint": wanted, "constraints": constraints}))
    return Provisioned(py, src_dir)


def install_collector(dest: Path) -> Path:
    """Copy the collector next to the sources as a top-level module (``-p real_suites_collector``)."""
    target = dest / f"{COLLECTOR_MODULE}.py"
    shutil.copyfile(collector.__file__, target)
    return target


def add_git_tests(suite: Suite, src_dir: Path, log_path: Path, git_mirror: Path | None) -> None:
    """Extract the suite's test paths at its release tag into the unpacked sdist."""
    origin = suite.tests_from_git
    if origin is None:
        return
    if git_mirror is not None:
        git_dir = git_mirror
    else:
        git_dir = src_dir.parent / "git"
        log(f"{suite.name}: its sdist has no tests: cloning {origin.url} at {origin.tag}")
        rc, _, _ = run_logged(
            ["git", "clone", "--bare", "--depth", "1", "--branch", origin.tag, origin.url, str(git_dir)],
            log_path,
            timeout=900,
        )
        if rc != 0:
            raise SetupError(
                f"cloning {origin.url} at {origin.tag} failed (its sdist ships no tests); give a local clone "
                f"that has the tag with --git-mirror {suite.name}=GIT_DIR; last lines of {log_path}:\n"
                f"{tail(log_path)}"
            )
    archive = src_dir.parent / "tests.tar"
    rc, _, _ = run_logged(
        ["git", f"--git-dir={git_dir}", "archive", "-o", str(archive), origin.tag, *origin.paths], log_path
    )
    if rc != 0:
        raise SetupError(f"git archive {origin.tag} {origin.paths} from {git_dir} failed; see {log_path}")
    unpack(archive, src_dir)


def unpack(archive: Path, dest: Path) -> None:
    try:
        if archive.name.endswith(".zip"):
            shutil.unpack_archive(str(archive), str(dest))
        else:
            with tarfile.open(archive) as tar:
                tar.extractall(dest, filter="data")
    except (OSError, tarfile.TarError, shutil.ReadError) as exc:
        raise SetupError(f"unpacking {archive} failed: {exc}") from exc


def remove_installation(suite_dir: Path) -> None:
    """What a run without ``--keep`` leaves behind: logs, per-run results; not the venv or the sources."""
    for sub in ("venv", "src", "sdist"):
        shutil.rmtree(suite_dir / sub, ignore_errors=True)
    (suite_dir / "installed.json").unlink(missing_ok=True)
