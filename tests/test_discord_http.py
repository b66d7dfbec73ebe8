"""The HTTP interactions endpoint, end to end: the fake Discord signs interactions with the
application's Ed25519 key and POSTs them to POST /discord/interactions of the running service
(bot.app with DISCORD_PUBLIC_KEY set); the first response is the HTTP answer, a deferred answer
arrives at the fake's interaction webhook.

The fixtures and settings at the top serve tests/test_discord_gateway.py too."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import huggingface_hub.constants
import pytest
from nacl.signing import SigningKey

from adapters.discord.embed import EPHEMERAL
from adapters.hub.answer import estimate_command_async
from adapters.hub.cache import MemoryConfigCache
from bot.app import METRICS, SURFACES, create_app
from bot.settings import Settings
from core.parser import EstimateCommand, parse_command
from core.report import Report
from core.snapshot import entries
from tests.conftest import run_command
from tests.fakes.discord import APPLICATION_ID, GUILD_ID, FakeDiscord, option
from tests.fakes.hub import FakeHub, FakeRepo
from tests.test_discord_embed import assert_embed_shows
from tests.test_service import SECRET as HF_SECRET
from tests.test_service import make_settings

PATH = "/discord/interactions"
NIMBUS = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 2048,
          "num_hidden_layers": 16, "num_attention_heads": 32, "num_key_value_heads": 8,
          "intermediate_size": 8192, "vocab_size": 128256, "tie_word_embeddings": True,
          "max_position_embeddings": 131072, "torch_dtype": "bfloat16"}
HUB_DELAY_S = 2.6  # past the 2 s the bot waits before it defers


@pytest.fixture
async def discord_fake(aiohttp_server: Any) -> Any:
    fake = FakeDiscord()
    server = await aiohttp_server(fake.app())
    fake.url = str(server.make_url("")).rstrip("/")
    yield fake
    await fake.close()


@pytest.fixture
def hub_home(tmp_path: Any, monkeypatch: Any) -> None:
    """huggingface_hub reads these at import; patched where they are read (as tests/test_hub.py)."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_PROGRESS_BARS", True)


@pytest.fixture
async def hub(aiohttp_server: Any, hub_home: None) -> Any:
    """A fake Hub with one model the snapshot lacks; only its first lookup is slow."""
    fake = FakeHub()
    fake.add(FakeRepo("fits-test/Nimbus-1B", config=NIMBUS, params={"BF16": 1_235_814_400},
                      downloads=900))
    fake.tokens.add(HF_SECRET)
    server = await aiohttp_server(fake.app())
    fake.url = str(server.make_url("")).rstrip("/")  # type: ignore[attr-defined]
    yield fake
    fake.release()


def discord_settings(fake: FakeDiscord, hub: FakeHub | None = None, **extra: object) -> Settings:
    settings = make_settings(DISCORD_API_URL=fake.api_url, **extra)
    if hub is not None:
        settings = settings.model_copy(update={"hf_hub_offline": False,
                                               "hf_endpoint": hub.url})  # type: ignore[attr-defined]
    return settings


@pytest.fixture
def service(discord_fake: FakeDiscord, aiohttp_client: Any) -> Any:
    """Starts the service; it is closed before the fake Discord (set up first) goes away."""

    async def start(hub: FakeHub | None = None, **extra: object) -> Any:
        settings = discord_settings(discord_fake, hub, **extra)
        return await aiohttp_client(create_app(settings))

    return start


@pytest.fixture
def endpoint(service: Any, discord_fake: FakeDiscord) -> Any:
    """Starts the service with the HTTP interactions endpoint on."""

    async def start(hub: FakeHub | None = None, **extra: object) -> Any:
        return await service(hub, DISCORD_PUBLIC_KEY=discord_fake.public_key, **extra)

    return start


async def expected_from_hub(text: str, hub: FakeHub) -> Report:
    command = parse_command(text)
    assert isinstance(command, EstimateCommand)
    settings = discord_settings(FakeDiscord(), hub).hub()
    return await estimate_command_async(command, settings, MemoryConfigCache())


def counted(client: Any, outcome: str) -> float:
    value = client.app[METRICS].requests.labels("discord", outcome)._value.get()
    return float(value)


# --- the endpoint ------------------------------------------------------------------------------------


