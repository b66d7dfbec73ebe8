"""The Discord embed and the options -> command mapping, without Discord: what the gateway and
HTTP tests check end to end, pushed to the edges (reports far past every limit, options that
would split the command, GPUs typed with a count).

``assert_embed_shows`` (an embed says what its Report says, number for number) serves
tests/test_discord_gateway.py and tests/test_discord_http.py too."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.discord.autocomplete import ctx_choices, gpu_choices
from adapters.discord.embed import (
    COLOURS,
    EPHEMERAL,
    Reply,
    fit_embed,
    render_answer,
    render_error,
    report_embed,
)
from adapters.discord.options import FITS, GPUS, HELP, command_text
from adapters.discord.registration import commands_match
from adapters.text import breakdown_rows, suggestions_title, verdict_sentence
from core.answers import GpuListAnswer, HelpAnswer
from core.errors import ModelNotFound, UserError
from core.gpus import resolve_gpu, search_gpus
from core.help import help_text
from core.parser import EstimateCommand, parse_command
from core.report import Report, Suggestion
from core.units import format_bytes, format_tokens
from tests.conftest import run_command
from tests.fakes.discord import limit_problems


def fields_of(embed: dict[str, Any]) -> dict[str, str]:
    return {f["name"]: f["value"] for f in embed.get("fields", [])}


def assert_embed_shows(embed: dict[str, Any], report: Report) -> None:
    """The embed carries the Report's verdict and numbers, within Discord's limits."""
    assert limit_problems({"embeds": [embed]}) == []
    assert embed["title"] == verdict_sentence(report)[:256]
    assert embed["color"] == COLOURS[report.verdict]
    fields = fields_of(embed)
    usable = format_bytes(report.gpu.usable_bytes)
    for name, value in breakdown_rows(report):
        assert fields[name].split("\n")[0] == format_bytes(value), (name, fields)
    assert fields["total"].startswith(f"**{format_bytes(report.total_bytes)}** of {usable}")
    limits = fields["Largest that fits"]
    if report.max_context:
        assert f"longest context that fits: {format_tokens(report.max_context)}" in limits
    if report.max_batch:
        assert f"largest batch at this ctx: {report.max_batch}" in limits
    speed = report.speed
    if speed.decode_tokens_per_s is not None:
        assert f"about {speed.decode_tokens_per_s:g} tokens/s decoding" in fields["Speed"]
    if speed.step_seconds is not None:
        assert f"about {speed.step_seconds:g} s per step" in fields["Speed"]
    for suggestion in report.suggestions:
        assert f"`{suggestion.change}` {format_bytes(suggestion.total_bytes)}" in \
            fields[suggestions_title(report)]
    spare = format_bytes(abs(report.headroom_bytes))
    assert embed["description"].startswith(
        f"{'headroom' if report.headroom_bytes >= 0 else 'short by'} {spare} on ")
    footer = embed["footer"]["text"]
    assert footer.startswith(f"{report.model.id} from ")
    assert f"{report.model.params:,} parameters" in footer


@pytest.mark.parametrize("text", ["meta-llama/Llama-2-7b-hf q4 ctx=8k gpu=4090",
                                  "llama3-70b fp16 gpu=4090",
                                  "llama3-8b awq engine=vllm gpu=4090",
                                  "llama3-70b Q4_K_M gpu=4090",
                                  "7b mode=train train=lora gpu=3090"])
def test_embed_carries_the_report(text: str) -> None:
    report = run_command(text)
    assert_embed_shows(report_embed(report), report)


def test_colour_follows_the_verdict() -> None:
    fits, no = run_command("llama-2-7b q4 gpu=4090"), run_command("llama3-70b fp16 gpu=4090")
    assert (fits.verdict, no.verdict) == ("fits", "no")
    tight = replace(fits, verdict="tight")
    assert [report_embed(r)["color"] for r in (fits, tight, no)] == [0x2ECC71, 0xE67E22, 0xE74C3C]


def long_report() -> Report:
    report = run_command("llama3-70b fp16 gpu=4090")
    why = "because " + "the reason is long " * 30
    return replace(
        report, model=replace(report.model, id="org/" + "m" * 300),
        # a long GPU name makes the description (its headroom line) too long as well
        gpu=replace(report.gpu, name="g" * 5000),
        assumptions=[f"assumption {i}: " + "x" * 300 for i in range(200)],
        warnings=[f"warning {i}: " + "w" * 400 for i in range(60)],
        suggestions=[Suggestion(change=f"ctx={i}", total_bytes=i * 2**30, fits=True, why=why)
                     for i in range(80)])


def test_a_long_report_stays_within_every_limit_and_keeps_the_verdict() -> None:
    report = long_report()
    embed = report_embed(report)
    assert limit_problems({"embeds": [embed]}) == []
    assert len(embed["title"]) == 256 and embed["title"].startswith("NO: org/mmm")
    fields = fields_of(embed)
    for name, value in breakdown_rows(report):  # the breakdown always stays
        assert fields[name].startswith(format_bytes(value))
    message = Reply(embed=embed).message()
    assert limit_problems(message) == []
    assert message["allowed_mentions"] == {"parse": []}


text_st = st.text(st.characters(blacklist_categories=("Cs",)), max_size=3000)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(title=text_st, description=text_st, footer=text_st,
       fields=st.lists(st.tuples(text_st, text_st), max_size=40))
def test_fit_embed_always_fits(title: str, description: str, footer: str,
                               fields: list[tuple[str, str]]) -> None:
    embed = fit_embed({"title": title, "description": description, "footer": {"text": footer},
                       "fields": [{"name": n, "value": v} for n, v in fields]})
    assert limit_problems({"embeds": [embed]}) == []


@settings(max_examples=40, deadline=None)
@given(assumptions=st.lists(text_st, max_size=30), warnings=st.lists(text_st, max_size=10),
       why=text_st)
def test_any_report_text_fits(assumptions: list[str], warnings: list[str], why: str) -> None:
    report = replace(
        run_command("llama-2-7b q4 gpu=8GB"), assumptions=assumptions, warnings=warnings,
        suggestions=[Suggestion(change="ctx=1024", total_bytes=1, fits=True, why=why)] * 12)
    assert limit_problems({"embeds": [report_embed(report)]}) == []


def test_errors_are_ephemeral_with_their_hint() -> None:
    reply = render_error(ModelNotFound("No model 'x' here.", "Did you mean llama-2-7b?", ["a"]))
    message = reply.message()
    assert message["flags"] == EPHEMERAL and message["embeds"] == []
    assert message["content"] == "**No model 'x' here.**\nDid you mean llama-2-7b?"
    long = render_error(UserError("x" * 3000, "y")).message()
    assert len(long["content"]) == 2000


def test_help_and_gpu_listing() -> None:
    help_embed = render_answer(HelpAnswer(help_text("quant"))).embed
    assert help_embed is not None and "Q4_K_M" in help_embed["description"]
    gpus = render_answer(GpuListAnswer("4090", search_gpus("4090"))).embed
    assert gpus is not None and "**NVIDIA GeForce RTX 4090**: 24 GiB" in gpus["description"]
    assert limit_problems({"embeds": [gpus]}) == []
    many = render_answer(GpuListAnswer("", search_gpus("", limit=500))).embed
    assert many is not None and limit_problems({"embeds": [many]}) == []


# --- options -> the command language -----------------------------------------------------------


@pytest.mark.parametrize(("options", "typed"), [
    ({"model": "llama-2-7b", "quant": "q4", "gpu": "4090", "ctx": "8k"},
     "llama-2-7b q4 ctx=8k gpu=4090"),
    ({"model": "llama3-8b", "quant": "awq", "engine": "vllm", "gpu": "NVIDIA GeForce RTX 4090",
      "batch": 4}, 'llama3-8b awq gpu="NVIDIA GeForce RTX 4090" engine=vllm batch=4'),
    ({"model": "7b", "train": "qlora", "gpu": "2x NVIDIA GeForce RTX 3090", "more": "r=64 gc=on"},
     "7b train=qlora r=64 gc=on gpu=2x3090"),
    ({"model": "7b", "mode": "train", "quant": None, "ctx": None}, "7b mode=train"),
])
def test_options_make_the_command_the_parser_reads(options: dict[str, object],
                                                   typed: str) -> None:
    from_options = parse_command(command_text(FITS, options))
    expected = parse_command(typed)
    assert isinstance(from_options, EstimateCommand) and isinstance(expected, EstimateCommand)
    mine = from_options.request.as_dict()
    theirs = expected.request.as_dict()
    assert resolve_gpu(mine.pop("gpu")).gpu == resolve_gpu(theirs.pop("gpu")).gpu
    assert mine == theirs


@pytest.mark.parametrize(("options", "says"), [
    ({"model": "llama 2"}, "must be one word"),
    ({"model": "llama-2-7b", "gpu": 'rtx"4090'}, "without quotes"),
    ({"model": ""}, "Tell me which model"),
    ({"model": "llama-2-7b", "more": "ctx=4k", "ctx": "8k"}, None),  # the parser: given twice
])
def test_bad_options_are_user_errors(options: dict[str, object], says: str | None) -> None:
    with pytest.raises(UserError) as caught:
        parse_command(command_text(FITS, options))
    assert says is None or says in caught.value.message


def test_help_and_gpus_commands() -> None:
    assert command_text(HELP, {"topic": "quant"}) == "help quant"
    assert command_text(HELP, {}) == "help"
    assert command_text(GPUS, {"query": "rtx 4090"}) == "gpus rtx 4090"
    with pytest.raises(UserError):
        command_text("fits-unknown", {})


def test_gpu_and_ctx_suggestions() -> None:
    choices = gpu_choices("2x309")
    assert choices[0] == {"name": "2x309 (as typed)", "value": "2x309"}
    assert {"name": "2x NVIDIA GeForce RTX 3090 (24 GiB)",
            "value": "2x NVIDIA GeForce RTX 3090"} in choices
    for choice in choices[1:]:  # every suggestion resolves to what it names
        assert resolve_gpu(choice["value"]).count == 2
    empty = gpu_choices("")
    assert 0 < len(empty) <= 25 and all(0 < len(c["name"]) <= 100 for c in empty)
    assert [c["value"] for c in ctx_choices("12")] == ["12", "128k"]
    assert ctx_choices("32k")[0] == {"name": "32k (32,768 tokens)", "value": "32k"}


def test_registered_commands_compare_on_what_users_see() -> None:
    ours = [{"name": "fits", "description": "d", "type": 1, "nsfw": False, "contexts": None,
             "options": [{"type": 3, "name": "model", "description": "m", "required": True,
                          "autocomplete": True},
                         {"type": 4, "name": "batch", "description": "b", "required": False,
                          "min_value": 1}]}]
    theirs = [{**ours[0], "id": "1", "version": "2", "application_id": "3",
               "contexts": [0, 1, 2], "default_member_permissions": None,
               "options": [{**ours[0]["options"][0]},
                           {k: v for k, v in ours[0]["options"][1].items() if k != "required"}]}]
    assert commands_match(ours, theirs)
    changed = [{**theirs[0], "description": "new"}]
    assert not commands_match(ours, changed)
    assert not commands_match(ours, [])
    assert not commands_match(ours, [*theirs, {"name": "old", "description": "x"}])
