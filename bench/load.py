"""Load on the service: start bot.app on a loopback port in this process, fire N requests at
concurrency C, then print latency percentiles, throughput and the process's peak RSS before and
after. Offline (HF_HUB_OFFLINE): nothing leaves the host. Rate limits are raised out of the way:
this measures the service, not the limiter.

    python -m bench.load [-n 2000] [-c 50] [--surface api|slack|all] [--q "<command>" ...]

- api: GET /api/v1/fits?q=... ; latency is the whole answer.
- slack: signed `/fits` slash commands (v0 HMAC over the form body, as Slack signs them) to
  POST /slack/events, with the Slack surface on in HTTP mode. Each command's response_url points
  at a local fake Slack (tests/fakes/slack.py, which also answers bolt's auth.test), so two
  figures come out: the ack (the HTTP response Slack needs within 3 s) and the time until the
  Block Kit answer arrives at the response_url. The fake runs in the same process and event loop
  as the service and the load generator, so it takes its share of the one CPU core they use, and
  an ack is timed when the load generator reads it (an answer can arrive first). bolt checks for
  the ack every 10 ms, so an idle service acks in about 10-15 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import socket
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the fake Slack lives in tests/fakes
    sys.path.insert(0, str(ROOT))

from bot.app import create_app  # noqa: E402
from bot.settings import Settings  # noqa: E402

QUERIES = ("meta-llama/Llama-2-7b q4 ctx=4096 gpu=24GB", "llama3-8b awq engine=vllm gpu=4090",
           "Qwen/Qwen3-8B q8 ctx=32k gpu=3090", "7b mode=train train=qlora gpu=24GB")
FORM = "application/x-www-form-urlencoded"


def max_rss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bench_settings(**extra: Any) -> Settings:
    fields: dict[str, Any] = {"HF_HUB_OFFLINE": True, "FITS_RATE_LIMIT_PER_MINUTE": 100_000,
                              "FITS_RATE_LIMIT_BURST": 100_000, **extra}
    return Settings(_env_file=None, **fields)


async def serve(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, port


def percentiles(name: str, seconds: list[float]) -> str:
    ordered = sorted(seconds)
    if not ordered:
        return f"{name:<10} no samples"
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (f"{name:<10} p50 {statistics.median(ordered) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
            f"max {ordered[-1] * 1000:.1f} ms")


async def fire(total: int, concurrency: int, time_limit_s: float,
               one: Callable[[ClientSession, int], Awaitable[None]]) -> float:
    """Call ``one(session, i)`` for i in 0..total-1 from ``concurrency`` workers; the wall time."""
    next_index = 0
    deadline = time.monotonic() + time_limit_s

    async def worker(session: ClientSession) -> None:
        nonlocal next_index
        while next_index < total and time.monotonic() < deadline:
            i = next_index
            next_index += 1
            await one(session, i)

    connector = TCPConnector(limit=concurrency)
    async with ClientSession(connector=connector, timeout=ClientTimeout(total=30)) as session:
        began = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        return time.perf_counter() - began


async def run_api(total: int, concurrency: int, queries: tuple[str, ...],
                  time_limit_s: float) -> int:
    runner, port = await serve(create_app(bench_settings()))
    rss_before = max_rss_mib()
    url = f"http://127.0.0.1:{port}/api/v1/fits"
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def one(session: ClientSession, i: int) -> None:
        start = time.perf_counter()
        async with session.get(url, params={"q": queries[i % len(queries)]}) as resp:
            await resp.read()
            statuses[resp.status] = statuses.get(resp.status, 0) + 1
        latencies.append(time.perf_counter() - start)

    async with ClientSession() as warm:  # the first answer loads the estimator's tables
        await (await warm.get(url, params={"q": queries[0]})).read()
    wall = await fire(total, concurrency, time_limit_s, one)
    await runner.cleanup()
    done = len(latencies)
    print("JSON API: GET /api/v1/fits")
    print(f"requests   {done} of {total} at concurrency {concurrency}"
          f"{' (time limit reached)' if done < total else ''}; statuses {statuses}")
    print(percentiles("latency", latencies))
    print(f"throughput {done / wall:.0f} requests/s over {wall:.2f} s")
    print(f"max RSS    {rss_before:.0f} MiB before the load, {max_rss_mib():.0f} MiB after")
    return 0 if statuses.keys() == {200} and done == total else 1


async def run_slack(total: int, concurrency: int, queries: tuple[str, ...],
                    time_limit_s: float) -> int:
    from tests.fakes.slack import BOT_TOKEN, SIGNING_SECRET, FakeSlack, sign, slash_body

    fake = FakeSlack()
    fake_runner, fake_port = await serve(fake.app())
    fake.url = f"http://127.0.0.1:{fake_port}"
    settings = bench_settings(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET,
                              SLACK_API_URL=fake.api_url)
    runner, port = await serve(create_app(settings))
    rss_before = max_rss_mib()
    url = f"http://127.0.0.1:{port}/slack/events"
    acks: list[float] = []
    sent: dict[str, float] = {}
    statuses: dict[int, int] = {}

    async def command(session: ClientSession, key: str, text: str) -> None:
        body = slash_body(text, fake.response_url(key))
        headers = {**sign(body), "Content-Type": FORM}  # signed as Slack does, before the clock
        start = time.perf_counter()
        async with session.post(url, data=body, headers=headers) as resp:
            await resp.read()
            statuses[resp.status] = statuses.get(resp.status, 0) + 1
        acks.append(time.perf_counter() - start)
        sent[key] = start

    async def one(session: ClientSession, i: int) -> None:
        await command(session, f"r{i}", queries[i % len(queries)])

    async with ClientSession() as warm:  # bolt's auth.test and the estimator's tables, once
        await command(warm, "warm", queries[0])
        await fake.next_response(timeout=30)
    acks.clear()
    sent.clear()
    statuses.clear()
    began = time.perf_counter()
    await fire(total, concurrency, time_limit_s, one)
    answers: list[tuple[str, dict[str, Any]]] = []
    with_deadline = time.monotonic() + 60
    while len(answers) < len(sent) and time.monotonic() < with_deadline:
        try:
            answers.append(await fake.next_response(timeout=max(0.1, with_deadline -
                                                               time.monotonic())))
        except TimeoutError:
            break
    wall = (max(fake.arrivals[k] for k, _ in answers) - began) if answers else float("nan")
    await runner.cleanup()
    await fake_runner.cleanup()
    waits = [fake.arrivals[key] - sent[key] for key, _ in answers]
    not_reports = sum(1 for _, m in answers if not m["text"].startswith(("YES", "NO")))
    done = len(acks)
    print("Slack: signed /fits slash commands to POST /slack/events, answers at a response_url")
    print(f"commands   {done} of {total} at concurrency {concurrency}"
          f"{' (time limit reached)' if done < total else ''}; ack statuses {statuses}")
    print(percentiles("ack", acks))
    print(percentiles("answer", waits) + "  (command sent -> Block Kit at the response_url)")
    print(f"answers    {len(answers)} of {done} arrived, {not_reports} not a report")
    print(f"throughput {len(answers) / wall:.0f} answered commands/s over {wall:.2f} s")
    print(f"max RSS    {rss_before:.0f} MiB before the load, {max_rss_mib():.0f} MiB after")
    slow_acks = sum(1 for a in acks if a >= 3.0)
    if slow_acks:
        print(f"WARNING    {slow_acks} acks took 3 s or more: Slack would show a timeout")
    ok = statuses.keys() == {200} and len(answers) == done == total and not not_reports
    return 0 if ok and not slow_acks else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-n", "--requests", type=int, default=2000)
    parser.add_argument("-c", "--concurrency", type=int, default=50)
    parser.add_argument("--surface", choices=("api", "slack", "all"), default="api")
    parser.add_argument("--q", action="append", help="command(s) to ask, in turn")
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds at most")
    args = parser.parse_args(argv)
    total = max(1, min(args.requests, 1_000_000))
    concurrency = max(1, min(args.concurrency, 1000))
    queries = tuple(args.q or QUERIES)
    runs = {"api": [run_api], "slack": [run_slack], "all": [run_api, run_slack]}[args.surface]
    code = 0
    for i, run in enumerate(runs):
        if i:
            print()
        code |= asyncio.run(run(total, concurrency, queries, args.time_limit))
    return code


if __name__ == "__main__":
    sys.exit(main())
