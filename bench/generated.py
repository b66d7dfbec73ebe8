"""Figures in the README and docs are written by the script that measures them: each sits
between ``<!-- name:begin -->`` and ``<!-- name:end -->`` markers, which the script rewrites."""

from __future__ import annotations

from pathlib import Path


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:begin (written by a script; edits are overwritten) -->", \
        f"<!-- {name}:end -->"


def read_block(path: Path, name: str) -> str | None:
    """The text between the markers, or None when the file has no such block."""
    begin, end = markers(name)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if begin not in text or end not in text:
        return None
    return text.split(begin, 1)[1].split(end, 1)[0].strip("\n")


def replace_block(path: Path, name: str, body: str) -> None:
    """Put ``body`` between the markers, adding them at the end of the file if missing."""
    begin, end = markers(name)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    block = f"{begin}\n{body.strip()}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + block + "\n"
    path.write_text(text, encoding="utf-8")
