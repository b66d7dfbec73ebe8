"""Slack on the service: bolt's AsyncApp wired from the settings into the aiohttp app.

- HTTP mode (SLACK_BOT_TOKEN + SLACK_SIGNING_SECRET): ``POST /slack/events`` takes slash commands,
  events and the url_verification challenge. bolt has no aiohttp request handler, so this module
  builds bolt's request from the RAW body (the signature covers the exact bytes Slack sent) and
  returns bolt's response. Before bolt sees a request, this module checks it:
  the timestamp must be a plain integer of at most 12 digits within Slack's 5-minute window and
  the v0 signature must match the body (slack_sdk's SignatureVerifier), else 401 with nothing of
  the body logged (bolt's own check, off here, logs the whole body of every failure at INFO);
  a body that is not UTF-8 cannot be Slack's either (401). A signed body must be a Slack
  envelope (a JSON object, or a form, whose fields that bolt reads have the types Slack gives
  them), else 400 with one sentence, where bolt would answer 500 with a traceback. bolt answers
  the rest: its 200, or 404 for what no listener takes.
- Socket Mode (SLACK_BOT_TOKEN + SLACK_APP_TOKEN, an ``xapp-`` token): no public URL; the
  websocket connects in the service's event loop once Slack has accepted the bot token (in the
  background, so a slow or failing Slack never holds up the JSON API) and closes on shutdown.
- The bot token: auth.test is asked ONCE, when the service starts (start-up waits for it up to
  AUTH_TIMEOUT_S), its answer (workspace, bot user; never the token) goes to the start-up log,
  and bolt gets it through ``authorize=``, so bolt never calls auth.test on a request (it would
  on the first one, holding its ack past Slack's 3 s when Slack is slow).
  - Refused (invalid_auth, token_revoked ...): "Slack: off (SLACK_BOT_TOKEN refused by Slack:
    <error>)" at WARNING; /slack/events answers 503 with one sentence and Socket Mode does not
    connect; the JSON API and the other surfaces go on. A new token needs a restart.
  - Slack unreachable or slow (a timeout, HTTP 5xx, ratelimited): one WARNING, then auth.test is
    asked again in the background, 1 s, 2 s, 4 s ... at most 60 s apart, until Slack answers.
    Meanwhile slash commands are acked and answered as usual (the answer goes to the command's
    response_url, which needs no token), and events answer 503 with Retry-After, so that Slack
    redelivers them (its retries come about 1 and 5 minutes later) to a service that knows its
    bot user and can post in the thread.

Mentions are answered once per event id across replicas: the ids are claimed on Redis when
REDIS_URL is set (bot/redis_store.py's RedisDedupe, which falls back to this process while Redis
is down), else in this process (bot/dedupe.py's MemoryDedupe).

Both modes can be on at once (e.g. while moving from one to the other). SLACK_API_URL points the
Web API client (auth.test, chat.postMessage, apps.connections.open) elsewhere: tests, proxies.
slack_bolt and slack_sdk are imported only when Slack is enabled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from aiohttp import ClientSession, web

from bot.dedupe import DedupeStore, MemoryDedupe
from bot.settings import Settings

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp
    from slack_bolt.authorization import AuthorizeResult
    from slack_sdk.signature import SignatureVerifier
    from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger("fits.slack")

EVENTS_PATH = "/slack/events"
OUTCOMES = ("ok", "user_error", "rate_limited", "bad_request", "error")
Handler = Callable[[web.Request], Awaitable[web.Response]]
OFF = ("off (set SLACK_BOT_TOKEN with SLACK_SIGNING_SECRET for HTTP mode, or with "
       "SLACK_APP_TOKEN for Socket Mode)")
MAX_TIMESTAMP_DIGITS = 12  # Unix seconds have 10 digits until the year 2286
EVENT_TTL_S = 3600  # Slack's retries of an event come within minutes
EVENT_PREFIX = "fits:slack-event:"
AUTH_TIMEOUT_S = 5.0  # one auth.test; also how long start-up waits for it
AUTH_RETRY_S = (1.0, 60.0)  # the first and the longest wait between background auth.tests
EVENTS_RETRY_AFTER_S = 60  # told to Slack with a 503 for an event that arrived too early
# auth.test errors that say the token itself is no good: asking again will not help.
REFUSED = frozenset({"invalid_auth", "not_authed", "account_inactive", "token_revoked",
                     "token_expired", "not_allowed_token_type", "team_disabled"})
MAX_ENVELOPE_DEPTH = 32  # bolt follows event / message / authorizations recursively


def _secret(value: object) -> str:
    get = getattr(value, "get_secret_value", None)
    return get().strip() if get is not None else ""


class _TokenIgnoredWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


def mount(app: web.Application, settings: Settings) -> str:
    """Add the Slack endpoint and/or the Socket Mode connection; the start-up log line."""
    bot_token = _secret(settings.slack_bot_token)
    signing_secret = _secret(settings.slack_signing_secret)
    app_token = _secret(settings.slack_app_token)
    if not bot_token or not (signing_secret or app_token):
        return OFF
    if app_token and not app_token.startswith("xapp-"):
        return "off (SLACK_APP_TOKEN must be an app-level token, xapp-...)"

    from slack_bolt.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    from adapters.slack.listeners import SlackListeners
    from bot.services import ANSWERER, METRICS

    metrics = app[METRICS]
    for outcome in OUTCOMES:
        metrics.requests.labels("slack", outcome)

    def record(outcome: str) -> None:
        metrics.requests.labels("slack", outcome).inc()

    base_url = settings.slack_api_url
    if base_url and not base_url.endswith("/"):
        base_url += "/"  # slack_sdk joins method names onto it
    # No token on the client: bolt takes the token from authorize (below), per request.
    client = AsyncWebClient(base_url=base_url) if base_url else AsyncWebClient()
    auth = BotAuth(client, bot_token)
    # The name is a logger name that bolt resets to the root's level on every request: keep it
    # under slack_bolt, away from our own "fits.*" loggers.
    # bolt also reads SLACK_BOT_TOKEN from the environment and warns that it will be unused; it
    # is used, through authorize, so that one warning is dropped.
    logging.getLogger("slack_bolt.AsyncApp").addFilter(_TokenIgnoredWarning())
    # The signature is checked before bolt sees a request (see _events_handler); bolt skips
    # the check for Socket Mode requests anyway.
    bolt = AsyncApp(name="slack_bolt.fits", client=client, signing_secret=signing_secret,
                    authorize=auth.authorizer(), request_verification_enabled=False)
    listeners = SlackListeners(app[ANSWERER], record, _event_claims(app))
    listeners.register(bolt)

    async def http_session(_: web.Application) -> AsyncIterator[None]:
        # One session (a connection pool) for every call to Slack: the Web API client, bolt's
        # per-request copies of it, Socket Mode's apps.connections.open, the response_urls.
        session = ClientSession()
        client.session = session
        listeners.session = session
        try:
            yield
        finally:
            await listeners.drain(settings.shutdown_timeout_s)  # answers in flight finish
            client.session = listeners.session = None
            await session.close()

    app.cleanup_ctx.append(http_session)
    app.cleanup_ctx.append(auth.lifecycle)  # after the session: auth.test goes through it
    modes = []
    if signing_secret:
        app.router.add_post(EVENTS_PATH, _events_handler(bolt, auth, signing_secret, record))
        modes.append(f"HTTP at {EVENTS_PATH}")
    if app_token and settings.worker_index == 0:  # one Socket Mode connection, the first worker's
        app.cleanup_ctx.append(_socket_mode(bolt, app_token, auth))
        modes.append("Socket Mode")
    elif app_token:
        modes.append("Socket Mode in the first worker")
    # Whether Slack accepts the bot token is known only at start-up (BotAuth logs it then).
    return f"on ({'; '.join(modes)}) if Slack accepts SLACK_BOT_TOKEN (auth.test at start-up)"


def _event_claims(app: web.Application) -> DedupeStore:
    """Where event ids are claimed: shared by the replicas on Redis, else this process's."""
    from bot.services import REDIS

    link = app.get(REDIS)
    if link is None:
        return MemoryDedupe(ttl_s=EVENT_TTL_S)
    from bot.redis_store import RedisDedupe

    return RedisDedupe(link, ttl_s=EVENT_TTL_S, prefix=EVENT_PREFIX)


