"""The answer of `best` (core/best.py computes it): light, so that every surface can render it
without loading the estimator."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BestEntry:
    id: str
    quant: str
    engine: str
    total_bytes: int
    headroom_bytes: int
    verdict: str  # fits | tight
    decode_tokens_per_s: float | None
    reason: str
    command: str  # the estimate command that gives this answer (fits "<command>")
    released: str | None
    score: float | None


@dataclass(frozen=True)
class BestAnswer:
    gpu: str
    use: str
    entries: tuple[BestEntry, ...]
    considered: int  # models looked at
    fitting: int  # of those, how many fit at some format
    notes: tuple[str, ...] = ()
