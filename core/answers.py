"""The light answers (help, GPU and model lists) that need neither the estimator nor pydantic:
`fits help` and `fits gpus` render them without loading either (core/answer.py re-exports
them beside the Report)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.gpus import Gpu


@dataclass(frozen=True)
class HelpAnswer:
    """The help text for a topic."""

    text: str


@dataclass(frozen=True)
class GpuListAnswer:
    """The GPUs matching a query."""

    query: str
    gpus: list[Gpu]
    more: int = 0  # matches left out of the list

    @property
    def more_line(self) -> str | None:
        return more_line(self.more, "GPUs", "gpus 4090, gpus mi300, gpus 24gb")


@dataclass(frozen=True)
class ModelListAnswer:
    """The models matching a query."""

    query: str
    ids: list[str]
    note: str | None = None  # why the list may be short (the Hub refused to search)
    more: int = 0  # bundled matches left out of the list
    more_on_hub: bool = False  # the Hub returned a full page: it may have more

    @property
    def more_line(self) -> str | None:
        line = more_line(self.more, "bundled models", "models llama 70b, models qwen3 instruct")
        if self.more_on_hub:
            hub = "The Hub may have more; add words to narrow the search."
            return f"{line[:-1]}; the Hub may have more." if line else hub
        return line


def more_line(more: int, what: str, examples: str) -> str | None:
    """What a list left out, and how to see it: lists are cut so that every chat can show them."""
    if more <= 0:
        return None
    return f"...and {more:,} more {what} match; add words to narrow it ({examples})."
