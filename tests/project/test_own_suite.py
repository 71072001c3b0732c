"""The project's own tests refuse to run under an active plugin, with one message that says what to do."""

from __future__ import annotations

import pytest

from ._run import shell


@pytest.mark.parametrize(("command", "source"), [
    ("python -m pytest --target-device=cpu tests/core/test_spec.py", "--target-device"),
    ("PYTEST_TARGET_DEVICE=cpu python -m pytest tests/core/test_spec.py", "$PYTEST_TARGET_DEVICE"),
])
def test_a_target_device_gives_one_usage_error(command: str, source: str) -> None:
    out = shell(command + " -p no:cacheprovider")
    assert out.returncode == 4, out.stdout
    assert "ERROR: this is pytest-torchdevice's own test suite" in out.stdout
    assert "(torchdevice: " in out.stdout and f" -> cpu (from {source}))" in out.stdout
    assert "python -m pytest examples/cuda_suite --target-device=cpu" in out.stdout
    assert "ActivationError" not in out.stdout and "Traceback" not in out.stdout
