"""The bolt listeners: `/fits` slash commands and `@fits` mentions, answered through the
AnswerService (rate limits, parse, resolve, estimate) and rendered as Block Kit.

- ``/fits <command>``: ``ack()`` first, so Slack's 3-second deadline holds however slow the Hub
  is; then the answer is posted to the command's ``response_url`` (what bolt's ``respond()``
  does, on a shared HTTP session), to the user alone unless the command carries the word
  ``public``. Errors always go to the user alone, with their hint.
- ``@fits <command>``: the answer is posted in the mention's thread (``chat.postMessage`` with
  ``thread_ts``). Events are acknowledged by bolt at once; a redelivery of an event already
  answered (Slack retries when an ack is late, with the same ``event_id``, and the retry may
  reach another replica) is dropped: each event id is claimed once in ``events``, a store the
  service shares between its replicas (on Redis) and gives in here; by default the ids are
  remembered in this process only.

Callers are rate-limited per user and per workspace ("slack:user:<team>:<user>",
"slack:team:<team>"). ``record(outcome)`` is told how each command ended (ok, user_error,
rate_limited, error), for the service's metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from adapters.slack.blocks import (
    Message,
    answer_message,
    error_message,
    failure_message,
    with_picture,
)
from adapters.slack.command import read_mention_text, read_slash_text
from core.answer import AnswerService, Caller
from core.errors import RateLimited, UserError

log = logging.getLogger("fits.slack")

COMMAND = "/fits"
HELP_COMMAND = "help"  # what an empty `/fits` or a bare mention answers
RECENT_EVENTS = 2048  # event ids remembered to drop Slack's redeliveries
RESPONSE_TIMEOUT_S = 30  # one POST to a response_url
ANSWERS_AT_ONCE = 16  # commands being answered at once; the rest wait their turn


def caller_for(team_id: str | None, user_id: str | None) -> Caller:
    team, user = team_id or "unknown", user_id or "unknown"
    return Caller((f"slack:user:{team}:{user}", f"slack:team:{team}"))


def api_error(exc: BaseException) -> str:
    """What went wrong with a call to Slack, in a word: Slack's error code (``not_in_channel``),
    the HTTP status of an answer that is not Slack's JSON (a proxy's 503 page), or the
    exception's name (unreachable, timed out)."""
    if isinstance(exc, SlackApiError):
        data = exc.response.data  # a str when the answer was not JSON
        error = data.get("error") if isinstance(data, dict) else None
        return str(error) if error else f"HTTP {exc.response.status_code}"
    return type(exc).__name__


class Claims(Protocol):
    """Where event ids are claimed (bot/dedupe.py's stores fit): only the first claim of a key
    wins, across every replica that shares the store."""

    async def claim(self, key: str) -> bool: ...


