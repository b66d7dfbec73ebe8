"""The HTTP interactions endpoint: Discord POSTs each interaction, signed with Ed25519, and takes
the first response as the HTTP answer. discord.py cannot serve this mode, so the raw payload is
read here and handed to the same CommandHandler the gateway bot uses.

    PING (1)                -> PONG (1)
    APPLICATION_COMMAND (2) -> a message (4) when the answer is ready within ANSWER_NOW_S,
                               else a deferral (5), then the answer through the interaction
                               webhook: PATCH {api}/webhooks/{application}/{token}/messages/@original
    AUTOCOMPLETE (4)        -> choices (8)

bot/discord_surface.py mounts this on the service's aiohttp app and checks every signature
before anything else reads the body.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from adapters.discord.embed import Reply
from adapters.discord.flow import BUG_REPLY, CommandHandler
from adapters.discord.options import CONFIG_OPTION, MAX_CONFIG_BYTES, ConfigFile, caller_for
from adapters.discord.rest import DiscordRest
from core.answer import Caller
from core.errors import UserError

SIGNATURE_HEADER = "X-Signature-Ed25519"
TIMESTAMP_HEADER = "X-Signature-Timestamp"
PING, APPLICATION_COMMAND, AUTOCOMPLETE = 1, 2, 4  # interaction types
PONG, CHANNEL_MESSAGE, DEFERRED_MESSAGE, AUTOCOMPLETE_RESULT = 1, 4, 5, 8  # response types
SENT_WAIT_S = 10.0  # how long a deferred answer waits for the deferral to have gone out
ATTACHMENT_TIMEOUT = aiohttp.ClientTimeout(total=10)


class BadInteraction(Exception):
    """A signed payload that is not an interaction we serve (400)."""


def public_key_problem(public_key: str) -> str | None:
    """Why DISCORD_PUBLIC_KEY cannot be a key, or None when it can."""
    try:
        VerifyKey(bytes.fromhex(public_key.strip()))
    except (ValueError, TypeError):
        return "it is not 64 hexadecimal characters"
    return None


class SignatureCheck:
    """Discord's Ed25519 signature over the timestamp header followed by the raw body, and a
    timestamp within ``max_age_s`` of now: a request captured once cannot be replayed later
    (Discord does not say how fresh its timestamps are; Slack's five minutes is used)."""

    def __init__(self, public_key: str, max_age_s: float = 300.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.key = VerifyKey(bytes.fromhex(public_key.strip()))
        self.max_age_s = max_age_s
        self.clock = clock

    def valid(self, signature: str | None, timestamp: str | None, body: bytes) -> bool:
        if not signature or not timestamp:
            return False
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
            return False
        if abs(self.clock() - int(timestamp)) > self.max_age_s:
            return False
        try:
            self.key.verify(timestamp.encode() + body, bytes.fromhex(signature))
        except (BadSignatureError, ValueError, TypeError):
            return False
        return True


@dataclass(frozen=True)
class Invocation:
    """What a command interaction asks, read from its payload."""

    command: str
    options: dict[str, object]
    caller: Caller
    config: ConfigFile | None
    application_id: str
    token: str


class HttpResponder:
    """The first response goes back as the HTTP answer (``first``); later ones go through the
    interaction webhook, once the HTTP answer has gone out (``sent``): Discord knows no
    interaction to edit before it has the deferral."""

    def __init__(self, rest: DiscordRest, application_id: str, token: str) -> None:
        self.rest = rest
        self.application_id = application_id
        self.token = token
        self.first: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.sent = asyncio.Event()

    async def reply(self, reply: Reply) -> None:
        # A first response is a JSON body: the chart follows as an edit with the file.
        self.first.set_result({"type": CHANNEL_MESSAGE, "data": reply.without_files().message()})
        if reply.files:
            await self.edit(reply)

    async def defer(self) -> None:
        self.first.set_result({"type": DEFERRED_MESSAGE})

    async def edit(self, reply: Reply) -> None:
        await self._after_first()
        await self.rest.edit_original(self.application_id, self.token, reply.message(),
                                      reply.files)

    async def replace_with_ephemeral(self, reply: Reply) -> None:
        await self._after_first()
        await self.rest.delete_original(self.application_id, self.token)
        await self.rest.follow_up(self.application_id, self.token, reply.message(), reply.files)

    async def _after_first(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.sent.wait(), SENT_WAIT_S)


@dataclass
class Exchange:
    """One command interaction in flight: its first response, then the rest in ``task``."""

    responder: HttpResponder
    task: asyncio.Task[str]

    async def first_response(self) -> dict[str, Any]:
        either: set[asyncio.Future[Any]] = {self.responder.first, self.task}
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if self.responder.first.done():
            return self.responder.first.result()
        return {"type": CHANNEL_MESSAGE, "data": BUG_REPLY.message()}  # the flow failed early

    def sent(self) -> None:
        self.responder.sent.set()


class InteractionEndpoint:
    def __init__(self, handler: CommandHandler, rest: DiscordRest,
                 session: aiohttp.ClientSession) -> None:
        self.handler = handler
        self.rest = rest
        self.session = session

    def start(self, payload: dict[str, Any]) -> Exchange:
        """Start answering a command interaction (type 2)."""
        call = self.read(payload)
        responder = HttpResponder(self.rest, call.application_id, call.token)
        task = asyncio.create_task(self.handler.respond(call.command, call.options, call.caller,
                                                        responder, call.config))
        return Exchange(responder, task)

    async def autocomplete(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The choices for an autocomplete interaction (type 4)."""
        data = _dict(payload.get("data"))
        focused = next((o for o in _option_list(data) if o.get("focused")), None)
        if focused is None:
            return {"type": AUTOCOMPLETE_RESULT, "data": {"choices": []}}
        choices = await self.handler.suggest(str(data.get("name", "")),
                                             str(focused.get("name", "")),
                                             str(focused.get("value") or ""))
        return {"type": AUTOCOMPLETE_RESULT, "data": {"choices": choices}}

    def read(self, payload: dict[str, Any]) -> Invocation:
        data = _dict(payload.get("data"))
        name, token, app = data.get("name"), payload.get("token"), payload.get("application_id")
        if not (isinstance(name, str) and isinstance(token, str) and app):
            raise BadInteraction("a command interaction without its name, token or application")
        options: dict[str, object] = {str(o.get("name")): o.get("value")
                                      for o in _option_list(data)}
        user = _dict(_dict(payload.get("member")).get("user")) or _dict(payload.get("user"))
        caller = caller_for(user.get("id", "unknown"), payload.get("guild_id"))
        config = None
        if CONFIG_OPTION in options:
            attachments = _dict(_dict(data.get("resolved")).get("attachments"))
            attachment = _dict(attachments.get(str(options.pop(CONFIG_OPTION))))
            if not isinstance(attachment.get("url"), str):
                raise BadInteraction("an attachment option without its resolved attachment")
            config = self._config_file(attachment)
        return Invocation(name, options, caller, config, str(app), token)

    def _config_file(self, attachment: dict[str, Any]) -> ConfigFile:
        url = str(attachment["url"])

        async def read() -> bytes:
            try:
                async with self.session.get(url, timeout=ATTACHMENT_TIMEOUT) as response:
                    if response.status == 200:
                        chunks, size = [], 0
                        async for chunk in response.content.iter_chunked(1 << 16):
                            chunks.append(chunk)
                            size += len(chunk)
                            if size > MAX_CONFIG_BYTES:  # enough to say it is too large
                                break
                        return b"".join(chunks)
            except (aiohttp.ClientError, TimeoutError):
                pass
            raise UserError("The attachment could not be downloaded from Discord.",
                            "Attach the config.json again in a moment.")

        size = attachment.get("size")
        return ConfigFile(str(attachment.get("filename") or "config.json"),
                          size if isinstance(size, int) else 0, read)


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _option_list(data: dict[str, Any]) -> list[dict[str, Any]]:
    options = data.get("options")
    return [o for o in options if isinstance(o, dict)] if isinstance(options, list) else []
