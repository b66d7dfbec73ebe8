"""The web page: `GET /` with a form, and `GET /?q=<command>` with the answer rendered on the
server (a shared link previews in chats without JavaScript; its OpenGraph tags carry the
verdict). The page's script only enhances: with the `X-Fits-Partial` header the answer alone
comes back, to be swapped in as the user types. Questions go through the same answerer as every
other surface, rate-limited per client address; the page sends a strict Content-Security-Policy
(scripts and styles from this origin only), so nothing a question contains can run."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from aiohttp import web

from bot.clients import client_address
from bot.services import ANSWERER, PROXIES, SETTINGS
from core.answer import Answer, Caller
from core.curve import report_curve
from core.errors import UserError
from core.report import Report

if TYPE_CHECKING:
    from core.curve import Curve

log = logging.getLogger("fits.web")
STATIC = Path(__file__).resolve().parent.parent / "adapters" / "web" / "static"
STATIC_FILES = {"fits.js": "application/javascript", "fits.css": "text/css"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                               "script-src 'self'; object-src 'none'; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


async def index(request: web.Request) -> web.Response:
    from adapters.web.render import fragment, page, question_from_fields
    from core import snapshot

    fields = {k: request.query.get(k, "")[:200] for k in
              ("model", "quant", "gpu", "ctx", "engine", "batch", "train")}
    q = request.query.get("q", "").strip() or question_from_fields(fields)
    answer: Answer | None = None
    error: UserError | None = None
    curve: Curve | None = None
    if q:
        address = client_address(request.remote, request.headers.getall("X-Forwarded-For", []),
                                 request.app[PROXIES])
        caller = Caller((f"web:{address}",))
        try:
            answer = await request.app[ANSWERER].answer(q, caller)
        except UserError as err:
            error = err
        if isinstance(answer, Report):
            curve = await asyncio.to_thread(report_curve, answer)
    if request.headers.get("X-Fits-Partial"):
        html = fragment(q, answer, error, curve)
    else:
        base = request.app[SETTINGS].public_url
        share = f"{base.rstrip('/')}/?q={quote(q)}" if base and q else None
        from core.gpus import all_gpus

        models = [e.id for e in snapshot.entries().values()]
        gpus = [g.name for g in all_gpus()]
        html = page(q, answer, error, models, share, curve, fields, gpus)
    status = int(getattr(error, "status", 400)) if error is not None else 200
    return web.Response(text=html, content_type="text/html", headers=SECURITY_HEADERS,
                        status=status)


async def static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in STATIC_FILES:
        raise web.HTTPNotFound()
    return web.Response(body=(STATIC / name).read_bytes(), content_type=STATIC_FILES[name],
                        headers={"Cache-Control": "public, max-age=3600", **SECURITY_HEADERS})


def mount(app: web.Application) -> None:
    app.router.add_get("/", index)
    app.router.add_get("/static/{name}", static)