async def test_ping_pong_and_every_bad_signature_is_401(endpoint, discord_fake):
    client = await endpoint()
    assert ("Discord", "on (HTTP interactions endpoint POST /discord/interactions; set "
            "DISCORD_BOT_TOKEN and DISCORD_APPLICATION_ID to register the commands)") in \
        client.app[SURFACES]
    status, answer, _ = await discord_fake.deliver(client, PATH, {"type": 1, "id": "1"})
    assert (status, answer) == (200, {"type": 1})

    body = json.dumps({"type": 1}).encode()
    good = discord_fake.signed_headers(body)
    stranger = discord_fake.signed_headers(body, key=SigningKey.generate())
    cases = [
        {},  # no signature at all
        {**good, "X-Signature-Ed25519": ""},
        {k: v for k, v in good.items() if k != "X-Signature-Timestamp"},
        stranger,  # signed, but not by Discord
        {**good, "X-Signature-Timestamp": str(int(good["X-Signature-Timestamp"]) + 1)},
        {**good, "X-Signature-Ed25519": "zz" * 64},  # not hex
        {**good, "X-Signature-Ed25519": good["X-Signature-Ed25519"][:-2]},  # too short
    ]
    for headers in cases:
        resp = await client.post(PATH, data=body, headers=headers)
        assert resp.status == 401, headers
    tampered = await client.post(PATH, data=json.dumps({"type": 2}).encode(), headers=good)
    assert tampered.status == 401
    assert counted(client, "bad_request") == len(cases) + 1
    # Signed, but not an interaction this endpoint serves.
    for odd in (b"not json", json.dumps({"type": 3}).encode(), json.dumps([1]).encode()):
        resp = await client.post(PATH, data=odd, headers=discord_fake.signed_headers(odd))
        assert resp.status == 400


async def test_a_command_is_answered_in_the_response_with_the_reports_numbers(endpoint, discord_fake):
    client = await endpoint()
    payload = discord_fake.interaction("fits", [
        option("model", "meta-llama/Llama-2-7b-hf"), option("quant", "Q4_K_M"),
        option("ctx", "8k"), option("gpu", "NVIDIA GeForce RTX 4090"),
        option("engine", "llama.cpp"), option("batch", 2, kind=4)])
    status, answer, elapsed = await discord_fake.deliver(client, PATH, payload)
    assert status == 200 and answer["type"] == 4 and elapsed < 2.0
    message = answer["data"]
    assert "flags" not in message and message["allowed_mentions"] == {"parse": []}
    expected = run_command('meta-llama/Llama-2-7b-hf Q4_K_M ctx=8k gpu="NVIDIA GeForce RTX 4090" '
                           "engine=llama.cpp batch=2")
    assert_embed_shows(message["embeds"][0], expected)
    assert "bundled snapshot" in message["embeds"][0]["footer"]["text"]
    while (await discord_fake.next_call()).kind != "edit":
        pass  # the chart follows the first response as an upload
    for _ in range(100):  # the outcome is counted once that upload is done
        if counted(client, "ok"):
            break
        await asyncio.sleep(0.02)
    assert counted(client, "ok") == 1
    assert discord_fake.errors == []


async def test_help_gpus_and_a_dm_without_a_guild(endpoint, discord_fake):
    client = await endpoint()
    payload = discord_fake.interaction("fits-help", [option("topic", "engines")], guild_id=None)
    _, answer, _ = await discord_fake.deliver(client, PATH, payload)
    assert "engine=hf" in answer["data"]["embeds"][0]["description"]
    payload = discord_fake.interaction("fits-gpus", [option("query", "h100")])
    _, answer, _ = await discord_fake.deliver(client, PATH, payload)
    assert "**NVIDIA H100 SXM5 80GB**: 80 GiB" in answer["data"]["embeds"][0]["description"]


async def test_user_errors_are_ephemeral_with_the_hint(endpoint, discord_fake):
    client = await endpoint()
    for options, says in [
        ([option("model", "no-such-model-anywhere-xyz")], "no-such-model-anywhere-xyz"),
        ([option("model", "llama-2-7b"), option("gpu", "unobtanium 9000")], "unobtanium"),
        ([option("model", "llama-2-7b"), option("more", "ctx=0")], "ctx"),
        ([option("model", "llama 2")], "must be one word"),
    ]:
        payload = discord_fake.interaction("fits", options)
        status, answer, _ = await discord_fake.deliver(client, PATH, payload)
        assert status == 200 and answer["type"] == 4
        message = answer["data"]
        assert message["flags"] == EPHEMERAL and message["embeds"] == []
        sentence, _, hint = message["content"].partition("\n")
        assert sentence.startswith("**") and says in sentence and hint, message
    assert counted(client, "user_error") == 4


