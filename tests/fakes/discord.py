"""A fake Discord (aiohttp) that the real discord.py client and our HTTP endpoint talk to.

It serves what discord.py 2.7 and the interactions endpoint need (../shared/docs/platforms.md
§1.5, §1.6), with Discord's rules enforced so that a test fails where Discord would refuse:

- REST under ``/api/v10``, every JSON answer with exactly ``Content-Type: application/json``:
  login (``/users/@me``, ``/oauth2/applications/@me``; a wrong bot token gets 401),
  ``/gateway/bot``, command registration (GET/PUT, global and per guild), the interaction
  callback (``?with_response=1``: 200 + ``{"interaction": ...}``), and the interaction webhook
  (follow-up POST, GET/PATCH/DELETE ``messages/@original``).
- The interaction rules: one first response per interaction, within 3 seconds (else 404
  Unknown interaction); the webhook only after the first response (else 404 Unknown Webhook);
  messages within the content and embed limits (else 400 Invalid Form Body). Every violation
  is also kept in ``errors`` for the test to assert empty.
- A gateway websocket at ``/gateway``: HELLO, heartbeat ACKs, IDENTIFY -> READY (with
  session_id, resume_gateway_url and shard), RESUME -> RESUMED, then whatever ``dispatch``
  pushes (INTERACTION_CREATE). Frames are plain text: discord.py inflates only binary ones.
- Attachments under ``/attachments/...`` (Discord's CDN), for ``resolved.attachments`` URLs.
- Discord's side of the HTTP interactions endpoint: ``deliver`` signs a payload with the
  application's Ed25519 key (``public_key`` is what DISCORD_PUBLIC_KEY gets) and POSTs it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from nacl.signing import SigningKey

TOKEN = "MTExMTExMTExMTExMTExMTEx.fakeBOT.tokenNEVERtoBEshown_0123456789"
APPLICATION_ID = "111111111111111111"
BOT_ID = "222222222222222222"
GUILD_ID = "333333333333333333"
CHANNEL_ID = "444444444444444444"
USER_ID = "555555555555555555"
DEADLINE_S = 3.0  # Discord's limit for the first response to an interaction
EPHEMERAL = 1 << 6
LIMITS = {"title": 256, "description": 4096, "fields": 25, "field.name": 256,
          "field.value": 1024, "footer.text": 2048, "author.name": 256, "total": 6000,
          "content": 2000, "embeds": 10}


def option(name: str, value: Any, kind: int = 3, focused: bool = False) -> dict[str, Any]:
    """One option of an interaction's data (3 string, 4 integer, 11 attachment)."""
    out = {"name": name, "type": kind, "value": value}
    if focused:
        out["focused"] = True
    return out


@dataclass
class Interaction:
    payload: dict[str, Any]
    created: float = 0.0  # time.monotonic() when it was sent to the bot
    acknowledged: bool = False
    response_type: int | None = None
    ephemeral: bool = False
    original: dict[str, Any] | None = None
    deleted: bool = False

    @property
    def token(self) -> str:
        return str(self.payload["token"])


@dataclass
class Call:
    """One answer the fake received for an interaction."""

    kind: str  # callback | response (the HTTP endpoint's answer) | edit | delete | followup
    body: Any
    at: float  # time.monotonic()
    interaction: Interaction

    @property
    def after(self) -> float:
        """Seconds since the interaction was sent."""
        return self.at - self.interaction.created

    @property
    def message(self) -> dict[str, Any]:
        """The message this call carries (callback data or a webhook body)."""
        if self.kind in ("callback", "response"):
            return dict(self.body.get("data") or {})
        return dict(self.body or {})


