"""Ollama's names for models: library tags (`llama3.1:8b`, `qwen2.5:7b-instruct-q4_K_M`) and bare
library names (`mixtral`, `gpt-oss`), read through the table in data/ollama.json (one row per
library model, each with its library page as the source). Pure; the table loads on first use, so
`fits help` never reads it.

A tag is ``<name>:<size>[-<variant>...][-<quant>]``: the size picks the repo, a trailing quant
word picks the GGUF file, anything else (instruct, text, v0.3) does not change the memory.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from core.errors import UserError
from core.units import quoted
from core.vocabulary import GGUF_PRESETS

_DATA = Path(__file__).parent / "data" / "ollama.json"
# Quant words in tags that are not llama-quantize preset names. QAT tags (gemma3:27b-it-qat)
# ship Q4_0 weights trained for it.
_TAG_QUANTS = {"fp16": "F16", "f16": "F16", "bf16": "BF16", "fp32": "F32", "f32": "F32",
               "qat": "Q4_0", "mxfp4": "MXFP4_MOE"}
_SIZE = re.compile(r"\d+(?:\.\d+)?[mb]|\d+x\d+b", re.ASCII)
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*", re.ASCII)


@dataclass(frozen=True)
class OllamaRow:
    name: str
    latest: str
    tags: dict[str, str]  # size tag -> the repo fits resolves
    weights: dict[str, str]  # size tag -> the Hub repo of the weights, where it differs
    quant: str | None  # the library's own default quantization, where it is not Q4_K_M
    source: str


@dataclass(frozen=True)
class OllamaTag:
    """What a tag names: the model text for the request, the GGUF quant, and how it was read."""

    model: str
    quant: str | None  # from the tag (None: the tag names none)
    default_quant: str  # what Ollama pulls for a tag without one
    default_why: str  # why that one, for the note
    read: str  # "'llama3.1:8b' read as Ollama's llama3.1:8b: meta-llama/..."
    remarks: str = ""  # "; Ollama ships ..., which has the same architecture"

    def note(self, quant: str | None, engine: str | None) -> str:
        """The sentence the answer shows, with the quant and engine the request ended with."""
        parts = [self.read]
        if quant is not None:
            why = ("the tag's quantization" if quant == self.quant
                   else self.default_why if quant == self.default_quant else "as given")
            parts.append(f"{quant} ({why})")
        if engine is not None:
            parts.append(f"engine={engine}")
        return ", ".join(parts) + self.remarks + "."


@cache
def _table() -> tuple[dict[str, OllamaRow], str]:
    data: dict[str, Any] = json.loads(_DATA.read_text(encoding="utf-8"))
    rows = {r["name"]: OllamaRow(r["name"], r["latest"], r["tags"], r.get("weights", {}),
                                 r.get("quant"), r["source"]) for r in data["models"]}
    return rows, str(data["default_quant"])


def rows() -> list[OllamaRow]:
    return list(_table()[0].values())


def _gguf(word: str) -> str | None:
    """A tag's quant word as a GGUF preset: q4_K_M -> Q4_K_M, fp16 -> F16, qat -> Q4_0."""
    if word.lower() in _TAG_QUANTS:
        return _TAG_QUANTS[word.lower()]
    upper = word.upper().replace("-", "_")
    return upper if upper in GGUF_PRESETS else None


def read_tag(text: str) -> OllamaTag:
    """``name:tag`` -> the model it names; UserError when the tag cannot be read."""
    name, _, tag = text.lower().partition(":")
    name = name.removeprefix("library/")
    if "/" in name:
        raise UserError(f"{quoted(text)} is a model from a user's namespace on ollama.com, "
                        "which fits cannot look up.",
                        "Name the Hub repo it was made from (org/name), or its size: 8b Q4_K_M "
                        "engine=ollama.")
    if not _NAME.fullmatch(name) or not tag:
        raise UserError(f"Could not read {quoted(text)} as an Ollama tag.",
                        "Write it as Ollama does, like llama3.1:8b, or give the quantization as "
                        "its own word: llama3-8b q4.")
    parts = tag.split("-")
    quant = _gguf(parts[-1])
    if quant is not None:
        parts = parts[:-1]
    table, default = _table()
    row = table.get(name)
    if row is None:
        return _unknown(text, name, parts, quant, default)
    size, rest = _size(row, parts)
    repo = row.tags[size]
    latest = "" if parts and parts[0] == size.split("-")[0] else f", {name}'s default tag"
    remarks = ""
    if weights := row.weights.get(size):
        remarks += f"; Ollama ships {weights}, which has the same architecture"
    if rest:
        remarks += f"; the tag's other words ({'-'.join(rest)}) do not change the memory"
    why = f"Ollama's default for {name}" if row.quant else "Ollama's default quantization"
    return OllamaTag(repo, quant, row.quant or default, why,
                     f"{quoted(text)} read as Ollama's {name}:{size}{latest}: {repo}", remarks)


def _size(row: OllamaRow, parts: list[str]) -> tuple[str, list[str]]:
    """The size tag the parts start with (the longest known: 30b-a3b before 30b), else latest."""
    for n in range(len(parts), 0, -1):
        if (key := "-".join(parts[:n])) in row.tags:
            return key, parts[n:]
    if not parts or parts[0] == "latest":
        return row.latest, parts[1:]
    sizes = ", ".join(row.tags)
    raise UserError(f"Ollama's {row.name} comes as {sizes}, not {quoted(parts[0])}.",
                    f"For example {row.name}:{row.latest}.")


def _unknown(text: str, name: str, parts: list[str], quant: str | None,
             default: str) -> OllamaTag:
    """A library name the table lacks: ``name-size`` for the model, as people type it."""
    size = parts[0] if parts and _SIZE.fullmatch(parts[0]) else None
    model = f"{name}-{size}" if size else name
    return OllamaTag(model, quant, default, "Ollama's default quantization",
                     f"{quoted(text)} read as an Ollama tag for the model {model}")


@cache
def name_index() -> dict[str, tuple[str, str]]:
    """Lookup key (letters and digits) of ``name``, ``name-size`` and ``name size`` -> (repo, how
    it was read), for names typed without a colon: gemma3-27b, mixtral, gpt-oss."""
    out: dict[str, tuple[str, str]] = {}
    for row in rows():
        for size, repo in row.tags.items():
            out.setdefault(_key(row.name + size), (repo, _how(row, size)))
        first = {repo: size for size, repo in reversed(row.tags.items())}  # a size per repo
        others = [size for repo, size in first.items() if repo != row.tags[row.latest]]
        also = f"; also {', '.join(reversed(others))}" if others else ""
        out.setdefault(_key(row.name), (row.tags[row.latest],
                                        f"{_how(row, row.latest)}, the family's default{also}"))
    return out


def _how(row: OllamaRow, size: str) -> str:
    weights = row.weights.get(size)
    ships = f", which is {weights.split('/')[1]} with this architecture" if weights else ""
    return f"Ollama's {row.name}:{size}{ships}"


def _key(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def tag_for(repo: str, quant: str) -> str | None:
    """The library tag Ollama runs ``repo`` under (``llama3.1:8b``), with the quantization when
    it is not the tag's default (``llama3.1:8b-instruct-q8_0`` style suffixes differ per model,
    so a non-default quant is named as ``<name>:<size>`` plus a note); None when the library has
    no row for it."""
    for row in rows():
        for size, target in row.tags.items():
            if target.lower() == repo.lower():
                return f"{row.name}:{size}"
    return None
