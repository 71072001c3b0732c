"""Every name the packages export resolves: a lazy export pointing at a moved module fails here, not in user code."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest


@pytest.mark.parametrize("package", ["torchdevice_core", "pytest_torchdevice"])
def test_every_exported_name_resolves_in_a_fresh_interpreter(package: str) -> None:
    # a fresh interpreter: the lazy imports must work from nothing, not from modules another test imported
    code = (f"import {package} as p\n"
            "missing = [n for n in getattr(p, '__all__', []) if getattr(p, n, None) is None]\n"
            "print(missing)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


def test_dir_lists_the_lazy_names() -> None:
    core = importlib.import_module("torchdevice_core")
    assert set(core.__all__) <= set(dir(core))
