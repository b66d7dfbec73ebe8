"""The GitHub surface end to end, with a personal token: signed deliveries posted to the running
app (bot.app.create_app), questions answered by the real Answerer, replies written through
gidgethub to a fake GitHub API (tests/fakes/github.py) that records them."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.github.reply import read_marker
from bot.app import ANSWERER, create_app
from bot.github_surface import GITHUB
from core.errors import UserError
from core.report import Report
from core.units import format_bytes, format_tokens
from tests.conftest import run_command
from tests.fakes.github import (
    NUMBER,
    OWNER,
    REPO,
    TOKEN,
    USER,
    WEBHOOK_SECRET,
    FakeGitHub,
    comment_event,
    deliver,
    issue_event,
    sign,
)
from tests.test_service import make_settings

COMMENTS = f"/repos/{OWNER}/{REPO}/issues/{NUMBER}/comments"


@pytest.fixture
async def github(aiohttp_server):
    fake = FakeGitHub()
    server = await aiohttp_server(fake.app())
    fake.base_url = str(server.make_url("/"))
    return fake


def github_settings(github: FakeGitHub, **extra: object):
    return make_settings(GITHUB_WEBHOOK_SECRET=WEBHOOK_SECRET, GITHUB_TOKEN=TOKEN,
                         GITHUB_API_URL=github.base_url, **extra)


@pytest.fixture
async def bot(aiohttp_client, github):
    return await aiohttp_client(create_app(github_settings(github)))


async def settle(client) -> None:
    await client.app[GITHUB].drained()


def posted(github: FakeGitHub) -> list[str]:
    return [r.body["body"] for r in github.calls("POST", COMMENTS)]


def assert_report(body: str, report: Report) -> None:
    """The comment carries the Report's own numbers."""
    words = {"fits": "**YES**", "tight": "**YES, but tight**", "no": "**NO**"}[report.verdict]
    assert f"{words}: {report.model.id}" in body
    assert report.gpu.name in body
    assert f"| **total** | **{format_bytes(report.total_bytes)}** |" in body
    b = report.breakdown
    for name, value in (("weights", b.weights), ("kv cache", b.kv_cache),
                        ("activations", b.activations), ("overhead", b.overhead)):
        if value:
            assert f"| {name} | {format_bytes(value)} |" in body, name
    if report.max_context:
        assert f"longest context that fits: {format_tokens(report.max_context)}" in body
    if report.max_batch:
        assert f"largest batch at this ctx: {report.max_batch}" in body
    if report.speed.decode_tokens_per_s is not None:
        assert f"about {report.speed.decode_tokens_per_s:g} tokens/s decoding" in body
    for suggestion in report.suggestions:
        assert format_bytes(suggestion.total_bytes) in body


async def test_fits_lines_in_a_comment_get_one_reply_with_the_reports_numbers(bot, github):
    text = ("Thanks for the tool! Two questions:\n\n"
            "/fits llama-2-7b q4 ctx=8k gpu=4090\r\n"
            "- `/fits meta-llama/Llama-2-70b fp16 gpu=4090`\n")
    resp = await deliver(bot, "issue_comment", comment_event(text))
    assert resp.status == 202 and (await resp.json())["status"] == "queued"
    await settle(bot)
    [call] = github.calls("POST", COMMENTS)
    assert call.authorization == f"token {TOKEN}"
    body = call.body["body"]
    assert read_marker(body) == ("issue-comment:101", "2026-01-05T11:00:00Z")
    assert "#### `/fits llama-2-7b q4 ctx=8k gpu=4090`" in body
    assert "#### `/fits meta-llama/Llama-2-70b fp16 gpu=4090`" in body
    first, second = body.split("#### ")[1:3]
    assert_report(first, run_command("llama-2-7b q4 ctx=8k gpu=4090"))
    assert_report(second, run_command("meta-llama/Llama-2-70b fp16 gpu=4090"))
    assert "**To make it fit**" in second and "<summary>Assumptions" in second
    assert "Ask again: edit your comment" in body
    # the comment is the reply; the thread holds it once, as our user's
    [stored] = github.thread(OWNER, REPO, NUMBER)
    assert stored["body"] == body and stored["user"]["login"] == USER["login"]
    metrics = await (await bot.get("/metrics")).text()
    assert 'fits_requests_total{outcome="ok",surface="github"} 2.0' in metrics


