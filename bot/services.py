"""What the service's parts share, as typed aiohttp app keys: the app (bot/app.py) puts each
service here once, and every surface (bot/*_surface.py) takes what it needs from the app it is
mounted on. Nothing here imports the app or a surface, so the imports form no circle."""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from adapters.hub.cache import ConfigCache
from adapters.hub.settings import HubSettings
from bot.answerer import Answerer
from bot.compute import ReportRunner
from bot.ratelimit import RateLimiter
from bot.redis_store import RedisLink
from bot.settings import Settings

# --- metrics -------------------------------------------------------------------------------------


class Metrics:
    """The service's Prometheus metrics, in a registry of their own (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("fits_requests", "Requests answered, by surface and outcome.",
                                ["surface", "outcome"], registry=self.registry)
        self.estimate_seconds = Histogram(
            "fits_estimate_seconds", "Time to answer one command (parse, resolve, estimate).",
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.hub_fetch_seconds = Histogram(
            "fits_hub_fetch_seconds", "Time of one Hub fetch that the cache did not answer.",
            ["outcome"], registry=self.registry,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10))
        self.cache_lookups = Counter("fits_hub_cache_lookups", "Hub cache lookups, by result.",
                                     ["result"], registry=self.registry)
        self.report_cache = Counter("fits_report_cache_lookups",
                                    "Answers looked up in the report cache, by result: hit (this "
                                    "process), shared_hit (Redis: another replica's), miss.",
                                    ["result"], registry=self.registry)
        for outcome in ("ok", "user_error", "bad_request", "error"):
            self.requests.labels("api", outcome)
        for result in ("hit", "miss"):
            self.cache_lookups.labels(result)
        self.loop_lag = Histogram(
            "fits_event_loop_lag_seconds", "How late the event loop woke a 10 ms timer: time "
            "something held the loop, by worker.", ["worker"], registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1))
        self.loop_lag_max = Gauge("fits_event_loop_lag_max_seconds",
                                  "The longest the event loop was held since start, by worker.",
                                  ["worker"], registry=self.registry)
        self.redis_up = Gauge("fits_redis_up", "1 while Redis answers (0: this process's own "
                              "state is used), when REDIS_URL is set.", registry=self.registry)



# --- the app keys --------------------------------------------------------------------------------

SETTINGS = web.AppKey("settings", Settings)
HUB = web.AppKey("hub", HubSettings)
CACHE = web.AppKey("cache", ConfigCache)
METRICS = web.AppKey("metrics", Metrics)
READY = web.AppKey("ready", asyncio.Event)
LIMITER = web.AppKey("limiter", RateLimiter)
ANSWERER = web.AppKey("answerer", Answerer)
RUNNER = web.AppKey("runner", ReportRunner)
REDIS = web.AppKey("redis", RedisLink)
PROXIES = web.AppKey("proxies", tuple)
# What each surface is doing ("on (...)" / "off (why)"), for the start-up log.
SURFACES = web.AppKey("surfaces", list[tuple[str, str]])
