"""One interaction, from its options to the message Discord shows, for both ways in.

Discord invalidates an interaction that gets no first response within 3 seconds. So the answer
starts at once and gets ``ANSWER_NOW_S``: done by then, it is the first response; otherwise the
first response is a deferral ("fits is thinking...") and the answer replaces it when it comes (a
Hub fetch, a slow attachment). A user error is shown to the asker only: after a public deferral
that means deleting the deferral and sending the error as an ephemeral follow-up.

The way in supplies a ``Responder`` (discord.py's interaction for the gateway, the HTTP response
and the interaction webhook for the endpoint); everything else here is shared.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from adapters.discord.autocomplete import Choice, suggest
from adapters.discord.embed import Reply, render_answer, render_error
from adapters.discord.options import ConfigFile, command_text, load_config
from core.answer import Answer, AnswerService, Caller
from core.errors import RateLimited, UserError
from core.report import Report

log = logging.getLogger("fits.discord")

ANSWER_NOW_S = 2.0  # leaves a second of Discord's three for the response's round trip
OUTCOMES = ("ok", "user_error", "rate_limited", "bad_request", "error")
BUG_REPLY = Reply(content="**Something went wrong on our side; the error is logged.**\n"
                          "Try again in a moment.", ephemeral=True)


class Responder(Protocol):
    """How one way in answers one interaction."""

    async def reply(self, reply: Reply) -> None:
        """The first response, with the answer (callback type 4)."""

    async def defer(self) -> None:
        """The first response when the answer is not ready: a public "thinking" (type 5)."""

    async def edit(self, reply: Reply) -> None:
        """Put the answer in place of the deferral (PATCH .../messages/@original)."""

    async def replace_with_ephemeral(self, reply: Reply) -> None:
        """Delete the public deferral and send ``reply`` to the asker only (a follow-up)."""


def _ignore(outcome: str) -> None:
    return None


@dataclass
class CommandHandler:
    """Answers slash commands with ``service``; ``on_outcome`` counts each one (metrics)."""

    service: AnswerService
    on_outcome: Callable[[str], None] = field(default=_ignore)
    answer_now_s: float = ANSWER_NOW_S
    in_flight: set[asyncio.Task[Any]] = field(default_factory=set)

    async def answer(self, command: str, options: Mapping[str, object], caller: Caller,
                     config: ConfigFile | None = None) -> Answer:
        """The one way from a command's options to an answer: the command language, then the
        answering service (rate limits, parse, resolve, estimate). Raises UserError."""
        text = command_text(command, options)
        data = await load_config(config) if config is not None else None
        return await self.service.answer(text, caller, data)

    async def respond(self, command: str, options: Mapping[str, object], caller: Caller,
                      responder: Responder, config: ConfigFile | None = None) -> str:
        """Answer one interaction through ``responder``; returns the outcome."""
        me = asyncio.current_task()
        if me is not None:
            self.in_flight.add(me)
        try:
            return await self._respond(command, options, caller, responder, config)
        finally:
            if me is not None:
                self.in_flight.discard(me)

    async def drain(self, timeout: float) -> None:
        """On shutdown: let the answers in flight reach Discord, for up to ``timeout`` s."""
        pending = set(self.in_flight) - {asyncio.current_task()}
        if not pending:
            return
        _, late = await asyncio.wait(pending, timeout=timeout)
        for task in late:
            task.cancel()

    async def _respond(self, command: str, options: Mapping[str, object], caller: Caller,
                       responder: Responder, config: ConfigFile | None) -> str:
        start = time.monotonic()
        work = asyncio.ensure_future(self._reply(command, options, caller, config))
        done, _ = await asyncio.wait({work}, timeout=self.answer_now_s)
        deferred = not done
        try:
            if deferred:
                await responder.defer()
            reply, outcome = await work
            if not deferred:
                await responder.reply(reply)
            elif reply.ephemeral:
                await responder.replace_with_ephemeral(reply)
            else:
                await responder.edit(reply)
        except asyncio.CancelledError:  # shutdown: the answer goes with it
            work.cancel()
            raise
        except Exception as exc:  # Discord refused a response: nothing more can reach the user
            work.cancel()
            outcome = "error"
            log.warning("could not respond to a Discord interaction: %s", _describe(exc),
                        extra={"fields": {"command": command, "deferred": deferred}})
        self.on_outcome(outcome)
        log.info("discord interaction", extra={"fields": {
            "surface": "discord", "command": command, "outcome": outcome, "deferred": deferred,
            "seconds": round(time.monotonic() - start, 3)}})
        return outcome

    async def suggest(self, command: str, option: str, current: str) -> list[Choice]:
        return await suggest(self.service, command, option, current)

    async def _reply(self, command: str, options: Mapping[str, object], caller: Caller,
                     config: ConfigFile | None) -> tuple[Reply, str]:
        try:
            found = await self.answer(command, options, caller, config)
            reply = render_answer(found)
            picture = self.service.picture_url(found)
            if picture is not None and reply.embed is not None:
                reply = replace(reply, embed={**reply.embed, "image": {"url": picture}})
            elif isinstance(found, Report) and reply.embed is not None:
                chart = await asyncio.to_thread(_chart_png, found)
                if chart is not None:
                    reply = replace(reply, embed={**reply.embed, "image": {
                        "url": f"attachment://{CHART_FILE}"}}, files=((CHART_FILE, chart),))
            return reply, "ok"
        except RateLimited as err:
            return render_error(err), "rate_limited"
        except UserError as err:
            return render_error(err), "user_error"
        except Exception:
            log.exception("unexpected error answering a Discord command",
                          extra={"fields": {"command": command}})
            return BUG_REPLY, "error"


def _describe(exc: Exception) -> str:
    """An error's kind and HTTP status, never its text (a URL there may hold a token)."""
    status = getattr(exc, "status", None)
    return f"{type(exc).__name__}" + (f" (HTTP {status})" if status else "")


CHART_FILE = "fits-chart.png"


def _chart_png(report: Report) -> bytes | None:
    """The answer's chart as a PNG attachment (no PUBLIC_URL to link one from); None for a
    model the snapshot does not hold (drawing it would ask the Hub again)."""
    from adapters.charts_png import answer_png
    from core.curve import report_curve

    if report.model.source not in ("snapshot", "size"):
        return None
    return answer_png(report, report_curve(report))
