"""The README's example answers are what the CLI prints today: each `$ fits "..."` block is run,
and every run of lines it shows (up to a "..." that marks lines left out) must appear in the
real output, whitespace aside (the README wraps long lines)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from bot.cli import run

README = Path(__file__).resolve().parent.parent / "README.md"


def examples() -> list[tuple[str, list[str]]]:
    """(command, shown chunks) for every `$ fits ...` in the README's code blocks."""
    out: list[tuple[str, list[str]]] = []
    for block in code_blocks(README.read_text()):
        command: str | None = None
        chunk: list[str] = []
        chunks: list[str] = []
        for line in [*block.splitlines(), "$"]:
            if line.startswith("$"):
                if command is not None:
                    chunks.append(" ".join(chunk))
                    out.append((command, [c for c in chunks if c.strip()]))
                command, chunk, chunks = line[1:].strip() or None, [], []
            elif line.strip() == "...":
                chunks.append(" ".join(chunk))
                chunk = []
            else:
                chunk.append(line)
    return [(c, shown) for c, shown in out if c.startswith("fits ")]


def code_blocks(text: str) -> list[str]:
    """The contents of the fenced blocks, in order."""
    blocks: list[str] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("```"):
            if current is None:
                current = []
            else:
                blocks.append("\n".join(current))
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def normal(text: str) -> str:
    return " ".join(text.split())


def test_the_readme_has_examples() -> None:
    assert len(examples()) >= 3


@pytest.mark.parametrize(("command", "shown"), examples())
def test_a_readme_example_is_what_the_cli_prints(command: str, shown: list[str]) -> None:
    words = shlex.split(command)[1:]
    assert len(words) == 1, "the README's examples pass the command as one quoted argument"
    printed = normal(run(words[0], as_json=False, config=None))
    for chunk in shown:
        assert normal(chunk) in printed, f"README shows {chunk!r}, the CLI prints {printed!r}"
