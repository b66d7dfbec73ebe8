"""A fake GitHub REST API (aiohttp) that gidgethub, driven by the real GitHub surface, talks to.

It serves what bot/github_surface.py asks for, answered the way api.github.com answers:

- ``GET /user``: the login of a personal access token (an installation token gets GitHub's 403
  "Resource not accessible by integration").
- ``POST /app/installations/{id}/access_tokens``: checks the App's RS256 JWT with the public key
  (issuer, issued-at, at most 10 minutes to expiry) and issues ``ghs_...`` with ``expires_at``.
- ``GET /repos/{o}/{r}/issues/{n}/comments``: ``since`` and ``per_page``/``page``, with the Link
  header for the next page.
- ``POST /repos/{o}/{r}/issues/{n}/comments``: 201; 422 past 65,536 characters.
- ``PATCH /repos/{o}/{r}/issues/comments/{id}``: 200.
- ``DELETE /repos/{o}/{r}/issues/comments/{id}``: 204 (404 when it is gone, 403 when it is
  someone else's).

It also plays GitHub's webhook side: ``comment_event``/``issue_event`` build payloads shaped like
GitHub's, and ``deliver`` posts one, signed, to the app under test.

A comment written with an installation token is the App's bot's, with ``performed_via_github_app``;
one written with a personal token is that user's. Unknown credentials get 401 "Bad credentials".
Every request is recorded; ``hold()`` makes comment requests wait until ``release()``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from aiohttp import web

TOKEN = "ghp_FAKEpersonalTOKENneverShown42"
USER = {"login": "fits-machine", "id": 9001, "type": "User"}
APP_SLUG = "fits-app"
MAX_BODY = 65_536
JSON_BODY = web.RequestKey("json_body", object)


def now_iso(offset_s: float = 0) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + offset_s))


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    authorization: str | None
    body: Any


class FakeGitHub:
    def __init__(self, *, app_id: str | None = None, public_key: str | None = None,
                 token_ttl_s: int = 3600) -> None:
        self.users: dict[str, dict[str, Any]] = {TOKEN: USER}  # personal token -> user
        self.app_id = app_id
        self.public_key = public_key
        self.token_ttl_s = token_ttl_s
        self.installation_tokens: dict[str, int] = {}  # issued token -> installation id
        self.jwt_claims: list[dict[str, Any]] = []  # every verified App JWT
        self.comments: dict[int, dict[str, Any]] = {}
        self.threads: dict[tuple[str, str, int], list[int]] = {}  # issue -> comment ids
        self.requests: list[Recorded] = []
        self.base_url = ""  # set by the test once the server listens: for Link headers
        self._ids = itertools.count(5001)
        self._tokens = itertools.count(1)
        self._open = asyncio.Event()
        self._open.set()

    # --- set-up and inspection -------------------------------------------------------------------

    def add_comment(self, owner: str, repo: str, number: int, body: str,
                    user: dict[str, Any] | None = None,
                    app: dict[str, Any] | None = None) -> dict[str, Any]:
        """A comment already on the issue (someone else's, or a forged marker)."""
        stamp = now_iso()
        comment = {"id": next(self._ids), "body": body, "user": user or USER,
                   "created_at": stamp, "updated_at": stamp,
                   "performed_via_github_app": app}
        self.comments[comment["id"]] = comment
        self.threads.setdefault((owner, repo, number), []).append(comment["id"])
        return comment

    def thread(self, owner: str, repo: str, number: int) -> list[dict[str, Any]]:
        return [self.comments[i] for i in self.threads.get((owner, repo, number), [])]

    def calls(self, method: str, contains: str = "") -> list[Recorded]:
        return [r for r in self.requests if r.method == method and contains in r.path]

    def revoke_installation_tokens(self) -> None:
        self.installation_tokens.clear()

    def hold(self) -> None:
        """Make comment requests wait (a slow GitHub) until ``release()``."""
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/user", self._user)
        app.router.add_post("/app/installations/{installation}/access_tokens", self._token)
        app.router.add_get("/repos/{owner}/{repo}/issues/{number:\\d+}/comments", self._list)
        app.router.add_post("/repos/{owner}/{repo}/issues/{number:\\d+}/comments", self._create)
        app.router.add_patch("/repos/{owner}/{repo}/issues/comments/{id:\\d+}", self._update)
        app.router.add_delete("/repos/{owner}/{repo}/issues/comments/{id:\\d+}", self._delete)
        return app

    # --- plumbing --------------------------------------------------------------------------------

    @staticmethod
    def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None
              ) -> web.Response:
        return web.json_response(data, status=status, headers={
            "X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "4999",
            "X-RateLimit-Reset": str(int(time.time()) + 3600), **(headers or {})})

    def _identity(self, request: web.Request) -> dict[str, Any] | None:
        """Who the Authorization header is: a user, an installation's bot, or None."""
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() not in ("token", "bearer"):
            return None
        if credential in self.users:
            return {"user": self.users[credential], "app": None}
        if credential in self.installation_tokens:
            return {"user": {"login": f"{APP_SLUG}[bot]", "id": 7007, "type": "Bot"},
                    "app": {"id": int(self.app_id or 0), "client_id": "Iv1.fake",
                            "slug": APP_SLUG}}
        return None

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.json() if request.can_read_body and request.content_length else None
        request[JSON_BODY] = body
        self.requests.append(Recorded(request.method, request.path, dict(request.query),
                                      request.headers.get("Authorization"), body))
        if "/comments" in request.path:
            await self._open.wait()
        if not request.path.startswith("/app/") and self._identity(request) is None:
            return self._json({"message": "Bad credentials"}, 401)
        response: web.StreamResponse = await handler(request)
        return response

    # --- routes ----------------------------------------------------------------------------------

    async def _user(self, request: web.Request) -> web.Response:
        who = self._identity(request)
        assert who is not None
        if who["app"] is not None:
            return self._json({"message": "Resource not accessible by integration"}, 403)
        return self._json(who["user"])

    async def _token(self, request: web.Request) -> web.Response:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not self.public_key:
            return self._json({"message": "A JSON web token could not be decoded"}, 401)
        try:
            claims = jwt.decode(token, self.public_key, algorithms=["RS256"],
                                options={"require": ["iat", "exp", "iss"]}, leeway=0)
        except jwt.PyJWTError as exc:
            return self._json({"message": f"A JSON web token could not be decoded ({exc})"}, 401)
        if str(claims["iss"]) != self.app_id or claims["exp"] - time.time() > 600:
            return self._json({"message": "'Expiration time' claim ('exp') is too far in the "
                                          "future"}, 401)
        self.jwt_claims.append(claims)
        issued = f"ghs_fakeINSTALLATION{next(self._tokens)}token"
        self.installation_tokens[issued] = int(request.match_info["installation"])
        return self._json({"token": issued, "expires_at": now_iso(self.token_ttl_s),
                           "permissions": {"issues": "write", "metadata": "read"}}, 201)

    def _issue(self, request: web.Request) -> tuple[str, str, int]:
        info = request.match_info
        return info["owner"], info["repo"], int(info["number"])

    async def _list(self, request: web.Request) -> web.Response:
        issue = self._issue(request)
        since = request.query.get("since", "")
        per_page = min(100, int(request.query.get("per_page", "30")))
        page = int(request.query.get("page", "1"))
        matching = [c for c in self.thread(*issue) if c["updated_at"] >= since]
        chunk = matching[(page - 1) * per_page:page * per_page]
        headers = {}
        if page * per_page < len(matching):
            query = "&".join(f"{k}={v}" for k, v in
                             {**request.query, "page": str(page + 1)}.items())
            headers["Link"] = f'<{self.base_url.rstrip("/")}{request.path}?{query}>; rel="next"'
        return self._json(chunk, headers=headers)

    async def _create(self, request: web.Request) -> web.Response:
        who = self._identity(request)
        assert who is not None
        body = (request[JSON_BODY] or {}).get("body")
        if not isinstance(body, str) or len(body) > MAX_BODY:
            return self._json({"message": "Validation Failed", "errors": [
                {"resource": "IssueComment", "code": "custom", "field": "body",
                 "message": "body is too long (maximum is 65536 characters)"}]}, 422)
        comment = self.add_comment(*self._issue(request), body, user=who["user"], app=who["app"])
        return self._json(comment, 201)

    async def _update(self, request: web.Request) -> web.Response:
        comment = self.comments.get(int(request.match_info["id"]))
        if comment is None:
            return self._json({"message": "Not Found"}, 404)
        body = (request[JSON_BODY] or {}).get("body")
        if not isinstance(body, str) or len(body) > MAX_BODY:
            return self._json({"message": "Validation Failed"}, 422)
        comment["body"] = body
        comment["updated_at"] = now_iso()
        return self._json(comment)


    async def _delete(self, request: web.Request) -> web.Response:
        who = self._identity(request)
        comment_id = int(request.match_info["id"])
        comment = self.comments.get(comment_id)
        if comment is None:
            return self._json({"message": "Not Found"}, 404)
        if who is None or comment["user"] != who["user"]:
            return self._json({"message": "Must have admin rights to Repository."}, 403)
        del self.comments[comment_id]
        for ids in self.threads.values():
            if comment_id in ids:
                ids.remove(comment_id)
        return web.Response(status=204)


