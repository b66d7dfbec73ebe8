"""Slack on the service: bolt's AsyncApp wired from the settings into the aiohttp app.

- HTTP mode (SLACK_BOT_TOKEN + SLACK_SIGNING_SECRET): ``POST /slack/events`` takes slash commands,
  events and the url_verification challenge. bolt has no aiohttp request handler, so this module
  builds bolt's request from the RAW body (the signature covers the exact bytes Slack sent) and
  returns bolt's response; bolt checks the v0 signature and the 5-minute timestamp window (401).
- Socket Mode (SLACK_BOT_TOKEN + SLACK_APP_TOKEN, an ``xapp-`` token): no public URL; the
  websocket connects in the service's event loop when the app starts (in the background, so a
  slow or failing Slack never holds up the JSON API) and closes on shutdown.

Both can be on at once (e.g. while moving from one to the other). SLACK_API_URL points the Web
API client (auth.test, chat.postMessage, apps.connections.open) elsewhere: tests, proxies.
slack_bolt and slack_sdk are imported only when Slack is enabled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from aiohttp import ClientSession, web

from bot.settings import Settings

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

EVENTS_PATH = "/slack/events"
OUTCOMES = ("ok", "user_error", "rate_limited", "bad_request", "error")
Handler = Callable[[web.Request], Awaitable[web.Response]]
OFF = ("off (set SLACK_BOT_TOKEN with SLACK_SIGNING_SECRET for HTTP mode, or with "
       "SLACK_APP_TOKEN for Socket Mode)")


def _secret(value: object) -> str:
    get = getattr(value, "get_secret_value", None)
    return get().strip() if get is not None else ""


class _SameTokenWarning(logging.Filter):
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
    from bot.app import ANSWERER, METRICS

    metrics = app[METRICS]
    for outcome in OUTCOMES:
        metrics.requests.labels("slack", outcome)

    def record(outcome: str) -> None:
        metrics.requests.labels("slack", outcome).inc()

    base_url = settings.slack_api_url
    if base_url and not base_url.endswith("/"):
        base_url += "/"  # slack_sdk joins method names onto it
    client = (AsyncWebClient(token=bot_token, base_url=base_url) if base_url
              else AsyncWebClient(token=bot_token))
    # signing_secret="" in Socket Mode only: bolt skips the check for socket requests, and the
    # HTTP route below is not mounted without a secret.
    # The name is a logger name that bolt resets to the root's level on every request: keep it
    # under slack_bolt, away from our own "fits.*" loggers.
    # bolt also reads SLACK_BOT_TOKEN from the environment and then warns that the client's
    # token wins; it is the same token, so that one warning is dropped.
    logging.getLogger("slack_bolt.AsyncApp").addFilter(_SameTokenWarning())
    bolt = AsyncApp(name="slack_bolt.fits", client=client, signing_secret=signing_secret)
    listeners = SlackListeners(app[ANSWERER], record)
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
    modes = []
    if signing_secret:
        app.router.add_post(EVENTS_PATH, _events_handler(bolt, record))
        modes.append(f"HTTP at {EVENTS_PATH}")
    if app_token:
        app.cleanup_ctx.append(_socket_mode(bolt, app_token))
        modes.append("Socket Mode")
    return f"on ({'; '.join(modes)})"


def _events_handler(bolt: AsyncApp, record: Callable[[str], None]) -> Handler:
    from slack_bolt.adapter.aiohttp import to_aiohttp_response
    from slack_bolt.request.async_request import AsyncBoltRequest

    async def slack_events(request: web.Request) -> web.Response:
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "0")
        if not (timestamp.isascii() and timestamp.isdigit()):  # bolt would answer 500
            record("bad_request")
            return web.json_response({"error": "invalid request"}, status=401)
        raw = await request.read()  # the exact bytes: what Slack signed
        headers: dict[str, str | Sequence[str]] = {
            name.lower(): request.headers.getall(name) for name in request.headers}
        # Not UTF-8: the replacement characters make the signature check fail (401).
        bolt_request = AsyncBoltRequest(body=raw.decode("utf-8", errors="replace"),
                                        query=request.query_string, headers=headers)
        response = await bolt.async_dispatch(bolt_request)
        if response.status >= 500:
            record("error")
        elif response.status >= 400:  # a bad signature, a stale timestamp, an unknown event
            record("bad_request")
        return await to_aiohttp_response(response)

    return slack_events


def _socket_mode(bolt: AsyncApp,
                 app_token: str) -> Callable[[web.Application], AsyncIterator[None]]:
    async def socket_mode(_: web.Application) -> AsyncIterator[None]:
        from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

        handler = AsyncSocketModeHandler(bolt, app_token=app_token)
        # connect() retries by itself until it is connected or closed.
        connect = handler.connect_async()  # type: ignore[no-untyped-call]
        connecting = asyncio.ensure_future(connect)
        try:
            yield
        finally:
            await handler.close_async()  # type: ignore[no-untyped-call]
            connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await connecting

    return socket_mode
