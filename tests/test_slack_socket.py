"""Slack in Socket Mode, end to end: the service starts with SLACK_APP_TOKEN, bolt's
AsyncSocketModeHandler opens the connection through apps.connections.open on the fake Slack's
Web API, takes envelopes over the fake's websocket, acks them there, answers slash commands at
their response_url and mentions in their thread, and closes the connection on shutdown."""

from __future__ import annotations

import asyncio

from bot.app import create_app
from tests.conftest import run_command
from tests.fakes.slack import (
    APP_TOKEN,
    BOT_TOKEN,
    BOT_USER_ID,
    mention_event,
    slash_payload,
)
from tests.test_slack_http import EVENTS, assert_shows_report, slack, slack_settings

__all__ = ["slack"]  # the fixture, shared with the HTTP tests


async def test_socket_mode_answers_commands_and_mentions(aiohttp_client, slack):
    settings = slack_settings(slack, SLACK_APP_TOKEN=APP_TOKEN, SLACK_SIGNING_SECRET=None)
    client = await aiohttp_client(create_app(settings))  # starting the app connects
    await asyncio.wait_for(slack.connected.wait(), 10)
    assert slack.calls["apps.connections.open"] == 1
    assert f"Bearer {APP_TOKEN}" in slack.auth_seen
    # No signing secret: no public endpoint either.
    assert (await client.post(EVENTS, data="x")).status == 404

    text = "public llama-2-7b q4 gpu=4090"
    envelope_id = await slack.send_envelope(
        "slash_commands", slash_payload(text, slack.response_url("sock1")))
    ack = await slack.next_ack()
    assert ack["envelope_id"] == envelope_id
    key, message = await slack.next_response()
    assert key == "sock1" and message["response_type"] == "in_channel"
    assert_shows_report(message, run_command("llama-2-7b q4 gpu=4090"))

    envelope_id = await slack.send_envelope(
        "events_api", mention_event(f"<@{BOT_USER_ID}> 7b q4 gpu=3090", ts="42.000100"))
    assert (await slack.next_ack())["envelope_id"] == envelope_id
    post = await slack.next_post()
    assert post["thread_ts"] == "42.000100"
    assert_shows_report(post, run_command("7b q4 gpu=3090"))
    assert f"Bearer {BOT_TOKEN}" in slack.auth_seen

    await client.close()  # shutdown closes the websocket
    for _ in range(100):
        if not slack.connected.is_set():
            break
        await asyncio.sleep(0.02)
    assert not slack.connected.is_set()
    assert slack.calls["apps.connections.open"] == 1  # one connection, never reopened
