"""A small client for the few Discord REST calls the HTTP endpoint makes itself (aiohttp): the
interaction webhook (edit, delete, follow-up) and command registration.

URLs of interaction webhooks hold the interaction's token, so neither a URL nor a response body
ever reaches an exception message or a log line: errors carry the status and Discord's code.
"""

from __future__ import annotations

import asyncio
import json as json_module
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import aiohttp

DEFAULT_API_URL = "https://discord.com/api/v10"
ATTEMPTS = 3  # on 429: Discord says how long to wait
MAX_RETRY_AFTER_S = 5.0  # longer than that and the user is better told to try again
TIMEOUT = aiohttp.ClientTimeout(total=10)


def _user_agent() -> str:
    # Discord asks bots for "DiscordBot ($url, $version)".
    try:
        return f"DiscordBot (fits, {version('fits')})"
    except PackageNotFoundError:
        return "DiscordBot (fits, dev)"


class DiscordApiError(Exception):
    """Discord refused a call: its HTTP status and Discord's error code, nothing else."""

    def __init__(self, status: int, code: int | None = None) -> None:
        super().__init__(f"Discord answered HTTP {status}" + (f" (code {code})" if code else ""))
        self.status = status
        self.code = code


class DiscordRest:
    def __init__(self, session: aiohttp.ClientSession, api_url: str | None = None,
                 bot_token: str | None = None) -> None:
        self.session = session
        self.api_url = (api_url or DEFAULT_API_URL).rstrip("/")
        self.bot_token = bot_token
        self.user_agent = _user_agent()

    async def request(self, method: str, path: str, *, json: Any = None,
                      bot_auth: bool = False, files: Sequence[tuple[str, bytes]] = ()) -> Any:
        """One call; the parsed JSON answer (None for 204). Raises DiscordApiError. With
        ``files`` the body is multipart: payload_json and files[n], as Discord takes uploads."""
        headers = {"User-Agent": self.user_agent}
        if bot_auth and self.bot_token:
            headers["Authorization"] = f"Bot {self.bot_token}"
        for attempt in range(1, ATTEMPTS + 1):
            body = _multipart(json, files) if files else None  # a form is sent only once
            async with self.session.request(method, self.api_url + path,
                                            json=None if files else json, data=body,
                                            headers=headers, timeout=TIMEOUT) as response:
                body = await _json(response)
                if response.status == 429 and attempt < ATTEMPTS:
                    wait = body.get("retry_after", 1.0) if isinstance(body, dict) else 1.0
                    if isinstance(wait, int | float) and 0 <= wait <= MAX_RETRY_AFTER_S:
                        await asyncio.sleep(float(wait))
                        continue
                if response.status >= 400:
                    code = body.get("code") if isinstance(body, dict) else None
                    raise DiscordApiError(response.status, code if isinstance(code, int) else None)
                return body
        raise DiscordApiError(429)  # unreachable: the last attempt returns or raises

    # --- the interaction webhook: valid for 15 minutes after the interaction ---------------------

    async def edit_original(self, application_id: str, token: str,
                            message: dict[str, Any],
                            files: Sequence[tuple[str, bytes]] = ()) -> None:
        body = {k: v for k, v in message.items() if k != "flags"}  # flags are set at creation
        await self.request("PATCH", f"/webhooks/{application_id}/{token}/messages/@original",
                           json=body, files=files)

    async def delete_original(self, application_id: str, token: str) -> None:
        await self.request("DELETE", f"/webhooks/{application_id}/{token}/messages/@original")

    async def follow_up(self, application_id: str, token: str, message: dict[str, Any],
                        files: Sequence[tuple[str, bytes]] = ()) -> None:
        await self.request("POST", f"/webhooks/{application_id}/{token}", json=message,
                           files=files)


def _multipart(message: Any, files: Sequence[tuple[str, bytes]]) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("payload_json", json_module.dumps(message), content_type="application/json")
    for i, (name, data) in enumerate(files):
        form.add_field(f"files[{i}]", data, filename=name, content_type="image/png")
    return form


async def _json(response: aiohttp.ClientResponse) -> Any:
    if response.status == 204:
        return None
    try:
        return await response.json(content_type=None)
    except (ValueError, aiohttp.ContentTypeError):
        return None
