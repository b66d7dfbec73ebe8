from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from typing import TypeVar

import pytest

from core.answer import estimate_command
from core.parser import EstimateCommand, parse_command
from core.report import Report


def run_command(text: str) -> Report:
    command = parse_command(text)
    assert isinstance(command, EstimateCommand)
    return estimate_command(command)


D = TypeVar("D")


def details_of(report: Report, kind: type[D]) -> D:
    """The engine's own figures in ``report``, checked to be ``kind`` (VllmDetails ...)."""
    details = report.engine_details.engine
    assert isinstance(details, kind), f"{report.engine} gave {type(details).__name__}"
    return details


@pytest.fixture(autouse=True)
def one_worker(monkeypatch):
    """`fits-bot serve` runs one worker per CPU by default; a test that calls it in this process
    must not fork pytest, so tests get one unless they ask for more (test_faults pops it)."""
    monkeypatch.setenv("FITS_WORKERS", "1")


@pytest.fixture
def fits():
    return run_command


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A real redis-server on a free loopback port, which a test can pause (SIGSTOP: it holds
    connections and answers nothing, like a hung host), resume and kill."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed: run bash scripts/test.sh, which installs it"
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = subprocess.Popen([binary, "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no"],
                                     stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)

    def pause(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.resume()
            self.proc.terminate()
            self.proc.wait(timeout=10)


@pytest.fixture
def redis_server():
    server = RedisServer()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server):
    """A fresh redis-server on a free loopback port for one test; its URL."""
    return redis_server.url
