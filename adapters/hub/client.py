"""The calls to huggingface_hub: each runs in a daemon thread, is retried on 429/5xx within the
deadline, and ends in an answer or one of the errors of adapters/hub/errors.py (final answers
about the repo, such as not found, gated or no such file, included).

huggingface_hub is synchronous and reads its endpoint, token and offline flag from the
environment when first imported; so the endpoint and the token are passed explicitly
(``HubSettings``), and the library is imported only when the Hub is really asked, in a thread,
so that the event loop (and every deadline) keeps running meanwhile.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from adapters.hub.errors import (
    BadJson,
    BadToken,
    FileNotFound,
    Gated,
    HubCallError,
    HubDown,
    NoAccess,
    RepoNotFound,
    TooLarge,
)
from adapters.hub.retry import Deadline, with_retries
from adapters.hub.settings import HubSettings
from adapters.hub.threads import in_thread

if TYPE_CHECKING:
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

T = TypeVar("T")
log = logging.getLogger("fits.hub")

_library_loaded = False


def _import_library() -> None:
    import httpx2  # noqa: F401
    import huggingface_hub.errors  # noqa: F401
    from huggingface_hub import HfApi, get_session  # noqa: F401


async def load_library() -> None:
    """Import huggingface_hub (about 0.25 s) in a thread the first time, so that the event loop,
    and with it every deadline, keeps running meanwhile."""
    global _library_loaded
    if not _library_loaded:
        await in_thread(_import_library)
        _library_loaded = True


def api(settings: HubSettings) -> HfApi:
    from huggingface_hub import HfApi

    # token=False: never fall back to a token file or environment the settings did not name.
    return HfApi(endpoint=settings.endpoint, token=settings.token or False, library_name="fits")


# How long past its deadline a request's own HTTP timeout is: the deadline (asyncio) always
# fires first and its answer says "did not answer within", never a racing ReadTimeout; the
# abandoned thread ends this much later.
TIMEOUT_SLACK_S = 0.5


def timeout(deadline: Deadline) -> float:
    """The HTTP timeout of one request bounded by ``deadline``."""
    return deadline.remaining() + TIMEOUT_SLACK_S


async def hub_call(fn: Callable[[], T], settings: HubSettings, deadline: Deadline) -> T:
    """One Hub call in a thread, retried on 429/5xx; every failure becomes a HubCallError whose
    reason the answer can carry (or a narrower one the caller reads: Gated, RepoNotFound...)."""
    await load_library()

    async def once() -> T:
        return await in_thread(fn)

    try:
        return await with_retries(once, retryable=_retry_hint, deadline=deadline,
                                  attempts=settings.attempts, base_delay_s=settings.backoff_s)
    except Exception as exc:  # every failure is mapped, none is passed over
        raise _as_call_error(exc) from None


def _as_call_error(exc: Exception) -> HubCallError:
    """What a failed call means: a final answer about the repo (gated, not found, no such file),
    a refused token, a Hub that limits, fails or is unreachable, an answer fits cannot read.
    An error of no kind known here is logged with its traceback, and the answer falls back."""
    from httpx2 import HTTPError
    from huggingface_hub import errors as hf

    if isinstance(exc, HubCallError):
        return exc
    if isinstance(exc, hf.GatedRepoError):  # before its base class, RepositoryNotFoundError
        return Gated()
    if isinstance(exc, hf.RepositoryNotFoundError):
        return RepoNotFound()
    if isinstance(exc, hf.EntryNotFoundError):
        return FileNotFound()
    if isinstance(exc, hf.RevisionNotFoundError):  # the commit model_info named is gone
        return HubDown("changed while fits read it (its revision is gone)")
    if isinstance(exc, hf.OfflineModeIsEnabled):
        return HubDown("was not asked: huggingface_hub is in offline mode (HF_HUB_OFFLINE)")
    if isinstance(exc, hf.HfHubHTTPError):
        return _http_error(exc)
    if isinstance(exc, (ValueError, KeyError, TypeError, RecursionError,
                        hf.SafetensorsParsingError, hf.NotASafetensorsRepoError)):
        return HubDown(f"sent an answer fits could not read ({type(exc).__name__})")
    if isinstance(exc, (HTTPError, OSError)):  # connection refused, DNS, TLS, timeouts
        return HubDown(f"could not be reached ({type(exc).__name__})")
    log.warning("unexpected error from the Hub client", exc_info=exc)
    return HubDown(f"failed in an unexpected way ({type(exc).__name__})")


def _http_error(exc: HfHubHTTPError) -> HubCallError:
    status = exc.response.status_code if exc.response is not None else 0
    if status == 401:  # huggingface_hub maps this to not-found only on https endpoints
        message = exc.response.headers.get("X-Error-Message", "") if exc.response else ""
        return BadToken() if "Invalid credentials" in message else NoAccess()
    if status == 429:
        return HubDown("is limiting the request rate (429)")
    if status >= 500:
        return HubDown(f"kept failing (HTTP {status}, retried)")
    return HubDown(f"refused the request (HTTP {status})")


def _retry_hint(exc: Exception) -> float | None:
    """Seconds to wait before retrying (0: no hint), or None when the error is final."""
    from httpx2 import RemoteProtocolError, TimeoutException
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(exc, HfHubHTTPError) and exc.response is not None:
        status = exc.response.status_code
        if status == 429 or status >= 500:
            after = exc.response.headers.get("Retry-After", "")
            return float(after) if after.isdigit() else 0.0
        return None
    if isinstance(exc, (TimeoutException, RemoteProtocolError)):
        return 0.0
    return None


def get_json(settings: HubSettings, repo_id: str, filename: str, revision: str | None,
             seconds: float) -> object:
    """GET one JSON file of a repo, streamed and refused past ``settings.max_config_bytes``
    (by its Content-Length, or as soon as more bytes arrive), through huggingface_hub's session
    and error mapping. Runs in a thread."""
    from huggingface_hub import get_session, hf_hub_url, hf_raise_for_status

    url = hf_hub_url(repo_id, filename, revision=revision, endpoint=settings.endpoint)
    headers = {"user-agent": "fits; huggingface_hub"}
    if settings.token:
        headers["authorization"] = f"Bearer {settings.token}"
    limit = settings.max_config_bytes
    with get_session().stream("GET", url, headers=headers, timeout=seconds) as response:
        declared = response.headers.get("Content-Length", "")
        if response.status_code >= 400:
            if declared.isdigit() and int(declared) <= 65_536:
                response.read()  # the error body, for huggingface_hub's message
            hf_raise_for_status(response)
        if declared.isdigit() and int(declared) > limit:
            raise TooLarge(filename, limit)
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > limit:
                raise TooLarge(filename, limit)
    try:
        return json.loads(body)
    except ValueError:
        raise BadJson(filename, "truncated or not JSON") from None
    except RecursionError:
        raise BadJson(filename, "nested too deeply") from None
