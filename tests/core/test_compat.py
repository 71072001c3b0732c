"""A torch without an internal the patches need stops activation with its release and the name, patching nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.utils._foreach_utils as foreach_utils

import torchdevice_core as td
from torchdevice_core import compat


def test_the_installed_torch_has_every_internal() -> None:
    assert [need.qualname for need in compat.missing()] == []


def test_a_missing_internal_fails_activation_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    before = dict(vars(torch))
    monkeypatch.delattr(foreach_utils, "_foreach_supported_types")  # as in torch 2.3
    with pytest.raises(td.UnsupportedTorchError) as info:
        td.activate("cpu")
    message = str(info.value)
    assert f"torch {torch.__version__} lacks" in message
    assert "torch.utils._foreach_utils._foreach_supported_types (for clip_grad_norm_" in message
    assert f"Supported: torch{compat.SUPPORTED}" in message
    assert isinstance(info.value, td.ActivationError)
    assert td.active() is None and not torch.cuda.is_available()
    assert dict(vars(torch)) == before  # nothing was patched


def test_dotted_and_imported_only_entries() -> None:
    needs = (compat.Internal("torch", "cuda.no_such_function", "a test"),
             compat.Internal("torch.no_such_module", "x", "a test"),
             compat.Internal("torch.not_imported_here", "x", "a test", only_if_imported=True))
    assert [n.qualname for n in compat.missing(needs)] == ["torch.cuda.no_such_function", "torch.no_such_module.x"]


def test_the_plugin_turns_it_into_a_usage_error(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(foreach_utils, "_foreach_supported_types")
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest("--target-device=cpu")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: torch {torch.__version__} lacks internals pytest-torchdevice patches: "
                                 "torch.utils._foreach_utils._foreach_supported_types *"])


def test_pyproject_declares_the_supported_range() -> None:
    tomllib = pytest.importorskip("tomllib")
    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    assert f"torch{compat.SUPPORTED}" in pyproject["project"]["dependencies"]
