"""The README's code blocks, parsed: what ``test_readme.py`` runs so the README stays true.

The convention (README authors: follow it):

- a ```` ```console ```` block whose lines start with ``$ `` is run: each ``$ `` line is one command (bash, in
  the clone's root, with the test venv's ``bin`` first on PATH); the lines after it, up to the next ``$ ``, are
  its expected output. Each expected line must appear in the output, in that order (other lines may come
  between them); ``...`` inside a line matches any text; a line that is only ``...`` stands for lines left
  out. A trailing ``# on Linux`` (or ``# on macOS``) comment limits a command to that platform;
- a ```` ```console ```` block without ``$ `` lines (install instructions, the quick start) is not run here
  (CI runs the quick start's commands: a test checks that ``.ci/run`` holds them verbatim);
- a ```` ```python ```` block is run as a script in a fresh interpreter, in an empty directory; a comment
  ``# prints: TEXT`` on a line makes ``TEXT`` an expected line of its output;
- ``<!-- readme-test: skip -->`` on the line before a block's opening fence exempts that block.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

SKIP = "<!-- readme-test: skip -->"
_FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass
class Block:
    lang: str
    line: int  # 1-based line of the opening fence
    lines: list[str]
    section: str
    skip: bool = False


@dataclass
class Command:
    text: str
    line: int
    expected: list[str] = field(default_factory=list)

    @property
    def platform(self) -> str | None:
        match = re.search(r"#\s*on (Linux|macOS)\s*$", self.text)
        return {"Linux": "linux", "macOS": "darwin"}[match.group(1)] if match else None


def blocks(text: str) -> list[Block]:
    out: list[Block] = []
    lines = text.splitlines()
    section = ""
    current: Block | None = None
    for number, line in enumerate(lines, 1):
        if current is not None:
            if line.strip() == "```":
                out.append(current)
                current = None
            else:
                current.lines.append(line)
            continue
        if line.startswith("#"):
            section = line.lstrip("#").strip()
        match = _FENCE.match(line)
        if match:
            previous = next((p for p in reversed(lines[:number - 1]) if p.strip()), "")
            current = Block(match.group(1), number, [], section, skip=previous.strip() == SKIP)
    return out


def commands(block: Block) -> list[Command]:
    """The ``$ `` commands of a console block, each with its expected output lines."""
    out: list[Command] = []
    for offset, line in enumerate(block.lines, 1):
        if line.startswith("$ "):
            out.append(Command(line[2:], block.line + offset))
        elif out and line.strip() and line.strip() != "...":
            out[-1].expected.append(line.rstrip())
    return out


def _pattern(expected: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in expected.split("...")))


def unmatched(expected: list[str], output: str) -> str | None:
    """The first expected line not found (in order) in ``output``, or None when all are."""
    lines = [line.rstrip() for line in output.splitlines()]
    position = 0
    for wanted in expected:
        pattern = _pattern(wanted)
        while position < len(lines) and not pattern.fullmatch(lines[position]):
            position += 1
        if position == len(lines):
            return wanted
        position += 1
    return None


def printed(block: Block) -> list[str]:
    """The ``# prints: TEXT`` expectations of a python block."""
    return [line.split("# prints: ", 1)[1].rstrip() for line in block.lines if "# prints: " in line]


def read(path: Path) -> list[Block]:
    return blocks(path.read_text(encoding="utf-8"))
