"""Everything the Hub says about one repo, as one typed record (core.hub_records).

The requests, in order, each only when core.hub_protocol says it is needed: model_info (the
listing), config.json, quantize_config.json (older GPTQ repos), the safetensors headers (when the
listing has no parameter counts), the GGUF files' sizes, and a GGUF repo's base model (the
snapshot's, the cache's, or the Hub's). The first two decide whether there is a model at all; a
failure in any later one does not fail the answer: it is recorded as ``Unread``, which the answer
carries as a note.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from adapters.hub.cache import ConfigCache
from adapters.hub.client import api, get_json, hub_call, load_library, timeout
from adapters.hub.errors import (
    BadJson,
    BadToken,
    FileNotFound,
    Gated,
    HubCallError,
    NoAccess,
    RepoNotFound,
    TooLarge,
)
from adapters.hub.retry import Deadline
from adapters.hub.search import search_near
from adapters.hub.settings import HubSettings
from adapters.hub.storage import RECORDS, model_key, record_ttl
from core import snapshot
from core.hub_protocol import (
    EXPAND,
    RepoListing,
    base_model_of,
    group_gguf,
    is_repo_id,
    params_by_dtype,
    with_quantize_config,
)
from core.hub_records import (
    GgufFile,
    HubBadConfig,
    HubBadToken,
    HubGated,
    HubNotFound,
    HubOk,
    HubRecord,
    HubTooLarge,
    Unread,
    UnreadPart,
)
from core.hub_resolve import why_no_config

if TYPE_CHECKING:
    from huggingface_hub import HfApi, ModelInfo
    from huggingface_hub.hf_api import ExpandModelProperty_T

T = TypeVar("T")

# The share of a fetch's time its optional parts may take (see _RepoFetch).
PART_SHARE = 0.8


async def fetch_record(repo_id: str, settings: HubSettings, cache: ConfigCache | None = None,
                       *, depth: int = 0, deadline: Deadline | None = None) -> HubRecord:
    """The record for ``repo_id``. Raises HubCallError when the Hub gives no answer to the
    listing or config.json (unreachable, 429/5xx after retries, unreadable)."""
    await load_library()
    fetch = _RepoFetch(repo_id, settings, cache, depth, deadline or Deadline(settings.deadline_s))
    try:
        return await fetch.record()
    except _Ends as end:
        return end.record


class _Ends(Exception):
    """The Hub's answer settles the record before every part is read (not found, gated...)."""

    def __init__(self, record: HubRecord) -> None:
        super().__init__(type(record).__name__)
        self.record = record


