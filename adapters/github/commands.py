"""The questions in an issue or comment body.

Explicit: every line that starts with ``/fits`` (optionally as a list item or in backticks) is
one command, up to MAX_COMMANDS a body. Lines GitHub does not show as the author's own words are
skipped: fenced code blocks (pasted logs and transcripts), quotes (someone else's words) and HTML
comments (issue templates hide their instructions there; our own marker lives there too).

Free text, for repositories that opt in: a question that names a model the bundled snapshot knows
(its id, alias or hf.co link) and a GPU of the catalogue, e.g. "Can I run Llama 2 7B on my RTX
4090?". Conservative on purpose: both must be found, exactly (no fuzzy matching), or nothing is
asked; a quantization word (q4, Q4_K_M, 4-bit, awq) is picked up when there is one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from core.errors import UserError

MAX_COMMANDS = 5
FREE_TEXT_CHARS = 4000  # a question is asked at the top; pasted logs below it are not read
MAX_GPU_TRIES = 200  # each miss costs ~1.5 ms in core.gpus: a bound on a wordy comment

_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_QUOTE = re.compile(r"^ {0,3}>")
_COMMAND = re.compile(r"^\s*(?:(?:[-*+]|\d{1,3}[.)])\s+)?(`*)\s*(/fits)(?=\s|`|$)(.*)$",
                      re.IGNORECASE)
_HF_LINK = re.compile(r"(?:https?://)?(?:www\.)?(?:huggingface\.co|hf\.co)/([\w.-]+/[\w.-]+)",
                      re.IGNORECASE)
_EDGE = "\"'`*_()[]{}<>.,;:!?"
_LETTERS = re.compile(r"[A-Za-z]")
_PLURAL = re.compile(r"(\d)s$", re.IGNORECASE)  # "3090s"
_QUANT_NAMES = frozenset({"awq", "gptq"})  # quant words without a digit that are never English
_HAS_COUNT = re.compile(r"\d+\s*[x×*]", re.IGNORECASE)
_COUNTS = {"two": 2, "three": 3, "four": 4, "six": 6, "eight": 8, "dual": 2, "quad": 4}


@dataclass(frozen=True)
class Question:
    text: str  # the command for the answering service, e.g. "/fits llama-2-7b q4 gpu=4090"
    inferred: bool = False  # read from free text rather than typed as a /fits line


@dataclass(frozen=True)
class Questions:
    items: tuple[Question, ...]
    skipped: int = 0  # /fits lines past MAX_COMMANDS


def visible_lines(body: str) -> Iterator[str]:
    """The lines of a body that read as the author's own words (see the module docstring)."""
    fence = ""
    for line in _HTML_COMMENT.sub("", body).splitlines():
        if fence:
            stripped = line.strip()
            if stripped.startswith(fence) and not stripped.strip(fence[0]):
                fence = ""
            continue
        if match := _FENCE.match(line):
            fence = match[1]
            continue
        if not _QUOTE.match(line):
            yield line


def fits_lines(body: str) -> list[str]:
    """Every /fits command in the body, as typed but for the case of /fits and the backticks
    around it."""
    commands = []
    for line in visible_lines(body):
        match = _COMMAND.match(line)
        if match is None:
            continue
        rest = match[3]
        if match[1]:  # `/fits ...`: drop the closing backticks and what follows them
            rest = rest.split("`", 1)[0]
        commands.append(f"/fits{rest.rstrip()}")
    return commands


def explicit_questions(body: str, limit: int = MAX_COMMANDS) -> Questions:
    lines = fits_lines(body)
    return Questions(tuple(Question(line) for line in lines[:limit]), max(0, len(lines) - limit))


def _words(text: str) -> list[str]:
    words = []
    for raw in text.split():
        word = raw.strip(_EDGE)
        word = word.removesuffix("'s").removesuffix("’s")
        if word:
            words.append(word)
    return words


def _model_at(words: list[str], start: int) -> tuple[str, int] | None:
    """(snapshot id, words used) of the longest model name starting at ``start``."""
    from core.snapshot import lookup

    if link := _HF_LINK.fullmatch(words[start]):
        entry, _ = lookup(link[1])
        return (entry.id, 1) if entry else None
    for size in (4, 3, 2, 1):
        if start + size > len(words):
            continue
        typed = " ".join(words[start:start + size])
        # A name has a digit and a few letters: "38b" or "3.8B" alone are sizes, not models.
        if not any(ch.isdigit() for ch in typed) or len(_LETTERS.findall(typed)) < 3:
            continue
        if size > 1 and "/" in typed:
            continue
        entry, _ = lookup(typed)
        if entry is not None:
            return entry.id, size
    return None


def _gpu_at(words: list[str], start: int, used: set[int],
            budget: list[int]) -> tuple[str, int] | None:
    """(GPU text as typed, words used) of a catalogue GPU starting at ``start``."""
    from core.gpus import resolve_gpu

    for size in (3, 2, 1):
        span = range(start, start + size)
        if start + size > len(words) or used.intersection(span):
            continue
        typed = " ".join(words[start:start + size])
        typed = _PLURAL.sub(r"\1", typed)
        if not any(ch.isdigit() for ch in typed) or budget[0] <= 0:
            continue
        budget[0] -= 1
        try:
            selection = resolve_gpu(typed)
        except UserError:  # unknown or ambiguous ("A100" alone): not a GPU we can name
            continue
        if not selection.generic:  # a bare size ("16", "24GB") is not a catalogue GPU
            return typed, size
    return None


def _quant_in(words: list[str], used: set[int]) -> str | None:
    from core.parser import parse_quant

    for i, word in enumerate(words):
        if i in used or not (any(ch.isdigit() for ch in word) or word.lower() in _QUANT_NAMES):
            continue
        try:
            return parse_quant(word)[0]
        except UserError:
            continue
    return None


def free_text_question(text: str) -> Question | None:
    """The one question a plain-text body asks, when it names a known model and a GPU."""
    lines = [line for line in visible_lines(text) if not _COMMAND.match(line)]
    words = _words("\n".join(lines)[:FREE_TEXT_CHARS])
    model = gpu = None
    used: set[int] = set()
    for start in range(len(words)):
        if (found := _model_at(words, start)) is not None:
            model = found[0]
            used = set(range(start, start + found[1]))
            break
    if model is None:
        return None
    budget = [MAX_GPU_TRIES]
    for start in range(len(words)):
        if start not in used and (found := _gpu_at(words, start, used, budget)) is not None:
            gpu = found[0]
            count = _COUNTS.get(words[start - 1].lower()) if start > 0 else None
            if count and not _HAS_COUNT.match(gpu):  # "two 3090s", not "two 2x3090"
                gpu = f"{count}x{gpu}"
            used |= set(range(start, start + found[1]))
            break
    if gpu is None:
        return None
    quant = _quant_in(words, used)
    parts = ["/fits", model, *([quant] if quant else []), f'gpu="{gpu}"']
    return Question(" ".join(parts), inferred=True)


def find_questions(body: str, *, title: str = "", free_text: bool = False) -> Questions:
    """The /fits lines of a body; failing those, and only where the repository opted in, the
    question its title and body ask in plain words."""
    explicit = explicit_questions(body)
    if explicit.items or not free_text:
        return explicit
    question = free_text_question(f"{title}\n{body}" if title else body)
    return Questions((question,) if question else ())


def may_ask(body: str, *, free_text: bool) -> bool:
    """A cheap test, fit for the webhook handler: could this body ask anything at all?"""
    return bool(fits_lines(body)) or (free_text and bool(body.strip()))
