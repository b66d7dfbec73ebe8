"""GitHub issue auto-replies: POST /github/webhook on the service's app.

The handler only checks and queues, well inside GitHub's 10 s deadline: signature (401 when it
is missing or wrong), payload (400), which event it is (200 "ignored" with the reason), whether
this delivery id was handled already (200 "duplicate"; bot/dedupe.py, on Redis when REDIS_URL is
set), then 202 "queued". WORKERS tasks, started and stopped with the app, answer the questions
with the shared Answerer and create or update our one reply on the issue.

When the bounded queue is full the delivery is refused with 503 (and its claim released): GitHub
marks it failed in the webhook's "Recent deliveries", where it can be redelivered, rather than
it being dropped unseen. Replies to one issue body or comment are made one at a time, so a quick
edit never races its own first answer into two comments. At shutdown queued replies get
FITS_SHUTDOWN_TIMEOUT_S to finish; claims of those left undone are released.

gidgethub (through adapters.github) is imported only when the surface is enabled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.dedupe import DedupeStore, MemoryDedupe
from bot.settings import Settings
from core.answer import Caller
from core.errors import RateLimited, UserError

if TYPE_CHECKING:
    from adapters.github.client import Auth, GitHubClient
    from adapters.github.commands import Question
    from adapters.github.events import Job
    from adapters.github.reply import Section
    from bot.answerer import Answerer
    from bot.services import Metrics

log = logging.getLogger("fits.github")

WEBHOOK_PATH = "/github/webhook"
WORKERS = 4  # concurrent replies; each is a few GitHub calls, the estimate is milliseconds
QUEUE_SIZE = 200  # deliveries waiting for a worker; past this, 503
RETRY_AFTER_S = 60
OFF = ("off (set GITHUB_WEBHOOK_SECRET, and GITHUB_TOKEN or GITHUB_APP_ID with "
       "GITHUB_PRIVATE_KEY, to enable)")


def _secret(value: Any) -> str:
    return value.get_secret_value().strip() if value is not None else ""


def _claim_key(delivery_id: str) -> str:
    return f"github:delivery:{delivery_id}"


class KeyedLocks:
    """One asyncio.Lock per key, kept only while someone holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class GitHubSurface:
    def __init__(self, *, secret: str, auth: Auth, api_url: str, answerer: Answerer,
                 metrics: Metrics, dedupe: DedupeStore, shutdown_timeout_s: float,
                 workers: int = WORKERS, queue_size: int = QUEUE_SIZE,
                 plain_repositories: frozenset[str] = frozenset()) -> None:
        self.secret = secret
        self.app_mode = auth.needs_installation
        self.plain_repositories = plain_repositories
        self.auth = auth
        self.api_url = api_url
        self.answerer = answerer
        self.metrics = metrics
        self.dedupe = dedupe
        self.shutdown_timeout_s = shutdown_timeout_s
        self.workers = workers
        self.queue: asyncio.Queue[tuple[str, Job]] = asyncio.Queue(queue_size)
        self.client: GitHubClient | None = None
        self.accepting = False
        self._locks = KeyedLocks()
        for outcome in ("ok", "user_error", "rate_limited", "bad_request", "error"):
            metrics.requests.labels("github", outcome)

    # --- the webhook -----------------------------------------------------------------------------

    def _refuse(self, status: int, message: str, hint: str) -> web.Response:
        self.metrics.requests.labels("github", "bad_request" if status < 500 else "error").inc()
        log.warning("github delivery refused", extra={"fields": {"status": status,
                                                                  "reason": message}})
        headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
        return web.json_response({"error": message, "hint": hint}, status=status,
                                 headers=headers)

    async def webhook(self, request: web.Request) -> web.Response:
        from adapters.github.events import Ignored, MalformedPayload, interpret
        from adapters.github.webhook import DeliveryRefused, parse_delivery

        body = await request.read()
        try:
            delivery = parse_delivery(request.headers, body, self.secret)
            if delivery.event == "ping":  # sent when the webhook is created
                return web.json_response({"status": "pong"})
            outcome = interpret(delivery.event, delivery.data, self.plain_repositories)
        except DeliveryRefused as err:
            hint = {401: "Set the webhook's secret to GITHUB_WEBHOOK_SECRET.",
                    415: "Set the webhook's content type to application/json."}.get(
                err.status, "Send deliveries as GitHub does: JSON with X-GitHub-Event and "
                            "X-GitHub-Delivery.")
            return self._refuse(err.status, err.message, hint)
        except MalformedPayload as err:
            return self._refuse(400, str(err), "Send GitHub's issues and issue_comment events.")
        if not isinstance(outcome, Ignored) and self.app_mode and outcome.installation_id is None:
            # A repository webhook pointed at an App deployment: there is no installation to
            # reply as, so the delivery can never be answered. Say so to the sender now.
            return self._refuse(400, "This delivery names no GitHub App installation.",
                                "Deliver the App's own webhook (set in the App's settings), "
                                "not a repository webhook, to this endpoint.")
        if isinstance(outcome, Ignored):
            log.debug("github delivery ignored", extra={"fields": {
                "delivery": delivery.delivery_id, "event": delivery.event,
                "reason": outcome.reason}})
            return web.json_response({"status": "ignored", "reason": outcome.reason})
        hint = f"Redeliver it from the webhook's Recent deliveries in {RETRY_AFTER_S} s."
        if not self.accepting:
            return self._refuse(503, "The service is shutting down.", hint)
        claim = _claim_key(delivery.delivery_id)
        if not await self.dedupe.claim(claim):
            return web.json_response({"status": "duplicate"})
        try:
            self.queue.put_nowait((delivery.delivery_id, outcome))
        except asyncio.QueueFull:
            await self.dedupe.release(claim)
            return self._refuse(503, "Too many questions are waiting to be answered.", hint)
        return web.json_response({"status": "queued"}, status=202)

    # --- the workers -----------------------------------------------------------------------------

    async def lifecycle(self, app: web.Application) -> AsyncIterator[None]:
        import aiohttp

        from adapters.github.client import GitHubClient

        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            self.client = GitHubClient(session, self.auth, self.api_url)
            tasks = [asyncio.create_task(self._work(), name=f"github-reply-{i}")
                     for i in range(self.workers)]
            self.accepting = True
            try:
                yield
            finally:
                self.accepting = False
                try:
                    await asyncio.wait_for(self.queue.join(), self.shutdown_timeout_s)
                except TimeoutError:
                    log.warning("github replies left undone at shutdown",
                                extra={"fields": {"queued": self.queue.qsize()}})
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                while not self.queue.empty():
                    delivery_id, _ = self.queue.get_nowait()
                    self.queue.task_done()
                    await self.dedupe.release(_claim_key(delivery_id))

    async def drained(self) -> None:
        """Wait until every queued delivery has been handled."""
        await self.queue.join()

    async def _work(self) -> None:
        while True:
            delivery_id, job = await self.queue.get()
            try:
                async with self._locks.hold(job.reply_key):
                    await self._reply(job, delivery_id)
            except asyncio.CancelledError:
                await asyncio.shield(self.dedupe.release(_claim_key(delivery_id)))
                raise
            except Exception as exc:
                await self.dedupe.release(_claim_key(delivery_id))  # a redelivery may retry
                self._log_failure(exc, job, delivery_id)
            finally:
                self.queue.task_done()

    def _log_failure(self, exc: Exception, job: Job, delivery_id: str) -> None:
        import aiohttp
        from gidgethub import HTTPException

        from adapters.github.client import MissingInstallation

        fields: dict[str, Any] = {"delivery": delivery_id, "repository": job.full_name,
                                  "issue": job.number, "error": type(exc).__name__}
        if isinstance(exc, HTTPException):
            fields["status"] = int(exc.status_code)
            if exc.status_code in (403, 404):
                fields["hint"] = ("check that the token or the App may write issues in this "
                                  "repository")
            log.warning("github refused the reply", extra={"fields": fields})
        elif isinstance(exc, MissingInstallation):
            log.error("an App delivery without an installation; the webhook must be the "
                      "App's own, not a repository webhook", extra={"fields": fields})
        elif isinstance(exc, aiohttp.ClientError | TimeoutError):
            log.warning("github could not be reached", extra={"fields": fields})
        else:
            log.exception("github reply failed", extra={"fields": fields})

    async def _answer(self, question: Question, caller: Caller) -> tuple[Section | None, str]:
        from adapters.github.reply import Section
        from adapters.markdown import render_answer, render_error

        try:
            answer = await self.answerer.answer(question.text, caller)
        except RateLimited as err:
            outcome, markdown = "rate_limited", render_error(err)
        except UserError as err:
            outcome, markdown = "user_error", render_error(err)
        except Exception:
            log.exception("github answer failed")
            outcome = "error"
            markdown = render_error(UserError(
                "Something went wrong on our side; the error is logged.",
                "Edit your comment to try again."))
        else:
            outcome, markdown = "ok", render_answer(answer)
            if (picture := self.answerer.picture_url(answer)) is not None:
                markdown += f"\n\n![memory chart]({picture})"
        self.metrics.requests.labels("github", outcome).inc()
        if question.inferred and outcome != "ok":
            return None, outcome  # a question we guessed at and cannot answer is left unsaid
        return Section(question, markdown), outcome

    async def _reply(self, job: Job, delivery_id: str) -> None:
        from adapters.github.commands import find_questions
        from adapters.github.reply import compose

        assert self.client is not None
        fields: dict[str, Any] = {"delivery": delivery_id, "repository": job.full_name,
                                  "issue": job.number, "source": job.source}
        if await self.client.is_self(job.sender_login):
            log.info("github delivery from ourselves ignored", extra={"fields": fields})
            return
        # The free-text search resolves many words against the catalogue: off the event loop.
        found = await asyncio.to_thread(find_questions, job.body, title=job.title,
                                        free_text=job.free_text)
        caller = Caller((f"github:user:{job.sender_id}", f"github:repo:{job.repo_id}"))
        sections, outcomes = [], []
        for question in found.items:
            section, outcome = await self._answer(question, caller)
            outcomes.append(outcome)
            if section is not None:
                sections.append(section)
        fields["questions"] = len(found.items)
        if outcomes and all(o == "rate_limited" for o in outcomes):
            # Every subscriber of the issue would be notified of each "too fast" comment.
            log.info("github reply skipped: rate limited", extra={"fields": fields})
            return
        body = compose(job.reply_key, job.updated_at, sections, found.skipped) \
            if sections or found.skipped else None
        if body is None and job.action in ("opened", "created"):
            return  # nothing asked, and nothing of ours can be there to update
        fields["result"] = await self.client.publish(job, body)
        log.info("github reply", extra={"fields": fields})


