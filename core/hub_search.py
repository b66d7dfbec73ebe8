"""Model search without I/O: which bundled models match a query, how they interleave with the
Hub's results, and what the user is told when the Hub's part is missing or suggests names."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from core import snapshot
from core.errors import ModelNotFound

OFFLINE_NOTE = "Offline (HF_HUB_OFFLINE=1): only bundled models are listed."
BAD_TOKEN_NOTE = ("The Hub refused the HF_TOKEN this fits was given (invalid credentials), so "
                  "it could not be searched.")


@dataclass(frozen=True)
class ModelSearch:
    ids: list[str]
    note: str | None = None  # why the Hub's part is missing, when the user can do something
    more: int = 0  # bundled matches left out
    more_on_hub: bool = False  # the Hub filled its page: it may have more


@dataclass(frozen=True)
class LocalMatches:
    """The bundled models for a query: ``direct`` contain every word, ``near`` are near misses."""

    query: str
    limit: int
    direct: list[str]
    near: list[str]
    total_direct: int = 0  # every bundled id that contains every word, shown or not

    @property
    def wants_hub(self) -> bool:
        return bool(self.query) and len(self.direct) < self.limit


def local_matches(query: str, limit: int) -> LocalMatches:
    q = query.strip()[:100]
    limit = max(1, min(limit, 100))
    found = snapshot.search(q, limit)
    words = q.lower().replace("/", " ").split()
    direct = [i for i in found if all(w in i.lower() for w in words)]
    return LocalMatches(q, limit, direct, [i for i in found if i not in direct],
                        snapshot.count_matches(q))


def merge_search(local: LocalMatches, hub: Iterable[str], note: str | None = None) -> ModelSearch:
    """Bundled matches first, then the Hub's (most downloaded first), then the bundled near
    misses; each id once (ids are case-insensitive)."""
    out: list[str] = []
    seen: set[str] = set()
    hub = list(hub)
    for repo in (*local.direct, *hub, *local.near):
        if repo.lower() not in seen:
            seen.add(repo.lower())
            out.append(repo)
    shown = out[:local.limit]
    shown_direct = sum(1 for i in shown if i in local.direct)
    more = max(0, local.total_direct - shown_direct)
    return ModelSearch(shown, note, more, more_on_hub=len(hub) >= local.limit)


def with_hub_suggestions(err: ModelNotFound, found: list[str]) -> ModelNotFound:
    """The snapshot's 'not found' for a bare name, with the Hub's matches as 'did you mean'."""
    if not found:
        return err
    return ModelNotFound(err.message, f"Did you mean {', '.join(found)}?", found)


def with_bad_token_note(err: ModelNotFound) -> ModelNotFound:
    """The snapshot's 'not found' when the Hub could not be searched because of the token."""
    return ModelNotFound(err.message, f"{err.hint} {BAD_TOKEN_NOTE}", err.suggestions)
