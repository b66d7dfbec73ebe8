"""The Block Kit renderer at its limits: a report far longer than any real one, long help, long
lists. Slack must take every message (the fake's checks and slack_sdk's validators agree), and
what is cut says so. The normal answers are checked end to end in tests/test_slack_http.py."""

from __future__ import annotations

from dataclasses import replace

import pytest
from slack_sdk.models.blocks import Block

from adapters.slack.blocks import (
    CONTEXT_CHARS,
    FALLBACK_CHARS,
    MAX_BLOCKS,
    answer_message,
    help_message,
    within_limits,
)
from core.answers import GpuListAnswer, ModelListAnswer
from core.gpus import search_gpus
from core.report import Suggestion
from tests.conftest import run_command
from tests.fakes.slack import block_problems


def assert_slack_takes(blocks: list[dict], text: str) -> None:
    assert block_problems(blocks) == []
    for block in blocks:
        Block.parse(block).validate_json()  # type: ignore[union-attr]
    assert 0 < len(text) <= FALLBACK_CHARS


def test_a_very_long_report_is_cut_to_the_limits():
    report = run_command("llama3-70b q4 engine=llama.cpp gpu=4090 ram=16GB")
    long_id = "org/" + "m" * 400
    report = replace(
        report, model=replace(report.model, id=long_id),
        assumptions=[f"assumption {i}: " + "x" * 120 for i in range(400)],
        warnings=[f"warning {i} <!channel> & more " + "w" * 200 for i in range(60)],
        suggestions=[Suggestion(change=f"ctx={i}", total_bytes=i * 2**30, fits=True,
                                why="y" * 300) for i in range(80)],
    )
    message = answer_message(report)
    assert_slack_takes(message.blocks, message.text)
    assert len(message.blocks) <= MAX_BLOCKS
    header = message.blocks[0]["text"]["text"]
    assert len(header) == 150 and header.endswith("…")
    shown = [b.get("text", {}).get("text", "") for b in message.blocks]
    assert any(t.startswith("*To make it fit*") and t.endswith("more") for t in shown)
    assert any("&lt;!channel&gt; &amp; more" in t and "<!channel>" not in t for t in shown)
    notes = message.blocks[-1]["elements"]
    assert len(notes) == 10 and all(len(e["text"]) <= CONTEXT_CHARS for e in notes)
    assert notes[0]["text"].startswith(f"Model: {long_id}")
    assert "assumption 0:" in notes[0]["text"] and notes[-1]["text"].endswith("more")


def test_long_help_keeps_every_code_fence_whole():
    text = "\n".join(f"line {i} " + "h" * 90 for i in range(200))  # about 20,000 characters
    message = help_message(text)
    assert_slack_takes(message.blocks, message.text)
    sections = [b["text"]["text"] for b in message.blocks]
    assert len(sections) > 1
    assert all(s.startswith("```\n") and s.endswith("\n```") for s in sections)
    assert "line 199 " in sections[-1]


def test_lists():
    gpus = answer_message(GpuListAnswer("", search_gpus("", limit=25)))
    assert_slack_takes(gpus.blocks, gpus.text)
    models = answer_message(ModelListAnswer("x", [f"org/model-{i}-" + "z" * 90
                                                  for i in range(100)]))
    assert_slack_takes(models.blocks, models.text)
    assert models.blocks[0]["text"]["text"].endswith("more")
    empty = answer_message(ModelListAnswer("nothing-like-this", []))
    assert_slack_takes(empty.blocks, empty.text)
    assert empty.text == "No model matches “nothing-like-this”."


@pytest.mark.parametrize("count", [49, 50, 51, 120])
def test_never_more_than_50_blocks(count):
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "s" * 5000}}] * count
    out = within_limits(blocks)
    assert_slack_takes(out, "fallback")
    assert len(out) == min(count, MAX_BLOCKS)
    if count > MAX_BLOCKS:
        assert out[-1]["elements"][0]["text"] == f"… {count - 49} more blocks not shown."


def test_the_fake_refuses_what_slack_refuses():
    assert block_problems([{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}])
    assert block_problems([{"type": "section", "text": {"type": "mrkdwn", "text": "s" * 3001}}])
    assert block_problems([{"type": "section", "fields": [
        {"type": "mrkdwn", "text": "f"}] * 11}])
    assert block_problems([{"type": "context", "elements": [
        {"type": "mrkdwn", "text": "c"}] * 11}])
    assert block_problems([{"type": "divider"}] * 51)
