"""The README's quick start: set up a venv in the clone and run the example suite, or the project's tests.

    python3 scripts/dev.py example   # venv + torch (CPU wheel) + this package, then examples/cuda_suite on the CPU
    python3 scripts/dev.py test      # the project's own tests (the command CI runs)

Only the standard library is used, so nothing but ``python3`` is needed. The venv is set up once: a stamp
file inside it records what was installed (the torch pin and a hash of pyproject.toml), and a second run
with the same stamp calls no pip at all. ``--venv PATH`` (or ``$TORCHDEVICE_VENV``) puts it elsewhere.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import time
import venv
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TORCH = "torch==2.13.0"
"""The torch CI runs. It goes in first, alone: an unpinned torch resolves to a multi-GB CUDA build."""
EXTRAS = ".[test,lint]"
REPORT = REPO / ".reports" / "cuda_suite.json"
STAMP = ".torchdevice-dev-stamp"


def stamp_text() -> str:
    digest = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()[:16]
    return f"{TORCH} {EXTRAS} pyproject={digest} python={sys.version_info[0]}.{sys.version_info[1]}\n"


def venv_python(path: Path) -> Path:
    return path / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_venv(path: Path) -> Path:
    """Create and fill the venv unless its stamp says it already holds what this checkout needs."""
    python = venv_python(path)
    stamp = path / STAMP
    if python.exists() and stamp.exists() and stamp.read_text() == stamp_text():
        return python
    started = time.monotonic()
    if not python.exists():
        print(f"dev.py: creating the venv {path}", flush=True)
        venv.create(path, with_pip=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    print(f"dev.py: installing {TORCH} (CPU wheel where the index has one), then this package ({EXTRAS})",
          flush=True)
    run([*pip, TORCH])
    run([*pip, "-e", EXTRAS, TORCH, "build"])
    stamp.write_text(stamp_text())
    print(f"dev.py: venv ready in {time.monotonic() - started:.0f} s", flush=True)
    return python


def run(command: Sequence[str]) -> None:
    result = subprocess.run(list(command), cwd=REPO)
    if result.returncode:
        raise SystemExit(result.returncode)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("job", choices=["example", "test", "setup"],
                        help="example: the CUDA-written example suite on the CPU; test: the project's own tests; "
                             "setup: only the venv")
    parser.add_argument("--venv", type=Path, default=Path(os.environ.get("TORCHDEVICE_VENV", REPO / ".venv")),
                        help="where the venv lives (default: .venv in the clone, or $TORCHDEVICE_VENV)")
    parser.add_argument("pytest_args", nargs="*", help="more arguments for pytest (after --)")
    args = parser.parse_args(argv)
    python = str(ensure_venv(args.venv.resolve()))
    env_clean = {k: v for k, v in os.environ.items() if k != "PYTEST_TARGET_DEVICE"}
    if args.job == "example":
        command = [python, "-m", "pytest", "examples/cuda_suite", "--target-device=cpu",
                   f"--torchdevice-report={REPORT.relative_to(REPO)}", *args.pytest_args]
    elif args.job == "test":
        command = [python, "-m", "pytest", "-n", "2", *args.pytest_args]
    else:
        return 0
    print("dev.py: " + " ".join(["python", *command[1:]]), flush=True)
    return subprocess.run(command, cwd=REPO, env=env_clean).returncode


if __name__ == "__main__":
    raise SystemExit(main())
