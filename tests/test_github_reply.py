"""What the GitHub surface reads in a body and how its reply stays inside GitHub's limits; the
end-to-end path is in test_github_webhook.py, these are the cases a fake delivery cannot reach
cheaply (a reply past 65,536 characters) or that are many small variations."""

from __future__ import annotations

import pytest

from adapters.github.commands import Question, find_questions, fits_lines, free_text_question
from adapters.github.reply import (
    CUT_NOTE,
    MAX_BODY_CHARS,
    Section,
    compose,
    nothing_asked,
    read_marker,
    size,
)
from adapters.markdown import code_span, escape, render_answer
from core.answers import HelpAnswer
from tests.conftest import run_command


def test_fits_lines_skip_code_quotes_and_hidden_text():
    body = "\n".join([
        "Hi,", "/fits llama-2-7b q4 gpu=4090", "* `/fits 7b gpu=3090` and more text",
        "> /fits quoted-from-someone-else", "```", "/fits in a pasted transcript", "```",
        "~~~~", "/fits tilde fence", "~~~~", "<!-- issue template:", "/fits example",
        "-->", "/fitsx not ours", "ask /fits mid-line", "/FITS help", "  /fits", "2. /fits 8b"])
    assert fits_lines(body) == ["/fits llama-2-7b q4 gpu=4090", "/fits 7b gpu=3090",
                                "/fits help", "/fits", "/fits 8b"]


def test_at_most_five_questions_are_taken():
    found = find_questions("\n".join(f"/fits {n}b" for n in range(1, 9)))
    assert [q.text for q in found.items] == [f"/fits {n}b" for n in range(1, 6)]
    assert found.skipped == 3


@pytest.mark.parametrize(("text", "command"), [
    ("Can I run Llama 2 7B on my RTX 4090?", '/fits meta-llama/Llama-2-7b-hf gpu="RTX 4090"'),
    ("Will https://huggingface.co/meta-llama/Llama-2-13b-hf Q4_K_M fit two 3090s?",
     '/fits meta-llama/Llama-2-13b-hf Q4_K_M gpu="2x3090"'),
    ("llama3-8b in 4-bit on a T4", '/fits meta-llama/Meta-Llama-3-8B q4 gpu="T4"'),
])
def test_plain_questions_naming_a_model_and_a_gpu(text, command):
    assert free_text_question(text) == Question(command, inferred=True)
    report = run_command(command.removeprefix("/fits "))  # and it is a command that answers
    assert report.gpu.name


@pytest.mark.parametrize("text", [
    "Can I run Llama 2 7B on my laptop?",  # no GPU
    "Does it fit on an A100 with llama-2-70b?",  # A100 alone: 40 or 80 GB, so no GPU
    "My RTX 4090 runs hot since 2024",  # no model
    "phi 3.8b on a 4090",  # a size is not a model name
    "I have 24GB of VRAM and llama-2-7b",  # a bare size is not a catalogue GPU
    "```\nllama-2-7b on 4090\n```",  # pasted, not asked
])
def test_plain_text_is_answered_only_when_both_are_clear(text):
    assert free_text_question(text) is None


def test_the_label_decides_whether_plain_text_is_read():
    text = "Can I run Llama 2 7B on my RTX 4090?"
    assert find_questions(text).items == ()
    assert find_questions(text, free_text=True).items[0].inferred
    assert find_questions("/fits 7b\n" + text, free_text=True).items == (Question("/fits 7b"),)
    # the title counts too
    assert find_questions("", title=text, free_text=True).items[0].inferred


def test_a_reply_over_the_limit_keeps_whole_sections_and_says_what_was_left():
    huge = render_answer(HelpAnswer("x" * 30_000))
    sections = [Section(Question(f"/fits help {n}"), huge) for n in range(5)]
    body = compose("issue-comment:9", "2026-01-05T11:00:00Z", sections, skipped=2)
    assert size(body) <= MAX_BODY_CHARS
    assert body.count("#### ") == 2 and "/fits help 1" in body and "/fits help 2" not in body
    assert "3 more answers do not fit in one comment" in body
    assert "2 more `/fits` lines were skipped" in body
    assert body.endswith("lists the options.</sub>")
    assert read_marker(body) == ("issue-comment:9", "2026-01-05T11:00:00Z")


def test_one_answer_over_the_limit_is_cut_at_a_line():
    # wide characters: GitHub's limit holds counted in UTF-16 units
    text = "\n".join("😀" * 50 for _ in range(2_000))
    body = compose("issue:3", "2026-01-05T11:00:00Z", [Section(Question("/fits 7b"), text)])
    assert size(body) <= MAX_BODY_CHARS < len(text.encode("utf-16-le")) // 2
    assert CUT_NOTE.strip() in body and "😀" * 50 + "\n" in body


def test_markdown_escapes_what_users_typed():
    assert escape("@team see org/repo#12 <img>") == \
        "@\u200bteam see org/repo#\u200b12 &lt;img&gt;"
    assert code_span("a`b") == "``a`b``" and code_span("`x") == "`` `x ``"
    assert read_marker(nothing_asked("issue:1", "t1")) == ("issue:1", "t1")
    assert read_marker("hello <!-- fits:issue:1 at=t -->") is None  # only at the start
