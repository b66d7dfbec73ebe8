"""Slack in HTTP mode, end to end: real signed requests to POST /slack/events of the running
service (bot.app with its Slack surface on), driven through slack_bolt, answering through the
fake Slack (tests/fakes/slack.py): the response_url for slash commands, the Web API for mentions.

The helpers at the top (the fake Slack fixture, the settings, signed posts, the check that a
Block Kit answer carries a Report's numbers) serve tests/test_slack_socket.py too."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

import huggingface_hub.constants
import pytest
import yaml
from slack_sdk.models.blocks import Block

from adapters.hub.answer import estimate_command_async
from adapters.hub.cache import MemoryConfigCache
from adapters.slack.blocks import escape
from adapters.slack.listeners import COMMAND
from adapters.text import VERDICT_WORDS, breakdown_rows
from bot.app import SURFACES, create_app
from bot.settings import Settings
from core.errors import UserError
from core.help import help_text
from core.parser import EstimateCommand, parse_command
from core.report import Report
from core.units import format_bytes, format_tokens
from tests.conftest import run_command
from tests.fakes.hub import FakeHub, FakeRepo
from tests.fakes.slack import (
    APP_TOKEN,
    BOT_TOKEN,
    BOT_USER_ID,
    SIGNING_SECRET,
    FakeSlack,
    block_problems,
    mention_event,
    sign,
    slash_body,
)
from tests.test_service import SECRET as HF_SECRET
from tests.test_service import make_settings

ROOT = Path(__file__).resolve().parent.parent
EVENTS = "/slack/events"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
async def slack(aiohttp_server: Any) -> FakeSlack:
    fake = FakeSlack()
    server = await aiohttp_server(fake.app())
    fake.url = str(server.make_url("")).rstrip("/")
    return fake


def slack_settings(fake: FakeSlack, **extra: object) -> Settings:
    fields: dict[str, object] = {"SLACK_BOT_TOKEN": BOT_TOKEN,
                                 "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                                 "SLACK_API_URL": fake.api_url, **extra}
    return make_settings(**fields)


async def post_command(client: Any, fake: FakeSlack, text: str, key: str = "",
                       **kw: str) -> Any:
    """A signed `/fits <text>` to the service; the HTTP response (the ack)."""
    body = slash_body(text, fake.response_url(key), **kw)
    return await client.post(EVENTS, data=body, headers={**sign(body), "Content-Type": FORM})


async def post_event(client: Any, envelope: dict[str, Any]) -> Any:
    body = json.dumps(envelope)
    return await client.post(EVENTS, data=body,
                             headers={**sign(body), "Content-Type": "application/json"})


def all_text(message: dict[str, Any]) -> str:
    """Every text of a message's blocks, in order, one a line."""
    texts: list[str] = []
    for block in message["blocks"]:
        if "text" in block:
            texts.append(block["text"]["text"])
        texts += [f["text"] for f in block.get("fields", [])]
        texts += [e["text"] for e in block.get("elements", [])]
    return "\n".join(texts)


def assert_valid_blocks(message: dict[str, Any]) -> None:
    """Slack would take it: within the limits, and slack_sdk's own validators agree."""
    assert message["text"], "a plain text fallback is always there"
    assert block_problems(message["blocks"]) == []
    for block in message["blocks"]:
        Block.parse(block).validate_json()  # type: ignore[union-attr]


def field(message: dict[str, Any], label: str) -> str:
    """The value of the field ``*label*``."""
    for block in message["blocks"]:
        for f in block.get("fields", []):
            head, _, value = f["text"].partition("\n")
            if head == f"*{label}*":
                return str(value)
    raise AssertionError(f"no field {label!r} in {all_text(message)}")