async def test_an_opened_issue_is_answered_and_a_user_error_gets_its_sentence(bot, github):
    text = "/fits no-such-model-anywhere-xyz q4 gpu=4090\n/fits llama-2-7b gpu=4090@octocat"
    resp = await deliver(bot, "issues", issue_event(text))
    assert resp.status == 202
    await settle(bot)
    [body] = posted(github)
    assert read_marker(body) == ("issue:7", "2026-01-05T10:00:00Z")
    answerer = bot.app[ANSWERER]
    for line in text.splitlines():
        with pytest.raises(UserError) as raised:
            await answerer.answer(line)
        assert f"**Sorry:** {raised.value.message[:30]}" in body.replace("\u200b", "")
    # echoed user text never pings anyone: only inside code spans, where GitHub links nothing
    assert "@octocat" not in re.sub(r"`[^`\n]*`", "", body)
    assert "@\u200boctocat" in body
    assert "Ask again: edit the issue" in body


async def test_more_than_five_lines_are_capped_and_the_reply_says_so(bot, github):
    lines = [f"/fits llama-2-7b q4 ctx={n}k gpu=4090" for n in (1, 2, 3, 4, 5, 6, 7)]
    await deliver(bot, "issue_comment", comment_event("\n".join(lines)))
    await settle(bot)
    [body] = posted(github)
    assert body.count("\n#### ") == 5
    assert "`/fits llama-2-7b q4 ctx=5k gpu=4090`" in body
    assert "ctx=6k" not in body
    assert "2 more `/fits` lines were skipped: one comment answers at most 5." in body


async def test_bad_signatures_get_401_and_nothing_is_done(bot, github):
    payload = comment_event("/fits llama-2-7b gpu=4090")
    raw = json.dumps(payload).encode()
    wrong = await deliver(bot, "issue_comment", payload, secret="not-the-secret")
    missing = await deliver(bot, "issue_comment", payload,
                            headers={"X-Hub-Signature-256": ""})
    sha1 = "sha1=" + hmac.new(WEBHOOK_SECRET.encode(), raw, hashlib.sha1).hexdigest()
    sha1_only = await deliver(bot, "issue_comment", payload, raw=raw,
                              headers={"X-Hub-Signature-256": "", "X-Hub-Signature": sha1})
    tampered = await deliver(bot, "issue_comment", None,
                             raw=raw.replace(b"gpu=4090", b"gpu=3090"),
                             headers={"X-Hub-Signature-256": sign(raw)})
    for resp in (wrong, missing, sha1_only, tampered):
        assert resp.status == 401
        body = await resp.json()
        assert body["error"].endswith(".") and WEBHOOK_SECRET not in json.dumps(body)
    await settle(bot)
    assert github.requests == []
    ok = await deliver(bot, "issue_comment", payload)
    assert ok.status == 202


async def test_a_redelivery_is_not_answered_twice(bot, github):
    payload = comment_event("/fits llama-2-7b q4 gpu=4090")
    first = await deliver(bot, "issue_comment", payload, delivery="guid-1")
    await settle(bot)
    again = await deliver(bot, "issue_comment", payload, delivery="guid-1")
    assert (first.status, again.status) == (202, 200)
    assert (await again.json())["status"] == "duplicate"
    await settle(bot)
    assert len(posted(github)) == 1
    assert github.calls("PATCH") == []


