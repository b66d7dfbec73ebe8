"""The Hugging Face Hub behind `fits`: a model's config.json, its exact parameter count and its
GGUF files, fetched asynchronously, cached, shared between concurrent requests, bounded by a
deadline, and turned into a clear sentence when anything goes wrong.

huggingface_hub is synchronous and reads its endpoint, token and offline flag from the
environment when first imported; so every call here runs in a thread, with the endpoint and the
token passed explicitly (``HubSettings``), and the library is imported only when the Hub is
really asked (the CLI answers snapshot models without loading it).

One resolve costs one request when the model card lists safetensors parameters
(``model_info(expand=[...])``) plus one streamed GET of config.json, capped in size. Without the
parameter listing, the safetensors headers are read (``get_safetensors_metadata``); a GGUF repo
costs one more request for its file sizes and takes its architecture from its base model.

A config is data: it is parsed as JSON and never executed (no ``trust_remote_code``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from cachetools import LRUCache

from core import snapshot
from core.errors import ModelNotFound, UserError
from core.hub_cache import (
    ConfigCache,
    Deadline,
    DiskConfigCache,
    MemoryConfigCache,
    with_retries,
)
from core.resolve import ResolvedModel, from_config, parse_size, resolve_offline, spec_for_size
from core.units import format_bytes
from core.vocabulary import GGUF_PRESETS

log = logging.getLogger("fits.hub")
T = TypeVar("T")

DEFAULT_ENDPOINT = "https://huggingface.co"
# One request for everything model_info can tell: parameters by dtype, the (partial) config, the
# gate, the commit, the file list, GGUF metadata and the card's base_model.
EXPAND = ["safetensors", "config", "gated", "sha", "siblings", "gguf", "cardData", "tags"]
_TRUTHY = ("1", "true", "yes", "on")
_ID_PART = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?", re.ASCII)
_SIZE_IN_NAME = re.compile(r"(?<![A-Za-z0-9.])(\d+(?:\.\d+)?)[bB](?![A-Za-z0-9])")
_GGUF_ORDER = ("Q4_K_M", "Q4_K_S", "Q5_K_M", "Q4_0", "Q6_K", "Q8_0", "IQ4_XS", "Q5_K_S", "Q3_K_M")
_PRESETS_LONGEST_FIRST = sorted(GGUF_PRESETS, key=len, reverse=True)


@dataclass(frozen=True)
class HubSettings:
    """Where the Hub is and how patient to be. The token never appears in repr or messages."""

    endpoint: str = DEFAULT_ENDPOINT
    token: str | None = field(default=None, repr=False)
    offline: bool = False
    cache_dir: str | None = None
    deadline_s: float = 5.0  # one whole resolve (every request, retries included)
    search_deadline_s: float = 2.0  # autocomplete answers within Discord's 3 s
    ttl_s: float = 6 * 3600.0  # a found model
    negative_ttl_s: float = 300.0  # not found, gated, unreadable: the owner may fix it soon
    search_ttl_s: float = 3600.0
    max_config_bytes: int = 2_000_000  # the same limit as an uploaded config.json
    attempts: int = 3  # tries per request on 429/5xx
    backoff_s: float = 0.2

    def __post_init__(self) -> None:
        object.__setattr__(self, "endpoint", self.endpoint.strip().rstrip("/"))
        if urlsplit(self.endpoint).scheme not in ("http", "https"):
            raise UserError(f"The Hub endpoint '{_public_url(self.endpoint)[:80]}' is not an "
                            "http(s) URL.", "Set HF_ENDPOINT to a URL such as https://huggingface.co.")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> HubSettings:
        """HF_ENDPOINT, HF_TOKEN (or HUGGING_FACE_HUB_TOKEN), HF_HUB_OFFLINE (1 forbids the
        network), FITS_CACHE_DIR, FITS_HUB_DEADLINE_S."""
        import os

        env = os.environ if environ is None else environ
        token = (env.get("HF_TOKEN") or env.get("HUGGING_FACE_HUB_TOKEN") or "").strip() or None
        deadline = cls.deadline_s
        with contextlib.suppress(ValueError):
            deadline = min(60.0, max(0.1, float(env.get("FITS_HUB_DEADLINE_S", "") or deadline)))
        return cls(endpoint=env.get("HF_ENDPOINT", "").strip() or DEFAULT_ENDPOINT, token=token,
                   offline=env.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUTHY,
                   cache_dir=env.get("FITS_CACHE_DIR", "").strip() or None, deadline_s=deadline)


@dataclass(frozen=True)
class GgufFile:
    """One quantization of a GGUF repo: its files (split files together) and their bytes."""

    quant: str
    files: tuple[str, ...]
    size_bytes: int | None


@dataclass(frozen=True)
class HubResolution:
    """A resolved model plus what the Hub told about its files."""

    model: ResolvedModel
    gguf: tuple[GgufFile, ...] = ()

    def gguf_for(self, quant: str) -> GgufFile | None:
        return next((g for g in self.gguf if g.quant == quant.upper()), None)

    def default_gguf(self) -> GgufFile | None:
        for quant in _GGUF_ORDER:
            if (hit := self.gguf_for(quant)) is not None:
                return hit
        return self.gguf[0] if self.gguf else None


def make_cache(settings: HubSettings) -> ConfigCache:
    """On disk under FITS_CACHE_DIR when it is set (the CLI then reuses earlier answers), else in
    process."""
    if settings.cache_dir:
        return DiskConfigCache(settings.cache_dir)
    return MemoryConfigCache()


def validate_repo_id(repo_id: str) -> str:
    """The Hub's id grammar: org/name, each part 1-96 of letters, digits, '-', '_', '.', starting
    with a letter or digit, not ending in '-' or '.', no '--' or '..', name not ending in '.git'.
    Raises UserError before any request is made."""
    hint = "A Hub model id looks like org/name, for example meta-llama/Llama-3.1-8B."
    text = repo_id.strip()
    parts = text.split("/")
    if len(parts) != 2:
        raise UserError(f"'{text[:100]}' is not a Hub model id (org/name).", hint)
    for part in parts:
        if not _ID_PART.fullmatch(part) or "--" in part or ".." in part:
            raise UserError(f"'{text[:100]}' is not a valid Hub model id.",
                            hint + " Ids use letters, digits, '-', '_' and '.' (at most 96 each).")
    if parts[1].lower().endswith(".git"):
        raise UserError(f"'{text[:100]}' is not a valid Hub model id.", hint)
    return text


# --- resolving ------------------------------------------------------------------------------


async def resolve_hub(repo_id: str, settings: HubSettings, cache: ConfigCache) -> ResolvedModel:
    """A model from the Hub (config.json, exact parameter count, quantization_config, GGUF
    files). Not found, gated and unreadable configs raise UserError; an unreachable, slow or
    failing Hub falls back to the bundled snapshot or the size in the name, with a note."""
    return (await resolve_hub_details(repo_id, settings, cache)).model


async def resolve_hub_details(repo_id: str, settings: HubSettings,
                              cache: ConfigCache) -> HubResolution:
    repo_id = validate_repo_id(repo_id)
    if settings.offline:
        cached = await cache.get(_model_key(settings, repo_id))
        if isinstance(cached, dict) and cached.get("kind") == "ok":
            found = _from_record(repo_id, cached, settings)
            note = "offline (HF_HUB_OFFLINE=1): Hub data from the local cache"
            return replace(found, model=replace(found.model, notes=(note, *found.model.notes)))
        return _fallback(repo_id, "was not asked: offline mode (HF_HUB_OFFLINE=1) is on")

    async def fetch() -> dict[str, Any]:
        return await _fetch_record(repo_id, settings, cache)

    def ttl(record: dict[str, Any]) -> float:
        return settings.ttl_s if record.get("kind") == "ok" else settings.negative_ttl_s

    try:
        record = await cache.get_or_fetch(_model_key(settings, repo_id), fetch, ttl_s=ttl,
                                          deadline_s=settings.deadline_s)
    except TimeoutError:
        return _fallback(repo_id, f"did not answer within {settings.deadline_s:g} s")
    except _HubDown as down:
        return _fallback(repo_id, down.reason)
    return _from_record(repo_id, record, settings)


async def resolve_model(text: str, settings: HubSettings, cache: ConfigCache) -> HubResolution:
    """What an estimate needs, from what the user typed: the snapshot for what it has (exact and
    instant, even near misses such as a missing '-hf'), a bare size, else the Hub for org/name
    ids; without the Hub (offline) the offline path and its 'did you mean'."""
    if parse_size(text) is not None or snapshot.lookup(text)[0] is not None:
        return HubResolution(resolve_offline(text))
    if "/" in text:
        if settings.offline:
            record = await cache.get(_model_key(settings, text))
            if not (isinstance(record, dict) and record.get("kind") == "ok"):
                try:
                    resolve_offline(text)
                except ModelNotFound as err:
                    did = f"Did you mean {', '.join(err.suggestions)}? " if err.suggestions else ""
                    hint = (f"{did}The Hub was not asked: offline mode (HF_HUB_OFFLINE=1) is on; "
                            "unset it.")
                    raise ModelNotFound(err.message, hint, err.suggestions,
                                        config_helps=True) from None
        return await resolve_hub_details(text, settings, cache)
    try:
        return HubResolution(resolve_offline(text))
    except ModelNotFound as err:
        if settings.offline or err.suggestions:
            raise  # the snapshot's near misses are instant; the Hub is asked only without any
        try:
            found = await _hub_search(text, settings, cache, 5)
        except _BadToken:
            raise ModelNotFound(err.message, f"{err.hint} {BAD_TOKEN_NOTE}",
                                err.suggestions) from None
        if not found:
            raise
        raise ModelNotFound(err.message, f"Did you mean {', '.join(found)}?", found) from None


def _from_record(repo_id: str, record: dict[str, Any], settings: HubSettings) -> HubResolution:
    kind = record.get("kind")
    page = f"{_public_url(settings.endpoint)}/{repo_id}"
    if kind == "not_found":
        suggestions = snapshot.suggest(repo_id)
        suggestions += [s for s in record.get("suggestions", []) if s not in suggestions]
        suggestions = suggestions[:5]
        private = "" if settings.token else " A private repo needs HF_TOKEN."
        hint = (f"Did you mean {', '.join(suggestions)}?{private}" if suggestions else
                f"Check the spelling.{private}")
        raise ModelNotFound(f"There is no model '{repo_id}' on the Hub (or it is private).", hint,
                            suggestions)
    if kind == "gated":
        if record.get("with_token"):
            raise UserError(f"{repo_id} is gated and the HF_TOKEN given has no access to it.",
                            f"Accept the licence at {page} with the account of that token.")
        raise UserError(f"{repo_id} is gated on the Hub: reading its config needs a token.",
                        f"Set HF_TOKEN to a Hugging Face token and accept the licence at {page}.")
    if kind == "bad_token":
        raise UserError("The Hub refused the HF_TOKEN given (invalid credentials).",
                        "Check HF_TOKEN, or unset it: public models need no token.")
    if kind == "too_large":
        raise UserError(f"The Hub's {record['file']} for {repo_id} is larger than a config can "
                        f"be ({int(record['limit']) / 1e6:g} MB); fits did not read it.",
                        "Ask about its base model, or give a size such as 7b.", config_helps=True)
    if kind == "bad_config":
        raise UserError(f"The Hub's config.json for {repo_id} is not a model config "
                        f"({record['why']}).", "Ask about its base model, or give a size such as "
                        "7b.", config_helps=True)
    key = _memo_key(repo_id, record)
    if key is None:
        return _model_from_ok(repo_id, record)
    found: HubResolution | None = _RESOLVED.get(key)
    if found is None:
        found = _RESOLVED[key] = _model_from_ok(repo_id, record)
    return found


# Specs built from cached records, per commit: a cached resolve does not rebuild the spec.
_RESOLVED: LRUCache[tuple[Any, ...], HubResolution] = LRUCache(maxsize=256)


def _memo_key(repo_id: str, record: dict[str, Any]) -> tuple[Any, ...] | None:
    if not isinstance(record.get("sha"), str):
        return None
    return (repo_id.lower(), record.get("id"), record["sha"], record.get("config_repo"),
            record.get("params_total"), record.get("params_from"), len(record.get("gguf", [])))


def _model_from_ok(repo_id: str, record: dict[str, Any]) -> HubResolution:
    model_id = str(record.get("id") or repo_id)
    notes: list[str] = []
    if model_id.lower() != repo_id.lower():
        notes.append(f"'{repo_id}' is {model_id} on the Hub")
    gguf = tuple(GgufFile(q, tuple(files), size) for q, files, size in record.get("gguf", []))
    config = record.get("config")
    config_repo = record.get("config_repo")
    total = record.get("params_total")
    if gguf:
        sizes = ", ".join(f"{g.quant} {format_bytes(g.size_bytes)}" if g.size_bytes else g.quant
                          for g in gguf[:8])
        more = f" and {len(gguf) - 8} more" if len(gguf) > 8 else ""
        notes.append(f"GGUF repo with {sizes}{more}")
    if config is None:
        if isinstance(total, int) and total > 0:
            spec = spec_for_size(total / 1e9)
            notes.append(f"{model_id} has no config.json fits could read: estimated as a "
                         f"Llama-style model of its exact {total:,} parameters")
            resolved = ResolvedModel(model_id, "hub", spec, (*notes, *spec.notes),
                                     exact_params=False, hub_params=total,
                                     recipe=("size", total / 1e9))
            return HubResolution(resolved, gguf)
        raise UserError(f"{model_id} on the Hub has no config.json and names no base model.",
                        "Give its base model's id.", config_helps=True)
    if config_repo and str(config_repo).lower() != model_id.lower():
        notes.append(f"architecture from its base model {config_repo}")
    if "auto_map" in config:
        notes.append("its architecture ships as custom code (auto_map); fits reads config.json "
                     "as data and runs none of it")
    model = from_config(model_id, config, "hub", tuple(notes))
    if isinstance(total, int) and total > 0:
        by_dtype = record.get("params") or {}
        dtypes = ", ".join(f"{k} {v:,}" for k, v in sorted(by_dtype.items()) if isinstance(v, int))
        source = record.get("params_from") or "safetensors metadata"
        note = (f"exact parameter count from the Hub's {source}: {total:,}"
                + (f" ({dtypes})" if dtypes and len(by_dtype) > 1 else ""))
        arch = model.spec.params
        if abs(arch - total) > 0.005 * total:
            note += (f"; the architecture gives {arch:,} (the checkpoint stores packed quantized "
                     "weights or extra tensors)" if model.quantization else
                     f"; the architecture gives {arch:,}")
        model = replace(model, notes=(*model.notes, note), hub_params=total)
    return HubResolution(model, gguf)


def _fallback(repo_id: str, reason: str) -> HubResolution:
    """The Hub could not answer: the bundled snapshot, else the size in the name, else a
    sentence saying what happened."""
    log.info("hub fallback for %s: %s", repo_id, reason)
    try:
        model = resolve_offline(repo_id)
    except ModelNotFound as err:
        billions = _size_in_name(repo_id)
        if billions is None:
            did = f" Did you mean {', '.join(err.suggestions)}?" if err.suggestions else ""
            raise ModelNotFound(
                f"The Hub {reason}, and the bundled snapshot does not have {repo_id}.",
                f"Try again later, or give a size such as 7b.{did}", err.suggestions,
                config_helps=True) from None
        spec = spec_for_size(billions)
        note = f"the Hub {reason}: estimated from the size in the name, {billions:g}B"
        return HubResolution(ResolvedModel(repo_id, "size", spec, (note, *spec.notes),
                                           exact_params=False, recipe=("size", billions)))
    note = f"the Hub {reason}: answered from the bundled snapshot"
    return HubResolution(replace(model, notes=(note, *model.notes)))


def _size_in_name(repo_id: str) -> float | None:
    match = _SIZE_IN_NAME.search(repo_id.split("/", 1)[-1])
    if match is None:
        return None
    billions = float(match[1])
    return billions if 0.01 <= billions <= 2000 else None


# --- search ---------------------------------------------------------------------------------


async def search_models(query: str, settings: HubSettings, cache: ConfigCache,
                        limit: int = 25) -> list[str]:
    """Ids for autocomplete and `fits models <query>`: bundled models that match, then the Hub's
    (most downloaded first), then the snapshot's near misses. The Hub part is cached, bounded by
    ``settings.search_deadline_s`` and left out when offline or failing."""
    return (await find_models(query, settings, cache, limit)).ids


@dataclass(frozen=True)
class ModelSearch:
    ids: list[str]
    note: str | None = None  # why the Hub's part is missing, when the user can do something


async def find_models(query: str, settings: HubSettings, cache: ConfigCache,
                      limit: int = 25) -> ModelSearch:
    """``search_models`` with a note when the Hub refused to search (a bad HF_TOKEN)."""
    q = query.strip()[:100]
    limit = max(1, min(limit, 100))
    local = snapshot.search(q, limit)
    words = q.lower().replace("/", " ").split()
    direct = [i for i in local if all(w in i.lower() for w in words)]
    near = [i for i in local if i not in direct]
    hub: list[str] = []
    note = None
    if len(direct) < limit and q:
        try:
            hub = await _hub_search(q, settings, cache, limit)
        except _BadToken:
            note = BAD_TOKEN_NOTE
    out: list[str] = []
    seen: set[str] = set()
    for repo in (*direct, *hub, *near):
        if repo.lower() not in seen:
            seen.add(repo.lower())
            out.append(repo)
    return ModelSearch(out[:limit], note)


BAD_TOKEN_NOTE = ("The Hub refused the HF_TOKEN this fits was given (invalid credentials), so "
                  "it could not be searched.")


async def _hub_search(query: str, settings: HubSettings, cache: ConfigCache,
                      limit: int) -> list[str]:
    """The Hub's search; [] when it is offline, slow or failing. Raises _BadToken when the Hub
    refuses the token: every search would fail the same way, and the user should hear why."""
    if settings.offline or not query.strip():
        return []

    async def fetch() -> list[str]:
        deadline = Deadline(settings.search_deadline_s)

        def call() -> list[str]:
            api = _api(settings)
            found = api.list_models(search=query, sort="downloads", limit=limit)
            return [m.id for m in found if isinstance(m.id, str)][:limit]

        return await _hub_call(call, settings, deadline)

    key = f"search|{settings.endpoint}|{_auth_tag(settings)}|{limit}|{query.lower()}"
    try:
        return await cache.get_or_fetch(key, fetch, ttl_s=lambda _: settings.search_ttl_s,
                                        deadline_s=settings.search_deadline_s)
    except (TimeoutError, _HubDown) as exc:
        log.info("hub search for %r skipped: %s", query, getattr(exc, "reason", "deadline"))
        return []
    except _NoAccess:
        return []
    except _BadToken:
        log.warning("hub search refused: the HF_TOKEN given is not valid")
        raise


# --- fetching (runs once per key, in a single flight) -----------------------------------------


class _HubDown(Exception):
    """The Hub could not give an answer (unreachable, 429/5xx after retries, unreadable)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _TooLarge(Exception):
    pass


