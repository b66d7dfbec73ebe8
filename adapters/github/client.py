"""GitHub's REST API for our replies, on gidgethub's aiohttp client.

Auth is a personal or machine-user token (TokenAuth), or a GitHub App (AppAuth): an RS256 JWT
signed with the App's private key is exchanged for an installation token, kept until 5 minutes
before it expires. Every URL is a relative template, so GITHUB_API_URL (GitHub Enterprise, the
tests' fake) applies to all of them; URLs from payloads would bypass it.

A reply is found again by its marker among the issue's comments newer than what it answers, and
only if we wrote it (the App's id on the comment, or our login), so nobody can get us to edit
their comment by pasting a marker.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
from gidgethub import BadRequest, HTTPException
from gidgethub.aiohttp import GitHubAPI
from gidgethub.apps import get_installation_access_token

from adapters.github.events import Job
from adapters.github.reply import nothing_asked, read_marker

USER_AGENT = "fits-bot"
HEADERS = {"x-github-api-version": "2022-11-28"}
RENEW_BEFORE_S = 300  # an installation token lives 1 h; renew it 5 minutes before it ends
COMMENTS = "/repos/{owner}/{repo}/issues/{number}/comments"


class MissingInstallation(Exception):
    """An App was asked to act on a delivery that names no installation."""


class UnexpectedAnswer(Exception):
    """GitHub answered 2xx with something we cannot use."""


def read_private_key(value: str) -> str:
    """The App's PEM private key from GITHUB_PRIVATE_KEY: the PEM itself (newlines may be
    written as \\n, as environment files need), or the path of the .pem file GitHub gave.
    Raises ValueError, without the key in the message, when it is neither."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    text = value.strip().replace("\\n", "\n")
    if "-----BEGIN" not in text:
        path = Path(text).expanduser()
        if not path.is_file():
            raise ValueError("it is neither a PEM private key nor the path of a .pem file")
        text = path.read_text(encoding="utf-8").strip()
    try:
        load_pem_private_key(text.encode(), password=None)
    except (ValueError, TypeError):
        raise ValueError("it is not a PEM private key without a password") from None
    return text + "\n"


class Auth(ABC):
    needs_installation = False  # an App acts per installation; a delivery must name one
    @abstractmethod
    async def token(self, client: GitHubClient, installation_id: int | None) -> str:
        """The token to act with on this installation's repositories."""

    @abstractmethod
    async def wrote(self, client: GitHubClient, comment: dict[str, Any]) -> bool:
        """Whether the comment was written by us."""

    async def is_self(self, client: GitHubClient, login: str) -> bool:
        """Whether a sender is us (an App's senders are bots, skipped before this)."""
        return False


class TokenAuth(Auth):
    """A personal access token or a machine user's: replies appear as that user."""

    def __init__(self, token: str) -> None:
        self._token = token
        self._login: str | None = None
        self._login_asked = False
        self._login_lock = asyncio.Lock()

    async def token(self, client: GitHubClient, installation_id: int | None) -> str:
        return self._token

    async def login(self, client: GitHubClient) -> str | None:
        """Our login (GET /user, asked once). None when the token may not read it."""
        async with self._login_lock:
            if not self._login_asked:
                try:
                    user = await client.api(self._token).getitem("/user", extra_headers=HEADERS)
                    login = user.get("login") if isinstance(user, dict) else None
                    self._login = login if isinstance(login, str) else None
                except HTTPException:
                    self._login = None
                self._login_asked = True
        return self._login

    async def wrote(self, client: GitHubClient, comment: dict[str, Any]) -> bool:
        user = comment.get("user")
        if not isinstance(user, dict):
            return False
        login = await self.login(client)
        if login is not None:
            return bool(user.get("login") == login)
        return bool(user.get("type") == "Bot")  # a token that cannot say who it is: a bot's

    async def is_self(self, client: GitHubClient, login: str) -> bool:
        return login == await self.login(client)


class AppAuth(Auth):
    """A GitHub App: a JWT for the App, exchanged for one token per installation."""

    needs_installation = True

    def __init__(self, app_id: str, private_key: str) -> None:
        self.app_id = app_id
        self._private_key = private_key
        self._tokens: dict[int, tuple[str, float]] = {}  # installation -> (token, renew at)
        self._locks: dict[int, asyncio.Lock] = {}

    async def token(self, client: GitHubClient, installation_id: int | None) -> str:
        if installation_id is None:
            raise MissingInstallation("the delivery names no installation")
        cached = self._tokens.get(installation_id)
        if cached and time.time() < cached[1]:
            return cached[0]
        async with self._locks.setdefault(installation_id, asyncio.Lock()):
            cached = self._tokens.get(installation_id)  # another job may have fetched it
            if cached and time.time() < cached[1]:
                return cached[0]
            data = await get_installation_access_token(
                client.api(None), installation_id=str(installation_id), app_id=self.app_id,
                private_key=self._private_key)
            token = data.get("token")
            if not isinstance(token, str) or not token:
                raise UnexpectedAnswer("GitHub's installation token answer has no token")
            self._tokens[installation_id] = (token, _renew_at(data.get("expires_at")))
            return token

    def forget(self, installation_id: int | None) -> None:
        """Drop a cached token GitHub refused (401)."""
        if installation_id is not None:
            self._tokens.pop(installation_id, None)

    async def wrote(self, client: GitHubClient, comment: dict[str, Any]) -> bool:
        app = comment.get("performed_via_github_app")
        if not isinstance(app, dict):
            return False
        return self.app_id in (str(app.get("id")), str(app.get("client_id")))


