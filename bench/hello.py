"""The ceiling for bench.load: a minimal aiohttp app answering the same paths with a fixed small
JSON body, on the same workers and SO_REUSEPORT as `fits-bot serve --workers N`. What the
service reaches is reported as a share of this, measured in the same run.

    PORT=8081 FITS_WORKERS=2 python -m bench.hello
"""

from __future__ import annotations

import os
import sys

from aiohttp import web

BODY = b'{"verdict": "fits"}'


async def answer(request: web.Request) -> web.Response:
    return web.Response(body=BODY, content_type="application/json")


def app() -> web.Application:
    out = web.Application()
    for path in ("/api/v1/fits", "/healthz", "/readyz"):
        out.router.add_get(path, answer)
    return out


def main() -> int:
    port, workers = int(os.environ.get("PORT", "8081")), int(os.environ.get("FITS_WORKERS", "1"))
    children = []
    for _ in range(workers - 1):
        pid = os.fork()
        if pid == 0:
            break
        children.append(pid)
    web.run_app(app(), host="127.0.0.1", port=port, reuse_port=workers > 1, access_log=None,
                print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