class _BadToken(Exception):
    """401 "Invalid credentials": the Hub does not know the token."""


class _NoAccess(Exception):
    """A bare 401: a repo that does not exist or is private (the Hub does not say which)."""


def _model_key(settings: HubSettings, repo_id: str) -> str:
    return f"model|{settings.endpoint}|{_auth_tag(settings)}|{repo_id.lower()}"


def _auth_tag(settings: HubSettings) -> str:
    """Keys differ per token (a gated answer for one is not another's) without holding it."""
    if not settings.token:
        return "anon"
    return "t" + hashlib.sha256(settings.token.encode()).hexdigest()[:12]


def _public_url(url: str) -> str:
    """A URL without any user:password part, fit for a message."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _api(settings: HubSettings) -> Any:
    from huggingface_hub import HfApi

    # token=False: never fall back to a token file or environment the settings did not name.
    return HfApi(endpoint=settings.endpoint, token=settings.token or False, library_name="fits")


async def _in_thread(fn: Callable[[], T]) -> T:
    """Run blocking ``fn`` in a daemon thread. Unlike ``asyncio.to_thread``, whose executor is
    joined when ``asyncio.run`` ends and again at interpreter exit, a call abandoned at the
    deadline does not hold the process: the CLI answers and exits on time."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if future.done():
            return
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)

    def work() -> None:
        try:
            result: Any = fn()
            ok = True
        except BaseException as exc:
            result, ok = exc, False
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is waiting
            loop.call_soon_threadsafe(settle, ok, result)

    threading.Thread(target=work, name="fits-hub", daemon=True).start()
    return await future


