"""Run this project's test suite against other torch releases, each in a throwaway venv.

    python3 scripts/torch_versions.py 2.4.1 2.14.1            # one venv per release under --root
    python3 scripts/torch_versions.py 2.4.1 --keep --json out.json

Per release: a venv ``<root>/torch-<version>`` (outside the repository: default
``~/.cache/pytest-torchdevice/torch-versions``), ``pip install torch==<version>`` first and alone (only
``torch==2.13.0`` is a small CPU wheel on this project's machines; other releases come from the package
index as CUDA builds, a few GB each, which run fine on a CPU-only machine; pip's cache is reused), then this
checkout editable with its ``test`` extra. It probes activation (``torchdevice_core.activate("cpu")``), runs
``python -m pytest -n 2`` with a JUnit XML file, and prints one Markdown row per release (the README's
"Torch versions" table). Venvs are deleted afterwards unless ``--keep``; a kept venv whose torch is the asked
release is reused as it is. Run it per release when a torch comes out, not in every CI run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import venv
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_ROOT = Path.home() / ".cache" / "pytest-torchdevice" / "torch-versions"
PROBE = "import torchdevice_core as td; h = td.activate('cpu'); h.deactivate(); print('activation ok')"
_INHERITED = ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID", "PYTEST_ADDOPTS",
              "PYTEST_CURRENT_TEST", "PYTEST_TARGET_DEVICE", "TORCHDEVICE_SUBPROCESS", "VIRTUAL_ENV")


@dataclass
class Outcome:
    """What one torch release did with the suite."""

    torch: str
    installed: str = ""
    python: str = f"{sys.version_info[0]}.{sys.version_info[1]}"
    activation: str = ""
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.activation == "ok" and self.passed > 0 and not (self.failed or self.errors)

    def row(self) -> str:
        result = "**passes**" if self.ok else "fails"
        activation = self.activation if self.activation == "ok" else f"refused: {self.activation}"
        counts = f"{self.passed}/{self.failed + self.errors}/{self.skipped}"
        return (f"| {self.installed or self.torch} | {self.python} | {activation} | {counts} | "
                f"{self.seconds:.0f} s | {result}{'; ' + self.note if self.note else ''} |")


HEADER = ("| torch | python | activation | tests pass/fail/skip | wall | result |\n"
          "|---|---|---|---|---|---|")


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _INHERITED}


def run(command: Sequence[str], log: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``command`` in the repository, appending its output to ``log``."""
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(command)}\n")
        out.flush()
        result = subprocess.run(list(command), cwd=REPO, env=clean_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, timeout=timeout)
        out.write(result.stdout)
    return result


def torch_in(python: Path) -> str:
    if not python.exists():
        return ""
    found = subprocess.run([str(python), "-c", "import torch; print(torch.__version__)"], capture_output=True,
                           text=True, env=clean_env())
    return found.stdout.strip() if found.returncode == 0 else ""


def provision(version: str, path: Path, log: Path) -> tuple[Path, str]:
    """A venv at ``path`` with ``torch==version`` and this checkout (editable, ``test`` extra)."""
    python = path / "bin" / "python"
    installed = torch_in(python)
    if installed.split("+")[0] != version:
        if path.exists():
            shutil.rmtree(path)
        venv.create(path, with_pip=True)
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        if run([*pip, f"torch=={version}"], log, timeout=7200).returncode:
            raise RuntimeError(f"pip could not install torch=={version} (see {log})")
        installed = torch_in(python)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if run([*pip, "-e", f"{REPO}[test]", f"torch=={version}"], log, timeout=1800).returncode:
        raise RuntimeError(f"pip could not install this checkout next to torch=={version} (see {log})")
    return python, installed


def counts(junit: Path, outcome: Outcome) -> None:
    root = ET.parse(junit).getroot()
    for case in root.iter("testcase"):
        kinds = {child.tag for child in case}
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        if "error" in kinds:
            outcome.errors += 1
            outcome.failures.append(name)
        elif "failure" in kinds:
            outcome.failed += 1
            outcome.failures.append(name)
        elif "skipped" in kinds:
            outcome.skipped += 1
        else:
            outcome.passed += 1


def check(version: str, root: Path, keep: bool, workers: str, extra: Sequence[str]) -> Outcome:
    outcome = Outcome(version)
    path = root / f"torch-{version}"
    root.mkdir(parents=True, exist_ok=True)
    log = root / f"torch-{version}.log"
    log.write_text("")
    started = time.monotonic()
    try:
        python, outcome.installed = provision(version, path, log)
        probe = run([str(python), "-c", PROBE], log, timeout=600)
        last = (probe.stdout.strip().splitlines() or ["(no output)"])[-1]
        outcome.activation = "ok" if probe.returncode == 0 and last == "activation ok" else last
        if outcome.activation != "ok":
            return outcome  # every test would fail the same way: the refusal is the result
        junit = root / f"torch-{version}.xml"
        run([str(python), "-m", "pytest", "-n", workers, "-q", "-p", "no:cacheprovider", f"--junitxml={junit}",
             *extra], log, timeout=7200)
        if junit.exists():
            counts(junit, outcome)
    except (RuntimeError, subprocess.TimeoutExpired, ET.ParseError) as exc:
        outcome.note = str(exc)
    finally:
        outcome.seconds = time.monotonic() - started
        if not keep and path.exists():
            shutil.rmtree(path)
    return outcome


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("versions", nargs="+", help="torch releases, e.g. 2.4.1 2.14.1")
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help=f"where the venvs go ({DEFAULT_ROOT})")
    parser.add_argument("--keep", action="store_true", help="keep the venvs (and reuse them next time)")
    parser.add_argument("--workers", default="2", help="pytest-xdist workers (-n), default 2")
    parser.add_argument("--json", type=Path, help="also write the outcomes here")
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments (after --)")
    args = parser.parse_args(argv)
    root = args.root.expanduser().resolve()
    if root == REPO or REPO in root.parents:
        parser.error(f"--root must be outside the repository ({REPO})")
    print(f"torch versions on {platform.machine()} {platform.system()}, python {platform.python_version()}; "
          f"venvs in {root}", flush=True)
    outcomes = []
    for version in args.versions:
        outcome = check(version, root, args.keep, args.workers, args.pytest_args)
        outcomes.append(outcome)
        print(f"torch {version}: {outcome.row()}", flush=True)
        for name in outcome.failures[:10]:
            print(f"    failed: {name}", flush=True)
    print(HEADER)
    for outcome in outcomes:
        print(outcome.row())
    if args.json:
        args.json.write_text(json.dumps([asdict(o) for o in outcomes], indent=1))
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