@dataclass
class FakeDiscord:
    token: str = TOKEN
    url: str = ""  # the server's base URL, set once it listens
    signing_key: SigningKey = field(default_factory=SigningKey.generate)
    commands: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # scope -> list
    command_writes: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)
    calls: asyncio.Queue[Call] = field(default_factory=asyncio.Queue)
    requests: Counter[str] = field(default_factory=Counter)
    attachments: dict[str, bytes] = field(default_factory=dict)
    interactions: dict[str, Interaction] = field(default_factory=dict)  # token -> interaction
    identifies: list[dict[str, Any]] = field(default_factory=list)
    identified: asyncio.Event = field(default_factory=asyncio.Event)
    errors: list[str] = field(default_factory=list)  # rules the bot broke
    sockets: list[web.WebSocketResponse] = field(default_factory=list)
    _sequence: int = 0
    _ids: Any = field(default_factory=lambda: itertools.count(900_000_000_000_000_000))

    @property
    def public_key(self) -> str:
        return self.signing_key.verify_key.encode().hex()

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/v10"

    @property
    def gateway_url(self) -> str:
        return self.url.replace("http://", "ws://", 1) + "/gateway"

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._count])
        api = "/api/v10"
        app.router.add_get(f"{api}/users/@me", self._me)
        app.router.add_get(f"{api}/oauth2/applications/@me", self._application)
        app.router.add_get(f"{api}/gateway/bot", self._gateway_bot)
        for path in (f"{api}/applications/{{app}}/commands",
                     f"{api}/applications/{{app}}/guilds/{{guild}}/commands"):
            app.router.add_get(path, self._get_commands)
            app.router.add_put(path, self._put_commands)
        app.router.add_post(f"{api}/interactions/{{iid}}/{{token}}/callback", self._callback)
        app.router.add_post(f"{api}/webhooks/{{app}}/{{token}}", self._followup)
        original = f"{api}/webhooks/{{app}}/{{token}}/messages/@original"
        app.router.add_get(original, self._get_original)
        app.router.add_patch(original, self._edit_original)
        app.router.add_delete(original, self._delete_original)
        app.router.add_get("/attachments/{aid}/{filename}", self._attachment)
        app.router.add_get("/gateway", self._gateway)
        return app

    # --- what a test does -----------------------------------------------------------------------

    def interaction(self, command: str, options: list[dict[str, Any]] | None = None, *,
                    kind: int = 2, user_id: str = USER_ID, guild_id: str | None = GUILD_ID,
                    resolved: dict[str, Any] | None = None) -> dict[str, Any]:
        """A complete interaction payload (2 command, 4 autocomplete), as Discord sends it."""
        user = {"id": user_id, "username": "asker", "discriminator": "0", "avatar": None,
                "global_name": "Asker"}
        data: dict[str, Any] = {"id": str(next(self._ids)), "name": command, "type": 1,
                                "options": options or []}
        if resolved:
            data["resolved"] = resolved
        payload: dict[str, Any] = {
            "id": str(next(self._ids)), "application_id": APPLICATION_ID, "type": kind,
            "token": "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(48), "version": 1,
            "attachment_size_limit": 26_214_400, "locale": "en-US", "app_permissions": "0",
            "entitlements": [], "data": data, "channel_id": CHANNEL_ID}
        if guild_id:
            payload |= {"guild_id": guild_id, "guild_locale": "en-US", "context": 0,
                        "authorizing_integration_owners": {"0": guild_id},
                        "member": {"user": user, "roles": [], "joined_at":
                                   "2024-01-01T00:00:00+00:00", "deaf": False, "mute": False,
                                   "flags": 0, "permissions": "0", "nick": None},
                        "channel": {"id": CHANNEL_ID, "type": 0, "guild_id": guild_id,
                                    "name": "general", "position": 0,
                                    "permission_overwrites": [], "nsfw": False,
                                    "parent_id": None}}
        else:
            payload |= {"user": user, "context": 1,
                        "authorizing_integration_owners": {"1": user_id},
                        "channel": {"id": CHANNEL_ID, "type": 1, "recipients": [user]}}
        self.interactions[payload["token"]] = Interaction(payload)
        return payload

    def attach(self, filename: str, content: bytes,
               size: int | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """An attachment option and the ``resolved`` part that goes with it."""
        aid = str(next(self._ids))
        self.attachments[aid] = content
        url = f"{self.url}/attachments/{aid}/{filename}"
        info = {"id": aid, "filename": filename, "size": len(content) if size is None else size,
                "url": url, "proxy_url": url, "content_type": "application/json"}
        return option("config", aid, kind=11), {"attachments": {aid: info}}

    async def dispatch(self, payload: dict[str, Any]) -> None:
        """Send an interaction over every identified gateway connection."""
        assert self.sockets, "no gateway connection"
        self.interactions[payload["token"]].created = time.monotonic()
        for ws in list(self.sockets):
            await self._send(ws, "INTERACTION_CREATE", payload)

    def signed_headers(self, body: bytes, key: SigningKey | None = None,
                       timestamp: str | None = None) -> dict[str, str]:
        ts = timestamp or str(int(time.time()))
        signature = (key or self.signing_key).sign(ts.encode() + body).signature.hex()
        return {"X-Signature-Ed25519": signature, "X-Signature-Timestamp": ts,
                "Content-Type": "application/json"}

    async def deliver(self, client: Any, path: str,
                      payload: dict[str, Any]) -> tuple[int, Any, float]:
        """POST a signed interaction to an HTTP endpoint as Discord does; the status, the
        answer and how long it took. A first response counts as the interaction's callback."""
        body = json.dumps(payload).encode()
        interaction = self.interactions.get(payload.get("token", ""))
        start = time.monotonic()
        if interaction is not None:
            interaction.created = start
        async with client.post(path, data=body, headers=self.signed_headers(body)) as response:
            status = response.status
            answer = await response.json(content_type=None) if status == 200 else None
        elapsed = time.monotonic() - start
        if interaction is not None and isinstance(answer, dict) and payload.get("type") != 1:
            self._acknowledge(interaction, answer)
            await self.calls.put(Call("response", answer, time.monotonic(), interaction))
        return status, answer, elapsed

    async def next_call(self, timeout: float = 10.0) -> Call:
        return await asyncio.wait_for(self.calls.get(), timeout)

    # --- REST --------------------------------------------------------------------------------------

    @web.middleware
    async def _count(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests[f"{request.method} {request.path}"] += 1
        response: web.StreamResponse = await handler(request)
        return response

    def _bot(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != f"Bot {self.token}":
            return _json({"message": "401: Unauthorized", "code": 0}, 401)
        return None

    async def _me(self, request: web.Request) -> web.Response:
        return self._bot(request) or _json(_bot_user())

    async def _application(self, request: web.Request) -> web.Response:
        return self._bot(request) or _json({
            "id": APPLICATION_ID, "name": "fits", "description": "", "icon": None,
            "bot_public": True, "bot_require_code_grant": False, "owner": _bot_user(),
            "verify_key": self.public_key, "flags": 0})

    async def _gateway_bot(self, request: web.Request) -> web.Response:
        return self._bot(request) or _json({
            "url": self.gateway_url, "shards": 1, "session_start_limit": {
                "total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}})

    async def _get_commands(self, request: web.Request) -> web.Response:
        return self._bot(request) or _json(self.commands.get(_scope(request), []))

    async def _put_commands(self, request: web.Request) -> web.Response:
        refused = self._bot(request)
        if refused:
            return refused
        body = await request.json()
        scope = _scope(request)
        stored = [{**c, "id": str(next(self._ids)), "application_id": APPLICATION_ID,
                   "version": str(next(self._ids)), "default_member_permissions": None,
                   "nsfw": False, **({"guild_id": scope} if scope != "global" else {})}
                  for c in body]
        self.commands[scope] = stored
        self.command_writes.append((scope, body))
        return _json(stored)

    async def _callback(self, request: web.Request) -> web.Response:
        interaction = self.interactions.get(request.match_info["token"])
        if interaction is None or str(interaction.payload["id"]) != request.match_info["iid"]:
            return self._refuse(404, 10062, "Unknown interaction", "callback for no interaction")
        late = time.monotonic() - interaction.created
        if late > DEADLINE_S:
            return self._refuse(404, 10062, "Unknown interaction",
                                f"first response after {late:.2f} s")
        if interaction.acknowledged:
            return self._refuse(400, 40060, "Interaction has already been acknowledged.",
                                "a second first response")
        if request.query.get("with_response") not in ("1", "true", "True"):
            self.errors.append("callback without with_response")
        body = await _body(request)
        problem = _message_problem(body.get("data") or {}) if body.get("type") == 4 else None
        if problem:
            return self._refuse(400, 50035, "Invalid Form Body", problem)
        self._acknowledge(interaction, body)
        await self.calls.put(Call("callback", body, time.monotonic(), interaction))
        answer: dict[str, Any] = {"interaction": {
            "id": interaction.payload["id"], "type": interaction.payload["type"],
            "response_message_loading": body.get("type") == 5,
            "response_message_ephemeral": interaction.ephemeral}}
        if interaction.original is not None:
            answer["resource"] = {"type": body.get("type"), "message": interaction.original}
        return _json(answer)

    def _acknowledge(self, interaction: Interaction, body: dict[str, Any]) -> None:
        interaction.acknowledged = True
        interaction.response_type = body.get("type")
        data = _public(body.get("data") or {})
        interaction.ephemeral = bool(int(data.get("flags") or 0) & EPHEMERAL)
        if body.get("type") in (4, 5):
            interaction.original = self._message(interaction, data)

    def _webhook(self, request: web.Request) -> Interaction | web.Response:
        interaction = self.interactions.get(request.match_info["token"])
        if (interaction is None or not interaction.acknowledged
                or request.match_info["app"] != APPLICATION_ID):
            return self._refuse(404, 10015, "Unknown Webhook", "webhook call before a response")
        return interaction

    async def _followup(self, request: web.Request) -> web.Response:
        interaction = self._webhook(request)
        if isinstance(interaction, web.Response):
            return interaction
        body = await _body(request)
        problem = _message_problem(body)
        if problem:
            return self._refuse(400, 50035, "Invalid Form Body", problem)
        await self.calls.put(Call("followup", body, time.monotonic(), interaction))
        return _json(self._message(interaction, _public(body)))

    async def _get_original(self, request: web.Request) -> web.Response:
        interaction = self._webhook(request)
        if isinstance(interaction, web.Response):
            return interaction
        if interaction.original is None or interaction.deleted:
            return self._refuse(404, 10008, "Unknown Message", "no original message")
        return _json(interaction.original)

    async def _edit_original(self, request: web.Request) -> web.Response:
        interaction = self._webhook(request)
        if isinstance(interaction, web.Response):
            return interaction
        if interaction.original is None or interaction.deleted:
            return self._refuse(404, 10008, "Unknown Message", "edit of no original message")
        body = await _body(request)
        problem = _message_problem(body)
        if problem:
            return self._refuse(400, 50035, "Invalid Form Body", problem)
        interaction.original = {**interaction.original, **_public(body),
                                "edited_timestamp": "2024-01-01T00:00:01+00:00"}
        await self.calls.put(Call("edit", body, time.monotonic(), interaction))
        return _json(interaction.original)

    async def _delete_original(self, request: web.Request) -> web.Response:
        interaction = self._webhook(request)
        if isinstance(interaction, web.Response):
            return interaction
        if interaction.original is None or interaction.deleted:
            return self._refuse(404, 10008, "Unknown Message", "delete of no original message")
        interaction.deleted = True
        await self.calls.put(Call("delete", None, time.monotonic(), interaction))
        return web.Response(status=204)

    async def _attachment(self, request: web.Request) -> web.Response:
        content = self.attachments.get(request.match_info["aid"])
        if content is None:
            return web.Response(status=404)
        return web.Response(body=content, headers={"Content-Type": "application/json"})

    def _refuse(self, status: int, code: int, message: str, why: str) -> web.Response:
        self.errors.append(f"{message}: {why}")
        return _json({"message": message, "code": code, "errors": {"why": why}}, status)

    def _message(self, interaction: Interaction, data: dict[str, Any]) -> dict[str, Any]:
        return {"id": str(next(self._ids)), "channel_id": CHANNEL_ID, "type": 20,
                "author": _bot_user(), "content": data.get("content") or "",
                "embeds": data.get("embeds") or [], "attachments": [], "components": [],
                "timestamp": "2024-01-01T00:00:00+00:00", "edited_timestamp": None,
                "tts": False, "mention_everyone": False, "mentions": [], "mention_roles": [],
                "pinned": False, "flags": int(data.get("flags") or 0),
                "webhook_id": APPLICATION_ID, "application_id": APPLICATION_ID,
                "interaction_metadata": {"id": interaction.payload["id"], "type": 2,
                                         "user": _bot_user()}}

    # --- the gateway ------------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 41250},
                                      "s": None, "t": None}))
        try:
            async for message in ws:
                if message.type.name != "TEXT":
                    continue
                data = json.loads(message.data)
                if data.get("op") == 1:
                    await ws.send_str(json.dumps({"op": 11}))
                elif data.get("op") == 2:
                    await self._identify(ws, data["d"])
                elif data.get("op") == 6:
                    self.sockets.append(ws)
                    await self._send(ws, "RESUMED", {})
        finally:
            if ws in self.sockets:
                self.sockets.remove(ws)
        return ws

    async def _identify(self, ws: web.WebSocketResponse, identify: dict[str, Any]) -> None:
        if identify.get("token") != self.token:
            await ws.close(code=4004, message=b"Authentication failed.")
            return
        self.identifies.append({k: v for k, v in identify.items() if k != "token"})
        await self._send(ws, "READY", {
            "v": 10, "user": _bot_user(), "guilds": [], "session_id": secrets.token_hex(16),
            "resume_gateway_url": self.gateway_url, "shard": identify.get("shard", [0, 1]),
            "application": {"id": APPLICATION_ID, "flags": 0}})
        self.sockets.append(ws)
        self.identified.set()

    async def _send(self, ws: web.WebSocketResponse, event: str, data: Any) -> None:
        self._sequence += 1
        await ws.send_str(json.dumps({"op": 0, "t": event, "s": self._sequence, "d": data}))

    async def close(self) -> None:
        for ws in list(self.sockets):
            await ws.close()


# --- helpers ---------------------------------------------------------------------------------------


def _json(data: Any, status: int = 200) -> web.Response:
    # Exactly "application/json": discord.py compares the header as a string (no charset).
    return web.Response(body=json.dumps(data).encode(), status=status,
                        headers={"Content-Type": "application/json"})


def _bot_user() -> dict[str, Any]:
    return {"id": BOT_ID, "username": "fits", "discriminator": "0", "avatar": None,
            "bot": True, "global_name": None}


def _scope(request: web.Request) -> str:
    return request.match_info.get("guild", "global")


def _public(body: dict[str, Any]) -> dict[str, Any]:
    """A message as Discord stores it: the uploads become its attachments, not its fields."""
    return {k: v for k, v in body.items() if k != "_files"}


async def _body(request: web.Request) -> dict[str, Any]:
    """JSON, or multipart with a payload_json part (what discord.py sends with files)."""
    if request.content_type.startswith("multipart/"):
        form = await request.post()
        raw = form["payload_json"]  # a plain field, or bytes when it came with a content type
        text = raw.decode() if isinstance(raw, bytes | bytearray) else str(raw)
        body = dict(json.loads(text))
        # The uploads, as Discord keeps them: files[n] referenced by the message's attachments.
        files = [(v.filename, v.file.read()) for k, v in form.items()
                 if k.startswith("files[") and isinstance(v, web.FileField)]
        if files:
            body["_files"] = files
        return body
    return dict(await request.json())


def embed_length(embed: dict[str, Any]) -> int:
    return (len(embed.get("title") or "") + len(embed.get("description") or "")
            + sum(len(f.get("name") or "") + len(f.get("value") or "")
                  for f in embed.get("fields") or [])
            + len((embed.get("footer") or {}).get("text") or "")
            + len((embed.get("author") or {}).get("name") or ""))


def limit_problems(message: dict[str, Any]) -> list[str]:
    """Every way ``message`` breaks Discord's limits (docs: message.mdx, Embed Limits)."""
    out = []
    if len(message.get("content") or "") > LIMITS["content"]:
        out.append("content over 2000")
    embeds = message.get("embeds") or []
    if len(embeds) > LIMITS["embeds"]:
        out.append("more than 10 embeds")
    for embed in embeds:
        for key in ("title", "description"):
            if len(embed.get(key) or "") > LIMITS[key]:
                out.append(f"embed {key} over {LIMITS[key]}")
        fields = embed.get("fields") or []
        if len(fields) > LIMITS["fields"]:
            out.append("more than 25 fields")
        for f in fields:
            if not f.get("name") or not f.get("value"):
                out.append("an empty field name or value")
            if len(f.get("name") or "") > LIMITS["field.name"]:
                out.append("field name over 256")
            if len(f.get("value") or "") > LIMITS["field.value"]:
                out.append("field value over 1024")
        if len((embed.get("footer") or {}).get("text") or "") > LIMITS["footer.text"]:
            out.append("footer over 2048")
        if len((embed.get("author") or {}).get("name") or "") > LIMITS["author.name"]:
            out.append("author name over 256")
    if sum(embed_length(e) for e in embeds) > LIMITS["total"]:
        out.append("embeds over 6000 characters in all")
    return out


def _message_problem(message: dict[str, Any]) -> str | None:
    problems = limit_problems(message)
    if not message.get("content") and not message.get("embeds"):
        problems.append("a message with neither content nor embeds")
    return "; ".join(problems) or None