def _renew_at(expires_at: Any) -> float:
    """When to fetch a new token: 5 minutes before ``expires_at`` (10 minutes from now when
    GitHub's timestamp cannot be read)."""
    try:
        expires = datetime.fromisoformat(str(expires_at)).timestamp()
    except ValueError:
        return time.time() + 600
    return max(time.time() + 30, expires - RENEW_BEFORE_S)


class GitHubClient:
    """Finds, creates and updates our reply on an issue."""

    def __init__(self, session: aiohttp.ClientSession, auth: Auth, base_url: str) -> None:
        self.session = session
        self.auth = auth
        self.base_url = base_url

    def api(self, token: str | None) -> GitHubAPI:
        if token is None and isinstance(self.auth, AppAuth):  # App-level calls sign with a JWT
            return GitHubAPI(self.session, USER_AGENT, base_url=self.base_url)
        return GitHubAPI(self.session, USER_AGENT, oauth_token=token, base_url=self.base_url)

    async def is_self(self, login: str) -> bool:
        return await self.auth.is_self(self, login)

    async def publish(self, job: Job, body: str | None) -> str:
        """Create or update our reply to ``job``; ``body`` None: the source asks nothing now, so
        an earlier reply (if any) says so and nothing new is posted. Returns what happened:
        created, updated, unchanged, stale (a newer version was answered already), none, or
        "duplicate removed" (another replica's reply was first)."""
        for attempt in (1, 2):
            gh = self.api(await self.auth.token(self, job.installation_id))
            try:
                return await self._publish(gh, job, body)
            except BadRequest as exc:
                # A revoked or expired installation token: fetch a new one, once.
                if exc.status_code != 401 or attempt == 2 or not isinstance(self.auth, AppAuth):
                    raise
                self.auth.forget(job.installation_id)
        raise AssertionError("unreachable")

    async def _publish(self, gh: GitHubAPI, job: Job, body: str | None) -> str:
        where: dict[str, str | int] = {"owner": job.owner, "repo": job.repo, "number": job.number}
        existing = await self._find(gh, job)
        if existing is not None:
            found = read_marker(str(existing.get("body") or ""))
            if found is not None and found[1] > job.updated_at:
                return "stale"
            text = body if body is not None else nothing_asked(job.reply_key, job.updated_at)
            if existing.get("body") == text:
                return "unchanged"
            await gh.patch("/repos/{owner}/{repo}/issues/comments/{comment_id}",
                           {**where, "comment_id": existing["id"]}, data={"body": text},
                           extra_headers=HEADERS)
            return "updated"
        if body is None:
            return "none"
        created = await gh.post(COMMENTS, where, data={"body": body}, extra_headers=HEADERS)
        mine = created.get("id") if isinstance(created, dict) else None
        return await self._one_reply(gh, job, mine)

    async def _one_reply(self, gh: GitHubAPI, job: Job, mine: Any) -> str:
        """After posting: if another replica posted a reply to the same source at the same time
        (possible only when their shared de-duplication was unavailable), the earliest reply
        stays and each later one is deleted by whoever posted it, so one remains."""
        ours = await self._ours(gh, job)
        if not isinstance(mine, int) or len(ours) < 2:
            return "created"
        first = min(int(c["id"]) for c in ours)
        if mine == first:
            return "created"
        await gh.delete("/repos/{owner}/{repo}/issues/comments/{comment_id}",
                        {"owner": job.owner, "repo": job.repo, "comment_id": mine},
                        extra_headers=HEADERS)
        return "duplicate removed"

    async def _find(self, gh: GitHubAPI, job: Job) -> dict[str, Any] | None:
        """Our earlier reply to this source (the earliest, should there be two)."""
        ours = await self._ours(gh, job)
        return min(ours, key=lambda c: int(c["id"])) if ours else None

    async def _ours(self, gh: GitHubAPI, job: Job) -> list[dict[str, Any]]:
        """Our replies to this source: comments updated since the source was created that carry
        its marker and were written by us."""
        url_vars: dict[str, str | int] = {"owner": job.owner, "repo": job.repo,
                                          "number": job.number, "since": job.created_at,
                                          "per_page": 100}
        out = []
        async for comment in gh.getiter(COMMENTS + "{?since,per_page}", url_vars,
                                        extra_headers=HEADERS):
            if not isinstance(comment, dict) or not isinstance(comment.get("id"), int):
                continue
            found = read_marker(str(comment.get("body") or ""))
            if found and found[0] == job.reply_key and await self.auth.wrote(self, comment):
                out.append(comment)
        return out