# --- the bot token: auth.test once, at start-up ---------------------------------------------------


class BotAuth:
    """What Slack said about the bot token: not known yet, accepted (``result``, what bolt's
    authorize returns) or refused (``refused``, Slack's error code)."""

    def __init__(self, client: AsyncWebClient, token: str) -> None:
        self.client = client
        self.token = token
        self.result: AuthorizeResult | None = None
        self.refused: str | None = None
        self.settled = asyncio.Event()  # set once accepted or refused

    async def check(self) -> str | None:
        """Ask auth.test once: None when Slack decided (accepted or refused), else why not."""
        from slack_sdk.errors import SlackApiError

        from adapters.slack.listeners import api_error

        try:
            async with asyncio.timeout(AUTH_TIMEOUT_S):
                answer = await self.client.auth_test(token=self.token)
        except SlackApiError as exc:
            error = api_error(exc)
            if error not in REFUSED:
                return error  # HTTP 5xx, ratelimited, fatal_error: Slack's trouble, not ours
            self.refused = error
            log.warning(f"Slack: off (SLACK_BOT_TOKEN refused by Slack: {error})",
                        extra={"fields": {"surface": "Slack", "error": error}})
        except Exception as exc:  # unreachable: timeouts, aiohttp's connection errors
            return api_error(exc)
        else:
            self._accept(answer)
        self.settled.set()
        return None

    def _accept(self, answer: Any) -> None:
        from slack_bolt.authorization import AuthorizeResult

        self.result = AuthorizeResult.from_auth_test_response(
            bot_token=self.token, bot_scopes=answer.headers.get("x-oauth-scopes"),
            auth_test_response=answer)
        team, bot = answer.get("team"), answer.get("user")
        log.info(f"Slack: on (workspace {team} {answer.get('team_id')}, bot user @{bot} "
                 f"{answer.get('user_id')})", extra={"fields": {
                     "surface": "Slack", "team_id": answer.get("team_id"),
                     "bot_user_id": answer.get("user_id")}})

    async def lifecycle(self, _: web.Application) -> AsyncIterator[None]:
        problem = await self.check()
        retrying: asyncio.Future[None] | None = None
        if problem is not None:
            log.warning(f"Slack: waiting (auth.test failed: {problem}); asking again in the "
                        "background; until Slack answers, slash commands are answered and "
                        "events get 503", extra={"fields": {"surface": "Slack", "error": problem}})
            retrying = asyncio.ensure_future(self._retry())
        try:
            yield
        finally:
            if retrying is not None:
                retrying.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await retrying

    async def _retry(self) -> None:
        wait, longest = AUTH_RETRY_S
        while True:
            await asyncio.sleep(wait)
            problem = await self.check()
            if problem is None:
                return
            log.debug("slack: auth.test failed again", extra={"fields": {"error": problem}})
            wait = min(wait * 2, longest)

    def authorizer(self) -> Callable[..., Awaitable[AuthorizeResult]]:
        """bolt's ``authorize``: the answer of auth.test, never a new call. bolt passes the
        arguments by name, hence a plain function rather than a bound method."""
        from slack_bolt.authorization import AuthorizeResult

        async def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
            if self.result is not None:
                return self.result
            # Not known yet: only slash commands get here (events wait for it, in the handler);
            # their answers go to a response_url, which needs no token.
            return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id,
                                   bot_token=self.token)

        return authorize