GITHUB = web.AppKey("github", GitHubSurface)


def _dedupe(app: web.Application) -> tuple[DedupeStore, str]:
    from bot.dedupe import DEFAULT_TTL_S
    from bot.services import REDIS

    link = app.get(REDIS)
    if link is None:
        return MemoryDedupe(), "in this process"
    from bot.redis_store import RedisDedupe

    return RedisDedupe(link, DEFAULT_TTL_S), "on Redis"


def mount(app: web.Application, settings: Settings) -> str:
    """Add POST /github/webhook and its workers when the secret and a way to reply are set."""
    secret = _secret(settings.github_webhook_secret)
    token = _secret(settings.github_token)
    app_id = (settings.github_app_id or "").strip()
    private_key = _secret(settings.github_private_key)
    if not secret:
        return OFF
    if bool(app_id) != bool(private_key):
        missing = "GITHUB_PRIVATE_KEY" if app_id else "GITHUB_APP_ID"
        return f"off (a GitHub App needs GITHUB_APP_ID and GITHUB_PRIVATE_KEY; set {missing})"
    if not app_id and not token:
        return "off (set GITHUB_TOKEN, or GITHUB_APP_ID and GITHUB_PRIVATE_KEY, to reply)"

    from adapters.github.client import AppAuth, TokenAuth, read_private_key
    from bot.services import ANSWERER, METRICS

    auth: Auth
    if app_id:
        try:
            auth = AppAuth(app_id, read_private_key(private_key))
        except ValueError as exc:
            raise UserError(f"GITHUB_PRIVATE_KEY cannot be used: {exc}.",
                            "Paste the .pem file GitHub gave for the App (newlines as \\n), "
                            "or give its path.") from None
        who = f"as GitHub App {app_id}"
    else:
        auth, who = TokenAuth(token), "with GITHUB_TOKEN"
    dedupe, where = _dedupe(app)
    surface = GitHubSurface(secret=secret, auth=auth, api_url=settings.github_api_url,
                            answerer=app[ANSWERER], metrics=app[METRICS], dedupe=dedupe,
                            shutdown_timeout_s=settings.shutdown_timeout_s,
                            workers=WORKERS, queue_size=QUEUE_SIZE,
                            plain_repositories=settings.github_plain_repositories())
    app[GITHUB] = surface
    app.router.add_post(WEBHOOK_PATH, surface.webhook)
    app.cleanup_ctx.append(surface.lifecycle)
    return f"on ({WEBHOOK_PATH}; replies {who}; deliveries de-duplicated {where})"
