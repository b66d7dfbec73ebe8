"""From what the user typed to a model, with the Hub: the snapshot for what it has, a bare size,
else the Hub's record for an org/name id (cached, one fetch per key in flight, bounded by the
deadline), read by core.hub_resolve. When the Hub cannot answer, or may not be asked (offline),
the answer falls back to the bundled snapshot or the size in the name, with a note.
"""

from __future__ import annotations

from adapters.hub.cache import ConfigCache
from adapters.hub.errors import BadToken, HubCallError
from adapters.hub.fetch import fetch_record
from adapters.hub.search import hub_search
from adapters.hub.settings import HubSettings
from adapters.hub.storage import RECORDS, model_key, record_ttl
from core import snapshot
from core.errors import ModelNotFound
from core.hub_protocol import validate_repo_id
from core.hub_records import HubOk, HubRecord
from core.hub_resolve import (
    OFFLINE_REASON,
    HubResolution,
    fallback,
    from_offline_cache,
    not_found_offline,
    resolve_record,
)
from core.hub_search import with_bad_token_note, with_hub_suggestions
from core.resolve import ResolvedModel, parse_size, resolve_offline


async def resolve_model(text: str, settings: HubSettings, cache: ConfigCache) -> HubResolution:
    """What an estimate needs, from what the user typed: the snapshot for what it has (exact and
    instant, even near misses such as a missing '-hf'), a bare size, else the Hub for org/name
    ids; without the Hub (offline) the offline path and its 'did you mean'."""
    if parse_size(text) is not None or snapshot.lookup(text)[0] is not None:
        return HubResolution(resolve_offline(text))
    if "/" in text:
        if settings.offline and not isinstance(await _cached(text, settings, cache), HubOk):
            try:
                resolve_offline(text)
            except ModelNotFound as err:
                raise not_found_offline(err) from None
        return await resolve_hub_details(text, settings, cache)
    try:
        return HubResolution(resolve_offline(text))
    except ModelNotFound as err:
        if settings.offline or err.suggestions:
            raise  # the snapshot's near misses are instant; the Hub is asked only without any
        try:
            found = await hub_search(text, settings, cache, 5)
        except BadToken:
            raise with_bad_token_note(err) from None
        raise with_hub_suggestions(err, found) from None


async def resolve_hub(repo_id: str, settings: HubSettings, cache: ConfigCache) -> ResolvedModel:
    """A model from the Hub (config.json, exact parameter count, quantization_config, GGUF
    files). Not found, gated and unreadable configs raise UserError; an unreachable, slow or
    failing Hub falls back to the bundled snapshot or the size in the name, with a note."""
    return (await resolve_hub_details(repo_id, settings, cache)).model


async def resolve_hub_details(repo_id: str, settings: HubSettings,
                              cache: ConfigCache) -> HubResolution:
    """``resolve_hub`` with the GGUF files the Hub listed."""
    repo_id = validate_repo_id(repo_id)
    if settings.offline:
        cached = await _cached(repo_id, settings, cache)
        if isinstance(cached, HubOk):
            return from_offline_cache(resolve_record(repo_id, cached, settings.site))
        return fallback(repo_id, OFFLINE_REASON)

    async def fetch() -> HubRecord:
        return await fetch_record(repo_id, settings, cache)

    try:
        record = await cache.get_or_fetch(model_key(settings, repo_id), fetch, codec=RECORDS,
                                          ttl_s=lambda r: record_ttl(settings, r),
                                          deadline_s=settings.deadline_s)
    except TimeoutError:
        return fallback(repo_id, f"did not answer within {settings.deadline_s:g} s")
    except HubCallError as failed:
        return fallback(repo_id, failed.reason)
    return resolve_record(repo_id, record, settings.site)


async def _cached(repo_id: str, settings: HubSettings, cache: ConfigCache) -> HubRecord | None:
    return await cache.load(model_key(settings, repo_id), RECORDS)
