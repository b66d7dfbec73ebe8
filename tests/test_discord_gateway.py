"""The gateway bot, end to end: the service starts with DISCORD_BOT_TOKEN and runs the real
discord.py client in its event loop against the fake Discord (REST under DISCORD_API_URL, the
gateway at discord.py's DEFAULT_GATEWAY): login, command registration, IDENTIFY -> READY, then
INTERACTION_CREATE dispatches whose callbacks and webhook calls the fake records and checks."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import discord
import pytest
import yarl

import bot.discord_surface
from adapters.discord.embed import EPHEMERAL
from bot.app import SURFACES, create_app
from core.answer import estimate_command
from core.parser import EstimateCommand, parse_command
from core.snapshot import entries
from tests.conftest import free_port, run_command
from tests.fakes.discord import GUILD_ID, FakeDiscord, option
from tests.fakes.hub import FakeHub
from tests.test_discord_embed import assert_embed_shows
from tests.test_discord_http import (
    HUB_DELAY_S,
    discord_fake,
    discord_settings,
    expected_from_hub,
    hub,
    hub_home,
    service,
)

__all__ = ["discord_fake", "hub", "hub_home", "service"]  # fixtures, shared with the HTTP tests


@pytest.fixture
def gateway(discord_fake: FakeDiscord, monkeypatch: Any) -> FakeDiscord:
    """discord.py connects to DEFAULT_GATEWAY; REST goes to DISCORD_API_URL (the bot's own
    setting). The fake takes both."""
    monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY",
                        yarl.URL(discord_fake.gateway_url))
    return discord_fake


@pytest.fixture
def start_bot(gateway: FakeDiscord, service: Any) -> Any:
    """Starts the service with the gateway bot and waits for its IDENTIFY; the service closes
    (and with it the bot) before the fake Discord does."""

    async def start(hub: FakeHub | None = None, **extra: object) -> Any:
        gateway.identified.clear()
        client = await service(hub, DISCORD_BOT_TOKEN=gateway.token, **extra)
        await asyncio.wait_for(gateway.identified.wait(), 10)
        return client

    return start


async def ask(fake: FakeDiscord, command: str, options: list[dict[str, Any]],
              **kw: Any) -> dict[str, Any]:
    """Dispatch a command; the callback it gets, checked to be in time."""
    payload = fake.interaction(command, options, **kw)
    await fake.dispatch(payload)
    call = await fake.next_call()
    assert call.kind == "callback" and call.after < 3.0
    return dict(call.body)


async def test_fits_command_answers_with_the_reports_numbers(start_bot, gateway, caplog):
    caplog.set_level(logging.DEBUG)
    client = await start_bot()
    assert dict(client.app[SURFACES])["Discord"] == "on (gateway bot; global commands)"
    # Registered once, globally, with typed options, choices, autocomplete and the attachment.
    [(scope, written)] = gateway.command_writes
    assert scope == "global" and {c["name"] for c in written} == {"fits", "fits-help",
                                                                  "fits-gpus"}
    fits = {o["name"]: o for o in next(c for c in written if c["name"] == "fits")["options"]}
    assert fits["model"]["required"] and fits["model"]["autocomplete"]
    assert fits["gpu"]["autocomplete"] and fits["ctx"]["autocomplete"]
    assert {"q4", "Q4_K_M", "awq", "fp16"} <= {c["value"] for c in fits["quant"]["choices"]}
    assert len(fits["quant"]["choices"]) <= 25
    assert [c["value"] for c in fits["train"]["choices"]] == ["full", "lora", "qlora"]
    assert (fits["batch"]["type"], fits["batch"]["min_value"]) == (4, 1)
    assert fits["config"]["type"] == 11 and not fits["config"].get("required")
    assert gateway.identifies[0]["intents"] == 0  # interactions need no intents

    body = await ask(gateway, "fits", [
        option("model", "meta-llama/Llama-2-7b-hf"), option("quant", "q4"), option("ctx", "8k"),
        option("gpu", "NVIDIA GeForce RTX 4090"), option("batch", 2, kind=4)])
    assert body["type"] == 4
    message = body["data"]
    assert not int(message.get("flags") or 0) & EPHEMERAL
    expected = run_command('meta-llama/Llama-2-7b-hf q4 ctx=8k gpu="NVIDIA GeForce RTX 4090" '
                           "batch=2")
    assert_embed_shows(message["embeds"][0], expected)
    assert message["allowed_mentions"]["parse"] == []
    # The chart rides along as an upload that the embed shows (no PUBLIC_URL here).
    [(name, data)] = body["_files"]
    assert data.startswith(b"\x89PNG") and message["embeds"][0]["image"]["url"] == \
        f"attachment://{name}"
    assert gateway.errors == []
    # Neither the bot token nor an interaction token reaches a log line (discord.py logs URLs
    # and, at DEBUG, whole gateway events).
    assert any(r.name.startswith("discord.") for r in caplog.records)
    tokens = [gateway.token, *gateway.interactions]
    for record in caplog.records:
        if record.name == "aiohttp.access":  # the fake Discord's own server log
            continue
        line = record.getMessage() + (record.exc_text or "")
        assert not any(token in line for token in tokens), record.name


async def test_autocomplete_on_a_sharded_bot_synced_to_a_guild(start_bot, gateway):
    client = await start_bot(None, DISCORD_SHARD_COUNT=1,
                             DISCORD_GUILD_ID=GUILD_ID)
    assert dict(client.app[SURFACES])["Discord"] == \
        f"on (gateway bot, 1 shards; guild {GUILD_ID} commands)"
    assert gateway.identifies[0]["shard"] == [0, 1]  # AutoShardedClient
    assert [scope for scope, _ in gateway.command_writes] == [GUILD_ID]

    async def choices(name: str, value: str, command: str = "fits") -> list[str]:
        body = await ask(gateway, command, [option("model", "x"),
                                            option(name, value, focused=True)], kind=4)
        assert body["type"] == 8
        found = body["data"]["choices"]
        assert 0 < len(found) <= 25 and all(0 < len(c["name"]) <= 100 for c in found)
        return [c["value"] for c in found]

    assert "meta-llama/Llama-2-7b-hf" in await choices("model", "llama-2-7")
    assert "2x NVIDIA GeForce RTX 3090" in await choices("gpu", "2x3090")
    assert "128k" in await choices("ctx", "12")
    assert "NVIDIA A100 80GB SXM4" in await choices("query", "a100", "fits-gpus")
    assert gateway.errors == []


async def test_commands_are_registered_only_when_they_change(start_bot, gateway):
    first = await start_bot()
    await first.close()
    assert len(gateway.command_writes) == 1
    second = await start_bot()  # same definitions: nothing written
    await second.close()
    assert len(gateway.command_writes) == 1
    gateway.commands["global"][0]["description"] = "an older description"
    await start_bot()
    assert len(gateway.command_writes) == 2


async def test_help_gpus_and_user_errors(start_bot, gateway):
    await start_bot()
    body = await ask(gateway, "fits-help", [option("topic", "quant")], guild_id=None)
    assert "Q4_K_M" in body["data"]["embeds"][0]["description"]
    body = await ask(gateway, "fits-gpus", [option("query", "4090")])
    assert "**NVIDIA GeForce RTX 4090**: 24 GiB" in body["data"]["embeds"][0]["description"]
    body = await ask(gateway, "fits", [option("model", "no-such-model-anywhere-xyz")])
    message = body["data"]
    assert body["type"] == 4 and message["flags"] & EPHEMERAL and not message.get("embeds")
    sentence, _, hint = message["content"].partition("\n")
    assert "no-such-model-anywhere-xyz" in sentence and hint
    assert gateway.errors == []


async def test_a_config_attachment_is_read_through_discord_py(start_bot, gateway):
    await start_bot()
    config = entries()["meta-llama/llama-2-7b-hf"].config
    attachment, resolved = gateway.attach("config.json", json.dumps(config).encode())
    body = await ask(gateway, "fits", [option("model", "my-model"), option("quant", "q4"),
                                       option("gpu", "12GB"), attachment], resolved=resolved)
    command = parse_command("my-model q4 gpu=12GB")
    assert isinstance(command, EstimateCommand)
    embed = body["data"]["embeds"][0]
    assert_embed_shows(embed, estimate_command(command, config))
    assert "my-model from your config.json" in embed["footer"]["text"]
    assert gateway.requests[f"GET /attachments/{resolved['attachments'].popitem()[0]}/config.json"]
    attachment, resolved = gateway.attach("config.json", b"not json at all")
    body = await ask(gateway, "fits", [option("model", "my-model"), attachment],
                     resolved=resolved)
    assert body["data"]["flags"] & EPHEMERAL and "is not valid JSON" in body["data"]["content"]


async def test_slow_hub_defers_within_3_s_then_edits(hub, start_bot, gateway):
    hub.slow(HUB_DELAY_S, match="/api/models/fits-test/Nimbus-1B", times=1)
    client = await start_bot(hub)
    text = "fits-test/Nimbus-1B q4 gpu=4090"
    body = await ask(gateway, "fits", [option("model", "fits-test/Nimbus-1B"),
                                       option("quant", "q4"), option("gpu", "4090")])
    assert body == {"type": 5}  # "fits is thinking...", public
    await client.close()  # shutting down still lets the deferred answer reach Discord
    edit = await gateway.next_call(timeout=1)  # it came before the bot disconnected
    assert edit.kind == "edit" and edit.after >= HUB_DELAY_S
    expected = await expected_from_hub(text, hub)
    assert expected.model.source == "hub"
    assert_embed_shows(edit.message["embeds"][0], expected)
    assert gateway.errors == []


async def test_an_error_after_deferring_replaces_the_deferral_for_the_asker_only(hub, start_bot, gateway):
    hub.slow(HUB_DELAY_S, match="/api/models/fits-test/Missing-1B", times=1)
    await start_bot(hub)
    body = await ask(gateway, "fits", [option("model", "fits-test/Missing-1B")])
    assert body == {"type": 5}
    delete = await gateway.next_call()
    followup = await gateway.next_call()
    assert (delete.kind, followup.kind) == ("delete", "followup")
    assert followup.message["flags"] & EPHEMERAL
    assert "fits-test/Missing-1B" in followup.message["content"]
    assert gateway.errors == []


async def test_a_refused_token_turns_the_bot_off_and_the_service_keeps_serving(
        service, gateway, caplog):
    client = await service(None, DISCORD_BOT_TOKEN="not-the-token")
    for _ in range(200):
        if any("refused DISCORD_BOT_TOKEN" in r.getMessage() for r in caplog.records):
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("the refused login was not logged")
    assert gateway.requests["GET /api/v10/users/@me"] == 1  # no retry with a refused token
    assert not gateway.identifies
    assert (await client.get("/healthz")).status == 200
    assert not any("not-the-token" in r.getMessage() for r in caplog.records)


async def test_a_failed_login_is_retried_until_discord_answers(
        aiohttp_server, aiohttp_client, monkeypatch, caplog):
    monkeypatch.setattr(bot.discord_surface, "LOGIN_RETRY_S", (0.05, 0.2))
    port = free_port()
    fake = FakeDiscord(url=f"http://127.0.0.1:{port}")  # nothing listens there yet
    monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY",
                        yarl.URL(fake.gateway_url))
    settings = discord_settings(fake, DISCORD_BOT_TOKEN=fake.token)
    client = await aiohttp_client(create_app(settings))
    for _ in range(200):
        if any("could not connect" in r.getMessage() for r in caplog.records):
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("the failed login was not logged")
    assert (await client.get("/healthz")).status == 200  # the service does not wait for Discord
    await aiohttp_server(fake.app(), port=port)
    await asyncio.wait_for(fake.identified.wait(), 10)
    body = await ask(fake, "fits-help", [])
    assert "fits answers" in body["data"]["embeds"][0]["description"]
