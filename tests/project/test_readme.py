"""The README runs as shown: its ``$ `` console commands, its python snippets, its report example.

The convention README authors follow is in ``tests/project/readme.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from . import readme
from ._run import REPO, shell, user_env

BLOCKS = readme.read(REPO / "README.md")
COMMANDS = [c for b in BLOCKS if b.lang == "console" and not b.skip for c in readme.commands(b)]
PYTHON = [b for b in BLOCKS if b.lang == "python" and not b.skip]


def test_the_readme_has_blocks_to_check() -> None:
    assert len(COMMANDS) >= 4 and PYTHON  # a parser that finds nothing would pass everything


@pytest.mark.parametrize("command", COMMANDS, ids=[f"README.md:{c.line}" for c in COMMANDS])
def test_console_command_prints_what_the_readme_shows(command: readme.Command) -> None:
    if command.platform is not None and not sys.platform.startswith(command.platform):
        pytest.skip(f"the README runs this on {command.platform}")
    out = shell(command.text)
    missing = readme.unmatched(command.expected, out.stdout)
    assert missing is None, (f"README.md:{command.line}: `{command.text}` (exit {out.returncode}) printed no line "
                             f"matching {missing!r}; it printed:\n{out.stdout}")


@pytest.mark.parametrize("block", PYTHON, ids=[f"README.md:{b.line}" for b in PYTHON])
def test_python_snippet_runs(block: readme.Block, tmp_path: Path) -> None:
    script = tmp_path / "snippet.py"
    script.write_text("\n".join(block.lines) + "\n")
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=user_env(), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, timeout=600)
    assert out.returncode == 0, f"README.md:{block.line}:\n{out.stdout}"
    missing = readme.unmatched(readme.printed(block), out.stdout)
    assert missing is None, f"README.md:{block.line}: no output line matching {missing!r}:\n{out.stdout}"


def test_the_quick_start_is_what_ci_runs() -> None:
    block = next(b for b in BLOCKS if b.section == "Quick start" and b.lang == "console")
    quick = [line.split("#", 1)[0].strip() for line in block.lines if line.strip()]
    assert len(quick) == 2  # exactly two commands: set up + example, then the project's tests
    ci = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    for command in quick:
        assert command in ci, f"{command!r} is in the README's quick start but not in .ci/run"


EXAMPLE_SUITE = """\
import torch


def test_a():
    x = torch.randn(4, device="cuda")
    torch.cuda.synchronize()
    assert x.is_cuda
"""


def test_the_report_example_is_a_real_report(pytester: pytest.Pytester) -> None:
    block = next(b for b in BLOCKS if b.lang == "json" and '"version"' in "".join(b.lines))
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests" / "test_x.py").write_text(EXAMPLE_SUITE)
    result = pytester.runpytest("--target-device=cpu", "--torchdevice-report=report.json",
                                "--torchdevice-call-sites", "tests/test_x.py")
    result.assert_outcomes(passed=1)
    written = json.loads((pytester.path / "report.json").read_text())
    assert json.loads("\n".join(block.lines)) == written


def test_the_parser_follows_the_convention() -> None:
    text = "\n".join([
        "## A section", "```console", "$ echo one   # on Linux", "one", "...", "t...e", "$ true", "```",
        "<!-- readme-test: skip -->", "```python", "print(1)  # prints: 1", "```",
        "```console", "pip install x", "```",
    ])
    console, python, plain = readme.blocks(text)
    assert (console.lang, console.section, console.line, console.skip) == ("console", "A section", 2, False)
    assert python.skip and readme.printed(python) == ["1"]
    first, second = readme.commands(console)
    assert (first.text, first.line, first.expected, first.platform) == (
        "echo one   # on Linux", 3, ["one", "t...e"], "linux")
    assert (second.expected, second.platform) == ([], None)
    assert readme.commands(plain) == []
    assert readme.unmatched(["one", "t...e"], "one\nnoise\nthree\n") is None
    assert readme.unmatched(["t...e", "one"], "one\nthree\n") == "one"  # order matters
    assert readme.unmatched(["one"], "one more\n") == "one"  # a whole line, not a part of one