def assert_shows_report(message: dict[str, Any], report: Report) -> None:
    """The Block Kit answer says what the Report says, number for number."""
    assert_valid_blocks(message)
    blocks = message["blocks"]
    title = blocks[0]["text"]["text"]
    assert blocks[0]["type"] == "header"
    assert f"{VERDICT_WORDS[report.verdict]}: {report.model.id}" in title
    assert report.gpu.name in title
    need, have = format_bytes(report.total_bytes), format_bytes(report.gpu.usable_bytes)
    assert message["text"].startswith(f"{VERDICT_WORDS[report.verdict]}: ")
    assert report.model.id in message["text"]
    assert need in message["text"] and have in message["text"]
    # The breakdown: one monospace row per part, then the total of the usable memory.
    code = next(b["text"]["text"] for b in blocks
                if b["type"] == "section" and b.get("text", {}).get("text", "").startswith("```"))
    rows = {line.split("  ")[0].strip(): line for line in code.strip("`\n").splitlines()}
    for name, value in breakdown_rows(report):
        assert format_bytes(value) in rows[name], (name, rows)
    assert need in rows["total"] and rows["total"].endswith(f"of {have}")
    per = " per GPU" if report.gpu.count > 1 else ""
    assert field(message, "Peak memory") == f"{need} of {have}{per}"
    if report.max_context:
        assert field(message, "Longest context that fits") == \
            f"{format_tokens(report.max_context)} tokens"
    if report.max_batch:
        assert field(message, "Largest batch at this ctx") == str(report.max_batch)
    if report.best_quant:
        assert field(message, "Best quant that fits") == report.best_quant
    speed = report.speed
    if speed.step_seconds is not None:
        assert field(message, "Training speed") == (
            f"{speed.step_seconds:g} s per step, {speed.train_tokens_per_s:g} tokens/s")
    elif speed.decode_tokens_per_s is not None:
        assert field(message, "Decoding") == \
            f"{speed.decode_tokens_per_s:g} tokens/s ({speed.bound}-bound)"
    text = all_text(message)
    for suggestion in report.suggestions:
        assert f"`{suggestion.change}` → {format_bytes(suggestion.total_bytes)}" in \
            text, suggestion
    context = blocks[-1]
    assert context["type"] == "context"
    notes = "\n".join(e["text"] for e in context["elements"])
    assert f"Model: {report.model.id} · {report.model.params:,} parameters" in notes
    for assumption in report.assumptions:
        assert assumption.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") \
            in notes


async def service(aiohttp_client: Any, fake: FakeSlack, **extra: object) -> Any:
    return await aiohttp_client(create_app(slack_settings(fake, **extra)))


async def no_more_responses(fake: FakeSlack, wait: float = 0.2) -> bool:
    await asyncio.sleep(wait)
    return fake.responses.empty() and fake.posts.empty()


# --- slash commands ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["meta-llama/Llama-2-7b q4 ctx=4096 gpu=24GB",
                                  "llama3-8b awq engine=vllm gpu=4090",
                                  "7b mode=train train=qlora gpu=3090",
                                  "llama3-70b q4 engine=llama.cpp gpu=4090",
                                  "70b gpu=4090"])
async def test_slash_command_answers_with_the_reports_numbers(aiohttp_client, slack, text):
    client = await service(aiohttp_client, slack)
    resp = await post_command(client, slack, text, key="abc123")
    assert resp.status == 200, await resp.text()
    assert await resp.text() == ""  # the ack: nothing shown until the answer arrives
    key, message = await slack.next_response()
    assert key == "abc123"
    assert message["response_type"] == "ephemeral"
    assert_shows_report(message, run_command(text))
    assert slack.calls["auth.test"] == 1  # once, when the service started
    assert slack.auth_seen == [f"Bearer {BOT_TOKEN}"]


