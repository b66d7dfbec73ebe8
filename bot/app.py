"""The aiohttp service: the JSON API, health, readiness and Prometheus metrics in one process.

    GET  /api/v1/fits?q=<command>           the Report (or help / gpus / models) as JSON
    GET  /api/v1/best?gpu=24GB&ctx=8k       the ranking (GET /api/v1/compare?q=<models>&gpu=a,b)
    POST /api/v1/fits {"q": "<command>"}    the same; or the fields of core.request.EstimateRequest
                                             ({"model": "llama-2-7b", "quant": "q4", "gpu": "4090"});
                                             either may carry "config": {...config.json...}
    GET  /healthz   the process answers        GET /readyz   the snapshot is loaded
    GET  /metrics   Prometheus text

Every response carries X-Request-Id (the caller's, when it is a sane token, else a new one).
Bad input answers 400 with {"error", "hint"}; hostile input a 4xx; only a bug answers 500, with a
generic sentence and the request id, and the traceback goes to the log. Logs are JSON lines.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import json
import logging
import re
import sys
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.exposition import generate_latest

from adapters.hub.cache import Codec, ConfigCache, make_cache
from bot import loop_lag
from bot.answerer import Answerer
from bot.clients import client_address
from bot.compute import ReportRunner
from bot.ratelimit import MemoryRateLimiter, NoRateLimits
from bot.services import (
    ANSWERER,
    CACHE,
    HUB,
    LIMITER,
    METRICS,
    PROXIES,
    READY,
    REDIS,
    RUNNER,
    SETTINGS,
    SURFACES,
    Metrics,
)
from bot.settings import Settings
from bot.surfaces import mount_surfaces
from core.answer import Caller
from core.errors import ModelNotFound, RateLimited, UserError
from core.parser import (
    EstimateCommand,
    parse_command,
)
from core.request import FIELD_NAMES

T = TypeVar("T")
log = logging.getLogger("fits.service")

MAX_BODY_BYTES = 1_000_000
MAX_URL_BYTES = 8192  # a 2,000-character command, percent-encoded, fits with room to spare
# What aiohttp's parser takes before it answers on its own (text/plain, outside the middleware):
# well past MAX_URL_BYTES, so that every URL a client may plausibly send gets our JSON 414.
MAX_LINE_BYTES = 65_536
MAX_JSON_DEPTH = 32  # a config.json nests 3-5 levels; more is an attack on the parser
API_HINT = ('Send GET /api/v1/fits?q=<command> or POST a JSON object such as {"q": "llama-2-7b q4 '
            'gpu=4090"}.')
API_CONFIG_WAY = 'Or POST the command with its config.json as "config".'
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# The fields a POST may give instead of "q": the command language's keys, typed.
FIELD_KEYS = frozenset(FIELD_NAMES) - {"gpu_given"}

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id",
                                                                            default=None)


# --- logging -------------------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, request id, extra fields, traceback.
    Any secret it is given is replaced wherever it would appear."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        rid = getattr(record, "request_id", None) or request_id_var.get()
        if rid:
            out["request_id"] = rid
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info:
            out["traceback"] = "".join(traceback.format_exception(*record.exc_info))
        text = json.dumps(out, default=str, ensure_ascii=False)
        for secret in self.secrets:
            text = text.replace(secret, "[redacted]")
        return text


def configure_logging(settings: Settings, stream: Any = None) -> logging.Handler:
    """JSON lines on stderr at LOG_LEVEL for the whole process; returns the handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(settings.secrets()))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    return handler


class CountingCache(ConfigCache):
    """A ConfigCache that counts hits and misses and times the fetches behind the misses,
    delegating storage to ``inner`` (memory or disk)."""

    def __init__(self, inner: ConfigCache, metrics: Metrics, max_fetches: int = 8) -> None:
        super().__init__()
        self.inner = inner
        self.metrics = metrics
        # A global limit on concurrent Hub fetches, whatever the number of callers.
        self.fetch_slots = asyncio.Semaphore(max_fetches)

    async def get(self, key: str) -> Any | None:
        value = await self.inner.get(key)
        self.metrics.cache_lookups.labels("miss" if value is None else "hit").inc()
        return value

    async def set(self, key: str, value: Any, ttl_s: float) -> None:
        await self.inner.set(key, value, ttl_s)

    async def get_or_fetch(self, key: str, fetch: Callable[[], Awaitable[T]], *, codec: Codec[T],
                           ttl_s: Callable[[T], float | None], deadline_s: float) -> T:
        async def timed() -> T:
            start = time.perf_counter()
            outcome = "error"
            try:
                async with self.fetch_slots:
                    value = await fetch()
                outcome = "ok"
                return value
            finally:
                self.metrics.hub_fetch_seconds.labels(outcome).observe(time.perf_counter() - start)

        return await super().get_or_fetch(key, timed, codec=codec, ttl_s=ttl_s,
                                          deadline_s=deadline_s)


