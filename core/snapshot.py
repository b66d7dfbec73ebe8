"""The bundled offline snapshot of model configs, and turning what users type into one of them."""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

_DATA = Path(__file__).parent / "data" / "models.jsonl"


@dataclass(frozen=True)
class SnapshotEntry:
    id: str
    config: dict[str, Any]
    source: str
    published_params: int | None = None
    # Why nothing checks this model's parameter count (None: transformers or a published exact
    # count does, in tests/test_golden.py); its answers then say the count is not exact.
    params_unchecked: str | None = None


def normalize(text: str) -> str:
    """The lookup key of a model name: lower case, letters and digits only."""
    return re.sub(r"[^a-z0-9.]", "", text.lower()).replace(".", "")


@cache
def entries() -> dict[str, SnapshotEntry]:
    out: dict[str, SnapshotEntry] = {}
    for line in _DATA.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            out[row["id"].lower()] = SnapshotEntry(row["id"], row["config"], row["source"],
                                                   row.get("published_params"),
                                                   row.get("params_unchecked"))
    return out


def _short_keys(repo_id: str) -> set[str]:
    """The names a repo is typed as: its name, without -hf, without the vendor prefix."""
    name = repo_id.split("/", 1)[1]
    keys = {normalize(name)}
    for key in list(keys):
        if key.endswith("hf"):
            keys.add(key[:-2])
    for key in list(keys):
        for prefix in ("meta", "metallama"):
            if key.startswith(prefix) and len(key) > len(prefix) + 2:
                keys.add(key[len(prefix):])
    return keys


@cache
def _index() -> dict[str, str]:
    """Short key -> repo id. A key several repos share is left out (it would be a guess)."""
    owners: dict[str, set[str]] = {}
    for entry in entries().values():
        for key in _short_keys(entry.id) | {normalize(entry.id)}:
            owners.setdefault(key, set()).add(entry.id)
    return {key: next(iter(ids)) for key, ids in owners.items() if len(ids) == 1}


def lookup(text: str) -> tuple[SnapshotEntry | None, str | None]:
    """(entry, note). The note says how a near miss was read, e.g. '-hf' added."""
    table = entries()
    typed = text.strip().strip("/")
    hit = table.get(typed.lower())
    if hit:
        return hit, None
    if "/" in typed and (hf := table.get(typed.lower() + "-hf")):
        return hf, f"'{typed}' read as {hf.id}"
    key = normalize(typed.split("/", 1)[-1]) if "/" in typed else normalize(typed)
    repo = _index().get(key) or _index().get(normalize(typed))
    if repo:
        entry = table[repo.lower()]
        return entry, f"'{typed}' read as {entry.id}"
    return None, None


def suggest(text: str, limit: int = 3) -> list[str]:
    """Near misses for 'did you mean'."""
    key = normalize(text.split("/", 1)[-1])
    index = _index()
    close = difflib.get_close_matches(key, list(index), n=limit * 3, cutoff=0.6)
    seen: list[str] = []
    for match in close:
        if index[match] not in seen:
            seen.append(index[match])
    if len(seen) < limit:
        lowered = text.lower()
        seen += [e.id for e in entries().values() if lowered in e.id.lower() and e.id not in seen]
    return seen[:limit]


def search(query: str, limit: int = 25) -> list[str]:
    """Snapshot ids matching a query: substring first, then fuzzy."""
    q = query.lower().strip()
    ids = [e.id for e in entries().values()]
    if not q:
        return sorted(ids)[:limit]
    words = q.replace("/", " ").split()
    hits = [i for i in ids if all(w in i.lower() for w in words)]
    hits.sort(key=lambda i: (not i.lower().startswith(q), len(i), i.lower()))
    if len(hits) < limit:
        hits += [i for i in suggest(query, limit) if i not in hits]
    return hits[:limit]