@pytest.mark.parametrize(("event", "payload", "reason"), [
    ("issue_comment", comment_event("/fits llama-2-7b gpu=4090",
                                    sender={"login": "dependabot[bot]", "id": 1, "type": "Bot"}),
     "the sender is a bot"),
    ("issue_comment", comment_event("<!-- fits:issue-comment:3 at=x -->\n/fits 7b gpu=4090"),
     "the body is one of our replies"),
    ("issue_comment", {**comment_event("/fits 7b gpu=4090"),
                       "issue": {**comment_event("")["issue"], "pull_request": {"url": "u"}}},
     "comments on pull requests are not answered"),
    ("issue_comment", comment_event("Can I run llama-2-7b on a 4090?"), "nothing is asked"),
    ("issue_comment", comment_event("/fits 7b gpu=4090", action="deleted"),
     "issue_comment.deleted is not handled"),
    ("issues", issue_event("/fits 7b gpu=4090", action="labeled", label="bug"),
     "another label was added"),
    ("pull_request", {"action": "opened"}, "the pull_request event is not handled"),
])
async def test_what_is_not_ours_to_answer_is_ignored(bot, github, event, payload, reason):
    resp = await deliver(bot, event, payload)
    assert resp.status == 200
    assert await resp.json() == {"status": "ignored", "reason": reason}
    await settle(bot)
    assert github.requests == []


async def test_our_own_login_is_never_answered(bot, github):
    me = {**USER}
    resp = await deliver(bot, "issue_comment", comment_event("/fits 7b gpu=4090", sender=me))
    assert resp.status == 202  # a user sender: only GitHub knows it is us
    await settle(bot)
    assert [r.path for r in github.requests] == ["/user"]
    assert posted(github) == []


async def test_an_edit_updates_the_same_reply_and_never_goes_back(bot, github):
    before = "/fits llama-2-7b q4 gpu=4090"
    after = "/fits llama-2-13b q4 ctx=16k gpu=4090"
    await deliver(bot, "issue_comment", comment_event(before))
    await settle(bot)
    [reply] = github.thread(OWNER, REPO, NUMBER)
    edited = comment_event(after, action="edited", updated_at="2026-01-05T11:05:00Z",
                           before=before)
    assert (await deliver(bot, "issue_comment", edited)).status == 202
    await settle(bot)
    [patch] = github.calls("PATCH")
    assert patch.path == f"/repos/{OWNER}/{REPO}/issues/comments/{reply['id']}"
    assert len(posted(github)) == 1 and len(github.thread(OWNER, REPO, NUMBER)) == 1
    body = github.comments[reply["id"]]["body"]
    assert read_marker(body) == ("issue-comment:101", "2026-01-05T11:05:00Z")
    assert_report(body, run_command("llama-2-13b q4 ctx=16k gpu=4090"))
    assert "llama-2-7b q4 gpu=4090" not in body
    # a late delivery of an older version leaves the newer answer alone
    stale = comment_event("/fits 7b gpu=4090", action="edited",
                          updated_at="2026-01-05T11:01:00Z", before=before)
    await deliver(bot, "issue_comment", stale)
    await settle(bot)
    assert len(github.calls("PATCH")) == 1
    # the questions edited away: the reply says so, and no new comment appears
    gone = comment_event("never mind", action="edited", updated_at="2026-01-05T11:09:00Z",
                         before=after)
    assert (await deliver(bot, "issue_comment", gone)).status == 202
    await settle(bot)
    assert "edited away" in github.comments[reply["id"]]["body"]
    assert len(github.thread(OWNER, REPO, NUMBER)) == 1


async def test_a_pasted_marker_does_not_make_us_edit_someone_elses_comment(bot, github):
    forged = github.add_comment(OWNER, REPO, NUMBER,
                                "<!-- fits:issue-comment:101 at=2026-01-05T11:00:00Z -->\nmine",
                                user={"login": "mallory", "id": 66, "type": "User"})
    await deliver(bot, "issue_comment", comment_event("/fits 7b gpu=4090", action="edited",
                                                      before="/fits 7b"))
    await settle(bot)
    assert github.calls("PATCH") == []
    assert github.comments[forged["id"]]["body"].endswith("mine")
    assert len(posted(github)) == 1