# --- the app -------------------------------------------------------------------------------------



class BadRequest(Exception):
    """Input that is not a command at all (wrong types, not JSON): 400 with a sentence."""

    def __init__(self, message: str, hint: str = API_HINT, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.status = status


def _error(status: int, message: str, hint: str | None, rid: str,
           extra: dict[str, Any] | None = None) -> web.Response:
    body: dict[str, Any] = {"error": message, "hint": hint, "request_id": rid, **(extra or {})}
    return web.json_response(body, status=status)


_HTTP_SENTENCES = {
    404: ("There is no such endpoint.", API_HINT),
    405: ("That method is not allowed here.", API_HINT),
    413: ("The request body is too large (limit 1 MB).",
          "Send the command, or the model's config.json, on its own."),
    414: ("The URL is too long (limit 8 KB).",
          "Send long commands, or a config.json, as POST /api/v1/fits with a JSON body."),
}


class HttpErrorLog(logging.LoggerAdapter[logging.Logger]):
    """The logger aiohttp's connection handler writes to. It logs a request its parser refused
    (a line or header past MAX_LINE_BYTES, not HTTP at all) with a traceback and the offending
    bytes; here that is one line with the error's class and nothing the client sent."""

    def __init__(self) -> None:
        super().__init__(logging.getLogger("fits.http"), {})

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        exc = kwargs.pop("exc_info", None)
        error = type(exc).__name__ if isinstance(exc, BaseException) else None
        if error is None and level < logging.ERROR:
            self.logger.log(level, msg, *args)
            return
        self.logger.warning("an HTTP request could not be read", extra={"fields": {
            "error": error or "unknown"}})


_SURFACE_PREFIXES = (("/api/", "api"), ("/slack/", "slack"), ("/discord/", "discord"),
                     ("/github/", "github"))


PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def _surface(path: str) -> str:
    """Which surface a path belongs to, for the request log ("ops": health, metrics, the rest)."""
    return next((name for prefix, name in _SURFACE_PREFIXES if path.startswith(prefix)), "ops")


@web.middleware
async def request_middleware(request: web.Request,
                             handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
                             ) -> web.StreamResponse:
    given = request.headers.get("X-Request-Id", "")
    rid = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
    token = request_id_var.set(rid)
    metrics = request.app[METRICS]
    surface = _surface(request.path)
    start = time.perf_counter()
    outcome, status = "ok", 0
    try:
        try:
            if len(request.raw_path) > MAX_URL_BYTES:
                raise web.HTTPRequestURITooLong()
            response = await handler(request)
        except RateLimited as err:
            outcome = "rate_limited"
            response = _error(429, err.message, err.hint, rid)
            response.headers["Retry-After"] = str(max(1, round(err.retry_after)))
        except (UserError, BadRequest) as err:
            outcome = "user_error" if isinstance(err, UserError) else "bad_request"
            extra = ({"suggestions": err.suggestions}
                     if isinstance(err, ModelNotFound) and err.suggestions else None)
            hint = err.hint_with(API_CONFIG_WAY) if isinstance(err, UserError) else err.hint
            response = _error(getattr(err, "status", 400), err.message, hint, rid, extra)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            outcome = "bad_request" if exc.status < 500 else "error"
            message, hint = _HTTP_SENTENCES.get(
                exc.status, (f"{exc.reason or 'The request could not be answered'}.", API_HINT))
            response = _error(exc.status, message, hint, rid)
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        except Exception:
            outcome = "error"
            log.exception("unexpected error", extra={"request_id": rid,
                                                     "fields": {"path": request.path}})
            response = _error(500, "Something went wrong on our side; the error is logged.",
                              f"Quote request id {rid} when you report it.", rid)
        response.headers["X-Request-Id"] = rid
        status = response.status
        return response
    finally:
        elapsed = time.perf_counter() - start
        if surface == "api":
            metrics.requests.labels(surface, outcome).inc()
        # Health and metrics probes come every few seconds from every orchestrator: logged only
        # when they fail (or with FITS_LOG_PROBES=1), so the log is the users' requests.
        probe = request.path in PROBE_PATHS and status < 400 and not request.app[SETTINGS].log_probes
        # The path only: the query is the user's text and may hold anything.
        if not probe:
            log.info("request", extra={"request_id": rid, "fields": {
                "method": request.method, "path": request.path, "surface": surface,
                "outcome": outcome, "status": status, "ms": round(elapsed * 1000, 2),
                "query_chars": len(request.query_string)}})
        request_id_var.reset(token)


def _depth(value: Any) -> int:
    """Nesting depth of parsed JSON, iteratively (no recursion to exhaust)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if deepest > MAX_JSON_DEPTH:
            break
        if isinstance(item, dict):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, level + 1) for v in item)
    return deepest


def _field_word(key: str, value: Any) -> str:
    """One field of a POST as a word of the command language, so the parser normalizes it the
    way it does typed text (q4 per engine, 4k, 2x3090 ...)."""
    if isinstance(value, bool):
        if key != "gc":
            raise BadRequest(f'The field "{key}" must not be true or false.')
        value = "on" if value else "off"
    elif isinstance(value, int | float):
        value = f"{value:g}" if isinstance(value, float) else str(value)
    elif not isinstance(value, str):
        raise BadRequest(f'The field "{key}" must be a string or a number.')
    if not value.strip() or any(q in value for q in "\"'`"):
        raise BadRequest(f'The field "{key}" must be a plain value without quotes.')
    return f'{key}="{value}"' if any(ch.isspace() for ch in value) or "=" in value else \
        f"{key}={value}"


def command_from_body(body: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """The command text and the optional config.json of a POST body."""
    config = body.get("config")
    if config is not None and not isinstance(config, dict):
        raise BadRequest('The field "config" must be a JSON object (the model\'s config.json).')
    rest = {k: v for k, v in body.items() if k != "config"}
    if "q" in rest:
        if len(rest) > 1:
            raise BadRequest('Send either "q" or the request fields, not both.')
        if not isinstance(rest["q"], str):
            raise BadRequest('The field "q" must be a string such as "llama-2-7b q4 gpu=4090".')
        return rest["q"], config
    unknown = sorted(k for k in rest if k not in FIELD_KEYS)
    if unknown:
        raise BadRequest(f'The field "{unknown[0][:40]}" is not one I know.',
                         f"Known fields: q, config, {', '.join(sorted(FIELD_KEYS))}.")
    model = rest.pop("model", None)
    if not isinstance(model, str) or not model.strip():
        raise BadRequest('The field "model" (a string) is required, or send "q".')
    if any(ch.isspace() or ch in "\"'`=" for ch in model.strip()):
        raise BadRequest('The field "model" must be one word such as "meta-llama/Llama-2-7b-hf".')
    words = [model.strip()]
    quant, bits = rest.pop("quant", None), rest.pop("bits", None)
    if quant is not None:
        words.append(_field_word("quant", quant))
    if bits is not None:
        words.append(_field_word("bits", bits))
    words += [_field_word(key, value) for key, value in rest.items() if value is not None]
    return " ".join(words), config


async def _answer(request: web.Request, text: str,
                  config: dict[str, Any] | None) -> web.Response:
    from adapters.json_api import answer_json

    caller = Caller((f"api:{api_client(request)}",))
    body = await request.app[ANSWERER].answer_rendered(text, caller, config, "json", answer_json)
    return web.Response(text=body, content_type="application/json")


def api_client(request: web.Request) -> str:
    """The API caller's address (X-Forwarded-For believed only from FITS_TRUSTED_PROXIES)."""
    return client_address(request.remote, request.headers.getall("X-Forwarded-For", []),
                          request.app[PROXIES])


async def fits_get(request: web.Request) -> web.Response:
    texts = request.query.getall("q", [])
    if len(texts) != 1:
        raise BadRequest("Give the command once, as ?q=<command>." if texts else
                         "The query parameter q (the command) is missing.")
    return await _answer(request, texts[0], None)


def _command_get(verb: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    """GET /api/v1/best?gpu=24GB&ctx=8k (and /compare): the query's keys as the command's,
    which is the same as /api/v1/fits?q=best gpu=24GB ctx=8k."""

    async def handler(request: web.Request) -> web.Response:
        words = [verb]
        for key, value in request.query.items():
            if key == "q":
                words.append(value)
            elif not value or any(ch.isspace() for ch in key):
                raise BadRequest(f"The query parameter {key[:40]!r} needs a value.")
            else:
                words.append(f'{key}="{value}"' if " " in value else f"{key}={value}")
        return await _answer(request, " ".join(words), None)

    return handler


async def fits_post(request: web.Request) -> web.Response:
    raw = await request.read()  # raises 413 past client_max_size
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("The request body is not valid JSON.") from None
    except RecursionError:
        raise BadRequest("The request body is nested too deeply.") from None
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    if _depth(body) > MAX_JSON_DEPTH:
        raise BadRequest("The request body is nested too deeply.")
    text, config = command_from_body(body)
    return await _answer(request, text, config)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """503 until the snapshot is loaded. With Redis down the service still answers (from its
    own state), so it stays in rotation: 200 with "degraded" and the reason. Taking every
    replica out because their shared Redis hangs would turn a slower service into none."""
    if not request.app[READY].is_set():
        return web.json_response({"status": "starting"}, status=503)
    link = request.app.get(REDIS)
    if link is None:
        return web.json_response({"status": "ready"})
    return web.json_response({"status": "ready" if link.up else "degraded",
                              "redis": link.state()})


async def metrics_view(request: web.Request) -> web.Response:
    data = generate_latest(request.app[METRICS].registry)
    response = web.Response(body=data)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


def _warm_up() -> None:
    """Load the snapshot, the GPU catalogue and the estimator once, before the first request."""
    from core.answer import estimate_command
    from core.snapshot import entries

    entries()
    command = parse_command("llama-2-7b q4 gpu=4090")
    assert isinstance(command, EstimateCommand)
    estimate_command(command)


async def _lifecycle(app: web.Application) -> Any:
    await asyncio.to_thread(_warm_up)
    # What start-up loaded (modules, the snapshot, the GPU catalogue, the estimator's tables)
    # lives as long as the process: frozen out of the collector's reach, a full collection no
    # longer walks it.
    gc.collect()
    gc.freeze()
    app[READY].set()
    log.info("ready", extra={"fields": {"hub_offline": app[HUB].offline,
                                        "hub_endpoint": app[HUB].endpoint}})
    yield
    app[READY].clear()


async def _not_ready_on_shutdown(app: web.Application) -> None:
    app[READY].clear()  # load balancers stop sending while in-flight requests finish


def _pool_share(workers: int) -> int | None:
    """Each worker's estimate processes when not set: the CPUs divided between the workers,
    so N workers on N CPUs run N pools of one, not N pools of N."""
    if workers <= 1:
        return None  # the pool's own default
    from bot.cpus import usable_cpus

    return max(1, usable_cpus() // workers)


def create_app(settings: Settings) -> web.Application:
    """The service, wired from ``settings``: one Hub cache shared by every request."""
    app = web.Application(middlewares=[request_middleware], client_max_size=MAX_BODY_BYTES,
                          handler_args={"max_line_size": MAX_LINE_BYTES,
                                        "max_field_size": MAX_LINE_BYTES,
                                        "logger": HttpErrorLog()})
    metrics = Metrics()
    hub = settings.hub()
    app[SETTINGS] = settings
    app[HUB] = hub
    app[METRICS] = metrics
    if settings.redis_url is not None:
        from bot.redis_store import RedisConfigCache, RedisLink, RedisRateLimiter

        link = RedisLink.from_settings(settings)
        app[REDIS] = link
        app[CACHE] = CountingCache(RedisConfigCache(link), metrics, settings.max_hub_fetches)
        app[LIMITER] = RedisRateLimiter(link, settings.rate_limit_per_minute,
                                        settings.rate_limit_burst)
        metrics.redis_up.set_function(lambda: 1.0 if link.up else 0.0)

        async def close_redis(_: web.Application) -> None:
            await link.close()

        app.on_cleanup.append(close_redis)
    else:
        app[CACHE] = CountingCache(make_cache(hub), metrics, settings.max_hub_fetches)
        # Each worker process keeps its own buckets; SO_REUSEPORT spreads connections evenly
        # over the workers, so each enforces its share of the limit (Redis shares one budget).
        share = max(1, settings.workers)
        app[LIMITER] = MemoryRateLimiter(settings.rate_limit_per_minute / share,
                                         max(1, settings.rate_limit_burst // share))
    if not settings.rate_limits:
        app[LIMITER] = NoRateLimits()
    app[PROXIES] = settings.proxy_networks()
    runner = ReportRunner(settings.estimate_processes or _pool_share(settings.workers),
                          settings.estimate_budget_s)
    app[RUNNER] = runner
    shared = None
    if settings.redis_url is not None and settings.report_cache_size:
        from bot.report_store import RedisReportStore

        shared = RedisReportStore(app[REDIS])
    app[ANSWERER] = Answerer(hub, app[CACHE], app[LIMITER], metrics, runner,
                             settings.report_cache_size, shared)

    async def close_runner(_: web.Application) -> None:
        await runner.close()

    app.on_cleanup.append(close_runner)
    app[READY] = asyncio.Event()
    app.router.add_get("/api/v1/fits", fits_get)
    app.router.add_get("/api/v1/best", _command_get("best"))
    app.router.add_get("/api/v1/compare", _command_get("compare"))
    app.router.add_post("/api/v1/fits", fits_post)
    app.router.add_get("/healthz", healthz)
    from bot import charts
    from bot import web as page

    page.mount(app)
    app[ANSWERER].charts = charts.mount(app, settings.public_url)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_view)
    app.cleanup_ctx.append(_lifecycle)
    app.cleanup_ctx.append(loop_lag.monitor())
    app.on_shutdown.append(_not_ready_on_shutdown)
    app[SURFACES] = mount_surfaces(app, settings)
    return app