# --- GitHub's webhook side ------------------------------------------------------------------------

WEBHOOK_SECRET = "whsec_FAKEwebhookSECRETneverShown7"
OWNER, REPO, NUMBER = "octo-org", "models", 7
SENDER = {"login": "asker", "id": 314, "type": "User"}


def sign(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _common(action: str, labels: tuple[str, ...], installation: int | None,
            sender: dict[str, Any] | None, number: int) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "action": action,
        "issue": {"number": number, "title": "Question", "body": "", "state": "open",
                  "labels": [{"id": i, "name": name} for i, name in enumerate(labels)],
                  "user": SENDER, "created_at": "2026-01-05T10:00:00Z",
                  "updated_at": "2026-01-05T10:00:00Z",
                  "comments_url": f"https://api.github.com/repos/{OWNER}/{REPO}/issues/{number}"
                                  "/comments"},
        "repository": {"id": 271828, "name": REPO, "full_name": f"{OWNER}/{REPO}",
                       "owner": {"login": OWNER, "id": 42, "type": "Organization"}},
        "sender": sender or SENDER,
    }
    if installation is not None:
        payload["installation"] = {"id": installation, "node_id": "MDIz"}
    return payload


def comment_event(body: str, *, action: str = "created", comment_id: int = 101,
                  created_at: str = "2026-01-05T11:00:00Z", updated_at: str | None = None,
                  before: str | None = None, labels: tuple[str, ...] = (),
                  installation: int | None = None, sender: dict[str, Any] | None = None,
                  number: int = NUMBER) -> dict[str, Any]:
    """An issue_comment payload; ``before`` is the body an edit replaced."""
    payload = _common(action, labels, installation, sender, number)
    payload["comment"] = {"id": comment_id, "body": body, "user": sender or SENDER,
                          "created_at": created_at, "updated_at": updated_at or created_at,
                          "html_url": f"https://github.com/{OWNER}/{REPO}/issues/{number}"}
    if before is not None:
        payload["changes"] = {"body": {"from": before}}
    return payload


def issue_event(body: str, *, action: str = "opened", title: str = "Question",
                labels: tuple[str, ...] = (), label: str | None = None,
                installation: int | None = None, sender: dict[str, Any] | None = None,
                updated_at: str = "2026-01-05T10:00:00Z", number: int = NUMBER
                ) -> dict[str, Any]:
    """An issues payload; ``label`` is the label a ``labeled`` action added."""
    payload = _common(action, labels, installation, sender, number)
    payload["issue"].update(body=body, title=title, updated_at=updated_at)
    if label is not None:
        payload["label"] = {"name": label}
    return payload


async def deliver(client: Any, event: str, payload: Any, *, delivery: str | None = None,
                  secret: str = WEBHOOK_SECRET, raw: bytes | None = None,
                  headers: dict[str, str] | None = None) -> Any:
    """POST one delivery to /github/webhook the way GitHub does; returns the response."""
    body = raw if raw is not None else json.dumps(payload).encode()
    sent = {"Content-Type": "application/json", "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
            "X-Hub-Signature-256": sign(body, secret),
            "User-Agent": "GitHub-Hookshot/fake", **(headers or {})}
    return await client.post("/github/webhook", data=body,
                             headers={k: v for k, v in sent.items() if v})
