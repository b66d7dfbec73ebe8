"""`fits-bot serve`: the service on HOST:PORT (settings from the environment and `.env`).

It always serves the JSON API, health, readiness and metrics, and each chat surface (Discord,
Slack, GitHub) whose credentials are set; the start-up log says which are on and, for the others,
which variable turns them on. SIGINT/SIGTERM stop accepting
connections, mark the service not ready and let in-flight requests finish for
FITS_SHUTDOWN_TIMEOUT_S seconds (aiohttp's runner).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import sys
from typing import TYPE_CHECKING

from pydantic import ValidationError

from core.errors import UserError

if TYPE_CHECKING:
    from bot.settings import Settings

log = logging.getLogger("fits.service")

def _settings() -> Settings | int:
    """The settings from the environment and .env, or the exit status after saying in one
    sentence which one is wrong (without its value: it may be a secret)."""
    from bot.settings import Settings

    try:
        return Settings()
    except ValidationError as exc:
        error = exc.errors()[0]
        where = str(error["loc"][0]) if error["loc"] else "a setting"
        reason = str(error["msg"]).removeprefix("Value error, ")
        print(f"error: the setting {where.upper()} is not valid ({reason}).", file=sys.stderr)
        return 2


def _cannot_listen(settings: Settings, exc: OSError) -> int:
    reason = os.strerror(exc.errno) if exc.errno else type(exc).__name__
    print(f"error: fits-bot cannot listen on {settings.host}:{settings.port} "
          f"({reason.lower()}).", file=sys.stderr)
    print("hint: set PORT (and HOST) to an address of this machine that nothing else "
          "uses.", file=sys.stderr)
    return 1


def serve(announce: bool = True) -> int:
    """One process serving HOST:PORT; ``announce``: log the start-up lines (the first worker
    of several does, the others stay quiet)."""
    # huggingface_hub reads these when first imported: no progress bars in a server's log.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_HUB_VERBOSITY", "error")
    from aiohttp import web

    from bot.app import configure_logging, create_app
    from bot.services import RUNNER, SURFACES

    settings = _settings()
    if isinstance(settings, int):
        return settings
    try:
        # Logging first: what the surfaces' libraries say while they are wired goes out as JSON.
        configure_logging(settings)
        app = create_app(settings)
    except UserError as err:
        print(f"error: {err.message}", file=sys.stderr)
        if err.hint:
            print(f"hint: {err.hint}", file=sys.stderr)
        return 2
    async def warm_pool(app: web.Application) -> None:
        await app[RUNNER].warm()

    app.on_startup.append(warm_pool)  # the service's own process only, not tests' apps
    if announce:
        for name, state in app[SURFACES]:
            log.info(f"{name}: {state}", extra={"fields": {"surface": name, "state": state}})
        log.info("starting", extra={"fields": {
            "host": settings.host, "port": settings.port, "workers": settings.workers,
            "hub_offline": settings.hub().offline,
            "hub_token": "set" if settings.hf_token else "unset",
            "shutdown_timeout_s": settings.shutdown_timeout_s}})
    try:
        web.run_app(app, host=settings.host, port=settings.port, reuse_port=settings.workers > 1,
                    shutdown_timeout=settings.shutdown_timeout_s, access_log=None, print=None)
    except OSError as exc:  # the port is taken, the address is not this host's, no permission
        return _cannot_listen(settings, exc)
    if announce:
        log.info("stopped")
    return 0


def serve_workers(count: int) -> int:
    """``count`` processes serving the same port (SO_REUSEPORT: the kernel spreads connections
    evenly over them), each its own event loop and estimate pool. The settings and the port
    are checked once, here, so a mistake is said once; SIGTERM/SIGINT reach every worker,
    which drain as one service would; the exit status is the worst of theirs."""
    settings = _settings()
    if isinstance(settings, int):
        return settings
    try:
        with socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            probe.bind((settings.host, settings.port))
    except OSError as exc:
        return _cannot_listen(settings, exc)
    children: list[int] = []
    for index in range(count):
        pid = os.fork()
        if pid == 0:  # a worker: build its own app after the fork, never share a loop
            code = 1
            os.environ["FITS_WORKER_INDEX"] = str(index)
            try:
                code = serve(announce=index == 0)
            finally:
                os._exit(code)
        children.append(pid)

    def forward(signum: int, _: object) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    worst = 0
    for child in children:
        _, status = os.waitpid(child, 0)
        worst = max(worst, os.waitstatus_to_exitcode(status))
    return worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fits-bot", description="The fits service.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("serve", help="serve the web page, the JSON API, health and metrics on "
                                       "HOST:PORT")
    run.add_argument("--workers", type=int, default=None, metavar="N",
                     help="worker processes on the same port (default: FITS_WORKERS, else one "
                          "per CPU this process may use, a container's CPU limit included)")
    args = parser.parse_args(argv)
    count = args.workers if args.workers is not None else _workers_from_env()
    if count is None or not 1 <= count <= 256:
        print("error: the number of workers (--workers or FITS_WORKERS) must be 1 to 256 or "
              "auto.", file=sys.stderr)
        print("hint: leave FITS_WORKERS unset (or auto) for one worker per CPU.", file=sys.stderr)
        return 2
    os.environ["FITS_WORKERS"] = str(count)  # every worker's settings see the count
    return serve() if count == 1 else serve_workers(count)


def _workers_from_env() -> int | None:
    from dotenv import dotenv_values

    from bot.cpus import usable_cpus

    # The environment first, then .env, as the settings read them.
    text = (os.environ.get("FITS_WORKERS") or dotenv_values(".env").get("FITS_WORKERS")
            or "auto").strip().lower()
    if text in ("", "auto"):
        return min(256, usable_cpus())
    return int(text) if text.isdigit() else None

if __name__ == "__main__":
    sys.exit(main())
