"""How Hub answers are kept in a ConfigCache: their keys, their JSON (codecs) and how long.

A key names the endpoint and the token (hashed): a gated answer for one token is not another's,
and no key holds a token.
"""

from __future__ import annotations

import hashlib

from cachetools import LRUCache

from adapters.hub.cache import Codec
from adapters.hub.settings import HubSettings
from core.hub_records import HubOk, HubRecord, record_from_json, record_to_json


class _RememberedDecode:
    """``record_from_json``, remembered per stored value. The memory cache hands back the same
    JSON object on every hit, so a model asked often is decoded once, not on every answer
    (decoding costs more than the rest of a cached resolve). Safe because a cached value is
    never mutated; the entry holds the object, so its id is not reused meanwhile."""

    def __init__(self, size: int = 256) -> None:
        self._seen: LRUCache[int, tuple[object, HubRecord]] = LRUCache(maxsize=size)

    def __call__(self, data: object) -> HubRecord | None:
        hit = self._seen.get(id(data))
        if hit is not None and hit[0] is data:
            return hit[1]
        record = record_from_json(data)
        if record is not None:
            self._seen[id(data)] = (data, record)
        return record


RECORDS: Codec[HubRecord] = Codec(dump=record_to_json, load=_RememberedDecode())


def _ids(data: object) -> list[str] | None:
    if isinstance(data, list) and all(isinstance(i, str) for i in data):
        return data
    return None


IDS: Codec[list[str]] = Codec(dump=list, load=_ids)


def record_ttl(settings: HubSettings, record: HubRecord) -> float:
    """A repo read in full is kept for hours; every other answer (not found, gated, a part that
    could not be read) for minutes, since its owner or the Hub may fix it soon."""
    if isinstance(record, HubOk) and not record.unread:
        return settings.ttl_s
    return settings.negative_ttl_s


def model_key(settings: HubSettings, repo_id: str) -> str:
    return f"model|{settings.endpoint}|{auth_tag(settings)}|{repo_id.lower()}"


def search_key(settings: HubSettings, query: str, limit: int) -> str:
    return f"search|{settings.endpoint}|{auth_tag(settings)}|{limit}|{query.lower()}"


def auth_tag(settings: HubSettings) -> str:
    if not settings.token:
        return "anon"
    return "t" + hashlib.sha256(settings.token.encode()).hexdigest()[:12]