async def test_the_opt_in_label_answers_plain_questions(bot, github):
    question = "Can I run Llama 2 7B in 4-bit on my RTX 4090? Thanks!"
    without = await deliver(bot, "issues", issue_event(question))
    assert (await without.json())["reason"] == "nothing is asked"
    labeled = await deliver(bot, "issues", issue_event(question, action="labeled",
                                                       labels=("fits",), label="fits"))
    assert labeled.status == 202
    await settle(bot)
    [body] = posted(github)
    assert 'Reading your question as `/fits meta-llama/Llama-2-7b-hf q4 gpu="RTX 4090"`' in body
    assert_report(body, run_command('meta-llama/Llama-2-7b-hf q4 gpu="RTX 4090"'))
    # a comment on the labeled issue that names no GPU is not guessed at
    vague = comment_event("Does llama-2-7b fit on my laptop?", labels=("fits",), comment_id=102)
    assert (await deliver(bot, "issue_comment", vague)).status == 202
    await settle(bot)
    assert len(posted(github)) == 1


@pytest.mark.parametrize("opted_in", [f"{OWNER}/{REPO}", f"other/x, {OWNER.upper()}/*"])
async def test_a_repository_can_opt_in_to_plain_questions(aiohttp_client, github, opted_in):
    bot = await aiohttp_client(create_app(github_settings(github,
                                                          GITHUB_PLAIN_QUESTIONS=opted_in)))
    question = "Can I run Llama 2 7B in 4-bit on my RTX 4090? Thanks!"
    assert (await deliver(bot, "issues", issue_event(question))).status == 202  # no label
    await settle(bot)
    [body] = posted(github)
    assert_report(body, run_command('meta-llama/Llama-2-7b-hf q4 gpu="RTX 4090"'))


async def test_other_repositories_stay_opted_out(aiohttp_client, github):
    bot = await aiohttp_client(create_app(github_settings(github,
                                                          GITHUB_PLAIN_QUESTIONS="other/repo")))
    question = "Can I run Llama 2 7B in 4-bit on my RTX 4090? Thanks!"
    reply = await deliver(bot, "issues", issue_event(question))
    assert (await reply.json())["reason"] == "nothing is asked"


async def test_the_reply_is_found_on_a_later_page(bot, github):
    for n in range(130):  # a long discussion, all newer than the comment we answer
        github.add_comment(OWNER, REPO, NUMBER, f"comment {n}",
                           user={"login": f"user{n}", "id": n, "type": "User"})
    await deliver(bot, "issue_comment", comment_event("/fits 7b q4 gpu=4090"))
    await settle(bot)
    await deliver(bot, "issue_comment", comment_event("/fits 7b q8 gpu=4090", action="edited",
                                                      updated_at="2026-01-05T11:30:00Z",
                                                      before="/fits 7b q4 gpu=4090"))
    await settle(bot)
    assert len(github.calls("PATCH")) == 1 and len(posted(github)) == 1
    pages = [r.query.get("page") for r in github.calls("GET", COMMENTS)]
    assert "2" in pages  # our reply is the 131st comment: page 2 of 100
    assert all(r.query["since"] == "2026-01-05T11:00:00Z" for r in github.calls("GET", COMMENTS))


