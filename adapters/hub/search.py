"""The Hub's model search: for autocomplete and `fits models <query>` (cached, bounded by
``settings.search_deadline_s``), and for the 'did you mean' of a repo the Hub does not have."""

from __future__ import annotations

import asyncio
import logging

from adapters.hub.cache import ConfigCache
from adapters.hub.client import api, hub_call
from adapters.hub.errors import BadToken, HubCallError
from adapters.hub.retry import Deadline
from adapters.hub.settings import HubSettings
from adapters.hub.storage import IDS, search_key
from core.hub_search import (
    BAD_TOKEN_NOTE,
    OFFLINE_NOTE,
    ModelSearch,
    local_matches,
    merge_search,
)

log = logging.getLogger("fits.hub")


async def search_models(query: str, settings: HubSettings, cache: ConfigCache,
                        limit: int = 25) -> list[str]:
    """Ids for autocomplete and `fits models <query>`: bundled models that match, then the Hub's
    (most downloaded first), then the snapshot's near misses. The Hub part is cached, bounded by
    ``settings.search_deadline_s`` and left out when offline or failing."""
    return (await find_models(query, settings, cache, limit)).ids


async def find_models(query: str, settings: HubSettings, cache: ConfigCache,
                      limit: int = 25) -> ModelSearch:
    """``search_models`` with a note when the Hub was not searched: offline, or it refused the
    token (a bad HF_TOKEN)."""
    local = local_matches(query, limit)
    if settings.offline and local.wants_hub:
        return merge_search(local, [], OFFLINE_NOTE)
    if not local.wants_hub:
        return merge_search(local, [])
    try:
        return merge_search(local, await hub_search(local.query, settings, cache, local.limit))
    except BadToken:
        return merge_search(local, [], BAD_TOKEN_NOTE)


async def hub_search(query: str, settings: HubSettings, cache: ConfigCache,
                     limit: int) -> list[str]:
    """The Hub's search; [] when it is offline, slow or failing. Raises BadToken when the Hub
    refuses the token: every search would fail the same way, and the user should hear why."""
    if settings.offline or not query.strip():
        return []

    async def fetch() -> list[str]:
        return await _list_models(query, settings, limit, Deadline(settings.search_deadline_s))

    try:
        return await cache.get_or_fetch(search_key(settings, query, limit), fetch, codec=IDS,
                                        ttl_s=lambda _: settings.search_ttl_s,
                                        deadline_s=settings.search_deadline_s)
    except BadToken:
        log.warning("hub search refused: the HF_TOKEN given is not valid")
        raise
    except TimeoutError:
        log.info("hub search for %r skipped: no answer within %g s", query,
                 settings.search_deadline_s)
        return []
    except HubCallError as exc:
        log.info("hub search for %r skipped: the Hub %s", query, exc.reason)
        return []


async def search_near(repo_id: str, settings: HubSettings, deadline: Deadline) -> tuple[str, ...]:
    """Hub ids near a missing one, for 'did you mean': best effort, within the deadline. A
    failure leaves the suggestions to the snapshot and is logged."""
    if deadline.remaining() < 0.1:
        return ()
    name = repo_id.split("/", 1)[-1]
    try:
        found = await asyncio.wait_for(_list_models(name, settings, 5, deadline),
                                       deadline.remaining())
    except TimeoutError:
        log.warning("no Hub suggestions for %s: the search did not answer in time", repo_id)
        return ()
    except HubCallError as exc:
        log.warning("no Hub suggestions for %s: the Hub %s", repo_id, exc.reason)
        return ()
    return tuple(found)


async def _list_models(query: str, settings: HubSettings, limit: int,
                       deadline: Deadline) -> list[str]:
    def call() -> list[str]:
        found = api(settings).list_models(search=query, sort="downloads", limit=limit)
        return [m.id for m in found if isinstance(m.id, str)][:limit]

    return await hub_call(call, settings, deadline)