async def test_rate_limit_is_per_user_friendly_and_ephemeral(endpoint, discord_fake):
    client = await endpoint(None, FITS_RATE_LIMIT_BURST=2,
                            FITS_RATE_LIMIT_PER_MINUTE=1)
    ask = [option("model", "llama-2-7b"), option("quant", "q4")]
    for _ in range(2):
        _, answer, _ = await discord_fake.deliver(client, PATH, discord_fake.interaction("fits", ask))
        assert answer["data"]["embeds"]
    _, answer, _ = await discord_fake.deliver(client, PATH, discord_fake.interaction("fits", ask))
    message = answer["data"]
    assert message["flags"] == EPHEMERAL
    assert message["content"].startswith("**You are asking faster than fits answers one user.**")
    assert "Try again in" in message["content"]
    # The server has a bucket of its own: another user there has run it dry too.
    other = discord_fake.interaction("fits", ask, user_id="666666666666666666")
    _, answer, _ = await discord_fake.deliver(client, PATH, other)
    assert answer["data"]["content"].startswith(
        "**You are asking faster than fits answers one server.**")
    # Elsewhere (a DM: no server) that user is answered.
    elsewhere = discord_fake.interaction("fits", ask, user_id="666666666666666666", guild_id=None)
    _, answer, _ = await discord_fake.deliver(client, PATH, elsewhere)
    assert answer["data"]["embeds"] and "flags" not in answer["data"]
    assert counted(client, "rate_limited") == 2


async def test_a_config_attachment_is_downloaded_and_estimated(endpoint, discord_fake):
    client = await endpoint()
    config = entries()["meta-llama/llama-2-7b-hf"].config
    attachment, resolved = discord_fake.attach("config.json", json.dumps(config).encode())
    payload = discord_fake.interaction("fits", [option("model", "my-model"), option("quant", "q4"),
                                                option("gpu", "12GB"), attachment],
                                       resolved=resolved)
    _, answer, _ = await discord_fake.deliver(client, PATH, payload)
    command = parse_command("my-model q4 gpu=12GB")
    assert isinstance(command, EstimateCommand)
    from core.answer import estimate_command

    expected = estimate_command(command, config)
    embed = answer["data"]["embeds"][0]
    assert_embed_shows(embed, expected)
    assert "my-model from your config.json" in embed["footer"]["text"]
    # Not JSON, too large by its reported size: ephemeral sentences with a hint.
    for content, size, says in [(b"{nope", None, "is not valid JSON"),
                                (b"[1, 2]", None, "is not a JSON object"),
                                (b"{}", 3_000_000, "larger than a config.json can be")]:
        attachment, resolved = discord_fake.attach("config.json", content, size)
        payload = discord_fake.interaction("fits", [option("model", "my-model"), attachment],
                                           resolved=resolved)
        _, answer, _ = await discord_fake.deliver(client, PATH, payload)
        assert answer["data"]["flags"] == EPHEMERAL and says in answer["data"]["content"]
        assert "Attach the model's own config.json" in answer["data"]["content"]


async def test_autocomplete_models_from_the_snapshot_and_the_hub_gpus_and_ctx(hub, endpoint, discord_fake):
    client = await endpoint(hub)

    async def choices(name: str, value: str, command: str = "fits") -> list[dict[str, str]]:
        payload = discord_fake.interaction(command, [option("model", "x"),
                                                     option(name, value, focused=True)], kind=4)
        status, answer, elapsed = await discord_fake.deliver(client, PATH, payload)
        assert status == 200 and answer["type"] == 8 and elapsed < 3
        found = answer["data"]["choices"]
        assert len(found) <= 25 and all(0 < len(c["name"]) <= 100 for c in found)
        return list(found)

    assert {"name": "meta-llama/Llama-2-7b-hf", "value": "meta-llama/Llama-2-7b-hf"} in \
        await choices("model", "llama-2-7b")
    assert "fits-test/Nimbus-1B" in [c["value"] for c in await choices("model", "nimbus")]
    assert "NVIDIA GeForce RTX 4090" in [c["value"] for c in await choices("gpu", "4090")]
    assert "NVIDIA GeForce RTX 4090" in [c["value"] for c in await choices("query", "409",
                                                                          "fits-gpus")]
    assert [c["value"] for c in await choices("ctx", "64")] == ["64", "64k"]
    assert await choices("batch", "3") == []