def _retry_hint(exc: Exception) -> float | None:
    """Seconds to wait before retrying (0: no hint), or None when the error is final."""
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(exc, HfHubHTTPError) and exc.response is not None:
        status = exc.response.status_code
        if status == 429 or status >= 500:
            after = exc.response.headers.get("Retry-After", "")
            return float(after) if after.isdigit() else 0.0
        return None
    import httpx2

    if isinstance(exc, (httpx2.TimeoutException, httpx2.RemoteProtocolError)):
        return 0.0
    return None


_library_loaded = False


def _import_library() -> None:
    import httpx2  # noqa: F401
    import huggingface_hub.errors  # noqa: F401
    from huggingface_hub import HfApi, get_session  # noqa: F401


async def _load_library() -> None:
    """Import huggingface_hub (about 0.25 s) in a thread the first time, so that the event loop,
    and with it every deadline, keeps running meanwhile."""
    global _library_loaded
    if not _library_loaded:
        await _in_thread(_import_library)
        _library_loaded = True


async def _hub_call(fn: Callable[[], T], settings: HubSettings, deadline: Deadline) -> T:
    """One Hub call in a thread, retried on 429/5xx, every failure but a final HTTP answer
    turned into _HubDown."""
    await _load_library()
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    async def once() -> T:
        return await _in_thread(fn)

    try:
        return await with_retries(once, retryable=_retry_hint, deadline=deadline,
                                  attempts=settings.attempts, base_delay_s=settings.backoff_s)
    except (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError):
        raise  # final answers about the repo: the caller decides
    except OfflineModeIsEnabled:
        raise _HubDown("was not asked: huggingface_hub is in offline mode (HF_HUB_OFFLINE)") from None
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else 0
        if status == 401:  # huggingface_hub maps this to not-found only on https endpoints
            message = exc.response.headers.get("X-Error-Message", "") if exc.response else ""
            raise (_BadToken() if "Invalid credentials" in message else _NoAccess()) from None
        if status == 429:
            raise _HubDown("is limiting the request rate (429)") from None
        if status >= 500:
            raise _HubDown(f"kept failing (HTTP {status}, retried)") from None
        raise _HubDown(f"refused the request (HTTP {status})") from None
    except (_TooLarge, _BadJson, _BadToken, _NoAccess):
        raise
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise _HubDown(f"sent an answer fits could not read ({type(exc).__name__})") from None
    except Exception as exc:  # connection refused, DNS, TLS, timeouts: httpx2 and OSError kinds
        raise _HubDown(f"could not be reached ({type(exc).__name__})") from None


