"""The fault suite: requests, settings and upstream failures that used to freeze the service,
answer 500, print a traceback or be answered wrongly. Each case drives the real service (aiohttp's
test client, or `fits-bot serve` itself) with what an attacker or an unlucky operator sends.

Elsewhere in the suite: hostile configs (tests/test_config_check.py), Redis paused and killed
under load (tests/test_redis.py), one GitHub delivery at two replicas with Redis up and down
(tests/test_github_dedupe.py), Slack retries at two replicas (tests/test_slack_faults.py)."""

from __future__ import annotations

import json
import logging
import socket
import time
from typing import Any

import pytest
from nacl.signing import SigningKey

from bot.app import create_app
from bot.serve import main as serve_main
from core.parser import MAX_MODEL_CHARS, EstimateCommand, parse_command
from tests.conftest import free_port
from tests.fakes.discord import FakeDiscord
from tests.fakes.hub import FakeHub
from tests.test_service import make_settings

API = "/api/v1/fits"


# --- oversized requests -----------------------------------------------------------------------


async def test_a_url_over_8_kb_is_a_json_414_and_one_log_line(aiohttp_client, caplog):
    client = await aiohttp_client(create_app(make_settings()))
    with caplog.at_level(logging.DEBUG):
        resp = await client.get(API, params={"q": "7b " + "x" * 9000})
        body = await resp.json()
        assert resp.status == 414 and body["error"] == "The URL is too long (limit 8 KB)."
        assert "POST" in body["hint"]
        # Past what the HTTP parser takes at all: aiohttp answers by itself, and the log gets
        # one line without a traceback or anything the client sent.
        resp = await client.get("/healthz", headers={"X-Big": "y" * 70_000})
        assert resp.status == 400
    # aiohttp's access log is the test server's own; `fits-bot serve` runs without it.
    records = [r for r in caplog.records if r.name != "aiohttp.access"]
    text = "\n".join(r.getMessage() + str(getattr(r, "fields", "")) for r in records)
    assert "yyyy" not in text and "xxxx" not in text
    assert not any(r.exc_info for r in records)
    assert any(r.name == "fits.http" and "could not be read" in r.getMessage()
               for r in caplog.records)


# --- start-up ---------------------------------------------------------------------------------


