"""Blocking calls (huggingface_hub is synchronous) run in daemon threads, awaited from the loop."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def in_thread(fn: Callable[[], T]) -> T:
    """Run blocking ``fn`` in a daemon thread. Unlike ``asyncio.to_thread``, whose executor is
    joined when ``asyncio.run`` ends and again at interpreter exit, a call abandoned at the
    deadline does not hold the process: the CLI answers and exits on time."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if future.done():  # the caller gave up (deadline, cancellation): nobody wants it
            return
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)

    def work() -> None:
        try:
            result: Any = fn()
            ok = True
        except BaseException as exc:  # handed to the awaiting coroutine, which re-raises it
            result, ok = exc, False
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is waiting
            loop.call_soon_threadsafe(settle, ok, result)

    threading.Thread(target=work, name="fits-hub", daemon=True).start()
    return await future