def _timeout(deadline: Deadline) -> float:
    return max(0.05, deadline.remaining())


async def _fetch_record(repo_id: str, settings: HubSettings, cache: ConfigCache | None = None,
                        *, depth: int = 0) -> dict[str, Any]:
    """Everything the Hub says about one repo, as a JSON-able record (cached as is)."""
    deadline = Deadline(settings.deadline_s)
    await _load_library()
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    api = _api(settings)
    try:
        info = await _hub_call(lambda: api.model_info(repo_id, expand=EXPAND,
                                                      timeout=_timeout(deadline)),
                               settings, deadline)
    except GatedRepoError:
        return {"kind": "gated", "with_token": bool(settings.token)}
    except (RepositoryNotFoundError, _NoAccess):
        suggestions = [] if depth else await _search_near(repo_id, settings, deadline)
        return {"kind": "not_found", "suggestions": suggestions}
    except _BadToken:
        return {"kind": "bad_token"}
    model_id = info.id if isinstance(info.id, str) else repo_id
    revision = info.sha if isinstance(info.sha, str) else None
    files = ([s.rfilename for s in info.siblings if isinstance(s.rfilename, str)]
             if info.siblings is not None else None)
    gguf_names = [f for f in files or [] if f.lower().endswith(".gguf")
                  and not f.rsplit("/", 1)[-1].lower().startswith("mmproj")]

    # config.json (and the quantize_config.json of older GPTQ repos)
    config: dict[str, Any] | None = None
    config_repo: str | None = None
    if files is None or "config.json" in files:
        try:
            loaded = await _hub_call(lambda: _get_json(settings, model_id, "config.json", revision,
                                                       _timeout(deadline)), settings, deadline)
        except GatedRepoError:
            return {"kind": "gated", "with_token": bool(settings.token)}
        except (RepositoryNotFoundError, _NoAccess):
            return {"kind": "not_found", "suggestions": []}
        except _BadToken:
            return {"kind": "bad_token"}
        except _TooLarge:
            return {"kind": "too_large", "file": "config.json", "limit": settings.max_config_bytes}
        except _BadJson as bad:
            return {"kind": "bad_config", "why": bad.why}
        except Exception as exc:  # EntryNotFound: no config.json in this repo
            if isinstance(exc, _HubDown):
                raise
            loaded = None
        if loaded is not None:
            if not isinstance(loaded, dict):
                return {"kind": "bad_config", "why": "not a JSON object"}
            config, config_repo = loaded, model_id
    if config is not None and "quantization_config" not in config and files and \
            "quantize_config.json" in files:
        with contextlib.suppress(Exception):
            extra = await _hub_call(lambda: _get_json(settings, model_id, "quantize_config.json",
                                                      revision, _timeout(deadline)),
                                    settings, deadline)
            if isinstance(extra, dict):
                config = {**config, "quantization_config": {"quant_method": "gptq", **extra}}

    # exact parameter count
    params: dict[str, int] | None = None
    params_from: str | None = None
    if info.safetensors is not None and isinstance(info.safetensors.parameters, dict):
        params = {str(k): int(v) for k, v in info.safetensors.parameters.items()
                  if isinstance(v, int)}
        params_from = "safetensors metadata"
    elif not gguf_names and (files is None or "model.safetensors" in files
                             or "model.safetensors.index.json" in files):
        with contextlib.suppress(Exception):
            meta = await _hub_call(lambda: api.get_safetensors_metadata(
                model_id, revision=revision, timeout=_timeout(deadline)), settings, deadline)
            params = {str(k): int(v) for k, v in meta.parameter_count.items()}
            params_from = "safetensors headers"
    gguf_meta = info.gguf if isinstance(info.gguf, dict) else {}
    if params is None and isinstance(gguf_meta.get("total"), int):
        params, params_from = {"GGUF": int(gguf_meta["total"])}, "GGUF metadata"

    # GGUF files, their sizes, and the base model's architecture
    gguf: list[list[Any]] = []
    base = _base_model(info)
    if gguf_names:
        sizes: dict[str, int] = {}
        with contextlib.suppress(Exception):
            listed = await _hub_call(lambda: api.get_paths_info(model_id, gguf_names,
                                                                revision=revision),
                                     settings, deadline)
            sizes = {p.path: int(p.size) for p in listed if isinstance(getattr(p, "size", None), int)}
        gguf = _group_gguf(gguf_names, sizes)
        if config is None and base:
            config, config_repo = await _base_config(base, settings, cache, depth)

    return {"kind": "ok", "id": model_id, "sha": revision, "config": config,
            "config_repo": config_repo, "params": params,
            "params_total": sum(params.values()) if params else None, "params_from": params_from,
            "gguf": gguf, "base_model": base, "gated": bool(info.gated)}