async def test_public_answers_in_the_channel(aiohttp_client, slack):
    client = await service(aiohttp_client, slack)
    expected = run_command("llama-2-7b q4 gpu=4090")
    for text in ("public llama-2-7b q4 gpu=4090", "llama-2-7b q4 gpu=4090 PUBLIC"):
        assert (await post_command(client, slack, text)).status == 200
        _, message = await slack.next_response()
        assert message["response_type"] == "in_channel"
        assert_shows_report(message, expected)
    assert (await post_command(client, slack, "llama-2-7b q4 gpu=4090")).status == 200
    _, message = await slack.next_response()
    assert message["response_type"] == "ephemeral"
    assert_shows_report(message, expected)


@pytest.mark.parametrize("text", ["help", "", "public help"])
async def test_help(aiohttp_client, slack, text):
    client = await service(aiohttp_client, slack)
    assert (await post_command(client, slack, text)).status == 200
    _, message = await slack.next_response()
    assert_valid_blocks(message)
    assert message["response_type"] == ("in_channel" if "public" in text else "ephemeral")
    shown = all_text(message)
    for line in help_text(None).strip().splitlines():
        assert escape(line) in shown
    assert message["text"] == help_text(None).strip().splitlines()[0]


@pytest.mark.parametrize("text", ["llama-2-7b qq9", "public llama-2-7b qq9",
                                  "mixtrel-9x7b gpu=2x3090", "7b ctx=0"])
async def test_user_error_is_ephemeral_with_its_hint(aiohttp_client, slack, text):
    client = await service(aiohttp_client, slack)
    assert (await post_command(client, slack, text)).status == 200
    _, message = await slack.next_response()
    with pytest.raises(UserError) as caught:
        run_command(text.removeprefix("public "))
    err = caught.value
    assert err.hint
    assert message["response_type"] == "ephemeral"  # never in the channel, even when asked
    assert_valid_blocks(message)
    assert message["text"] == escape(f"{err.message} {err.hint}")
    assert escape(err.message) in message["blocks"][0]["text"]["text"]
    assert message["blocks"][1]["elements"][0]["text"] == escape(err.hint)
    metrics = await (await client.get("/metrics")).text()
    assert 'fits_requests_total{outcome="user_error",surface="slack"} 1.0' in metrics


async def test_gpus_and_models_lists(aiohttp_client, slack):
    client = await service(aiohttp_client, slack)
    await post_command(client, slack, "gpus 4090")
    _, message = await slack.next_response()
    assert_valid_blocks(message)
    assert "NVIDIA GeForce RTX 4090: 24 GiB, 1008 GB/s" in all_text(message)
    await post_command(client, slack, "models llama-2")
    _, message = await slack.next_response()
    assert_valid_blocks(message)
    assert "`meta-llama/Llama-2-7b-hf`" in all_text(message)


async def test_markup_in_the_text_never_reaches_slack_unescaped(aiohttp_client, slack):
    client = await service(aiohttp_client, slack)
    # Slack escapes what users type: this is "fo<o>&x q4" typed, plus a mention and a link
    await post_command(client, slack, "<!channel> fo&lt;o&gt;&amp;x q4")
    _, message = await slack.next_response()
    assert "<" not in all_text(message) and "<" not in message["text"]
    assert "fo&lt;o&gt;&amp;x" in message["text"]
    page = "huggingface.co/meta-llama/Llama-2-7b-hf"
    link = f"<https://{page}|{page}>"  # how Slack wraps a link
    await post_command(client, slack, f"{link} q4 gpu=4090")
    _, message = await slack.next_response()
    assert_shows_report(message, run_command("meta-llama/Llama-2-7b-hf q4 gpu=4090"))


