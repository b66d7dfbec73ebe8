"""From the text Slack delivers to the command text core parses.

Slack escapes ``&``, ``<`` and ``>`` in what users type and wraps links, user and channel mentions
in ``<...>`` markup (``<https://hf.co/x|hf.co/x>``, ``<@U123>``, ``<!here>``). A link becomes its
URL (core reads huggingface.co links), mentions are dropped, the escapes are undone. The word
``public`` as the first or last word asks for an answer in the channel; it is not part of the
command.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PUBLIC_WORD = "public"
_MARKUP = re.compile(r"<([^<>]*)>")
_ESCAPES = (("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&"))  # &amp; last: "&amp;lt;" is "&lt;"


@dataclass(frozen=True)
class SlashText:
    command: str  # the command for core's parser
    public: bool  # answer in the channel instead of to the user alone


def _unwrap(match: re.Match[str]) -> str:
    inner = match[1]
    if inner.startswith(("@", "#", "!")):  # a user, a channel, or <!here>: not part of a command
        return " "
    return inner.split("|", 1)[0]  # a link: its target


def plain_text(text: str) -> str:
    """Slack's markup and escapes undone, whitespace collapsed."""
    text = _MARKUP.sub(_unwrap, text)
    for escaped, char in _ESCAPES:
        text = text.replace(escaped, char)
    return " ".join(text.split())


def _split_public(text: str) -> tuple[str, bool]:
    words = text.split(" ") if text else []
    public = False
    if words and words[0].lower() == PUBLIC_WORD:
        words, public = words[1:], True
    if words and words[-1].lower() == PUBLIC_WORD:
        words, public = words[:-1], True
    return " ".join(words), public


def read_slash_text(text: str) -> SlashText:
    """The text of a `/fits` command: ``public llama-2-7b q4`` -> (``llama-2-7b q4``, public)."""
    command, public = _split_public(plain_text(text))
    return SlashText(command, public)


def read_mention_text(text: str, bot_user_id: str | None) -> str:
    """The command in ``<@BOT> llama-2-7b q4``: the bot's mention (any mention, when the bot's id
    is not known) and the ``public`` word taken out (a thread answer is public anyway)."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^<>]*)?>", " ", text)
    command, _ = _split_public(plain_text(text))
    return command
