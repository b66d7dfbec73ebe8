"""Chart images for chats (`GET /chart/<key>.png`): Slack, GitHub and Discord show a picture by
URL, so with PUBLIC_URL set every estimate answer links one. The key is a hash of the normalized
request (no user data in the URL); the service keeps the last requests it linked, draws each
PNG once from the bundled model it names, and serves it as immutable."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import OrderedDict
from typing import Any

from aiohttp import web

from core.answer import Answer
from core.report import Report

MAX_LINKED = 2048  # requests remembered (each a small dict) and PNGs kept (about 15 KB each)


class ChartLinks:
    def __init__(self, public_url: str | None, size: int = MAX_LINKED) -> None:
        self.public_url = public_url.rstrip("/") if public_url else None
        self.size = size
        self._requests: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._pngs: OrderedDict[str, bytes] = OrderedDict()

    def url_for(self, answer: Answer) -> str | None:
        """The picture's URL for an estimate of a bundled model or a size; None otherwise."""
        if self.public_url is None or not isinstance(answer, Report):
            return None
        if answer.model.source not in ("snapshot", "size"):
            return None  # drawing a Hub model would ask the Hub again
        key = chart_key(answer)
        self._requests[key] = {"request": answer.request, "model": answer.model.id}
        self._requests.move_to_end(key)
        while len(self._requests) > self.size:
            self._requests.popitem(last=False)
        return f"{self.public_url}/chart/{key}.png"

    async def png(self, key: str) -> bytes | None:
        if key in self._pngs:
            return self._pngs[key]
        found = self._requests.get(key)
        if found is None:
            return None
        data = await asyncio.to_thread(_draw, found)
        self._pngs[key] = data
        while len(self._pngs) > self.size:
            self._pngs.popitem(last=False)
        return data


def chart_key(report: Report) -> str:
    body = json.dumps({"request": report.request, "model": report.model.id}, sort_keys=True,
                      default=str)
    return hashlib.sha256(body.encode()).hexdigest()[:32]


def _draw(found: dict[str, Any]) -> bytes:
    from adapters.charts_png import answer_png
    from core.answer import ReportJob
    from core.curve import report_curve
    from core.gpus import resolve_gpu
    from core.request import FIELD_NAMES, checked_request
    from core.resolve import resolve_offline

    fields = {k: v for k, v in found["request"].items() if k in FIELD_NAMES}
    request = checked_request({**fields, "model": found["model"]})
    report = ReportJob(request, resolve_offline(found["model"]), resolve_gpu(request.gpu)).run()
    return answer_png(report, report_curve(report))


CHARTS = web.AppKey("charts", ChartLinks)


async def chart(request: web.Request) -> web.Response:
    key = request.match_info["key"]
    if len(key) != 32 or not all(c in "0123456789abcdef" for c in key):
        raise web.HTTPNotFound()
    data = await request.app[CHARTS].png(key)
    if data is None:
        raise web.HTTPNotFound()
    return web.Response(body=data, content_type="image/png",
                        headers={"Cache-Control": "public, max-age=86400, immutable"})


def mount(app: web.Application, public_url: str | None) -> ChartLinks:
    links = ChartLinks(public_url)
    app[CHARTS] = links
    app.router.add_get("/chart/{key}.png", chart)
    return links