def test_a_port_in_use_is_one_sentence_and_exit_1(monkeypatch, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        monkeypatch.setenv("HOST", "127.0.0.1")
        monkeypatch.setenv("PORT", str(taken.getsockname()[1]))
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        assert serve_main(["serve"]) == 1
    err = capsys.readouterr().err
    assert "error: fits-bot cannot listen on 127.0.0.1:" in err and "address already in use" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("url", ["redis//no-scheme", "redis://:s3cr3tPW@host:notaport/0",
                                 "http://redis:6379"])
def test_a_malformed_redis_url_is_one_sentence_without_the_url(monkeypatch, capsys, url):
    monkeypatch.setenv("REDIS_URL", url)
    assert serve_main(["serve"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the setting REDIS_URL is not valid")
    assert "s3cr3tPW" not in err and "Traceback" not in err


def test_bad_trusted_proxies_are_one_sentence(monkeypatch, capsys):
    monkeypatch.setenv("FITS_TRUSTED_PROXIES", "10.0.0.0/8, not-an-ip")
    assert serve_main(["serve"]) == 2
    assert "FITS_TRUSTED_PROXIES is not valid ('not-an-ip' is not an IP" in capsys.readouterr().err


# --- rate limits behind a proxy -----------------------------------------------------------------


async def _statuses(client: Any, forwarded: str | None, n: int) -> list[int]:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return [(await client.get(API, params={"q": "7b q8 engine=hf"}, headers=headers)).status
            for _ in range(n)]


async def test_callers_behind_a_trusted_proxy_get_their_own_limits(aiohttp_client):
    settings = make_settings(FITS_RATE_LIMIT_PER_MINUTE=1, FITS_RATE_LIMIT_BURST=2,
                             FITS_TRUSTED_PROXIES="127.0.0.1/32")
    client = await aiohttp_client(create_app(settings))
    assert await _statuses(client, "203.0.113.5", 3) == [200, 200, 429]
    # another client behind the same proxy has a bucket of its own (was: one for everybody)
    assert await _statuses(client, "198.51.100.7, 127.0.0.1", 2) == [200, 200]


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(aiohttp_client):
    settings = make_settings(FITS_RATE_LIMIT_PER_MINUTE=1, FITS_RATE_LIMIT_BURST=2)
    client = await aiohttp_client(create_app(settings))
    # without trusted proxies, inventing a new address per request buys nothing
    assert [(await client.get(API, params={"q": "7b q8 engine=hf"},
                              headers={"X-Forwarded-For": f"192.0.2.{i}"})).status
            for i in range(3)] == [200, 200, 429]


async def test_a_private_deployment_can_switch_the_limits_off(aiohttp_client):
    settings = make_settings(FITS_RATE_LIMIT_PER_MINUTE=1, FITS_RATE_LIMIT_BURST=1,
                             FITS_RATE_LIMITS="off")
    client = await aiohttp_client(create_app(settings))
    assert await _statuses(client, None, 5) == [200] * 5


# --- a revoked HF_TOKEN -------------------------------------------------------------------------


@pytest.fixture
async def hub_refusing_the_token(aiohttp_server, monkeypatch, tmp_path):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    fake = FakeHub()  # knows no token: every request with one gets "Invalid credentials"
    server = await aiohttp_server(fake.app())
    yield str(server.make_url("")).rstrip("/")
    fake.release()


async def test_a_revoked_token_makes_search_say_so_not_500(aiohttp_client,
                                                           hub_refusing_the_token):
    settings = make_settings().model_copy(update={"hf_hub_offline": False,
                                                  "hf_endpoint": hub_refusing_the_token})
    client = await aiohttp_client(create_app(settings))
    resp = await client.get(API, params={"q": "models mistral-7b"})  # few bundled matches
    body = await resp.json()
    assert resp.status == 200 and any("Mistral-7B" in m for m in body["models"])  # bundled
    assert "refused the HF_TOKEN" in body["note"]
    resp = await client.get(API, params={"q": "zzqxunknownname q4"})  # a bare unknown name
    body = await resp.json()
    assert resp.status == 400 and "refused the HF_TOKEN" in body["hint"]


# --- Discord ------------------------------------------------------------------------------------


async def test_a_correctly_signed_but_stale_discord_interaction_is_refused(aiohttp_client,
                                                                           aiohttp_server):
    fake = FakeDiscord()
    server = await aiohttp_server(fake.app())
    fake.url = str(server.make_url("")).rstrip("/")
    try:
        settings = make_settings(DISCORD_API_URL=fake.api_url,
                                 DISCORD_PUBLIC_KEY=fake.public_key)
        client = await aiohttp_client(create_app(settings))
        body = json.dumps({"type": 1}).encode()
        fresh = await client.post("/discord/interactions", data=body,
                                  headers=fake.signed_headers(body))
        assert fresh.status == 200
        a_year_ago = str(int(time.time()) - 365 * 24 * 3600)
        stale = await client.post("/discord/interactions", data=body,
                                  headers=fake.signed_headers(body, timestamp=a_year_ago))
        assert stale.status == 401
        huge = "9" * 5000
        odd = await client.post("/discord/interactions", data=body,
                                headers=fake.signed_headers(body, timestamp=huge))
        assert odd.status == 401
        other_key = await client.post("/discord/interactions", data=body,
                                      headers=fake.signed_headers(body, key=SigningKey.generate()))
        assert other_key.status == 401
    finally:
        await fake.close()


def test_the_discord_model_option_takes_what_the_parser_takes():
    from adapters.discord import commands

    longest = f"{'o' * 96}/{'n' * 96}"
    assert len(longest) == MAX_MODEL_CHARS
    assert isinstance(parse_command(f"{longest} q4"), EstimateCommand)
    with open(commands.__file__) as file:
        source = file.read()
    assert "Range[str, 1, MAX_MODEL_CHARS]" in source


# --- chat users are not told about a CLI flag -------------------------------------------------


async def test_the_hub_fallback_hint_names_each_surfaces_own_way_to_give_a_config():
    from adapters.discord.embed import render_error as discord_error
    from adapters.hub.answer import estimate_command_async
    from adapters.hub.cache import MemoryConfigCache
    from adapters.hub.settings import HubSettings
    from adapters.markdown import render_error as markdown_error
    from adapters.slack.blocks import error_message
    from core.errors import UserError

    command = parse_command("fits-test/Unknown-Thing q4")
    assert isinstance(command, EstimateCommand)
    unreachable = HubSettings(endpoint=f"http://127.0.0.1:{free_port()}", deadline_s=1.0)
    with pytest.raises(UserError) as raised:
        await estimate_command_async(command, unreachable, MemoryConfigCache())
    err = raised.value
    assert err.config_helps and "--config" not in (err.hint or "")
    assert "--config" not in markdown_error(err)  # GitHub
    assert "--config" not in json.dumps(error_message(err).blocks)  # Slack
    discord = discord_error(err).content or ""
    assert "config option of /fits" in discord and "--config" not in discord


def test_workers_share_the_port_and_stop_together(tmp_path) -> None:
    """fits-bot serve with FITS_WORKERS unset: one worker per usable CPU on one port
    (SO_REUSEPORT), all answering, one start-up log, all gone after one SIGTERM to the parent,
    which exits 0."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time
    import urllib.request

    from bot.cpus import usable_cpus
    from tests.conftest import free_port

    port = free_port()
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "HF_HUB_OFFLINE": "1",
           "LOG_LEVEL": "INFO"}
    env.pop("REDIS_URL", None)
    env.pop("FITS_WORKERS", None)
    proc = subprocess.Popen([sys.executable, "-m", "bot", "serve"], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        answered = 0
        while time.monotonic() < deadline and answered < 20:
            try:
                url = f"http://127.0.0.1:{port}/api/v1/fits?q=7b%20q4%20gpu%3D24GB"
                with urllib.request.urlopen(url, timeout=5) as resp:
                    answered += resp.status == 200
            except OSError:
                time.sleep(0.2)
        assert answered == 20
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    starts = [line for line in lines if line.get("message") == "starting"]
    assert len(starts) == 1, out
    assert starts[0]["workers"] == usable_cpus()


@pytest.mark.parametrize(("files", "cpus"), [
    ({"cpu.max": "150000 100000\n"}, 2),  # cgroup v2: 1.5 CPUs of time is two workers
    ({"cpu.max": "50000 100000\n"}, 1),
    ({"cpu.max": "max 100000\n"}, None),  # no limit: the affinity mask
    ({"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1),  # v1
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
    ({}, None),
])
def test_the_worker_count_follows_a_containers_cpu_limit(tmp_path, files, cpus) -> None:
    import os

    from bot.cpus import usable_cpus

    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    mask = len(os.sched_getaffinity(0))
    assert usable_cpus(tmp_path) == (min(mask, cpus) if cpus is not None else mask)


@pytest.mark.parametrize("value", ["two", "0", "-1", "999"])
def test_a_bad_worker_count_is_one_sentence(monkeypatch, capsys, value) -> None:
    monkeypatch.setenv("FITS_WORKERS", value)
    assert serve_main(["serve"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the number of workers") and "Traceback" not in err


def test_only_the_first_worker_holds_the_bots_single_connections() -> None:
    """One bot may hold one Discord gateway session and should hold one Socket Mode connection:
    with several workers the others serve HTTP only (and do not register commands again)."""
    from bot.services import SURFACES
    from tests.test_service import make_settings

    chat = {"DISCORD_BOT_TOKEN": "discord-token", "DISCORD_APPLICATION_ID": "123",
            "SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1", "FITS_WORKERS": 2}
    first_app = create_app(make_settings(**chat, FITS_WORKER_INDEX=0))
    first = dict(first_app[SURFACES])
    other_app = create_app(make_settings(**chat, FITS_WORKER_INDEX=1))
    other = dict(other_app[SURFACES])
    assert first["Discord"].startswith("on (gateway bot")
    assert other["Discord"] == "on in the first worker (gateway bot)"
    assert "Socket Mode in the first worker" in other["Slack"]
    assert "Socket Mode in the first worker" not in first["Slack"]
    def connections(app) -> list[str]:
        names = [getattr(ctx, "__qualname__", "") for ctx in app.cleanup_ctx]
        return [n for n in names if "GatewayBot" in n or "socket_mode" in n]

    assert len(connections(first_app)) == 2 and connections(other_app) == []
