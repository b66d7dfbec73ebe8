"""The reference set on disk (bench/reference/): published measurements and how fits maps them.

Every harness reads it through here, so a record file added or a duplicate id is seen by all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent / "reference"
# Records: the shared collection (copied unchanged) and the ones fits added, each with source
# and quote. Cases: how each inference record maps to a fits command, or why it cannot.
RECORD_FILES = ("measured-public.jsonl", "measured-added.jsonl", "measured-2026.jsonl")
CASE_FILES = ("cases.jsonl", "cases-added.jsonl", "cases-2026.jsonl")
TRAINING_CASE_FILES = ("training_cases.jsonl", "training_cases-2026.jsonl")


def load_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def records() -> dict[str, dict[str, Any]]:
    """Every measurement by id; an id in two files is an error."""
    out: dict[str, dict[str, Any]] = {}
    for name in RECORD_FILES:
        if (HERE / name).exists():
            for r in load_jsonl(HERE / name):
                if str(r["id"]) in out:
                    raise ValueError(f"record id {r['id']} appears twice")
                out[str(r["id"])] = r
    return out


def cases() -> list[dict[str, Any]]:
    return [row for name in CASE_FILES if (HERE / name).exists() for row in load_jsonl(HERE / name)]


def training_cases() -> list[dict[str, Any]]:
    return [row for name in TRAINING_CASE_FILES if (HERE / name).exists()
            for row in load_jsonl(HERE / name)]