async def _base_config(base: str, settings: HubSettings, cache: ConfigCache | None,
                       depth: int) -> tuple[dict[str, Any] | None, str | None]:
    """The config of a GGUF repo's base model: the snapshot's, the cache's, or the Hub's."""
    entry = snapshot.entries().get(base.lower())
    if entry is not None:
        return entry.config, entry.id
    if depth > 0:
        return None, None
    try:
        validate_repo_id(base)
    except UserError:
        return None, None
    key = _model_key(settings, base)
    record = await cache.get(key) if cache is not None else None
    if not isinstance(record, dict):
        try:
            record = await _fetch_record(base, settings, depth=depth + 1)
        except _HubDown:
            return None, None
        if cache is not None and record.get("kind") == "ok":
            await cache.set(key, record, settings.ttl_s)
    if record.get("kind") == "ok" and isinstance(record.get("config"), dict):
        return record["config"], str(record.get("id") or base)
    return None, None


def _base_model(info: Any) -> str | None:
    card = info.card_data
    base = card.get("base_model") if card is not None and hasattr(card, "get") else None
    if isinstance(base, list):
        base = base[0] if base else None
    if isinstance(base, str) and "/" in base:
        return base
    for tag in info.tags or []:
        if isinstance(tag, str) and tag.startswith("base_model:"):
            value = tag.split(":")[-1]
            if "/" in value:
                return value
    return None