async def test_rate_limited_per_user_with_a_friendly_message(aiohttp_client, slack):
    client = await service(aiohttp_client, slack, FITS_RATE_LIMIT_PER_MINUTE=1,
                           FITS_RATE_LIMIT_BURST=2)
    for _ in range(2):
        await post_command(client, slack, "7b q4")
        _, message = await slack.next_response()
        assert message["text"].startswith("YES")
    resp = await post_command(client, slack, "7b q4")
    assert resp.status == 200  # acknowledged like any other command
    _, message = await slack.next_response()
    assert message["response_type"] == "ephemeral"
    assert message["text"].startswith("You are asking faster than fits answers one user.")
    assert "Try again in" in message["text"]
    # Another user of the same workspace: the workspace's bucket is empty too.
    await post_command(client, slack, "7b q4", user="U0BOB")
    _, message = await slack.next_response()
    assert message["text"].startswith("You are asking faster than fits answers one workspace.")
    # Another workspace is not held back.
    await post_command(client, slack, "7b q4", user="U0CAROL", team="T0OTHER")
    _, message = await slack.next_response()
    assert message["text"].startswith("YES")
    metrics = await (await client.get("/metrics")).text()
    assert 'fits_requests_total{outcome="rate_limited",surface="slack"} 2.0' in metrics
    assert 'fits_requests_total{outcome="ok",surface="slack"} 3.0' in metrics


# --- signatures ----------------------------------------------------------------------------------


async def test_bad_signatures_and_stale_timestamps_are_rejected(aiohttp_client, slack):
    client = await service(aiohttp_client, slack)
    body = slash_body("llama-2-7b q4", slack.response_url())
    now = int(time.time())
    cases = {
        "wrong secret": sign(body, "not-the-secret"),
        "stale": sign(body, timestamp=now - 301),
        "from the future": sign(body, timestamp=now + 301),
        "no signature": {"X-Slack-Request-Timestamp": str(now)},
        "nothing": {},
        "not a number": {**sign(body), "X-Slack-Request-Timestamp": "soon"},
    }
    for name, headers in cases.items():
        resp = await client.post(EVENTS, data=body, headers={**headers, "Content-Type": FORM})
        assert resp.status == 401, name
    tampered = body.replace("llama-2-7b", "llama-2-13b")
    resp = await client.post(EVENTS, data=tampered, headers={**sign(body), "Content-Type": FORM})
    assert resp.status == 401
    # Signed over other bytes than those sent (the body re-encoded): rejected too.
    raw = body.encode() + b"%FF\xff"
    resp = await client.post(EVENTS, data=raw, headers={**sign(body + "%FF"),
                                                        "Content-Type": FORM})
    assert resp.status == 401
    # Within the window: accepted.
    resp = await client.post(EVENTS, data=body, headers={**sign(body, timestamp=now - 290),
                                                         "Content-Type": FORM})
    assert resp.status == 200
    await slack.next_response()
    assert await no_more_responses(slack)
    assert slack.calls["auth.test"] == 1  # at start-up only, never for a request
    metrics = await (await client.get("/metrics")).text()
    assert 'fits_requests_total{outcome="bad_request",surface="slack"} 8.0' in metrics
    assert 'fits_requests_total{outcome="ok",surface="slack"} 1.0' in metrics


async def test_url_verification_challenge(aiohttp_client, slack):
    client = await service(aiohttp_client, slack)
    challenge = {"token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
                 "type": "url_verification"}
    resp = await post_event(client, challenge)
    assert resp.status == 200
    assert (await resp.json())["challenge"] == challenge["challenge"]
    body = json.dumps(challenge)
    resp = await client.post(EVENTS, data=body, headers={**sign(body, "wrong"),
                                                         "Content-Type": "application/json"})
    assert resp.status == 401


# --- the Hub is slow: the ack is not -------------------------------------------------------------