# --- HTTP mode -----------------------------------------------------------------------------------


def _signed(verifier: SignatureVerifier, headers: Mapping[str, str], body: str) -> bool:
    timestamp = headers.get("X-Slack-Request-Timestamp", "")
    signature = headers.get("X-Slack-Signature", "")
    # What SignatureVerifier cannot take: int() refuses more than 4,300 digits (and is slow on
    # long ones), hmac.compare_digest refuses non-ASCII text.
    if not (timestamp.isascii() and timestamp.isdigit()
            and len(timestamp) <= MAX_TIMESTAMP_DIGITS and signature.isascii()):
        return False
    return verifier.is_valid(body, timestamp, signature)


# bolt reads these fields before any listener runs (slack_bolt/request/internals.py builds the
# context from them; its middleware and matchers too), on the envelope and on the objects it
# follows, assuming the types Slack gives them.
_IDS = ("team", "enterprise", "user", "channel")  # an id, or an object with an "id"
_OBJECTS = ("event", "view")
_LISTS_OF_OBJECTS = ("authorizations", "response_urls", "actions")
_FOLLOWED = ("event", "message", "previous_message", "item", "assistant_thread")


def _shape_problem(body: dict[str, Any]) -> str | None:
    """The first field of ``body`` that bolt would trip over, or None."""
    stack = [(body, 1)]
    while stack:
        obj, depth = stack.pop()
        if depth > MAX_ENVELOPE_DEPTH:
            return "event"
        for key in _IDS:
            if obj.get(key) is not None and not isinstance(obj[key], str | dict):
                return key
        for key in _OBJECTS:
            if key in obj and not isinstance(obj[key], dict):
                return key
        for key in _LISTS_OF_OBJECTS:
            if key in obj and not (isinstance(obj[key], list)
                                   and all(isinstance(v, dict) for v in obj[key])):
                return key
        if len(obj.get("response_urls") or ()) > 1:  # bolt logs through a logger not set yet
            return "response_urls"
        nested = [obj[k] for k in _FOLLOWED if isinstance(obj.get(k), dict)]
        nested += obj.get("authorizations") or []
        stack.extend((child, depth + 1) for child in nested)
    return None


