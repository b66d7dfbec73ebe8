"""A fake Slack (aiohttp) that the real slack_sdk / slack_bolt clients talk to, and the signing of
test requests the way Slack signs them (../shared/docs/platforms.md §2).

It serves:

- the Web API under ``/api/`` (point ``AsyncWebClient(base_url=...)``, i.e. SLACK_API_URL, at
  ``url + "/api/"``): ``auth.test`` (the service calls it once at start-up), ``chat.postMessage``
  (recorded) and ``apps.connections.open`` (Socket Mode: answers the websocket URL below). Every
  method checks ``Authorization: Bearer <token>`` and answers ``invalid_auth`` otherwise, with
  HTTP 200 and ``ok: false`` as Slack does. Knobs for auth.test: ``auth_delay`` (seconds it takes),
  ``auth_error`` (an error it answers, e.g. ``token_revoked``), ``auth_outages`` (how many calls
  answer HTTP 503 first, as an unreachable Slack behind a proxy does); ``post_outages`` does the
  same for chat.postMessage.
- ``order``: every Web API call and response_url message, in the order they arrived.
- ``POST /respond/{key}``: a slash command's ``response_url``; each message received is recorded,
  with the time it arrived.
- ``GET /link``: the Socket Mode websocket: ``hello`` first, then the envelopes a test pushes with
  ``send_envelope``; the client's acks are recorded.

Messages whose blocks break Block Kit's limits are refused as Slack refuses them
(``invalid_blocks``), so a test cannot pass with a message Slack would reject.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from collections import Counter
from typing import Any
from urllib.parse import urlencode

from aiohttp import WSMsgType, web

BOT_TOKEN = "xoxb-fake-bot-token-0123456789"
APP_TOKEN = "xapp-1-fake-app-token-0123456789"
SIGNING_SECRET = "fake-signing-secret-8f14e45fceea167a5a36dedd4bea2543"
TEAM_ID = "T0FITS"
BOT_USER_ID = "U0FITSBOT"
BOT_ID = "B0FITS"
APP_ID = "A0FITS"


def sign(body: str, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict[str, str]:
    """The headers Slack sends with ``body``: v0 HMAC-SHA256 over ``v0:{timestamp}:{body}``."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def slash_payload(text: str, response_url: str, *, user: str = "U0ALICE", team: str = TEAM_ID,
                  channel: str = "C0GENERAL") -> dict[str, str]:
    """The fields of a `/fits` slash command as Slack posts them."""
    return {"token": "deprecated-verification-token", "team_id": team, "team_domain": "fits-test",
            "channel_id": channel, "channel_name": "general", "user_id": user,
            "user_name": "alice", "command": "/fits", "text": text, "api_app_id": APP_ID,
            "is_enterprise_install": "false", "response_url": response_url,
            "trigger_id": f"{uuid.uuid4().int % 10**10}.{uuid.uuid4().int % 10**10}.abc"}


def slash_body(text: str, response_url: str, **kw: str) -> str:
    """A slash command's form body (application/x-www-form-urlencoded), as Slack encodes it."""
    return urlencode(slash_payload(text, response_url, **kw))


