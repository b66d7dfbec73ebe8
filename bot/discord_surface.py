"""Discord on the service, wired from the settings into the aiohttp app. One of two modes:

- Gateway bot (DISCORD_BOT_TOKEN): discord.py's client runs in the service's event loop, started
  in the background when the app starts (a slow or failing Discord never holds up the JSON API;
  it reconnects by itself and retries a failed login with back-off) and closed on shutdown.
  Commands are registered to DISCORD_GUILD_ID (instant, for development) or globally, only when
  they changed. DISCORD_SHARD_COUNT runs that many shards (AutoShardedClient).
- HTTP interactions endpoint (DISCORD_PUBLIC_KEY): ``POST /discord/interactions``, every request
  checked against the Ed25519 signature (401 otherwise). For deployments that scale out behind a
  load balancer: no gateway connection at all. With DISCORD_BOT_TOKEN and DISCORD_APPLICATION_ID
  set too, the commands are registered at start-up.

Setting an interactions endpoint URL in the developer portal stops Discord from sending commands
over the gateway, so a public key selects the endpoint and the gateway stays off. DISCORD_API_URL
points the REST calls elsewhere (tests, proxies). discord.py is imported only in gateway mode
or to register the commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from bot.settings import Settings

if TYPE_CHECKING:
    import discord

    from adapters.discord.flow import CommandHandler
    from adapters.discord.interactions import InteractionEndpoint, SignatureCheck

log = logging.getLogger("fits.discord")

INTERACTIONS_PATH = "/discord/interactions"
OFF = ("off (set DISCORD_BOT_TOKEN for the gateway bot, or DISCORD_PUBLIC_KEY for the HTTP "
       "interactions endpoint)")
LOGIN_RETRY_S = (5.0, 300.0)  # first and longest wait between failed logins
# Gateway close codes that no retry can fix: bad token, bad shard or intents settings.
FATAL_CLOSE_CODES = frozenset({4004, 4010, 4011, 4012, 4013, 4014})


def _secret(value: object) -> str:
    get = getattr(value, "get_secret_value", None)
    return get().strip() if get is not None else ""


def mount(app: web.Application, settings: Settings) -> str:
    """Add the gateway bot or the interactions endpoint; the start-up log line."""
    token = _secret(settings.discord_bot_token)
    public_key = (settings.discord_public_key or "").strip()
    app_id = (settings.discord_application_id or "").strip()
    if not token and not public_key:
        return OFF
    if app_id and not app_id.isdigit():
        return "off (DISCORD_APPLICATION_ID must be the application's numeric id)"

    from adapters.discord import logs
    from adapters.discord.flow import OUTCOMES, CommandHandler
    from bot.services import ANSWERER, METRICS

    logs.install()
    metrics = app[METRICS]
    for outcome in OUTCOMES:
        metrics.requests.labels("discord", outcome)

    def record(outcome: str) -> None:
        metrics.requests.labels("discord", outcome).inc()

    handler = CommandHandler(app[ANSWERER], record)
    scope = f"guild {settings.discord_guild_id}" if settings.discord_guild_id else "global"
    if public_key:
        from adapters.discord.interactions import public_key_problem

        problem = public_key_problem(public_key)
        if problem:
            return f"off (DISCORD_PUBLIC_KEY is not the application's public key: {problem})"
        surface = HttpSurface(handler, settings, record)
        app.router.add_post(INTERACTIONS_PATH, surface.interactions)
        app.cleanup_ctx.append(surface.lifecycle)
        registers = (f"registers the {scope} commands at start-up" if token and app_id else
                     "set DISCORD_BOT_TOKEN and DISCORD_APPLICATION_ID to register the commands")
        return f"on (HTTP interactions endpoint POST {INTERACTIONS_PATH}; {registers})"
    if settings.worker_index > 0:  # one gateway session per bot: the first worker holds it
        return "on in the first worker (gateway bot)"
    app.cleanup_ctx.append(GatewayBot(handler, settings).lifecycle)
    shards = f", {settings.discord_shard_count} shards" if settings.discord_shard_count else ""
    return f"on (gateway bot{shards}; {scope} commands)"


# --- the gateway bot --------------------------------------------------------------------------------


class GatewayBot:
    def __init__(self, handler: CommandHandler, settings: Settings) -> None:
        self.handler = handler
        self.settings = settings
        self.client: discord.Client | None = None
        self.closing = asyncio.Event()

    async def lifecycle(self, app: web.Application) -> AsyncIterator[None]:
        import discord

        # Route.BASE is where discord.py sends every REST call, interaction callbacks included.
        previous = discord.http.Route.BASE
        if self.settings.discord_api_url:
            discord.http.Route.BASE = self.settings.discord_api_url.strip().rstrip("/")
        running = asyncio.ensure_future(self.run())
        try:
            yield
        finally:
            self.closing.set()
            # Deferred answers still on their way get the shutdown grace period.
            await self.handler.drain(self.settings.shutdown_timeout_s)
            if self.client is not None:
                await self.client.close()
            try:
                await asyncio.wait_for(running, timeout=10)
            except (asyncio.CancelledError, TimeoutError):
                pass  # stopped, or stopped waiting for it: shutting down either way
            except Exception as exc:
                log.warning("the Discord gateway bot ended with an error at shutdown: %s",
                            type(exc).__name__)
            discord.http.Route.BASE = previous

    async def run(self) -> None:
        """Log in and stay connected (discord.py reconnects a dropped gateway itself); a login
        that fails for the network or Discord is retried, a refused token is not."""
        import discord

        from adapters.discord.commands import build_client

        token = _secret(self.settings.discord_bot_token)
        app_id = self.settings.discord_application_id
        wait, longest = LOGIN_RETRY_S
        while not self.closing.is_set():
            client = build_client(self.handler, guild_id=self.settings.discord_guild_id,
                                  shard_count=self.settings.discord_shard_count,
                                  application_id=int(app_id) if app_id else None)
            self.client = client
            try:
                await client.start(token)
                return  # closed on shutdown
            except discord.LoginFailure:
                log.error("Discord refused DISCORD_BOT_TOKEN; the Discord gateway bot is off")
                return
            except discord.ConnectionClosed as exc:
                if exc.code in FATAL_CLOSE_CODES:
                    log.error("Discord closed the gateway with code %s; the Discord gateway bot "
                              "is off", exc.code)
                    return
                log.warning("the Discord gateway closed (code %s); reconnecting in %g s",
                            exc.code, wait)
            except (OSError, aiohttp.ClientError, discord.DiscordException) as exc:
                log.warning("the Discord gateway bot could not connect (%s); retrying in %g s",
                            type(exc).__name__, wait)
            except Exception:
                log.exception("the Discord gateway bot stopped; restarting it in %g s", wait)
            finally:
                if not client.is_closed():
                    await client.close()
            with contextlib.suppress(TimeoutError):  # the back-off, cut short by shutdown
                await asyncio.wait_for(self.closing.wait(), wait)
            wait = min(longest, wait * 2)


# --- the HTTP interactions endpoint ------------------------------------------------------------------


class HttpSurface:
    def __init__(self, handler: CommandHandler, settings: Settings,
                 record: Callable[[str], None]) -> None:
        from adapters.discord.interactions import SignatureCheck

        self.handler = handler
        self.settings = settings
        self.record = record
        self.check: SignatureCheck = SignatureCheck(settings.discord_public_key or "")
        self.endpoint: InteractionEndpoint | None = None

    async def lifecycle(self, app: web.Application) -> AsyncIterator[None]:
        from adapters.discord.interactions import InteractionEndpoint
        from adapters.discord.rest import DiscordRest

        token = _secret(self.settings.discord_bot_token)
        async with aiohttp.ClientSession() as session:
            rest = DiscordRest(session, self.settings.discord_api_url, token or None)
            self.endpoint = InteractionEndpoint(self.handler, rest, session)
            registering = None
            if token and self.settings.discord_application_id \
                    and self.settings.worker_index == 0:  # once, not once per worker
                registering = asyncio.ensure_future(self.register(rest))
            try:
                yield
            finally:
                self.endpoint = None
                if registering is not None:
                    registering.cancel()
                # Deferred answers still on their way get the shutdown grace period.
                await self.handler.drain(self.settings.shutdown_timeout_s)

    async def register(self, rest: Any) -> None:
        from adapters.discord.commands import command_definitions
        from adapters.discord.registration import register_commands
        from adapters.discord.rest import DiscordApiError

        guild = self.settings.discord_guild_id
        scope = f"guild {guild}" if guild else "global"
        try:
            written = await register_commands(rest, self.settings.discord_application_id or "",
                                              guild, command_definitions(self.handler))
        except (DiscordApiError, OSError, aiohttp.ClientError) as exc:
            log.warning("could not register the Discord commands (%s); the endpoint answers the "
                        "ones already registered", exc if isinstance(exc, DiscordApiError)
                        else type(exc).__name__, extra={"fields": {"scope": scope}})
            return
        log.info("discord commands registered" if written else "discord commands unchanged",
                 extra={"fields": {"scope": scope}})

    async def interactions(self, request: web.Request) -> web.StreamResponse:
        from adapters.discord.interactions import (
            APPLICATION_COMMAND,
            AUTOCOMPLETE,
            PING,
            PONG,
            SIGNATURE_HEADER,
            TIMESTAMP_HEADER,
            BadInteraction,
        )

        body = await request.read()  # the exact bytes: what Discord signed
        if not self.check.valid(request.headers.get(SIGNATURE_HEADER),
                                request.headers.get(TIMESTAMP_HEADER), body):
            self.record("bad_request")
            return web.json_response({"error": "invalid request signature"}, status=401)
        endpoint = self.endpoint
        if endpoint is None:
            return web.json_response({"error": "shutting down"}, status=503)
        try:
            payload = json.loads(body)
            kind = payload.get("type") if isinstance(payload, dict) else None
            if kind == PING:
                return web.json_response({"type": PONG})
            if kind == AUTOCOMPLETE:
                return web.json_response(await endpoint.autocomplete(payload))
            if kind != APPLICATION_COMMAND:
                raise BadInteraction(f"interaction type {kind!r} is not served here")
            exchange = endpoint.start(payload)
        except (ValueError, BadInteraction) as exc:
            self.record("bad_request")
            log.warning("a signed Discord request that is not a command: %s", type(exc).__name__)
            return web.json_response({"error": "not an interaction fits serves"}, status=400)
        try:
            response = web.json_response(await exchange.first_response())
            # Sent now rather than returned: a deferred answer may edit the response only once
            # Discord has it.
            await response.prepare(request)
            await response.write_eof()
        finally:
            exchange.sent()
        return response

