"""Load on the service: `fits-bot serve` in its own process on a loopback port, N requests at
concurrency C from this process, and a health probe beside them; latency percentiles,
throughput, the statuses, /healthz latency under the load, and the service's peak memory.
Offline (HF_HUB_OFFLINE): nothing leaves the host. Rate limits are raised out of the way: this
measures the service, not the limiter.

    python -m bench.load [-n 2000] [-c 50] [--surface api|slack|all] [--hostile 0.1] [--write]

- api: GET /api/v1/fits?q=... ; latency is the whole answer. With ``--hostile F`` a fraction F
  of the requests are POSTs with the configs an attacker sends (a fractional context that once
  looped forever, a billion layers, NaN, heads that do not divide, and the largest model the
  checks allow, which is answered): every one must get a 4xx or a 200, never a 5xx.
- slack: signed `/fits` slash commands (v0 HMAC over the form body, as Slack signs them) to
  POST /slack/events, with the Slack surface on in HTTP mode. Each command's response_url points
  at a fake Slack (tests/fakes/slack.py) in this process, so two figures come out: the ack (the
  HTTP response Slack needs within 3 s) and the time until the Block Kit answer arrives.
- the health probe: GET /healthz every 10 ms on a connection of its own for as long as the load
  runs: what an orchestrator's liveness probe sees.

``--write`` puts the table in docs/load.md and the summary line in the README.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the fake Slack lives in tests/fakes
    sys.path.insert(0, str(ROOT))

from bench.generated import replace_block  # noqa: E402

QUERIES = ("meta-llama/Llama-2-7b q4 ctx=4096 gpu=24GB", "llama3-8b awq engine=vllm gpu=4090",
           "Qwen/Qwen3-8B q8 ctx=32k gpu=3090", "7b mode=train train=qlora gpu=24GB")
FORM = "application/x-www-form-urlencoded"
LLAMA = {"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32,
         "num_attention_heads": 32, "num_key_value_heads": 8, "intermediate_size": 11008,
         "vocab_size": 32000, "max_position_embeddings": 4096}
# What an attacker POSTs (tests/test_config_check.py has each as a test): all but the last are
# refused with a sentence; the last is the largest model the checks let through, answered.
HOSTILE = (
    {**LLAMA, "max_position_embeddings": 1.5},
    {**LLAMA, "num_hidden_layers": 10**9},
    {**LLAMA, "hidden_size": float("nan")},
    {**LLAMA, "num_attention_heads": 30},
    {**LLAMA, "vocab_size": 10**47},
    {**LLAMA, "num_hidden_layers": 512},
)
HEALTH_EVERY_S = 0.01


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Service:
    proc: subprocess.Popen[bytes]
    port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def peak_rss_mib(self) -> float:
        """The service's peak resident memory (its process and its estimate workers)."""
        total = 0
        for pid in [self.proc.pid, *_children(self.proc.pid)]:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            total += next((int(line.split()[1]) for line in status.splitlines()
                           if line.startswith("VmHWM:")), 0)
        return total / 1024

    def stop(self) -> None:
        """SIGTERM to its whole process group (the workers too), SIGKILL after 20 s."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out += [int(entry.name), *_children(int(entry.name))]
    return out


async def start_service(module: tuple[str, ...] = ("bot", "serve"), **env: str) -> Service:
    """`python -m bot serve` (or the hello-world ceiling, bench.hello) on a free loopback port,
    ready (its /readyz answers 200)."""
    port = free_port()
    environ = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "HF_HUB_OFFLINE": "1",
               "FITS_RATE_LIMIT_PER_MINUTE": "100000", "FITS_RATE_LIMIT_BURST": "100000",
               **env}
    proc = subprocess.Popen([sys.executable, "-m", *module], env=environ, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    service = Service(proc, port)
    deadline = time.monotonic() + 60
    async with ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(f"{service.base}/readyz") as resp:
                    if resp.status == 200:
                        return service
            except OSError:
                pass
            await asyncio.sleep(0.1)
    service.stop()
    raise RuntimeError("the service did not become ready within 60 s")


def percentile(seconds: list[float], q: float) -> float:
    ordered = sorted(seconds)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def describe(name: str, seconds: list[float]) -> str:
    if not seconds:
        return f"{name:<10} no samples"
    return (f"{name:<10} p50 {ms(statistics.median(seconds))}, p99 {ms(percentile(seconds, 0.99))}"
            f", max {ms(max(seconds))}")


@dataclass
class Probe:
    """GET /healthz on its own connection every HEALTH_EVERY_S while the load runs."""

    url: str
    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        async with ClientSession(connector=TCPConnector(limit=1),
                                 timeout=ClientTimeout(total=10)) as session:
            while not self._stop.is_set():
                start = time.perf_counter()
                try:
                    async with session.get(self.url) as resp:
                        await resp.read()
                        ok = resp.status == 200
                except (OSError, TimeoutError):
                    ok = False
                self.latencies.append(time.perf_counter() - start)
                self.failures += not ok
                await asyncio.sleep(HEALTH_EVERY_S)

    def stop(self) -> None:
        self._stop.set()


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


@dataclass
class Result:
    surface: str
    done: int
    total: int
    wall_s: float
    latencies: list[float]
    statuses: dict[int, int]
    health: Probe
    rss_mib: float
    extra: list[str] = field(default_factory=list)
    answer_latencies: list[float] = field(default_factory=list)
    ok: bool = True

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    def print(self) -> None:
        print(f"requests   {self.done} of {self.total}; statuses {dict(sorted(self.statuses.items()))}")
        print(describe("latency", self.latencies))
        if self.answer_latencies:
            print(describe("answer", self.answer_latencies) + "  (sent -> Block Kit answer)")
        print(f"throughput {self.done / self.wall_s:.0f} requests/s over {self.wall_s:.2f} s")
        print(describe("/healthz", self.health.latencies) +
              f" over {len(self.health.latencies)} probes, {self.health.failures} failed")
        print(f"peak RSS   {self.rss_mib:.0f} MiB (the service and its estimate workers)")
        for line in self.extra:
            print(line)


async def run_api(total: int, concurrency: int, queries: tuple[str, ...], time_limit_s: float,
                  hostile: float, workers: int = 1, ceiling: bool = False) -> Result:
    module = ("bench.hello",) if ceiling else ("bot", "serve")
    service = await start_service(module, FITS_WORKERS=str(workers))
    url = f"{service.base}/api/v1/fits"
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    every = round(1 / hostile) if hostile > 0 else 0

    async def one(session: ClientSession, i: int) -> None:
        start = time.perf_counter()
        if every and i % every == every - 1:
            config = HOSTILE[(i // every) % len(HOSTILE)]
            request = session.post(url, json={"q": "my-model q4 gpu=24GB", "config": config})
        else:
            request = session.get(url, params={"q": queries[i % len(queries)]})
        async with request as resp:
            await resp.read()
            statuses[resp.status] = statuses.get(resp.status, 0) + 1
        latencies.append(time.perf_counter() - start)

    try:
        async with ClientSession() as warm:  # the first answers load the estimator's tables
            for q in queries:
                await (await warm.get(url, params={"q": q})).read()
        probe = Probe(f"{service.base}/healthz")
        probing = asyncio.ensure_future(probe.run())
        wall = await fire(total, concurrency, time_limit_s, one)
        probe.stop()
        await probing
        rss = service.peak_rss_mib()
    finally:
        service.stop()
    result = Result("api", len(latencies), total, wall, latencies, statuses, probe, rss)
    result.ok = len(latencies) == total and result.server_errors == 0 and probe.failures == 0
    return result


async def run_slack(total: int, concurrency: int, queries: tuple[str, ...], time_limit_s: float,
                    hostile: float) -> Result:
    from tests.fakes.slack import BOT_TOKEN, SIGNING_SECRET, FakeSlack, sign, slash_body

    fake = FakeSlack()
    fake_runner = web.AppRunner(fake.app(), access_log=None)
    await fake_runner.setup()
    fake_port = free_port()
    await web.TCPSite(fake_runner, "127.0.0.1", fake_port).start()
    fake.url = f"http://127.0.0.1:{fake_port}"
    service = await start_service(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET,
                                  SLACK_API_URL=fake.api_url)
    url = f"{service.base}/slack/events"
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

    try:
        async with ClientSession() as warm:  # the estimator's tables, once
            await command(warm, "warm", queries[0])
            await fake.next_response(timeout=30)
        acks.clear()
        sent.clear()
        statuses.clear()
        probe = Probe(f"{service.base}/healthz")
        probing = asyncio.ensure_future(probe.run())
        began = time.perf_counter()
        await fire(total, concurrency, time_limit_s, one)
        answers: list[tuple[str, dict[str, Any]]] = []
        with_deadline = time.monotonic() + 60
        while len(answers) < len(sent) and time.monotonic() < with_deadline:
            try:
                answers.append(await fake.next_response(
                    timeout=max(0.1, with_deadline - time.monotonic())))
            except TimeoutError:
                break
        probe.stop()
        await probing
        rss = service.peak_rss_mib()
    finally:
        service.stop()
        await fake_runner.cleanup()
    wall = (max(fake.arrivals[k] for k, _ in answers) - began) if answers else float("nan")
    waits = [fake.arrivals[key] - sent[key] for key, _ in answers]
    not_reports = sum(1 for _, m in answers if not m["text"].startswith(("YES", "NO")))
    slow_acks = sum(1 for a in acks if a >= 3.0)
    result = Result("slack", len(acks), total, wall, acks, statuses, probe, rss,
                    answer_latencies=waits)
    result.extra.append(f"answers    {len(answers)} of {len(acks)} arrived, "
                        f"{not_reports} not a report; {slow_acks} acks at 3 s or more")
    result.ok = (statuses.keys() == {200} and len(answers) == len(acks) == total
                 and not not_reports and not slow_acks and probe.failures == 0)
    return result


def table(results: list[Result], concurrency: int, hostile: float) -> str:
    rows = ["| surface | requests | p50 | p99 | throughput | 5xx | /healthz p50 | /healthz p99 "
            "| /healthz max | peak RSS |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
            "| ---: | ---: |"]
    names = {"api": "JSON API, `GET /api/v1/fits`" + (
        f" (1 in {round(1 / hostile)} a hostile config POST)" if hostile else ""),
             "slack": "Slack, signed `/fits`: the ack"}
    for r in results:
        h = r.health.latencies
        rows.append(f"| {names[r.surface]} | {r.done:,} | {ms(statistics.median(r.latencies))} | "
                    f"{ms(percentile(r.latencies, 0.99))} | {r.done / r.wall_s:.0f}/s | "
                    f"{r.server_errors} | {ms(statistics.median(h))} | {ms(percentile(h, 0.99))} | "
                    f"{ms(max(h))} | {r.rss_mib:.0f} MiB |")
        if r.answer_latencies:
            rows.append(f"| Slack: command to Block Kit answer | | "
                        f"{ms(statistics.median(r.answer_latencies))} | "
                        f"{ms(percentile(r.answer_latencies, 0.99))} | | | | | | |")
    machine = f"{os.cpu_count()} cores, Python {platform.python_version()}"
    return "\n".join([
        f"Measured by `python -m bench.load --surface all --hostile {hostile:g} --write` "
        f"({results[0].total:,} requests at {concurrency} concurrent on loopback, offline; the "
        f"service in its own process, the client and a /healthz probe every 10 ms in another; "
        f"{machine}).", "", *rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-n", "--requests", type=int, default=2000)
    parser.add_argument("-c", "--concurrency", type=int, default=50)
    parser.add_argument("--surface", choices=("api", "slack", "all"), default="api")
    parser.add_argument("--q", action="append", help="command(s) to ask, in turn")
    parser.add_argument("--hostile", type=float, default=0.0,
                        help="fraction of API requests that POST a hostile config (0.1: 1 in 10)")
    parser.add_argument("--time-limit", type=float, default=180.0, help="seconds at most")
    parser.add_argument("--workers", type=int, default=1,
                        help="fits-bot serve --workers (and the ceiling's) for the API run")
    parser.add_argument("--ceiling", action="store_true",
                        help="first measure a hello-world aiohttp app on the same workers "
                             "(bench.hello) and report the API's throughput as a share of it")
    parser.add_argument("--write", action="store_true",
                        help="write the table to docs/load.md and the summary to the README")
    args = parser.parse_args(argv)
    total = max(1, min(args.requests, 1_000_000))
    concurrency = max(1, min(args.concurrency, 1000))
    hostile = max(0.0, min(args.hostile, 1.0))
    queries = tuple(args.q or QUERIES)
    choices: dict[str, list[Callable[..., Coroutine[Any, Any, Result]]]] = {
        "api": [run_api], "slack": [run_slack], "all": [run_api, run_slack]}
    runs = choices[args.surface]
    results = []
    workers = max(1, min(args.workers, 64))
    ceiling_rps = None
    if args.ceiling:
        print(f"Ceiling: a hello-world aiohttp app on {workers} worker(s)")
        hello = asyncio.run(run_api(total, concurrency, queries, args.time_limit, 0.0, workers,
                                    ceiling=True))
        hello.print()
        ceiling_rps = hello.done / hello.wall_s
        print()
    for i, run in enumerate(runs):
        if i:
            print()
        print("JSON API: GET /api/v1/fits" if run is run_api else
              "Slack: signed /fits slash commands to POST /slack/events")
        if run is run_api:
            result = asyncio.run(run_api(total, concurrency, queries, args.time_limit, hostile,
                                         workers))
        else:
            result = asyncio.run(run(total, concurrency, queries, args.time_limit, hostile))
        result.print()
        if run is run_api and ceiling_rps:
            share = result.done / result.wall_s / ceiling_rps
            print(f"share of the hello-world ceiling ({ceiling_rps:.0f}/s): {share:.2f}x")
        results.append(result)
    if args.write:
        text = table(results, concurrency, hostile)
        replace_block(ROOT / "docs" / "load.md", "load", text)
        api = next((r for r in results if r.surface == "api"), None)
        if api is not None:
            h = api.health.latencies
            line = (f"Under load ({api.total:,} requests at {concurrency} concurrent, "
                    f"{'1 in ' + str(round(1 / hostile)) + ' a hostile config, ' if hostile else ''}"
                    f"the service in its own process): {api.done / api.wall_s:.0f} answers/s, "
                    f"p99 {ms(percentile(api.latencies, 0.99))}, {api.server_errors} 5xx, "
                    f"/healthz p99 {ms(percentile(h, 0.99))}; the table is in "
                    f"[docs/load.md](docs/load.md).")
            replace_block(ROOT / "README.md", "load", line)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
