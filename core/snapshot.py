"""The bundled offline snapshot of model configs, and turning what users type into one of them."""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from core.units import size_in_name

_DATA = Path(__file__).parent / "data" / "models.jsonl"
# Name endings people leave out: gemma-3-27b means gemma-3-27b-it, llama-3.3-70b the -Instruct.
_FLAVOURS = frozenset({"instruct", "it", "chat", "hf"})


@dataclass(frozen=True)
class SnapshotEntry:
    """A bundled model: its config.json, where it came from, its published size."""

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


@cache
def _short_names() -> dict[str, tuple[str, str]]:
    """Names without an org that are not a repo's own name, each to (repo, how it was read):
    Ollama's library names first (gemma3-27b, mixtral: its default tag), then repo names
    without their flavour ending (llama-3.3-70b for the -Instruct, when nothing else has that
    name). Only bundled repos; a name two repos would share is left out."""
    from core import ollama  # here: a name with its org never needs Ollama's library

    table, taken = entries(), _index()
    out = {key: found for key, found in ollama.name_index().items()
           if key not in taken and found[0].lower() in table}
    owners: dict[str, set[str]] = {}
    for entry in table.values():
        parts = re.split(r"[-_]", entry.id.split("/", 1)[1])
        while len(parts) > 1 and parts[-1].lower() in _FLAVOURS:
            parts.pop()
        for key in _short_keys("x/" + "-".join(parts)):
            owners.setdefault(key, set()).add(entry.id)
    for key, ids in owners.items():
        if len(ids) == 1 and key not in taken:
            out.setdefault(key, (next(iter(ids)), ""))
    return out


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
    if "/" not in typed and (short := _short_names().get(key)):
        entry = table[short[0].lower()]
        how = f" ({short[1]})" if short[1] else ""
        return entry, f"'{typed}' read as {entry.id}{how}"
    return None, None


def suggest(text: str, limit: int = 3) -> list[str]:
    """Near misses for 'did you mean'. A size in the name comes first: for a 32B request,
    32B models of the same family, then other 32B models, then the rest."""
    key = normalize(text.split("/", 1)[-1])
    index = _index()
    close = difflib.get_close_matches(key, list(index), n=limit * 10, cutoff=0.6)
    seen = list(dict.fromkeys(index[match] for match in close))
    if len(seen) < limit:
        lowered = text.lower()
        seen += [e.id for e in entries().values() if lowered in e.id.lower() and e.id not in seen]
    want = size_in_name(text)
    if want is None:
        return seen[:limit]
    family = _family(text)
    kin = [e.id for e in entries().values()
           if size_in_name(e.id) == want and _family(e.id) == family and e.id not in seen]
    same = [i for i in seen if size_in_name(i) == want]
    ranked = sorted(same, key=lambda i: _family(i) != family) + kin
    return list(dict.fromkeys([*ranked, *seen]))[:limit]


def _family(repo_id: str) -> str:
    """The leading letters of a model's name: 'qwen' for Qwen/Qwen2.5-32B-Instruct."""
    key = normalize(repo_id.split("/", 1)[-1]).removeprefix("meta")
    match = re.match(r"[a-z]+", key)
    return match[0] if match else ""


def count_matches(query: str) -> int:
    """How many bundled ids contain every word of a query (all of them for an empty one)."""
    words = query.lower().replace("/", " ").split()
    return sum(1 for e in entries().values() if all(w in e.id.lower() for w in words))


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
