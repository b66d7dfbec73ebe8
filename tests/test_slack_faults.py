"""Slack's HTTP surface under faults, end to end against the running service (bot.app) and the fake
Slack (tests/fakes/slack.py): correctly signed bodies that are not Slack requests, hostile headers,
big badly signed bodies (what reaches the log), Slack's retries reaching two replicas (de-duplicated
on a real redis-server, or in-process while Redis is down), and a slow, unreachable or refusing
Slack at start-up (auth.test is asked once, when the service starts, never on a request)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.app import create_app
from tests.conftest import free_port
from tests.fakes.slack import (
    APP_TOKEN,
    BOT_TOKEN,
    BOT_USER_ID,
    SIGNING_SECRET,
    mention_event,
    sign,
    slash_body,
)
from tests.test_slack_http import (
    EVENTS,
    FORM,
    no_more_responses,
    post_command,
    post_event,
    service,
    slack,
    slack_settings,
)

__all__ = ["slack"]  # the fixture, shared with the HTTP tests

JSON = "application/json"


async def post_signed(client: Any, body: str | bytes, content_type: str) -> Any:
    """``body`` posted with a valid signature over its exact bytes."""
    raw = body.encode() if isinstance(body, str) else body
    ts = str(int(time.time()))
    digest = hmac.new(SIGNING_SECRET.encode(), f"v0:{ts}:".encode() + raw,
                      hashlib.sha256).hexdigest()
    return await client.post(EVENTS, data=raw, headers={
        "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}",
        "Content-Type": content_type})


def tracebacks(records: list[logging.LogRecord]) -> list[str]:
    return [f"{r.name}: {r.getMessage()[:200]}" for r in records
            if r.exc_info or "Traceback" in r.getMessage()]


# --- 1. signed bodies that are not Slack requests ------------------------------------------------

NOT_SLACK = [
    (JSON, "not json"), (JSON, "[1, 2]"), (JSON, "5"), (JSON, "null"), (JSON, '"text"'),
    (JSON, "token=x&team_id=T0FITS&command=/fits"),  # a form body with a JSON content type
    (JSON, "{"), (JSON, "[" * 50_000 + "]" * 50_000),  # nested past the parser's recursion
    (JSON, '{"event": 5}'), (JSON, '{"event": null}'), (JSON, '{"event": "x", "type": "x"}'),
    (JSON, '{"type": "event_callback", "event": "app_mention"}'),
    (JSON, '{"type": "event_callback", "event": ["type"]}'),
    (JSON, '{"authorizations": 5}'), (JSON, '{"authorizations": [5]}'),
    (JSON, '{"authorizations": [{"team": 7}]}'), (JSON, '{"team": 5}'), (JSON, '{"team": [1]}'),
    (JSON, '{"user": 5}'), (JSON, '{"channel": ["id"]}'), (JSON, '{"enterprise": 5}'),
    (JSON, '{"response_urls": 5}'), (JSON, '{"response_urls": [7]}'),
    (JSON, '{"is_ext_shared_channel": true, "type": "event_callback", "event": null}'),
    (FORM, "payload=not-json"), (FORM, "payload=[1]"), (FORM, "payload=5"), (FORM, "{not json"),
    (FORM, "payload=" + json.dumps({"type": "block_actions", "team": 5})),
]


async def test_signed_bodies_that_are_not_slack_requests_are_4xx(aiohttp_client, slack, caplog):
    client = await service(aiohttp_client, slack)
    with caplog.at_level(logging.DEBUG):
        for content_type, body in NOT_SLACK:
            resp = await post_signed(client, body, content_type)
            assert 400 <= resp.status < 500, (content_type, body[:80], resp.status)
            if resp.status == 400:
                assert (await resp.json())["error"].endswith(".")
        # "Signed", but not UTF-8: Slack signs UTF-8 text, so this cannot be Slack's.
        resp = await post_signed(client, b'{"type": "\xff\xfe"}', JSON)
        assert resp.status == 401
    assert tracebacks(caplog.records) == []
    metrics = await (await client.get("/metrics")).text()
    assert 'fits_requests_total{outcome="error",surface="slack"} 0.0' in metrics


KEYS = ["type", "event", "team", "team_id", "user", "user_id", "channel", "channel_id",
        "enterprise", "enterprise_id", "authorizations", "response_url", "response_urls",
        "command", "text", "challenge", "token", "ssl_check", "is_ext_shared_channel", "view",
        "message", "previous_message", "item", "assistant_thread", "function_data",
        "function_execution_id", "bot_id", "subtype", "thread_ts", "event_id", "ts",
        "is_enterprise_install", "user_team", "payload", "api_app_id", "inputs", "actions"]
SCALARS = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
           | st.text(max_size=12) | st.sampled_from(["event_callback", "app_mention", "message",
                                                     "url_verification", "ssl_check", "/fits",
                                                     "block_actions", "T0FITS", "E0", "1.2"]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=5), max_leaves=16)
OBJECTS = st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=6)
BODIES = (VALUES.map(json.dumps) | OBJECTS.map(json.dumps) | st.text(max_size=200)
          | OBJECTS.map(lambda o: urlencode({k: json.dumps(v) for k, v in o.items()}))
          | OBJECTS.map(lambda o: urlencode({"payload": json.dumps(o)}))
          | st.tuples(st.uuids(), OBJECTS).map(lambda t: json.dumps(
              {"type": "event_callback", "event_id": f"Ev{t[0].hex}",
               "event": {"type": "app_mention", **t[1]}})))


@pytest.fixture
async def events_client(aiohttp_client, slack):
    """One service for every example of a property test."""
    return await service(aiohttp_client, slack)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODIES, content_type=st.sampled_from([JSON, FORM]))
async def test_random_signed_bodies_never_5xx(events_client, body, content_type):
    resp = await post_signed(events_client, body, content_type)
    assert resp.status < 500, (content_type, body, resp.status, await resp.text())


# --- 2. headers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("timestamp", ["9" * 5000, "1" * 13, "0" * 13 + "1700000000",
                                       "+1700000000", "-1", "1e9", "0x1f", "17_0", "١٧٠٠",
                                       ""])
async def test_timestamps_that_are_not_plain_short_integers_are_401(aiohttp_client, slack,
                                                                   timestamp):
    client = await service(aiohttp_client, slack)
    body = slash_body("7b q4", slack.response_url())
    resp = await client.post(EVENTS, data=body, headers={
        **sign(body), "X-Slack-Request-Timestamp": timestamp, "Content-Type": FORM})
    assert resp.status == 401
    assert await no_more_responses(slack)


async def test_a_signature_that_is_not_ascii_is_401(aiohttp_client, slack):
    client = await service(aiohttp_client, slack)
    body = slash_body("7b q4", slack.response_url())
    for signature in ("v0=é", "v0=" + "ü" * 64, "☃"):
        resp = await client.post(EVENTS, data=body.encode(), headers={
            **sign(body), "X-Slack-Signature": signature, "Content-Type": FORM})
        assert resp.status == 401, signature


# --- 3. what a badly signed request leaves in the log --------------------------------------------


async def test_a_big_badly_signed_body_leaves_one_short_line(aiohttp_client, slack, caplog):
    marker = "SECRET-LOOKING-PAYLOAD"
    body = urlencode({"text": marker, "command": "/fits", "pad": "x" * 990_000})
    # Logging is set up before the app, as in `fits-bot serve`: bolt copies the root's level
    # onto its loggers when it creates them.
    with caplog.at_level(logging.DEBUG), caplog.at_level(logging.DEBUG, logger="slack_bolt"):
        client = await service(aiohttp_client, slack)
        caplog.clear()
        resp = await client.post(EVENTS, data=body, headers={**sign(body, "not-the-secret"),
                                                             "Content-Type": FORM})
        assert resp.status == 401
    logged = "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records)
    assert marker not in logged and "xxxxxxxx" not in logged
    assert len(logged) < 2048, logged[:500]


# --- 4. Slack's retries across replicas ----------------------------------------------------------


async def deliver(client: Any, envelope: dict[str, Any], retry: int = 0) -> Any:
    """An event as Slack posts it; a retry carries X-Slack-Retry-Num (and the same event_id)."""
    body = json.dumps(envelope)
    retried = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
    return await client.post(EVENTS, data=body, headers={
        **sign(body), "Content-Type": JSON, **(retried if retry else {})})


async def test_a_retry_reaching_another_replica_is_answered_once(aiohttp_client, slack,
                                                                 redis_url):
    settings = slack_settings(slack, REDIS_URL=redis_url)
    one = await aiohttp_client(create_app(settings))
    two = await aiohttp_client(create_app(settings))
    envelope = mention_event(f"<@{BOT_USER_ID}> 7b q4", ts="7.1")
    assert (await deliver(one, envelope)).status == 200
    assert (await slack.next_post())["thread_ts"] == "7.1"
    assert (await deliver(two, envelope, retry=1)).status == 200
    # Both replicas at once: one of them answers.
    again = mention_event(f"<@{BOT_USER_ID}> 7b q4", ts="7.2")
    statuses = await asyncio.gather(deliver(one, again), deliver(two, again, retry=1))
    assert [r.status for r in statuses] == [200, 200]
    assert (await slack.next_post())["thread_ts"] == "7.2"
    assert await no_more_responses(slack, wait=0.5)
    assert slack.calls["chat.postMessage"] == 2


async def test_with_redis_down_one_replica_still_answers_a_retry_once(aiohttp_client, slack,
                                                                      caplog):
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    client = await aiohttp_client(create_app(slack_settings(slack, REDIS_URL=dead)))
    envelope = mention_event(f"<@{BOT_USER_ID}> 7b q4", ts="8.1")
    with caplog.at_level(logging.WARNING, logger="fits.redis"):
        assert (await deliver(client, envelope)).status == 200
        assert (await slack.next_post())["thread_ts"] == "8.1"
        assert (await deliver(client, envelope, retry=1)).status == 200
        assert (await deliver(client, envelope, retry=2)).status == 200
        assert await no_more_responses(slack, wait=0.5)
    assert slack.calls["chat.postMessage"] == 1
    assert any("redis is down" in r.getMessage() for r in caplog.records)


async def test_a_thread_answer_refused_by_a_proxy_is_one_warning(aiohttp_client, slack, caplog):
    client = await service(aiohttp_client, slack)
    slack.post_outages = 1  # a text/plain 503, not Slack's JSON
    with caplog.at_level(logging.WARNING):
        assert (await deliver(client, mention_event(f"<@{BOT_USER_ID}> 7b", ts="11.1"))).status \
            == 200
        for _ in range(100):
            if slack.calls["chat.postMessage"]:
                break
            await asyncio.sleep(0.02)
        await client.close()  # the answer in flight finishes
    assert tracebacks(caplog.records) == []
    warned = [r for r in caplog.records
              if r.name == "fits.slack" and r.levelno >= logging.WARNING]
    assert [(r.getMessage(), r.__dict__["fields"]) for r in warned] == [
        ("slack: the thread answer could not be posted", {"error": "HTTP 503"})]


# --- 5. auth.test at start-up --------------------------------------------------------------------


async def test_auth_test_is_asked_once_at_start_up_never_on_a_request(aiohttp_client, slack,
                                                                      caplog):
    slack.auth_delay = 4.0  # past Slack's 3 s: on a request path it would lose the ack
    with caplog.at_level(logging.INFO, logger="fits"):
        client = await service(aiohttp_client, slack)  # starting waits for auth.test
    assert slack.order == ["auth.test"]  # before anything was sent to the service
    on = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Slack: on")]
    assert len(on) == 1 and "Fits Test" in on[0] and BOT_USER_ID in on[0], on
    for key in ("a", "b"):
        assert (await post_command(client, slack, "7b q4", key=key)).status == 200
        assert (await slack.next_response())[0] == key
    assert (await post_event(client, mention_event(f"<@{BOT_USER_ID}> 7b", ts="9.1"))).status \
        == 200
    post = await slack.next_post()
    assert post["thread_ts"] == "9.1" and post["text"].startswith("YES")
    assert slack.order == ["auth.test", "respond:a", "respond:b", "chat.postMessage"]


@pytest.mark.parametrize(("token", "error"), [("xoxb-not-the-token-4242", None),
                                              (BOT_TOKEN, "token_revoked"),
                                              (BOT_TOKEN, "account_inactive")])
async def test_a_refused_bot_token_turns_slack_off_and_nothing_else(aiohttp_client, slack,
                                                                     caplog, token, error):
    slack.auth_error = error
    with caplog.at_level(logging.DEBUG):
        client = await aiohttp_client(create_app(slack_settings(slack, SLACK_BOT_TOKEN=token)))
        resp = await post_command(client, slack, "7b q4")
        assert resp.status == 503
        reason = (await resp.json())["error"]
        assert reason.count(". ") == 0 and reason.endswith(".") and "SLACK_BOT_TOKEN" in reason
        assert (await post_event(client, mention_event(f"<@{BOT_USER_ID}> 7b"))).status == 503
        assert (await client.get("/api/v1/fits", params={"q": "7b q4"})).status == 200
        assert (await client.get("/readyz")).status == 200
        await client.close()
    expected = f"Slack: off (SLACK_BOT_TOKEN refused by Slack: {error or 'invalid_auth'})"
    warned = [r for r in caplog.records if r.getMessage().startswith("Slack: off")]
    assert [(r.levelno, r.getMessage()) for r in warned] == [(logging.WARNING, expected)]
    assert slack.calls["auth.test"] == 1  # refused: not asked again
    assert await no_more_responses(slack)
    logs = "\n".join(f"{r.name} {r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert token not in logs and BOT_TOKEN not in logs


async def test_socket_mode_does_not_connect_with_a_refused_token(aiohttp_client, slack, caplog):
    slack.auth_error = "invalid_auth"
    settings = slack_settings(slack, SLACK_APP_TOKEN=APP_TOKEN, SLACK_SIGNING_SECRET=None)
    with caplog.at_level(logging.WARNING):
        client = await aiohttp_client(create_app(settings))
        await asyncio.sleep(0.3)
    assert slack.calls["apps.connections.open"] == 0 and not slack.connected.is_set()
    assert any(r.getMessage().startswith("Slack: off") for r in caplog.records)
    assert (await client.get("/api/v1/fits", params={"q": "7b q4"})).status == 200


async def test_slack_unreachable_at_start_up(aiohttp_client, slack, caplog):
    """Commands are acked and answered at once (a response_url needs no token); events answer 503
    (Slack redelivers them) until a background auth.test succeeds; then they are answered."""
    slack.auth_outages = 2  # the first two auth.test calls fail
    with caplog.at_level(logging.INFO, logger="fits"):
        client = await service(aiohttp_client, slack)
        assert slack.calls["auth.test"] == 1
        assert (await post_command(client, slack, "7b q4", key="early")).status == 200
        assert (await slack.next_response())[0] == "early"
        envelope = mention_event(f"<@{BOT_USER_ID}> 7b q4", ts="10.1")
        resp = await deliver(client, envelope)
        assert resp.status == 503 and resp.headers.get("Retry-After")
        for _ in range(100):  # retried with backoff: 1 s, then 2 s
            if any(r.getMessage().startswith("Slack: on") for r in caplog.records):
                break
            await asyncio.sleep(0.1)
        assert slack.calls["auth.test"] == 3
        assert (await deliver(client, envelope, retry=1)).status == 200
        assert (await slack.next_post())["thread_ts"] == "10.1"
    waiting = [r for r in caplog.records if r.name == "fits.slack"
               and r.levelno >= logging.INFO and "auth.test" in r.getMessage()]
    assert len(waiting) == 1 and waiting[0].levelno == logging.WARNING, waiting

