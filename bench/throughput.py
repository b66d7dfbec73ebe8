"""Throughput of `GET /api/v1/fits` on every core, against what aiohttp itself serves: the
figures issue 21 asks for, measured in one run on the same machine, workers and client.

    python -m bench.throughput [--workers 2] [-c 50] [--seconds 10] [--distinct 500]
                               [--client auto|wrk|python] [--write]

1. ceiling: a hello-world aiohttp app (bench/hello.py) on the same workers and SO_REUSEPORT;
2. repeated: `fits-bot serve --workers N` asked the same four questions in turn;
3. distinct: a fresh service asked ``--distinct`` different questions (bundled models x GPUs x
   formats): first each once (cold: nothing cached, each a full report), then in rotation
   (warm) for the same time as the others.

The load comes from wrk (a C client, in its own process, with a Lua script that rotates the
paths) when it is installed, else from an aiohttp client in this process; either way the
service runs in processes of its own. A probe asks /healthz every 10 ms on a connection of its
own throughout: what a liveness probe sees. ``--write`` puts the table in docs/load.md and a
line in the README.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from aiohttp import ClientSession, ClientTimeout, TCPConnector

from bench.generated import replace_block
from bench.load import QUERIES, ROOT, Probe, Service, ms, percentile, start_service

GPUS = ("gpu=24GB", "gpu=rtx-3060", "gpu=a100-80g", "gpu=2x4090", "gpu=8GB ram=32GB")
FORMATS = ("q4", "q8", "Q4_K_M ctx=8k", "fp16 engine=vllm")
WARM_UP = "13b q4 gpu=24GB"  # loads the estimator's tables in each worker; in no rotation
# wrk rotates the paths of a file, one list per thread, and prints exact percentiles at the end.
WRK_SCRIPT = """
local paths = {}
for line in io.lines(os.getenv("FITS_PATHS")) do paths[#paths + 1] = line end
local i = math.random(#paths)
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
done = function(summary, latency, requests)
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, '
    .. '"status_errors": %d, "socket_errors": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout))
end
"""


def distinct_questions(count: int) -> tuple[str, ...]:
    """``count`` different questions that the bundled snapshot answers (each checked here)."""
    from core import snapshot
    from core.answer import estimate_command
    from core.errors import UserError
    from core.parser import EstimateCommand, parse_command

    out: list[str] = []
    for gpu in GPUS:
        for fmt in FORMATS:
            for repo_id in sorted(snapshot.entries()):
                text = f"{repo_id} {fmt} {gpu}"
                command = parse_command(text)
                try:
                    assert isinstance(command, EstimateCommand)
                    estimate_command(command)
                except UserError:
                    continue
                out.append(text)
                if len(out) == count:
                    return tuple(out)
    return tuple(out)


@dataclass
class Run:
    name: str
    requests: int
    seconds: float
    p50_s: float
    p99_s: float
    errors: int  # non-2xx answers and socket errors
    health: list[float] = field(default_factory=list)
    health_failures: int = 0
    stalls: int | None = None  # event-loop wake-ups more than 20 ms late, all workers
    longest_stall_s: float | None = None  # since the service started, any worker

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def _path(question: str) -> str:
    return "/api/v1/fits?q=" + quote(question, safe="")


async def _python_load(base: str, paths: list[str], concurrency: int, seconds: float | None,
                       total: int | None) -> tuple[int, float, list[float], int]:
    """aiohttp at ``concurrency``: for ``seconds``, or until ``total`` requests (each path once
    when total is len(paths))."""
    latencies: list[float] = []
    errors = 0
    sent = 0
    deadline = time.monotonic() + (seconds or 3600)

    async def worker(session: ClientSession) -> None:
        nonlocal errors, sent
        while time.monotonic() < deadline and (total is None or sent < total):
            path = paths[sent % len(paths)]
            sent += 1
            start = time.perf_counter()
            try:
                async with session.get(base + path) as resp:
                    await resp.read()
                    errors += resp.status != 200
            except (OSError, TimeoutError):
                errors += 1
            latencies.append(time.perf_counter() - start)

    connector = TCPConnector(limit=concurrency)
    async with ClientSession(connector=connector, timeout=ClientTimeout(total=30)) as session:
        began = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        return len(latencies), time.perf_counter() - began, latencies, errors


async def _wrk_load(base: str, paths: list[str], concurrency: int, seconds: float
                    ) -> tuple[int, float, float, float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        script, listing = Path(tmp, "rotate.lua"), Path(tmp, "paths.txt")
        script.write_text(WRK_SCRIPT)
        listing.write_text("\n".join(paths) + "\n")
        threads = max(1, min(2, concurrency))
        proc = await asyncio.create_subprocess_exec(
            "wrk", f"-t{threads}", f"-c{concurrency}", f"-d{max(1, round(seconds))}s",
            "--timeout", "10s", "-s", str(script), base,
            env={**os.environ, "FITS_PATHS": str(listing)},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await proc.communicate()
    text = out.decode(errors="replace")
    line = next((x for x in text.splitlines() if x.startswith('{"requests"')), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{text}")
    s = json.loads(line)
    return (s["requests"], s["duration_us"] / 1e6, s["p50_us"] / 1e6, s["p99_us"] / 1e6,
            s["status_errors"] + s["socket_errors"])


async def _loop_lag(service: Service, workers: int) -> dict[str, tuple[float, float, float]]:
    """Each worker's (longest stall, wake-ups within 20 ms, all wake-ups) from its /metrics:
    fresh connections until every worker has answered once (SO_REUSEPORT picks the worker)."""
    found: dict[str, tuple[float, float, float]] = {}
    for _ in range(40 * workers):
        if len(found) == workers:
            break
        async with ClientSession(connector=TCPConnector(force_close=True)) as session, \
                session.get(f"{service.base}/metrics") as resp:
            text = await resp.text()
        values: dict[str, float] = {}
        worker = ""
        for line in text.splitlines():
            if line.startswith("fits_event_loop_lag_max_seconds{"):
                worker = line.split('worker="')[1].split('"')[0]
                values["max"] = float(line.split()[-1])
            elif line.startswith('fits_event_loop_lag_seconds_bucket{le="0.02"'):
                values["within"] = float(line.split()[-1])
            elif line.startswith("fits_event_loop_lag_seconds_count{"):
                values["count"] = float(line.split()[-1])
        if worker and len(values) == 3:
            found[worker] = (values["max"], values["within"], values["count"])
    return found


async def _measure(name: str, service: Service, paths: list[str], concurrency: int,
                   seconds: float | None, client: str, total: int | None = None,
                   workers: int = 0) -> Run:
    before = await _loop_lag(service, workers) if workers else {}
    probe = Probe(f"{service.base}/healthz")
    probing = asyncio.ensure_future(probe.run())
    try:
        if client == "wrk" and total is None:
            assert seconds is not None
            done, wall, p50, p99, errors = await _wrk_load(service.base, paths, concurrency,
                                                            seconds)
        else:
            done, wall, latencies, errors = await _python_load(service.base, paths, concurrency,
                                                               seconds, total)
            p50, p99 = statistics.median(latencies), percentile(latencies, 0.99)
    finally:
        probe.stop()
        await probing
    run = Run(name, done, wall, p50, p99, errors, probe.latencies, probe.failures)
    if workers:
        after = await _loop_lag(service, workers)
        run.longest_stall_s = max((v[0] for v in after.values()), default=None)
        run.stalls = int(sum((a[2] - a[1]) - ((before[w][2] - before[w][1]) if w in before else 0)
                             for w, a in after.items()))
    return run


async def _warm_every_worker(service: Service, workers: int, paths: list[str]) -> None:
    """A fresh connection per request lands on any worker (SO_REUSEPORT hashes the client's
    port): enough of them reach every worker's estimator and pool before the clock starts."""
    for _ in range(8 * workers):
        for path in paths:
            async with ClientSession(connector=TCPConnector(force_close=True)) as session, \
                    session.get(f"{service.base}{path}") as resp:
                await resp.read()


async def measure(workers: int, concurrency: int, seconds: float, distinct: int,
                  client: str) -> list[Run]:
    runs: list[Run] = []
    # Rate limits off: one client address at thousands a second would spend any caller's budget.
    env = {"FITS_WORKERS": str(workers), "FITS_REPORT_CACHE_SIZE": str(max(4096, 2 * distinct)),
           "FITS_RATE_LIMITS": "0"}
    hello = await start_service(("bench.hello",), **env)
    try:
        runs.append(await _measure("hello-world aiohttp (the ceiling)", hello,
                                   [_path(q) for q in QUERIES], concurrency, seconds, client))
    finally:
        hello.stop()
    service = await start_service(("bot", "serve"), **env)
    try:
        repeated = [_path(q) for q in QUERIES]
        await _warm_every_worker(service, workers, repeated)  # repeated: asked before
        runs.append(await _measure(f"repeated: {len(QUERIES)} questions in turn", service,
                                   repeated, concurrency, seconds, client, workers=workers))
    finally:
        service.stop()
    questions = [_path(q) for q in distinct_questions(distinct)]
    service = await start_service(("bot", "serve"), **env)
    try:
        await _warm_every_worker(service, workers, [_path(WARM_UP)])
        runs.append(await _measure(f"distinct: {len(questions)} questions, each once (cold)",
                                   service, questions, concurrency, None, "python",
                                   total=len(questions), workers=workers))
        runs.append(await _measure(f"distinct: the {len(questions)} in rotation (warm)",
                                   service, questions, concurrency, seconds, client,
                                   workers=workers))
    finally:
        service.stop()
    # One question at a time, cold, on a fresh service: with the cores not oversubscribed, the
    # probe's worst wait is the longest any single question held a loop.
    service = await start_service(("bot", "serve"), **env)
    try:
        await _warm_every_worker(service, workers, [_path(WARM_UP)])
        runs.append(await _measure(f"distinct: the {len(questions)} cold, one at a time",
                                   service, questions, 1, None, "python",
                                   total=len(questions), workers=workers))
    finally:
        service.stop()
    return runs


def table(runs: list[Run], workers: int, concurrency: int, seconds: float, client: str) -> str:
    ceiling = runs[0].rate
    rows = ["| load | requests | answers/s | x ceiling | p50 | p99 | errors | /healthz p99 | "
            "/healthz max | loop held > 20 ms | longest loop hold |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for run in runs:
        stalls = "" if run.stalls is None else f"{run.stalls:,}"
        longest = "" if run.longest_stall_s is None else ms(run.longest_stall_s)
        rows.append(f"| {run.name} | {run.requests:,} | {run.rate:,.0f} | "
                    f"{run.rate / ceiling:.2f}x | {ms(run.p50_s)} | {ms(run.p99_s)} | "
                    f"{run.errors + run.health_failures} | {ms(percentile(run.health, 0.99))} | "
                    f"{ms(max(run.health, default=float('nan')))} | {stalls} | {longest} |")
    who = "wrk (its own process)" if client == "wrk" else "aiohttp in the benchmark's process"
    return "\n".join([
        f"Measured by `python -m bench.throughput --workers {workers} -c {concurrency} "
        f"--seconds {seconds:g} --write` on {os.cpu_count()} cores, Python "
        f"{platform.python_version()}: the service with {workers} worker(s), {concurrency} "
        f"connections from {who}, {seconds:g} s per load (the cold pass as long as it takes), "
        "a /healthz probe every 10 ms on a connection of its own; everything on loopback, "
        "offline, on the same cores. The loop columns are the service's own "
        "(fits_event_loop_lag_seconds: a 10 ms timer woken late, every worker): how often and "
        "how long something held a worker's event loop, the longest since the service "
        "started, without the client's scheduling in the figure. Under 50 connections the "
        "two workers, wrk and the probe share two cores, so a timer also wakes late while its "
        "process waits for a core; the last row asks one question at a time, where the "
        "probe's worst wait is the longest any single question held a loop.", "", *rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("-c", "--concurrency", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--distinct", type=int, default=500)
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    client = args.client
    if client == "auto":
        client = "wrk" if shutil.which("wrk") else "python"
    workers = max(1, min(args.workers, 64))
    concurrency = max(1, min(args.concurrency, 1000))
    seconds = max(1.0, min(args.seconds, 600.0))
    runs = asyncio.run(measure(workers, concurrency, seconds, max(1, min(args.distinct, 5000)),
                               client))
    text = table(runs, workers, concurrency, seconds, client)
    print(text)
    if args.write:
        replace_block(ROOT / "docs" / "load.md", "throughput", text)
        repeated, warm = runs[1], runs[3]
        alone = runs[4]
        line = (f"On {workers} workers the JSON API answers repeated questions at "
                f"{repeated.rate / runs[0].rate:.2f}x what a hello-world aiohttp app serves "
                f"({repeated.rate:,.0f}/s, p99 {ms(repeated.p99_s)}) and "
                f"{warm.rate:,.0f}/s over {runs[3].name.split(': ')[1].split(' in')[0]} in "
                f"rotation; asked one at a time, no cold question kept /healthz waiting more "
                f"than {ms(max(alone.health, default=float('nan')))} "
                f"(`python -m bench.throughput`): [docs/load.md](docs/load.md).")
        replace_block(ROOT / "README.md", "throughput", line)
    bad = sum(r.errors + r.health_failures for r in runs)
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