def _group_gguf(names: list[str], sizes: dict[str, int]) -> list[list[Any]]:
    """[[quant, [files], bytes or None], ...]: split files summed, in the repo's order."""
    groups: dict[str, tuple[list[str], list[int | None]]] = {}
    for name in names:
        quant = gguf_quant(name)
        if quant is None:
            continue
        files, sz = groups.setdefault(quant, ([], []))
        files.append(name)
        sz.append(sizes.get(name))
    return [[q, files, sum(s for s in sz if s is not None) if all(s is not None for s in sz)
             else None] for q, (files, sz) in groups.items()]


def gguf_quant(filename: str) -> str | None:
    """The llama-quantize preset in a GGUF file name ('llama-2-7b.Q4_K_M.gguf' -> 'Q4_K_M')."""
    stem = filename.rsplit("/", 1)[-1].upper()
    for preset in _PRESETS_LONGEST_FIRST:
        if re.search(rf"(?<![A-Z0-9]){preset}(?![A-Z0-9])", stem):
            return preset
    return None


async def _search_near(repo_id: str, settings: HubSettings, deadline: Deadline) -> list[str]:
    """Hub ids near a missing one, for 'did you mean' (best effort, within the deadline)."""
    name = repo_id.split("/", 1)[-1]
    if deadline.remaining() < 0.1:
        return []

    def call() -> list[str]:
        found = _api(settings).list_models(search=name, sort="downloads", limit=5)
        return [m.id for m in found if isinstance(m.id, str)][:5]

    try:
        return await asyncio.wait_for(_hub_call(call, settings, deadline), deadline.remaining())
    except Exception:
        return []


