"""Where the service computes reports, so that no question holds up the event loop.

Most reports take a millisecond or two of CPU; a cold llama.cpp question about a big MoE takes a
few hundred (the GGUF type of every tensor, for every quantization it tries), and an uploaded
config can be as large as core.config_check allows. ``ReportRunner.run``:

- sends a job that may be slow (any GGUF answer, or a model with more tensors than any bundled
  one) to a pool of worker processes, each within ``budget_s`` (core.estimate's deadline stops
  the work cooperatively; a worker that still overruns is killed and the pool restarted). At
  most ``queue_limit`` jobs wait or run there; past that the caller hears "busy, try again";
- computes the rest here, one report per turn of the event loop (a lock held over one yield),
  so that between two reports the loop polls its sockets and /healthz waits for a report or two
  at most; a report that runs past ``inline_slice_s`` (10 ms) here is stopped and finished in
  a worker, so no question holds the loop much longer than that.

The pool starts on first use (the forkserver method: workers fork from a clean process that has
already imported core, never from this one with its loop and threads).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import multiprocessing
import os
import time
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from core.answer import ReportJob
from core.errors import UserError
from core.estimate import TooSlow
from core.quant import default_engine
from core.report import Report
from core.vocabulary import LLAMA_CPP_ENGINES, NO_GPU_WORDS

log = logging.getLogger("fits.compute")

# More tensors than any bundled model (Llama 3.1 405B has 1,137): unusual enough to go to a worker.
INLINE_MAX_TENSORS = 1500
_PRELOAD = ["core.answer", "core.estimate", "core.gguf", "core.snapshot", "core.gpus"]


class Busy(UserError):
    """Every worker is taken and the queue is full."""

    status = 503

    def __init__(self) -> None:
        super().__init__("fits is busy with other large questions right now.",
                         "Try again in a few seconds.")


def may_be_slow(job: ReportJob) -> bool:
    """Whether a job should go to a worker: llama.cpp/Ollama answers (GGUF type assignment
    over every tensor and preset) and unusually large models."""
    request = job.request
    if len(job.model.spec.tensors) > INLINE_MAX_TENSORS:
        return True
    if request.mode == "train":
        return False
    engine = request.engine or default_engine(request.quant)
    return engine in LLAMA_CPP_ENGINES or (request.gpu or "").strip().lower() in NO_GPU_WORDS


def _work(job: ReportJob, budget_s: float) -> Report:
    """In a worker process: the report, within its budget."""
    return job.run(time.monotonic() + budget_s)


def _warm() -> None:
    from core.snapshot import entries

    entries()


class ReportRunner:
    def __init__(self, processes: int | None = None, budget_s: float = 10.0,
                 inline_slice_s: float = 0.01, queue_limit: int | None = None) -> None:
        self.processes = processes or max(1, min(4, os.cpu_count() or 1))
        self.budget_s = budget_s
        self.inline_slice_s = inline_slice_s
        # A chat answer that waits a few seconds beats "busy": the bound is for floods (each
        # waiting job is a few kilobytes), which the per-caller rate limits meet first.
        self.queue_limit = queue_limit or 512 * self.processes
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._inline = asyncio.Lock()
        self._slots = asyncio.Semaphore(self.processes)  # one job per worker at a time
        self._in_pool = 0
        self.stats = {"inline": 0, "pool": 0, "moved": 0, "busy": 0, "restarts": 0}

    async def run(self, job: ReportJob) -> Report:
        if not may_be_slow(job):
            async with self._inline:
                try:
                    report = job.run(time.monotonic() + self.inline_slice_s)
                except TooSlow:
                    self.stats["moved"] += 1  # slower than it looked: finish it in a worker
                else:
                    self.stats["inline"] += 1
                    # Hold the lock over one loop turn: the next report here waits for it, and
                    # the sockets (health probes among them) are polled in between.
                    await asyncio.sleep(0)
                    return report
        return await self._in_worker(job)

    async def _in_worker(self, job: ReportJob) -> Report:
        if self._in_pool >= self.queue_limit:
            self.stats["busy"] += 1
            raise Busy()
        self._in_pool += 1
        try:
            async with self._slots:
                return await self._submit(job)
        finally:
            self._in_pool -= 1

    async def _submit(self, job: ReportJob) -> Report:
        pool = self._pool or self._start()
        future = pool.submit(_work, job, self.budget_s)
        try:
            # The grace covers pickling and a worker's start; past it the worker ignored its
            # deadline, and only killing it stops it.
            report: Report = await asyncio.wait_for(asyncio.wrap_future(future),
                                                    self.budget_s + 5.0)
        except TimeoutError:
            log.error("a report overran its budget in a worker; restarting the pool",
                      extra={"fields": {"budget_s": self.budget_s}})
            self._restart()
            raise TooSlow() from None
        except BrokenProcessPool:
            log.error("a report worker died; restarting the pool")
            self._restart()
            raise Busy() from None
        self.stats["pool"] += 1
        return report

    def _start(self) -> concurrent.futures.ProcessPoolExecutor:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(_PRELOAD)
        self._pool = concurrent.futures.ProcessPoolExecutor(
            self.processes, mp_context=context, initializer=_warm)
        return self._pool

    async def warm(self) -> None:
        """Start the pool and its workers now. The first start also starts the forkserver,
        which holds whoever starts it for a few hundred milliseconds: at start-up, in a
        thread, rather than on the event loop when the first llama.cpp question arrives."""
        await asyncio.to_thread(self._warm_pool)

    def _warm_pool(self) -> None:
        pool = self._pool or self._start()
        for done in [pool.submit(_warm) for _ in range(self.processes)]:
            done.result(timeout=120)

    def _restart(self) -> None:
        pool, self._pool = self._pool, None
        self.stats["restarts"] += 1
        if pool is not None:
            _kill(pool)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)


def _kill(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    """Stop a pool whose worker ignores its deadline. ProcessPoolExecutor cannot cancel a
    running call, so its processes are terminated (the attribute is CPython's, stable since 3.2;
    without it the pool is only shut down)."""
    processes: dict[Any, Any] = getattr(pool, "_processes", None) or {}
    for process in list(processes.values()):
        process.terminate()
    pool.shutdown(wait=False, cancel_futures=True)
