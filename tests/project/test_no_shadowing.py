"""An editable install puts this checkout's root on sys.path: its developer folders must not shadow a suite's own.

pytorch_optimizer's tests import ``scripts.update_docs`` from its own ``scripts/`` (a namespace package); a
``scripts/__init__.py`` here made that import fail with the plugin installed editable.  ``scripts/`` and
``benchmarks/`` are therefore namespace packages: a suite's regular package wins, a namespace one merges.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("folder", ["scripts", "benchmarks", "tests", "examples"])
def test_a_suites_namespace_folder_of_the_same_name_still_imports(folder: str, tmp_path: Path) -> None:
    (tmp_path / folder).mkdir()
    (tmp_path / folder / "suite_helper.py").write_text("VALUE = 42\n")
    # -S: no site-packages (no other checkout on the path); the checkout's root first, as an editable install puts it
    code = (f"import sys; sys.path[:0] = [{str(ROOT)!r}, {str(tmp_path)!r}]\n"
            f"from {folder}.suite_helper import VALUE; print(VALUE)\n")
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "42", out.stderr