async def test_a_slow_answer_is_deferred_in_time_then_edited_in(hub, endpoint, discord_fake):
    hub.slow(HUB_DELAY_S, match="/api/models/fits-test/Nimbus-1B", times=1)
    client = await endpoint(hub)
    payload = discord_fake.interaction("fits", [option("model", "fits-test/Nimbus-1B"),
                                                option("quant", "q4"), option("gpu", "4090")])
    status, answer, elapsed = await discord_fake.deliver(client, PATH, payload)
    assert status == 200 and answer == {"type": 5}
    assert 1.9 < elapsed < 3.0, elapsed  # it waited for a quick answer, then deferred in time
    await discord_fake.next_call()  # the deferral itself
    await client.close()  # shutting down still lets the deferred answer reach Discord
    edit = await discord_fake.next_call()
    assert edit.kind == "edit" and edit.after >= HUB_DELAY_S
    expected = await expected_from_hub("fits-test/Nimbus-1B q4 gpu=4090", hub)
    assert expected.model.source == "hub"
    embed = edit.message["embeds"][0]
    assert_embed_shows(embed, expected)
    assert "from the Hugging Face Hub" in embed["footer"]["text"]
    assert discord_fake.errors == []


async def test_bot_token_registers_the_commands_without_a_gateway(endpoint, discord_fake):
    client = await endpoint(None, DISCORD_BOT_TOKEN=discord_fake.token,
                            DISCORD_APPLICATION_ID=APPLICATION_ID, DISCORD_GUILD_ID=GUILD_ID)
    for _ in range(100):
        if discord_fake.command_writes:
            break
        await asyncio.sleep(0.02)
    [(scope, written)] = discord_fake.command_writes
    assert scope == GUILD_ID
    fits = next(c for c in written if c["name"] == "fits")
    assert {o["name"] for o in fits["options"]} >= {"model", "quant", "ctx", "gpu", "engine",
                                                     "mode", "train", "batch", "config"}
    assert not discord_fake.identifies  # no gateway connection in this mode
    assert "registers the guild" in dict(client.app[SURFACES])["Discord"]


async def test_off_without_credentials_and_with_a_malformed_public_key(service):
    client = await service()
    assert dict(client.app[SURFACES])["Discord"].startswith("off (set DISCORD_BOT_TOKEN")
    assert (await client.post(PATH, data=b"{}")).status == 404
    client = await service(DISCORD_PUBLIC_KEY="not-a-key")
    assert dict(client.app[SURFACES])["Discord"] == (
        "off (DISCORD_PUBLIC_KEY is not the application's public key: it is not 64 "
        "hexadecimal characters)")
    assert (await client.post(PATH, data=b"{}")).status == 404


async def test_autocomplete_answers_in_time_while_the_hub_search_is_slow(
        hub, endpoint, discord_fake):
    hub.slow(10, match="/api/models")  # the search hangs; the bundled matches answer
    client = await endpoint(hub)
    payload = discord_fake.interaction("fits", [option("model", "llama-2-7b", focused=True)],
                                       kind=4)
    status, answer, elapsed = await discord_fake.deliver(client, PATH, payload)
    assert status == 200 and answer["type"] == 8
    assert 1.0 < elapsed < 2.5, elapsed
    assert "meta-llama/Llama-2-7b-hf" in [c["value"] for c in answer["data"]["choices"]]
    assert hub.count("/api/models", "GET") == 1


async def test_with_a_public_url_the_embed_shows_its_chart(endpoint, discord_fake):
    client = await endpoint(PUBLIC_URL="https://fits.example.org")
    payload = discord_fake.interaction("fits", [
        option("model", "meta-llama/Llama-2-7b-hf"), option("quant", "Q4_K_M"),
        option("gpu", "NVIDIA GeForce RTX 4090")])
    status, answer, _ = await discord_fake.deliver(client, PATH, payload)
    assert status == 200
    url = answer["data"]["embeds"][0]["image"]["url"]
    assert url.startswith("https://fits.example.org/chart/") and url.endswith(".png")
    served = await client.get(url.removeprefix("https://fits.example.org"))
    assert served.status == 200 and (await served.read()).startswith(b"\x89PNG")


async def test_without_a_public_url_the_chart_is_an_attachment(endpoint, discord_fake):
    """The first response is JSON; the chart follows as an edit uploading it, shown as the
    embed's image (attachment://...)."""
    client = await endpoint()
    payload = discord_fake.interaction("fits", [
        option("model", "meta-llama/Llama-2-7b-hf"), option("quant", "Q4_K_M"),
        option("gpu", "NVIDIA GeForce RTX 4090")])
    status, answer, _ = await discord_fake.deliver(client, PATH, payload)
    assert status == 200 and "image" not in answer["data"]["embeds"][0]
    edit = await discord_fake.next_call()
    while edit.kind != "edit":
        edit = await discord_fake.next_call()
    [(name, data)] = edit.body["_files"]
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert edit.body["attachments"] == [{"id": 0, "filename": name}]
    assert edit.body["embeds"][0]["image"]["url"] == f"attachment://{name}"
    assert discord_fake.errors == []