class _RepoFetch:
    """The requests for one repo, sharing its deadline; ``unread`` collects the optional parts
    that could not be read.

    The optional parts (and the search for a missing repo's 'did you mean') have a deadline of
    their own, ``PART_SHARE`` of the time left when the fetch starts: one that hangs then costs
    its part, while the answer still comes in time with what was read (the whole fetch's
    deadline would drop it all for a fallback).
    """

    def __init__(self, repo_id: str, settings: HubSettings, cache: ConfigCache | None,
                 depth: int, deadline: Deadline) -> None:
        self.repo_id = repo_id
        self.settings = settings
        self.cache = cache
        self.depth = depth
        self.deadline = deadline
        self.part_deadline = Deadline(deadline.remaining() * PART_SHARE)
        self.api: HfApi = api(settings)
        self.unread: list[Unread] = []

    async def record(self) -> HubRecord:
        listing = await self.listing()
        config = await self.config(listing) if listing.wants_config() else None
        config_repo = listing.id if config is not None else None
        if config is not None and listing.wants_quantize_config(config):
            config = await self.quantize_config(listing, config)
        params, params_from = await self.param_count(listing)
        gguf = await self.gguf(listing) if listing.gguf_files else ()
        if config is None and listing.gguf_files and listing.base_model:
            config, config_repo = await self.base_config(listing.base_model)
        return HubOk(id=listing.id, sha=listing.sha, config=config, config_repo=config_repo,
                     params=params, params_from=params_from, gguf=gguf,
                     base_model=listing.base_model, gated=listing.gated,
                     unread=tuple(self.unread))

    async def call(self, fn: Callable[[], T]) -> T:
        return await hub_call(fn, self.settings, self.deadline)

    async def call_for_part(self, fn: Callable[[], T]) -> T:
        """A request for an optional part, given up at the parts' deadline (TimeoutError): not
        every huggingface_hub call takes a timeout."""
        return await asyncio.wait_for(hub_call(fn, self.settings, self.part_deadline),
                                      self.part_deadline.remaining())

    # --- what decides whether there is a model ---------------------------------------------

    async def listing(self) -> RepoListing:
        expand = cast("list[ExpandModelProperty_T]", EXPAND)
        try:
            info = await self.call(lambda: self.api.model_info(
                self.repo_id, expand=expand, timeout=timeout(self.deadline)))
        except Gated:
            raise _Ends(HubGated(with_token=bool(self.settings.token))) from None
        except (RepoNotFound, NoAccess):
            near = () if self.depth else await search_near(self.repo_id, self.settings,
                                                           self.part_deadline)
            raise _Ends(HubNotFound(near)) from None
        except BadToken:
            raise _Ends(HubBadToken()) from None
        return _read_listing(info, self.repo_id)

    async def config(self, listing: RepoListing) -> dict[str, Any] | None:
        """config.json; None when the repo has none. Whatever else it is ends the record."""
        try:
            loaded = await self.call(lambda: get_json(
                self.settings, listing.id, "config.json", listing.sha, timeout(self.deadline)))
        except Gated:
            raise _Ends(HubGated(with_token=bool(self.settings.token))) from None
        except (RepoNotFound, NoAccess):
            raise _Ends(HubNotFound()) from None
        except BadToken:
            raise _Ends(HubBadToken()) from None
        except TooLarge as large:
            raise _Ends(HubTooLarge("config.json", large.limit)) from None
        except BadJson as bad:
            raise _Ends(HubBadConfig(bad.why)) from None
        except FileNotFound:  # a repo without one (the listing may not have said)
            return None
        if not isinstance(loaded, dict):
            raise _Ends(HubBadConfig("not a JSON object"))
        return loaded

    # --- optional parts: a failure is a note, not a failed answer -------------------------------

    async def quantize_config(self, listing: RepoListing,
                              config: dict[str, Any]) -> dict[str, Any]:
        try:
            extra = await self.call_for_part(lambda: get_json(
                self.settings, listing.id, "quantize_config.json", listing.sha,
                timeout(self.part_deadline)))
        except (HubCallError, TimeoutError) as exc:
            self.note("quantize_config", _why(exc))
            return config
        if not isinstance(extra, dict):
            self.note("quantize_config", "the Hub sent one that is not a JSON object")
            return config
        return with_quantize_config(config, extra)

    async def param_count(self, listing: RepoListing) -> tuple[dict[str, int] | None, str | None]:
        """Exact parameter counts by dtype, and where they came from."""
        if listing.params is not None:
            return listing.params, "safetensors metadata"
        if listing.wants_safetensors_headers():
            try:
                meta = await self.call_for_part(lambda: self.api.get_safetensors_metadata(
                    listing.id, revision=listing.sha, timeout=timeout(self.part_deadline)))
                return {str(k): int(v) for k, v in meta.parameter_count.items()}, \
                    "safetensors headers"
            except (HubCallError, TimeoutError) as exc:
                self.note("safetensors_headers", _why(exc))
        if listing.gguf_total is not None:
            return {"GGUF": listing.gguf_total}, "GGUF metadata"
        return None, None

    async def gguf(self, listing: RepoListing) -> tuple[GgufFile, ...]:
        names = listing.gguf_files
        sizes: dict[str, int] = {}
        try:
            listed = await self.call_for_part(lambda: self.api.get_paths_info(
                listing.id, names, revision=listing.sha))
            for path in listed:
                size = getattr(path, "size", None)  # folders have none
                if isinstance(size, int):
                    sizes[path.path] = size
        except (HubCallError, TimeoutError) as exc:
            self.note("gguf_sizes", _why(exc))
        return group_gguf(names, sizes)

    async def base_config(self, base: str) -> tuple[dict[str, Any] | None, str | None]:
        """The config of a GGUF repo's base model: the snapshot's, the cache's, or the Hub's."""
        entry = snapshot.entries().get(base.lower())
        if entry is not None:
            return entry.config, entry.id
        if self.depth > 0:
            return None, None  # a base's own base is not followed: one level, one deadline
        if not is_repo_id(base):
            self.note("base_config", f"'{base[:100]}' is not a Hub model id")
            return None, None
        try:
            record = await self.base_record(base)
        except HubCallError as exc:
            self.note("base_config", _why(exc))
            return None, None
        if isinstance(record, HubOk) and record.config is not None:
            return record.config, record.id
        self.note("base_config", why_no_config(record))
        return None, None

    async def base_record(self, base: str) -> HubRecord:
        key = model_key(self.settings, base)
        record: HubRecord | None = None
        if self.cache is not None:
            record = await self.cache.load(key, RECORDS)
        if record is None:
            record = await fetch_record(base, self.settings, depth=self.depth + 1,
                                        deadline=self.deadline)
            if self.cache is not None and isinstance(record, HubOk):
                await self.cache.store(key, record, RECORDS, record_ttl(self.settings, record))
        return record

    def note(self, part: UnreadPart, reason: str) -> None:
        self.unread.append(Unread(part, reason))


def _read_listing(info: ModelInfo, repo_id: str) -> RepoListing:
    """The plain values of huggingface_hub's ModelInfo that the protocol reads."""
    files = (tuple(s.rfilename for s in info.siblings if isinstance(s.rfilename, str))
             if info.siblings is not None else None)
    gguf = info.gguf if isinstance(info.gguf, dict) else {}
    total = gguf.get("total")
    card_base = info.card_data.get("base_model") if info.card_data is not None else None
    return RepoListing(
        id=info.id if isinstance(info.id, str) else repo_id,
        sha=info.sha if isinstance(info.sha, str) else None,
        files=files,
        params=params_by_dtype(info.safetensors.parameters) if info.safetensors else None,
        gguf_total=total if isinstance(total, int) and not isinstance(total, bool) else None,
        base_model=base_model_of(card_base, info.tags),
        gated=bool(info.gated))


def _why(exc: HubCallError | TimeoutError) -> str:
    """A failed request, as a clause for the note ("the Hub kept failing (HTTP 500, retried)")."""
    if isinstance(exc, TimeoutError):
        return "the Hub did not answer in time"
    return f"the Hub {exc.reason}"