def _envelope(text: str, headers: dict[str, Sequence[str]]) -> dict[str, Any] | str:
    """The body as bolt will parse it, or why it is not a Slack request (one sentence)."""
    from slack_bolt.request.internals import extract_content_type, parse_body

    try:
        body = parse_body(text, extract_content_type(headers))
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError
        return "The body is neither a JSON object nor a form that Slack would send."
    if not isinstance(body, dict):
        return "The body is not a JSON object."
    problem = _shape_problem(body)
    if problem is not None:
        return f'The field "{problem}" does not have the type Slack gives it.'
    return body


def _events_handler(bolt: AsyncApp, auth: BotAuth, signing_secret: str,
                    record: Callable[[str], None]) -> Handler:
    from slack_bolt.adapter.aiohttp import to_aiohttp_response
    from slack_bolt.request.async_request import AsyncBoltRequest
    from slack_sdk.signature import SignatureVerifier

    verifier = SignatureVerifier(signing_secret)

    def refuse(status: int, sentence: str, outcome: str) -> web.Response:
        record(outcome)
        return web.json_response({"error": sentence}, status=status)

    async def slack_events(request: web.Request) -> web.Response:
        if auth.refused is not None:
            return refuse(503, "Slack is off here: Slack refused this service's SLACK_BOT_TOKEN "
                          f"({auth.refused}).", "error")
        raw = await request.read()  # the exact bytes: what Slack signed
        try:
            text = raw.decode("utf-8")  # UTF-8 text round-trips to the same bytes
        except UnicodeDecodeError:  # not what Slack sends, nor what SignatureVerifier checks
            text = None
        if text is None or not _signed(verifier, request.headers, text):
            return refuse(401, "invalid request", "bad_request")  # bolt's words
        headers: dict[str, str | Sequence[str]] = {
            name.lower(): request.headers.getall(name) for name in request.headers}
        envelope = _envelope(text, headers)
        if isinstance(envelope, str):
            return refuse(400, envelope, "bad_request")
        if auth.result is None and envelope.get("type") == "event_callback":
            early = refuse(503, "Slack has not accepted this service's bot token yet; the "
                           "event is taken when Slack delivers it again.", "error")
            early.headers["Retry-After"] = str(EVENTS_RETRY_AFTER_S)
            return early
        bolt_request = AsyncBoltRequest(body=text, query=request.query_string, headers=headers)
        response = await bolt.async_dispatch(bolt_request)
        if response.status >= 500:
            record("error")
        elif response.status >= 400:  # an unknown kind of request
            record("bad_request")
        return await to_aiohttp_response(response)

    return slack_events


# --- Socket Mode ---------------------------------------------------------------------------------


def _socket_mode(bolt: AsyncApp, app_token: str,
                 auth: BotAuth) -> Callable[[web.Application], AsyncIterator[None]]:
    async def socket_mode(_: web.Application) -> AsyncIterator[None]:
        from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

        handler = AsyncSocketModeHandler(bolt, app_token=app_token)

        async def connect() -> None:
            await auth.settled.wait()
            if auth.result is not None:  # never with a refused token
                # connect() retries by itself until it is connected or closed.
                await handler.connect_async()  # type: ignore[no-untyped-call]

        connecting = asyncio.ensure_future(connect())
        try:
            yield
        finally:
            await handler.close_async()  # type: ignore[no-untyped-call]
            connecting.cancel()
            try:
                await connecting
            except asyncio.CancelledError:
                pass  # cancelled just above: shutting down
            except Exception as exc:
                log.warning("slack: Socket Mode ended with an error at shutdown: %s",
                            type(exc).__name__)

    return socket_mode