@pytest.fixture
def hub_home(tmp_path, monkeypatch):
    """huggingface_hub reads these at import; patched where they are read (as tests/test_hub.py)."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_PROGRESS_BARS", True)


NIMBUS = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 2048,
          "num_hidden_layers": 16, "num_attention_heads": 32, "num_key_value_heads": 8,
          "intermediate_size": 8192, "vocab_size": 128256, "tie_word_embeddings": True,
          "max_position_embeddings": 131072, "torch_dtype": "bfloat16"}
HUB_DELAY_S = 1.5


async def test_ack_within_3_s_while_the_hub_is_slow_and_the_answer_follows(
        aiohttp_client, aiohttp_server, slack, hub_home):
    hub = FakeHub()
    hub.add(FakeRepo("fits-test/Nimbus-1B", config=NIMBUS, params={"BF16": 1_235_814_400}))
    hub.tokens.add(HF_SECRET)
    hub.slow(HUB_DELAY_S, match="/api/models/", times=1)
    server = await aiohttp_server(hub.app())
    hub_url = str(server.make_url("")).rstrip("/")
    settings = slack_settings(slack).model_copy(update={"hf_hub_offline": False,
                                                        "hf_endpoint": hub_url})
    client = await aiohttp_client(create_app(settings))
    text = "fits-test/Nimbus-1B q4 gpu=4090"
    try:
        start = time.perf_counter()
        resp = await post_command(client, slack, text)
        acked = time.perf_counter() - start
        assert resp.status == 200
        assert acked < 1.0 < HUB_DELAY_S, acked  # well inside 3 s: it did not wait for the Hub
        assert slack.responses.empty()
        # Shutting the service down now still lets the answer in flight reach Slack.
        await client.close()
        _, message = await slack.next_response(timeout=10)
        answered = time.perf_counter() - start
    finally:
        hub.release()
    assert answered >= HUB_DELAY_S
    assert hub.count("/api/models/fits-test/Nimbus-1B", "GET") == 1
    command = parse_command(text)
    assert isinstance(command, EstimateCommand)
    expected = await estimate_command_async(command, settings.hub(), MemoryConfigCache())
    assert expected.model.source == "hub"
    assert_shows_report(message, expected)
    assert "from the Hugging Face Hub" in all_text(message)


# --- app mentions --------------------------------------------------------------------------------


async def test_mention_answers_in_the_thread(aiohttp_client, slack):
    client = await service(aiohttp_client, slack)
    text = "llama-2-7b q4 gpu=4090"
    expected = run_command(text)
    top = mention_event(f"<@{BOT_USER_ID}> {text}", ts="1700000001.000200")
    resp = await post_event(client, top)
    assert resp.status == 200
    post = await slack.next_post()
    assert post["channel"] == "C0GENERAL" and post["thread_ts"] == "1700000001.000200"
    assert_shows_report(post, expected)
    # Inside a thread: the answer goes to that thread; "public" means nothing there.
    reply = mention_event(f"public <@{BOT_USER_ID}|fits>   {text}", ts="1700000009.000900",
                          thread_ts="1700000001.000200")
    assert (await post_event(client, reply)).status == 200
    post = await slack.next_post()
    assert post["thread_ts"] == "1700000001.000200"
    assert_shows_report(post, expected)
    # A redelivery of the same event (Slack retries late acks) is not answered twice.
    assert (await post_event(client, reply)).status == 200
    assert await no_more_responses(slack)
    assert slack.calls["chat.postMessage"] == 2 and slack.calls["auth.test"] == 1
    assert set(slack.auth_seen) == {f"Bearer {BOT_TOKEN}"}


async def test_mention_errors_and_help_in_the_thread(aiohttp_client, slack):
    client = await service(aiohttp_client, slack)
    await post_event(client, mention_event(f"<@{BOT_USER_ID}> llama-2-7b qq9", ts="5.1"))
    post = await slack.next_post()
    with pytest.raises(UserError) as caught:
        run_command("llama-2-7b qq9")
    assert post["thread_ts"] == "5.1"
    assert post["text"] == escape(f"{caught.value.message} {caught.value.hint}")
    assert_valid_blocks(post)
    await post_event(client, mention_event(f"<@{BOT_USER_ID}>", ts="5.2"))
    post = await slack.next_post()
    assert post["thread_ts"] == "5.2" and "/fits &lt;model&gt;" in all_text(post)


async def test_mention_rate_limited_per_user(aiohttp_client, slack):
    client = await service(aiohttp_client, slack, FITS_RATE_LIMIT_PER_MINUTE=1,
                           FITS_RATE_LIMIT_BURST=1)
    await post_event(client, mention_event(f"<@{BOT_USER_ID}> 7b", ts="6.1"))
    assert (await slack.next_post())["text"].startswith("YES")
    await post_event(client, mention_event(f"<@{BOT_USER_ID}> 7b", ts="6.2"))
    post = await slack.next_post()
    assert post["thread_ts"] == "6.2"
    assert post["text"].startswith("You are asking faster than fits answers one user.")


# --- settings and logs ---------------------------------------------------------------------------


@pytest.mark.parametrize(("extra", "state"), [
    ({}, "off (set SLACK_BOT_TOKEN"),
    ({"SLACK_BOT_TOKEN": BOT_TOKEN}, "off (set SLACK_BOT_TOKEN"),
    ({"SLACK_SIGNING_SECRET": SIGNING_SECRET}, "off (set SLACK_BOT_TOKEN"),
    ({"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": BOT_TOKEN}, "off (SLACK_APP_TOKEN must"),
    ({"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET},
     "on (HTTP at /slack/events)"),
    ({"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": APP_TOKEN}, "on (Socket Mode)"),
    ({"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
      "SLACK_APP_TOKEN": APP_TOKEN}, "on (HTTP at /slack/events; Socket Mode)"),
])
def test_surface_state_from_settings(extra, state):
    app = create_app(make_settings(**extra))
    assert dict(app[SURFACES])["Slack"].startswith(state)
    routes = {r.resource.canonical for r in app.router.routes() if r.resource is not None}
    assert (EVENTS in routes) == ("HTTP" in state)


async def test_no_secret_in_any_log(aiohttp_client, slack, caplog):
    with caplog.at_level(logging.DEBUG):  # everything bolt and slack_sdk can say
        client = await service(aiohttp_client, slack)
        await post_command(client, slack, "llama-2-7b q4")
        await slack.next_response()
        await post_event(client, mention_event(f"<@{BOT_USER_ID}> 7b q4"))
        await slack.next_post()
        body = slash_body("7b", slack.response_url())
        await client.post(EVENTS, data=body, headers={**sign(body, "bad"), "Content-Type": FORM})
        await client.close()
    logs = "\n".join(f"{r.name} {r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "Sending a request" in logs  # slack_sdk's debug lines were on
    for secret in (BOT_TOKEN, SIGNING_SECRET, HF_SECRET):
        assert secret not in logs


def test_the_manifest_matches_the_service():
    manifest = yaml.safe_load((ROOT / "deploy" / "slack-manifest.yml").read_text())
    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == COMMAND
    assert command["url"].endswith(EVENTS)
    events = manifest["settings"]["event_subscriptions"]
    assert events["request_url"].endswith(EVENTS) and events["bot_events"] == ["app_mention"]
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == {"commands", "app_mentions:read",
                                                            "chat:write"}
    assert manifest["settings"]["socket_mode_enabled"] is False
    assert 175 <= len(manifest["display_information"]["long_description"]) <= 4000


async def test_with_a_public_url_the_answer_carries_its_chart(aiohttp_client, slack):
    client = await service(aiohttp_client, slack, PUBLIC_URL="https://fits.example.org")
    assert (await post_command(client, slack, "llama-2-7b q4 gpu=4090")).status == 200
    _, message = await slack.next_response()
    assert_valid_blocks(message)
    image = message["blocks"][-1]
    assert image["type"] == "image" and image["alt_text"] == "memory chart"
    url = image["image_url"]
    assert url.startswith("https://fits.example.org/chart/") and "llama" not in url
    served = await client.get(url.removeprefix("https://fits.example.org"))
    assert served.status == 200 and served.content_type == "image/png"
    assert (await served.read()).startswith(b"\x89PNG\r\n\x1a\n")
    assert (await client.get("/chart/" + "0" * 32 + ".png")).status == 404