@pytest.mark.parametrize(("raw", "headers", "status"), [
    (b"{not json", {}, 400),
    (b"\xff\xfe", {}, 400),
    (b"[" * 5000 + b"]" * 5000, {}, 400),
    (b"[1, 2]", {}, 400),
    (b"{}", {}, 400),
    (json.dumps({"action": "created", "issue": {"number": "7"}}).encode(), {}, 400),
    (json.dumps({**comment_event("/fits 7b"), "comment": {"id": 1, "body": 5}}).encode(), {},
     400),
    (json.dumps({**comment_event("/fits 7b"), "sender": None}).encode(), {}, 400),
    (b"payload=x", {"Content-Type": "text/plain"}, 415),
    (b"{}", {"X-GitHub-Event": ""}, 400),
    (b"{}", {"X-GitHub-Delivery": ""}, 400),
    (b"{}", {"X-GitHub-Delivery": "../../etc"}, 400),
])
async def test_malformed_deliveries_get_4xx_and_the_app_keeps_serving(bot, github, raw,
                                                                      headers, status):
    resp = await deliver(bot, "issue_comment", None, raw=raw, headers=headers)
    assert resp.status == status, await resp.text()
    body = await resp.json()
    assert body["error"].endswith(".") and "Traceback" not in body["error"]
    assert (await bot.get("/healthz")).status == 200
    ok = await deliver(bot, "issue_comment", comment_event("/fits 7b gpu=4090"))
    assert ok.status == 202
    await settle(bot)
    assert len(posted(github)) == 1


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(
        ["action", "issue", "comment", "sender", "repository", "number", "body", "id", "owner",
         "login", "name", "labels", "changes", "installation", "created_at", "updated_at"]),
        inner, max_size=5), max_leaves=20),
    event=st.sampled_from(["issues", "issue_comment", "ping", "push"]))
async def test_random_payloads_never_5xx(aiohttp_client, github, payload, event):
    client = await aiohttp_client(create_app(github_settings(github)))
    resp = await deliver(client, event, payload)
    assert resp.status in (200, 202, 400), (payload, resp.status, await resp.text())
    await settle(client)


async def test_ping_is_answered(bot):
    resp = await deliver(bot, "ping", {"zen": "Keep it logically awesome.", "hook_id": 1})
    assert resp.status == 200 and await resp.json() == {"status": "pong"}


async def test_a_full_queue_answers_503_and_a_redelivery_then_works(aiohttp_client, github,
                                                                    monkeypatch):
    import bot.github_surface as surface

    monkeypatch.setattr(surface, "WORKERS", 1)
    monkeypatch.setattr(surface, "QUEUE_SIZE", 1)
    client = await aiohttp_client(create_app(github_settings(github)))
    github.hold()
    try:
        first = await deliver(client, "issue_comment", comment_event("/fits 7b gpu=4090"))
        while not github.requests:  # the one worker took it and waits on GitHub
            await asyncio.sleep(0.01)
        second = await deliver(client, "issue_comment",
                               comment_event("/fits 8b gpu=4090", comment_id=102))
        payload = comment_event("/fits 13b q4 gpu=4090", comment_id=103)
        third = await deliver(client, "issue_comment", payload, delivery="guid-3")
        assert (first.status, second.status, third.status) == (202, 202, 503)
        assert third.headers["Retry-After"] == "60"
    finally:
        github.release()
    await settle(client)
    assert len(posted(github)) == 2
    again = await deliver(client, "issue_comment", payload, delivery="guid-3")
    assert again.status == 202  # the refused delivery's claim was released
    await settle(client)
    assert len(posted(github)) == 3


async def test_github_refusing_is_logged_without_secrets_and_can_be_redelivered(
        aiohttp_client, github, caplog):
    github.users.clear()  # the token was revoked: every call is 401 "Bad credentials"
    client = await aiohttp_client(create_app(github_settings(github)))
    payload = comment_event("/fits llama-2-7b gpu=4090")
    with caplog.at_level(logging.DEBUG):
        assert (await deliver(client, "issue_comment", payload, delivery="g-9")).status == 202
        await settle(client)
    refused = [r for r in caplog.records if r.getMessage() == "github refused the reply"]
    assert refused and refused[0].fields["status"] == 401  # type: ignore[attr-defined]
    github.users[TOKEN] = USER
    assert (await deliver(client, "issue_comment", payload, delivery="g-9")).status == 202
    await settle(client)
    assert len(posted(github)) == 1
    assert_no_secrets(caplog.records, [TOKEN, WEBHOOK_SECRET])