def mention_event(text: str, *, ts: str = "1700000000.000100", thread_ts: str | None = None,
                  user: str = "U0ALICE", channel: str = "C0GENERAL",
                  event_id: str | None = None) -> dict[str, Any]:
    """An Events API ``event_callback`` envelope carrying an ``app_mention``."""
    event: dict[str, Any] = {"type": "app_mention", "user": user, "text": text, "ts": ts,
                             "channel": channel, "event_ts": ts, "team": TEAM_ID}
    if thread_ts is not None:
        event["thread_ts"] = thread_ts
    return {"token": "deprecated-verification-token", "team_id": TEAM_ID, "api_app_id": APP_ID,
            "event": event, "type": "event_callback",
            "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
            "event_time": int(time.time()),
            "authorizations": [{"team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True}]}


def block_problems(blocks: Any) -> list[str]:
    """Why Slack would refuse these blocks (empty when it would take them)."""
    if not isinstance(blocks, list):
        return ["blocks is not a list"]
    problems = [] if len(blocks) <= 50 else [f"{len(blocks)} blocks (limit 50)"]
    for i, block in enumerate(blocks):
        kind = block.get("type")
        if kind == "header":
            text = block["text"]
            if text.get("type") != "plain_text" or not 0 < len(text["text"]) <= 150:
                problems.append(f"block {i}: header text must be plain_text of 1-150")
        elif kind == "section":
            if "text" not in block and "fields" not in block:
                problems.append(f"block {i}: section without text or fields")
            if "text" in block and not 0 < len(block["text"]["text"]) <= 3000:
                problems.append(f"block {i}: section text of {len(block['text']['text'])}")
            fields = block.get("fields", [])
            if len(fields) > 10 or any(not 0 < len(f["text"]) <= 2000 for f in fields):
                problems.append(f"block {i}: fields beyond 10 of 2000")
        elif kind == "context":
            elements = block.get("elements", [])
            if not 0 < len(elements) <= 10 or any(not e.get("text") for e in elements):
                problems.append(f"block {i}: context needs 1-10 elements")
        elif kind not in ("divider", "image", "actions", "rich_text"):
            problems.append(f"block {i}: unknown type {kind!r}")
    return problems


class FakeSlack:
    def __init__(self, bot_token: str = BOT_TOKEN, app_token: str = APP_TOKEN) -> None:
        self.bot_token = bot_token
        self.app_token = app_token
        self.url = ""  # set by the test once the server listens: "http://127.0.0.1:PORT"
        self.calls: Counter[str] = Counter()  # Web API method -> n
        self.auth_seen: list[str] = []  # every Authorization header received
        self.posts: asyncio.Queue[dict[str, Any]] = asyncio.Queue()  # chat.postMessage bodies
        self.responses: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self.acks: asyncio.Queue[dict[str, Any]] = asyncio.Queue()  # Socket Mode acks
        self.arrivals: dict[str, float] = {}  # response_url key -> time.perf_counter() on arrival
        self.connected = asyncio.Event()
        self._socket: web.WebSocketResponse | None = None
        self.response_delay = 0.0  # seconds the response_url holds each answer
        self.auth_delay = 0.0  # seconds auth.test takes to answer
        self.auth_error: str | None = None  # what auth.test answers instead of ok
        self.auth_outages = 0  # auth.test calls still to answer HTTP 503
        self.post_outages = 0  # chat.postMessage calls still to answer HTTP 503
        self.order: list[str] = []  # "auth.test", "chat.postMessage", "respond:<key>" ...

    # --- for tests -------------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def response_url(self, key: str = "") -> str:
        return f"{self.url}/respond/{key or uuid.uuid4().hex}"

    async def next_response(self, timeout: float = 10.0) -> tuple[str, dict[str, Any]]:
        """The next message that reached a response_url: (its key, its JSON body)."""
        return await asyncio.wait_for(self.responses.get(), timeout)

    async def next_post(self, timeout: float = 10.0) -> dict[str, Any]:
        return await asyncio.wait_for(self.posts.get(), timeout)

    async def send_envelope(self, kind: str, payload: dict[str, Any]) -> str:
        """Push a Socket Mode envelope (``slash_commands``, ``events_api``) to the connected
        client; its envelope id."""
        await asyncio.wait_for(self.connected.wait(), 10)
        assert self._socket is not None
        envelope_id = str(uuid.uuid4())
        await self._socket.send_json({"envelope_id": envelope_id, "type": kind,
                                      "payload": payload, "accepts_response_payload":
                                      kind != "events_api", "retry_attempt": 0,
                                      "retry_reason": ""})
        return envelope_id

    async def next_ack(self, timeout: float = 10.0) -> dict[str, Any]:
        return await asyncio.wait_for(self.acks.get(), timeout)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_post("/respond/{key}", self._respond)
        app.router.add_get("/link", self._link)
        return app

    # --- the Web API -----------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        self.calls[method] += 1
        self.order.append(method)
        auth = request.headers.get("Authorization", "")
        self.auth_seen.append(auth)
        if method == "auth.test":
            if self.auth_outages > 0:
                self.auth_outages -= 1
                return web.Response(status=503, text="upstream connect error")
            await asyncio.sleep(self.auth_delay)
        wanted = self.app_token if method == "apps.connections.open" else self.bot_token
        if auth != f"Bearer {wanted}":
            return web.json_response({"ok": False, "error": "invalid_auth"})
        if request.content_type == "application/json":
            args = await request.json()
        else:
            args = dict(await request.post())
        if method == "auth.test" and self.auth_error:
            return web.json_response({"ok": False, "error": self.auth_error})
        if method == "auth.test":
            return web.json_response({"ok": True, "url": "https://fits-test.slack.com/",
                                      "team": "Fits Test", "user": "fits", "team_id": TEAM_ID,
                                      "user_id": BOT_USER_ID, "bot_id": BOT_ID,
                                      "is_enterprise_install": False})
        if method == "chat.postMessage" and self.post_outages > 0:
            self.post_outages -= 1
            return web.Response(status=503, text="upstream connect error")
        if method == "chat.postMessage":
            return await self._post_message(args)
        if method == "apps.connections.open":
            ws = self.url.replace("http://", "ws://", 1)
            return web.json_response({"ok": True, "url": f"{ws}/link?ticket={uuid.uuid4()}"})
        return web.json_response({"ok": False, "error": "unknown_method"})

    async def _post_message(self, args: dict[str, Any]) -> web.Response:
        blocks = args.get("blocks")
        if isinstance(blocks, str):  # a form post carries them as JSON text
            blocks = json.loads(blocks)
        if not args.get("channel"):
            return web.json_response({"ok": False, "error": "channel_not_found"})
        if not args.get("text") and not blocks:
            return web.json_response({"ok": False, "error": "no_text"})
        if blocks is not None and block_problems(blocks):
            return web.json_response({"ok": False, "error": "invalid_blocks",
                                      "errors": block_problems(blocks)})
        ts = f"{time.time():.6f}"
        await self.posts.put({**args, "blocks": blocks})
        return web.json_response({"ok": True, "channel": args["channel"], "ts": ts,
                                  "message": {"text": args.get("text"), "ts": ts}})

    # --- response_url ----------------------------------------------------------------------------

    async def _respond(self, request: web.Request) -> web.Response:
        if self.response_delay:
            await asyncio.sleep(self.response_delay)
        try:
            body = await request.json()
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        if body.get("blocks") is not None and block_problems(body["blocks"]):
            return web.Response(status=400, text="invalid_blocks")
        self.arrivals[request.match_info["key"]] = time.perf_counter()
        self.order.append(f"respond:{request.match_info['key']}")
        await self.responses.put((request.match_info["key"], body))
        return web.Response(text="ok")

    # --- Socket Mode -----------------------------------------------------------------------------

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()  # answers the client's pings itself
        await ws.prepare(request)
        await ws.send_json({"type": "hello", "num_connections": 1,
                            "connection_info": {"app_id": APP_ID},
                            "debug_info": {"host": "fake-slack", "approximate_connection_time":
                                           18060}})
        self._socket = ws
        self.connected.set()
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self.acks.put(json.loads(msg.data))
        finally:
            self.connected.clear()
            self._socket = None
        return ws