class _BadJson(Exception):
    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def _get_json(settings: HubSettings, repo_id: str, filename: str, revision: str | None,
              timeout: float) -> Any:
    """GET one JSON file of a repo, streamed and refused past ``settings.max_config_bytes``
    (by its Content-Length, or as soon as more bytes arrive), through huggingface_hub's session
    and error mapping. Runs in a thread."""
    from huggingface_hub import get_session, hf_hub_url, hf_raise_for_status

    url = hf_hub_url(repo_id, filename, revision=revision, endpoint=settings.endpoint)
    headers = {"user-agent": "fits; huggingface_hub"}
    if settings.token:
        headers["authorization"] = f"Bearer {settings.token}"
    limit = settings.max_config_bytes
    with get_session().stream("GET", url, headers=headers, timeout=timeout) as response:
        declared = response.headers.get("Content-Length", "")
        if response.status_code >= 400:
            if declared.isdigit() and int(declared) <= 65_536:
                response.read()  # the error body, for huggingface_hub's message
            hf_raise_for_status(response)
        if declared.isdigit() and int(declared) > limit:
            raise _TooLarge(filename)
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > limit:
                raise _TooLarge(filename)
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise _BadJson("truncated or not JSON" if isinstance(exc, ValueError)
                       else "nested too deeply") from None