class RecentIds:
    """The last ``size`` ids seen, oldest forgotten first: claims in this process alone."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def first_time(self, item: str) -> bool:
        if item in self._ids:
            return False
        self._ids[item] = None
        if len(self._ids) > self.size:
            self._ids.popitem(last=False)
        return True

    async def claim(self, key: str) -> bool:
        return self.first_time(key)


class SlackListeners:
    def __init__(self, answers: AnswerService,
                 record: Callable[[str], None] = lambda outcome: None,
                 events: Claims | None = None) -> None:
        self.answers = answers
        self.record = record
        self.pending: set[asyncio.Future[Any]] = set()  # answers in flight, for a clean shutdown
        self.events: Claims = events if events is not None else RecentIds(RECENT_EVENTS)
        # The HTTP session for response_url posts, set by the service once its loop runs (a
        # session belongs to a loop); None: a new connection per answer.
        self.session: aiohttp.ClientSession | None = None
        self.working = asyncio.Semaphore(ANSWERS_AT_ONCE)

    def register(self, bolt: AsyncApp) -> None:
        bolt.command(COMMAND)(self.slash_command)
        bolt.event("app_mention")(self.app_mention)

    async def drain(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the answers in flight (on shutdown)."""
        if self.pending:
            await asyncio.wait(set(self.pending), timeout=timeout)

    @contextlib.contextmanager
    def _in_flight(self) -> Iterator[None]:
        task = asyncio.current_task()
        if task is not None:
            self.pending.add(task)
        try:
            yield
        finally:
            if task is not None:
                self.pending.discard(task)

    async def _answer(self, text: str, caller: Caller) -> tuple[Message, str]:
        """The message for one command and its outcome for the metrics."""
        try:
            answer = await self.answers.answer(text or HELP_COMMAND, caller)
        except RateLimited as err:
            return error_message(err), "rate_limited"
        except UserError as err:
            return error_message(err), "user_error"
        except Exception:
            log.exception("slack: answering failed")
            return failure_message(), "error"
        message = answer_message(answer)
        if (picture := self.answers.picture_url(answer)) is not None:
            message = with_picture(message, picture)
        return message, "ok"

    # --- listeners (bolt passes the arguments by name) -------------------------------------------

    async def slash_command(self, ack: AsyncAck, command: dict[str, Any]) -> None:
        await ack()  # first: the HTTP 200 (or Socket Mode ack) leaves now
        # Acks are quick and answers are not: under a burst, answers wait here, parked, rather
        # than all at once crowding the event loop that health probes and acks need.
        with self._in_flight():
            async with self.working:
                await self._respond(command)

    async def _respond(self, command: dict[str, Any]) -> None:
        typed = read_slash_text(str(command.get("text") or ""))
        reply, outcome = await self._answer(
            typed.command, caller_for(command.get("team_id"), command.get("user_id")))
        visibility = "in_channel" if typed.public and outcome == "ok" else "ephemeral"
        problem: str | None = None
        try:
            # bolt's respond() would open a new connection (and TLS handshake) per answer;
            # this client reuses the service's session.
            hook = AsyncWebhookClient(str(command["response_url"]), session=self.session,
                                      timeout=RESPONSE_TIMEOUT_S)
            sent = await hook.send(text=reply.text, blocks=reply.blocks,
                                   response_type=visibility)
            if sent.status_code != 200:  # expired (30 min, 5 uses) or refused
                problem = f"HTTP {sent.status_code}"
        except Exception as exc:  # unreachable: aiohttp's errors, timeouts
            problem = type(exc).__name__
        if problem is not None:
            outcome = "error"
            log.warning("slack: the answer could not be sent to the response_url",
                        extra={"fields": {"error": problem}})
        self.record(outcome)

    async def app_mention(self, body: dict[str, Any], event: dict[str, Any],
                          client: AsyncWebClient, context: AsyncBoltContext) -> None:
        event_id = str(body.get("event_id") or "")
        with self._in_flight():
            if event_id and not await self.events.claim(event_id):
                return  # a redelivery of an event already answered, here or by another replica
            async with self.working:
                await self._post_in_thread(event, client, context, body)

    async def _post_in_thread(self, event: dict[str, Any], client: AsyncWebClient,
                              context: AsyncBoltContext, body: dict[str, Any]) -> None:
        text = read_mention_text(str(event.get("text") or ""), context.bot_user_id)
        team = body.get("team_id") or event.get("team") or context.team_id
        reply, outcome = await self._answer(text, caller_for(team, event.get("user")))
        try:
            await client.chat_postMessage(
                channel=event["channel"], thread_ts=event.get("thread_ts") or event["ts"],
                text=reply.text, blocks=reply.blocks, unfurl_links=False, unfurl_media=False)
        except Exception as exc:  # Slack said no (not_in_channel ...) or was unreachable
            outcome = "error"
            log.warning("slack: the thread answer could not be posted", extra={"fields": {
                "error": api_error(exc)}})
        self.record(outcome)
