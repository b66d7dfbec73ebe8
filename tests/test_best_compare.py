"""'Which models fit my GPU?' and side-by-side comparisons (issue 19): every pick and every cell
is the answer its own estimate command gives."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bot.dispatch import answer_here
from core.compare import CompareAnswer
from core.errors import UserError
from core.parser import BestCommand, parse_command
from core.ranking import BestAnswer
from tests.conftest import run_command

ENV = {"HF_HUB_OFFLINE": "1", "PATH": ""}


@pytest.fixture(scope="module")
def best24() -> BestAnswer:
    found = answer_here(parse_command("best gpu=24GB ctx=8k"))
    assert isinstance(found, BestAnswer)
    return found


def test_best_gives_ten_distinct_models_each_confirmed_by_its_own_estimate(
        best24: BestAnswer) -> None:
    entries = best24.entries
    assert len(entries) == 10 and len({e.id for e in entries}) == 10
    for e in entries:
        report = run_command(e.command)
        assert report.fits and report.model.id == e.id
        assert abs(report.total_bytes - e.total_bytes) <= 0.01 * e.total_bytes
        assert e.reason and e.quant in e.reason


def test_best_counts_variants_of_the_same_weights_once(best24: BestAnswer) -> None:
    from core.best import family_of

    families = [family_of(e.id) for e in best24.entries]
    assert len(families) == len(set(families))
    assert not any(e.id.endswith(("-FP8", "-hf")) and e.id[:-4] in {x.id for x in best24.entries}
                   for e in best24.entries)


def test_best_takes_use_speed_and_n() -> None:
    command = parse_command("best gpu=4090 use=code speed=40 n=3")
    assert isinstance(command, BestCommand) and command.limit == 3
    found = answer_here(command)
    assert isinstance(found, BestAnswer) and 1 <= len(found.entries) <= 3
    assert all((e.decode_tokens_per_s or 0) >= 40 for e in found.entries)
    with pytest.raises(UserError, match="use= takes"):
        parse_command("best gpu=4090 use=poetry")


def test_best_json_has_the_design_keys() -> None:
    out = subprocess.run([sys.executable, "-m", "bot", "--json", "best gpu=24GB n=3"],
                         capture_output=True, text=True, check=True, env=ENV)
    entries = json.loads(out.stdout)["entries"]
    assert len(entries) == 3
    for e in entries:
        assert {"id", "quant", "engine", "total_bytes", "fits", "verdict", "speed",
                "reason"} <= set(e)


def test_compare_gives_one_cell_per_setup() -> None:
    out = subprocess.run([sys.executable, "-m", "bot", "--json",
                          "compare meta-llama/Meta-Llama-3-8B q4,q8,fp16 gpu=4090,3060"],
                         capture_output=True, text=True, check=True, env=ENV)
    cells = json.loads(out.stdout)["cells"]
    assert len(cells) == 6
    for cell in cells:
        again = run_command(cell["command"])
        assert again.total_bytes == cell["report"]["total_bytes"]


def test_compare_several_models_on_one_gpu_and_its_limits() -> None:
    found = answer_here(parse_command("compare llama-3-8b qwen2.5-7b gpu=3060"))
    assert isinstance(found, CompareAnswer) and len(found.cells) == 2
    assert found.table()[0] == ["setup", "3060"]
    with pytest.raises(UserError, match="up to 24"):
        parse_command("compare llama-3-8b q2,q3,q4,q5,q6,q8,fp16 gpu=3060,4090,5090,a100-80g")
    with pytest.raises(UserError, match="two setups"):
        parse_command("compare llama-3-8b gpu=3060")


@pytest.mark.parametrize("surface", ["markdown", "discord", "slack"])
def test_every_surface_renders_best_and_compare(surface: str, best24: BestAnswer) -> None:
    from adapters.discord.embed import render_answer
    from adapters.markdown import MarkdownRenderer
    from adapters.render import render
    from adapters.slack.blocks import answer_message

    compared = answer_here(parse_command("compare llama-3-8b q4,q8 gpu=3060"))
    assert compared is not None
    for answer in (best24, compared):
        if surface == "markdown":
            text = render(answer, MarkdownRenderer())
            assert "|" in text
        elif surface == "discord":
            reply = render_answer(answer)
            assert reply.embed is not None and reply.embed["fields"]
            assert len(reply.embed["fields"]) <= 25
        else:
            message = answer_message(answer)
            assert message.blocks and len(message.text) > 10
