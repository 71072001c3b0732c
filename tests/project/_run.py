"""Run a command the way a user types it in the clone: a clean environment, the venv's ``bin`` on PATH."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Set by the pytest (or xdist worker, or plugin) running these tests; a user's shell has none of them.
_INHERITED = ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID", "PYTEST_CURRENT_TEST",
              "PYTEST_ADDOPTS", "PYTEST_TARGET_DEVICE", "TORCHDEVICE_SUBPROCESS", "PYTEST_PLUGINS")


def user_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _INHERITED}
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    env.update(extra)
    return env


def shell(command: str, cwd: Path = REPO, timeout: float = 600, **env: str) -> subprocess.CompletedProcess[str]:
    """``bash -c command``; stdout and stderr together, as a terminal shows them."""
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=user_env(**env), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout)
