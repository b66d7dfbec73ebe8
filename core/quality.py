"""What fits knows about a model beyond its shape, for ranking (``best``): when its weights were
published, which variant it is (base, instruct, reasoning, coder, vision, embed), what it is for,
and one benchmark score, each with its source (core/data/quality.json, written from model cards
and release posts; every score carries a verbatim quote). Loaded on first use."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

_DATA = Path(__file__).parent / "data" / "quality.json"


@dataclass(frozen=True)
class Score:
    benchmark: str
    value: float
    source: str
    measured_on: str | None = None  # a sibling checkpoint the number is from (its base model)


@dataclass(frozen=True)
class ModelFacts:
    released: str | None = None  # YYYY-MM-DD
    family: str | None = None  # the weights' family: base, instruct and FP8 variants share it
    variant: str | None = None  # base | instruct | reasoning | coder | vision | embed
    uses: tuple[str, ...] = ()  # chat, code, reasoning, vision, embed
    score: Score | None = None


@cache
def _table() -> dict[str, ModelFacts]:
    if not _DATA.exists():
        return {}
    raw = json.loads(_DATA.read_text(encoding="utf-8")).get("models", {})
    out: dict[str, ModelFacts] = {}
    for model_id, row in raw.items():
        score = row.get("score")
        out[model_id.lower()] = ModelFacts(
            released=row.get("released"), family=row.get("family"), variant=row.get("variant"),
            uses=tuple(row.get("uses") or ()),
            score=Score(str(score["benchmark"]), float(score["value"]), str(score["source"]),
                        score.get("measured_on"))
            if isinstance(score, dict) and "value" in score else None)
    return out


def facts(model_id: str) -> ModelFacts:
    """What quality.json says of a model; empty facts when it says nothing."""
    return _table().get(model_id.lower(), ModelFacts())


def benchmark() -> str | None:
    """The one benchmark the scores are on (the file uses one, so they compare)."""
    names = {f.score.benchmark for f in _table().values() if f.score}
    return names.pop() if len(names) == 1 else None