def assert_no_secrets(records: list[logging.LogRecord], secrets: list[str]) -> None:
    for record in records:
        text = record.getMessage() + json.dumps(getattr(record, "fields", {}), default=str)
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        for secret in secrets:
            assert secret not in text, record.getMessage()


async def test_a_whole_conversation_logs_no_secret(aiohttp_client, github, caplog):
    with caplog.at_level(logging.DEBUG):
        client = await aiohttp_client(create_app(github_settings(github)))
        await deliver(client, "issue_comment", comment_event("/fits 7b gpu=4090"))
        await deliver(client, "issue_comment", comment_event("/fits 7b"), secret="wrong")
        await deliver(client, "issue_comment", None, raw=b"{oops")
        await settle(client)
    assert posted(github)
    assert_no_secrets(caplog.records, [TOKEN, WEBHOOK_SECRET])
    assert all(TOKEN not in body and WEBHOOK_SECRET not in body for body in posted(github))


@pytest.mark.parametrize(("extra", "state"), [
    ({}, "off (set GITHUB_WEBHOOK_SECRET"),
    ({"GITHUB_WEBHOOK_SECRET": "s"}, "off (set GITHUB_TOKEN, or GITHUB_APP_ID"),
    ({"GITHUB_WEBHOOK_SECRET": "s", "GITHUB_APP_ID": "1"}, "off (a GitHub App needs"),
    ({"GITHUB_WEBHOOK_SECRET": "s", "GITHUB_TOKEN": "t"},
     "on (/github/webhook; replies with GITHUB_TOKEN; deliveries de-duplicated in this process)"),
])
async def test_the_surface_says_whether_it_is_on(extra, state):
    from bot.app import SURFACES

    app = create_app(make_settings(**extra))
    assert dict(app[SURFACES])["GitHub"].startswith(state)
    routes = {r.resource.canonical for r in app.router.routes() if r.resource is not None}
    assert ("/github/webhook" in routes) == state.startswith("on")


def test_reply_heading_hides_nothing_of_the_command():
    # a command with backticks stays one code span, and the reply marker parses back
    from adapters.github.commands import Question
    from adapters.github.reply import Section, compose

    body = compose("issue-comment:5", "2026-01-01T00:00:00Z",
                   [Section(Question("/fits a`b gpu=4090"), "x")])
    assert "#### ``/fits a`b gpu=4090``" in body
    assert read_marker(body) == ("issue-comment:5", "2026-01-01T00:00:00Z")
    assert re.search(r"<!-- fits:issue-comment:5 at=\S+ -->", body)


def test_gidgethub_is_loaded_only_when_the_surface_is_on():
    import subprocess
    import sys

    code = ("import sys; from bot.app import create_app; from bot.settings import Settings; "
            "create_app(Settings(_env_file=None)); print('gidgethub' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"PATH": "/usr/bin:/bin"})
    assert out.stdout.strip().splitlines()[-1] == "False"


async def test_with_a_public_url_the_reply_links_its_chart(aiohttp_client, github):
    bot = await aiohttp_client(create_app(github_settings(
        github, PUBLIC_URL="https://fits.example.org")))
    await deliver(bot, "issue_comment", comment_event("/fits llama-2-7b q4 gpu=4090"))
    await settle(bot)
    [call] = github.calls("POST", COMMENTS)
    found = re.search(r"!\[memory chart\]\(https://fits\.example\.org(/chart/[0-9a-f]{32}\.png)\)",
                      call.body["body"])
    assert found
    served = await bot.get(found[1])
    assert served.status == 200 and (await served.read()).startswith(b"\x89PNG")
