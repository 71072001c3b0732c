"""The target grammar and the shared names (torchdevice_core.grammar): one definition, no torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from torchdevice_core import grammar
from torchdevice_core.registry import normalise_target, register_target, target_choices, unregister_target

ROOT = Path(__file__).resolve().parents[2]


def test_grammar_and_the_plugins_option_parsing_import_no_torch() -> None:
    code = ("import sys, torchdevice_core.grammar, pytest_torchdevice.options, pytest_torchdevice.markers; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False", out.stderr


@pytest.mark.parametrize(("given", "expected"), [
    (" CUDA:1", "cuda:1"), ("cpu", "cpu"), ("MPS", "mps"), ("auto", "auto"), ("cuda", "cuda"),
    ("cpu:0", None), ("mps:1", None), ("auto:0", None), ("xpu", None), ("cuda:", None), ("", None), (3, None),
])
def test_normalise_target(given: object, expected: str | None) -> None:
    assert grammar.normalise_target(given) == expected


def test_registered_names_take_an_index_and_join_the_choices() -> None:
    assert grammar.normalise_target("Xpu:2", {"xpu"}) == "xpu:2"
    assert grammar.target_choices({"xpu", "cpu"}) == "cpu, mps, cuda, cuda:N, auto, xpu, xpu:N"
    assert grammar.TARGET_CHOICES == grammar.target_choices() == "cpu, mps, cuda, cuda:N, auto"
    assert grammar.DEVICE_CHOICES == "cpu, mps, cuda, cuda:N"


def test_the_registry_answers_with_the_grammar() -> None:
    register_target("gram", lambda index: None)
    try:
        assert normalise_target("GRAM:1") == "gram:1"
        assert normalise_target("other", extra={"other"}) == "other"
        assert target_choices() == grammar.target_choices({"gram"})
    finally:
        unregister_target("gram")
    assert normalise_target("gram") is None


@pytest.mark.parametrize(("spec", "current", "expected"), [
    ("cuda", "cuda:1", True), ("cuda:1", "cuda:1", True), ("cuda:0", "cuda:1", False), ("cpu", "cpu", True),
    ("mps", "cpu", False), ("cpu", None, False),
])
def test_matches(spec: str, current: str | None, expected: bool) -> None:
    assert grammar.matches(spec, current) is expected


def test_the_subprocess_hook_and_its_pth_spell_the_one_variable_name() -> None:
    """The hook may not import torchdevice_core (see torchdevice_subprocess._activate): it spells the name."""
    import torchdevice_subprocess

    assert torchdevice_subprocess.ENV == grammar.SUBPROCESS_ENV
    assert f'"{grammar.SUBPROCESS_ENV}"' in (ROOT / "torchdevice_subprocess.pth").read_text()


def test_mps_limits_build_their_dtypes_from_the_names() -> None:
    import torch

    from torchdevice_core.mps.limits import UNSUPPORTED_DTYPES

    assert {torch.float64: torch.float32, torch.complex128: torch.complex64} == UNSUPPORTED_DTYPES
