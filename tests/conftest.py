from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest

from core.answer import estimate_command
from core.parser import EstimateCommand, parse_command
from core.report import Report


def run_command(text: str) -> Report:
    command = parse_command(text)
    assert isinstance(command, EstimateCommand)
    return estimate_command(command)


@pytest.fixture
def fits():
    return run_command


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def redis_url():
    """A fresh redis-server on a free loopback port for one test; its URL."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed (.ci/run installs it)"
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)
