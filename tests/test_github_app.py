"""The GitHub surface as a GitHub App: the RS256 JWT signed with the App's key (a test RSA key) is
checked by the fake GitHub with the public key and exchanged for an installation token, which is
used for the replies and cached per installation until GitHub refuses it."""

from __future__ import annotations

import logging
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.app import SURFACES, create_app
from core.errors import UserError
from tests.conftest import run_command
from tests.fakes.github import (
    APP_SLUG,
    NUMBER,
    OWNER,
    REPO,
    WEBHOOK_SECRET,
    FakeGitHub,
    comment_event,
    deliver,
)
from tests.test_github_webhook import COMMENTS, assert_no_secrets, assert_report, posted, settle
from tests.test_service import make_settings

APP_ID = "12345"
INSTALLATION = 4242


@pytest.fixture(scope="module")
def keys() -> tuple[str, str]:
    """(private, public) PEM of a fresh RSA key, the private one in GitHub's PKCS#1 form."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public.decode()


@pytest.fixture
async def github(aiohttp_server, keys):
    fake = FakeGitHub(app_id=APP_ID, public_key=keys[1])
    server = await aiohttp_server(fake.app())
    fake.base_url = str(server.make_url("/"))
    return fake


def app_settings(github: FakeGitHub, private_key: str):
    return make_settings(GITHUB_WEBHOOK_SECRET=WEBHOOK_SECRET, GITHUB_APP_ID=APP_ID,
                         GITHUB_PRIVATE_KEY=private_key, GITHUB_API_URL=github.base_url)


@pytest.fixture
async def bot(aiohttp_client, github, keys):
    return await aiohttp_client(create_app(app_settings(github, keys[0])))


def exchanges(github: FakeGitHub, installation: int = INSTALLATION) -> list:
    return github.calls("POST", f"/app/installations/{installation}/access_tokens")


async def test_the_jwt_buys_an_installation_token_that_is_used_and_cached(bot, github):
    first = comment_event("/fits llama-2-7b q4 gpu=4090", installation=INSTALLATION)
    second = comment_event("/fits llama-2-13b q8 gpu=4090", comment_id=102,
                           installation=INSTALLATION)
    assert (await deliver(bot, "issue_comment", first)).status == 202
    await settle(bot)
    assert (await deliver(bot, "issue_comment", second)).status == 202
    await settle(bot)
    [exchange] = exchanges(github)
    assert exchange.authorization.lower().startswith("bearer ")  # gidgethub writes "bearer"
    [claims] = github.jwt_claims
    assert claims["iss"] == APP_ID
    assert claims["iat"] <= time.time() and 0 < claims["exp"] - time.time() <= 600
    token = next(iter(github.installation_tokens))
    writes = github.calls("POST", COMMENTS)
    assert [w.authorization for w in writes] == [f"token {token}"] * 2
    assert_report(writes[0].body["body"], run_command("llama-2-7b q4 gpu=4090"))
    assert_report(writes[1].body["body"], run_command("llama-2-13b q8 gpu=4090"))
    mine = github.thread(OWNER, REPO, NUMBER)
    assert {c["user"]["login"] for c in mine} == {f"{APP_SLUG}[bot]"}
    # GitHub then tells us about our own comment: a bot sender, ignored
    echo = comment_event(mine[0]["body"], comment_id=mine[0]["id"], installation=INSTALLATION,
                         sender=mine[0]["user"])
    resp = await deliver(bot, "issue_comment", echo)
    assert (await resp.json())["reason"] == "the sender is a bot"


async def test_an_edit_updates_the_apps_own_reply(bot, github):
    before = "/fits llama-2-7b q4 gpu=4090"
    await deliver(bot, "issue_comment", comment_event(before, installation=INSTALLATION))
    await settle(bot)
    [reply] = github.thread(OWNER, REPO, NUMBER)
    assert reply["performed_via_github_app"]["id"] == int(APP_ID)
    edit = comment_event("/fits llama-2-7b q8 gpu=4090", action="edited", before=before,
                         updated_at="2026-01-05T12:00:00Z", installation=INSTALLATION)
    await deliver(bot, "issue_comment", edit)
    await settle(bot)
    [patch] = github.calls("PATCH")
    assert patch.path.endswith(f"/issues/comments/{reply['id']}")
    assert len(github.thread(OWNER, REPO, NUMBER)) == 1
    assert_report(github.comments[reply["id"]]["body"], run_command("llama-2-7b q8 gpu=4090"))
    assert len(exchanges(github)) == 1


async def test_a_refused_token_is_replaced_once_and_installations_have_their_own(bot, github):
    await deliver(bot, "issue_comment", comment_event("/fits 7b gpu=4090",
                                                      installation=INSTALLATION))
    await settle(bot)
    github.revoke_installation_tokens()  # e.g. the App was suspended and reinstated
    await deliver(bot, "issue_comment", comment_event("/fits 8b gpu=4090", comment_id=102,
                                                      installation=INSTALLATION))
    await settle(bot)
    assert len(exchanges(github)) == 2
    assert len(posted(github)) == 2
    await deliver(bot, "issue_comment", comment_event("/fits 13b gpu=4090", comment_id=103,
                                                      installation=7))
    await settle(bot)
    assert len(exchanges(github, 7)) == 1 and len(posted(github)) == 3


async def test_the_key_may_be_escaped_or_a_path_and_a_bad_one_stops_start_up(github, keys,
                                                                             tmp_path):
    escaped = keys[0].replace("\n", "\\n")
    path = tmp_path / "fits-app.private-key.pem"
    path.write_text(keys[0])
    for given in (escaped, str(path)):
        state = dict(create_app(app_settings(github, given))[SURFACES])["GitHub"]
        assert state.startswith("on (/github/webhook; replies as GitHub App 12345")
    broken = keys[0][:200] + "\n-----END RSA PRIVATE KEY-----\n"
    for bad in (broken, str(tmp_path / "missing.pem")):
        with pytest.raises(UserError) as raised:
            create_app(app_settings(github, bad))
        assert raised.value.message.startswith("GITHUB_PRIVATE_KEY cannot be used")
        assert keys[0][40:80] not in str(raised.value)


async def test_an_app_conversation_logs_no_secret(aiohttp_client, github, keys, caplog):
    with caplog.at_level(logging.DEBUG):
        client = await aiohttp_client(create_app(app_settings(github, keys[0])))
        await deliver(client, "issue_comment", comment_event("/fits 7b gpu=4090",
                                                             installation=INSTALLATION))
        # a repository webhook pointed at an App deployment: no installation to act as
        refused = await deliver(client, "issue_comment", comment_event("/fits 7b gpu=4090",
                                                                       comment_id=102))
        await settle(client)
    assert refused.status == 400  # was 202, then dropped
    body = await refused.json()
    assert body["error"] == "This delivery names no GitHub App installation."
    assert "App's own webhook" in body["hint"]
    assert len(posted(github)) == 1
    jwt_sent = exchanges(github)[0].authorization.split(" ", 1)[1]
    token = next(iter(github.installation_tokens))
    key_lines = [line for line in keys[0].splitlines() if "-----" not in line]
    assert_no_secrets(caplog.records, [WEBHOOK_SECRET, jwt_sent, token, *key_lines])
