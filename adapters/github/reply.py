"""Our one comment: a hidden marker, one section per question, a line on how to ask again.

The marker ``<!-- fits:<source>:<id> at=<updated_at> -->`` names what we answered (the issue's
body or one comment) and the version we answered, so that an edit finds and updates this comment
instead of adding another, and a late job for an older version never overwrites a newer answer.

GitHub refuses a body over 65,536 characters. Sections are added while they fit; one that does
not is cut at a line, and the rest are counted in a closing note. Lengths are counted in UTF-16
code units, never fewer than Python's characters, so the limit holds however GitHub counts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from adapters.github.commands import MAX_COMMANDS, Question
from adapters.markdown import code_span

MAX_BODY_CHARS = 65_536
MARKER_OPEN = "<!-- fits:"
_MARKER = re.compile(r"<!-- fits:(?P<key>[a-z-]+:\d+) at=(?P<at>[0-9A-Za-z:.+-]+) -->")
EXAMPLE = "/fits llama-2-7b q4 ctx=8k gpu=4090"
CUT_NOTE = "\n\n*(cut here: GitHub's comment limit)*"


@dataclass(frozen=True)
class Section:
    question: Question
    markdown: str  # the rendered answer, or the rendered error


def marker(key: str, at: str) -> str:
    return f"{MARKER_OPEN}{key} at={at} -->"


def read_marker(body: str) -> tuple[str, str] | None:
    """(key, at) of the marker a reply of ours starts with; None for any other comment."""
    match = _MARKER.match(body)
    return (match["key"], match["at"]) if match else None


def size(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _heading(question: Question) -> str:
    if question.inferred:
        return (f"#### Reading your question as {code_span(question.text)}\n\n"
                "<sub>This issue has the `fits` label, so plain questions are answered too. "
                "For other options (ctx=, batch=, engine=) write a `/fits` line.</sub>")
    return f"#### {code_span(question.text)}"


def _ask_again(source: str) -> str:
    what = "the issue" if source.startswith("issue:") else "your comment"
    return (f"<sub>Ask again: edit {what} and this reply follows it, or write a line such as "
            f"{code_span(EXAMPLE)}; {code_span('/fits help')} lists the options.</sub>")


def _cut(text: str, budget: int) -> str:
    """The longest run of whole lines of ``text`` that fits ``budget`` with the cut note."""
    room = budget - size(CUT_NOTE)
    lines, used = [], 0
    for line in text.split("\n"):
        if used + size(line) + 1 > room:
            break
        lines.append(line)
        used += size(line) + 1
    return "\n".join(lines).rstrip() + CUT_NOTE if lines else ""


def compose(key: str, at: str, sections: Sequence[Section], skipped: int = 0,
            limit: int = MAX_BODY_CHARS) -> str:
    """The comment answering ``sections``; ``skipped`` /fits lines were over the cap."""
    head = marker(key, at)
    tail = _ask_again(key)
    parts: list[str] = []
    budget = limit - size(head) - size(tail) - 400  # 400: the separators and a closing note
    left = len(sections)
    for section in sections:
        text = f"{_heading(section.question)}\n\n{section.markdown}"
        if size(text) + 2 > budget:
            cut = _cut(text, budget) if not parts else ""
            if cut:
                parts.append(cut)
                left -= 1
            break
        parts.append(text)
        budget -= size(text) + 2
        left -= 1
    notes = []
    if left:
        notes.append(f"{left} more {'answer does' if left == 1 else 'answers do'} not fit in one "
                     "comment; ask again in a new comment.")
    if skipped:
        notes.append(f"{skipped} more `/fits` {'line was' if skipped == 1 else 'lines were'} "
                     f"skipped: one comment answers at most {MAX_COMMANDS}.")
    if notes:
        parts.append("> " + "\n> ".join(notes))
    return "\n\n".join([head, *parts, tail])


def nothing_asked(key: str, at: str) -> str:
    """What an earlier reply becomes when an edit removed the questions it answered."""
    return "\n\n".join([marker(key, at),
                        "*The question this reply answered was edited away.*",
                        _ask_again(key)])
