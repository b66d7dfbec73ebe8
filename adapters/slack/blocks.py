"""Answers as Slack Block Kit messages: a header with the verdict, the memory breakdown with bars,
fields for the limits and the speed, the suggestions, and a context line with the model's source
and the assumptions. Every message carries a plain ``text`` fallback (notifications, screen
readers) and stays inside Block Kit's limits: what does not fit is cut, never refused.

The limits (Slack's Block Kit reference, cross-checked with slack_sdk's validators): 50 blocks a
message, header text 150 characters, section text 3000, 10 fields of 2000 each, 10 context
elements. Slack gives no separate cap for a context element's text; 2000 keeps it within the
field cap. Text in ``mrkdwn`` has ``&``, ``<`` and ``>`` escaped, so a model id or a user's words
can never become a link or an @channel.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from adapters.render import render
from adapters.text import (
    VERDICT_WORDS,
    bar,
    best_title,
    breakdown_rows,
    kv_pool_phrase,
    prompt_words,
    ram_facts,
    suggestions_title,
    text_table,
    together_words,
    verdict_sentence,
)
from core.answer import Answer
from core.answers import GpuListAnswer, HelpAnswer, ModelListAnswer
from core.compare import CompareAnswer
from core.engines.details import LlamaCppDetails
from core.errors import RateLimited, UserError
from core.ranking import BestAnswer
from core.report import Report
from core.units import format_bytes, format_tokens

Block = dict[str, Any]

MAX_BLOCKS = 50
HEADER_CHARS = 150
SECTION_CHARS = 3000
MAX_FIELDS = 10
FIELD_CHARS = 2000
MAX_CONTEXT_ELEMENTS = 10
CONTEXT_CHARS = 2000
FALLBACK_CHARS = 3000  # the notification text; Slack itself truncates at 40,000
BAR_WIDTH = 20  # narrower than the terminal's 24: Slack's code blocks wrap early on phones
ELLIPSIS = "…"
VERDICT_ICONS = {"fits": ":white_check_mark:", "tight": ":large_yellow_circle:",
                 "split": ":large_orange_circle:", "no": ":x:"}
SOURCE_WORDS = {"snapshot": "the bundled snapshot", "hub": "the Hugging Face Hub",
                "config": "the uploaded config.json", "size": "its size alone (approximate)"}
FAILURE = "Something went wrong on our side; the error is logged."


@dataclass(frozen=True)
class Message:
    text: str  # the fallback: notifications and clients without blocks
    blocks: list[Block]


# --- text and block helpers ----------------------------------------------------------------------


def escape(text: str) -> str:
    """Text safe inside mrkdwn: Slack's three control characters as entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, ending in an ellipsis when cut."""
    return text if len(text) <= limit else text[: max(0, limit - 1)].rstrip() + ELLIPSIS


def header(text: str) -> Block:
    return {"type": "header",
            "text": {"type": "plain_text", "text": clip(text, HEADER_CHARS), "emoji": True}}


def section(mrkdwn: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(mrkdwn, SECTION_CHARS)}}


def fields_section(pairs: Sequence[tuple[str, str]]) -> Block:
    """Label/value pairs side by side (two columns in Slack)."""
    return {"type": "section", "fields": [
        {"type": "mrkdwn", "text": clip(f"*{escape(label)}*\n{escape(value)}", FIELD_CHARS)}
        for label, value in pairs[:MAX_FIELDS]]}


def context(texts: Sequence[str]) -> Block:
    return {"type": "context", "elements": [
        {"type": "mrkdwn", "text": clip(text, CONTEXT_CHARS)}
        for text in texts[:MAX_CONTEXT_ELEMENTS]]}


def lines_within(lines: Iterable[str], limit: int) -> str:
    """Whole lines, one a line, as many as fit in ``limit`` characters; a last line says how
    many were left out."""
    items = list(lines)
    for keep in range(len(items), 0, -1):
        rest = len(items) - keep
        text = "\n".join([*items[:keep], *([f"{ELLIPSIS} {rest} more"] if rest else [])])
        if len(text) <= limit:
            return text
    return clip(items[0], limit) if items else ""


def packed(lines: Sequence[str], limit: int, slots: int) -> list[str]:
    """Lines packed into at most ``slots`` texts of at most ``limit`` characters each; the last
    text says how many lines were left out."""
    texts: list[str] = []
    rest = list(lines)
    while rest and len(texts) < slots - 1:
        take = 1
        while take < len(rest) and len("\n".join(rest[: take + 1])) <= limit:
            take += 1
        texts.append(clip("\n".join(rest[:take]), limit))
        rest = rest[take:]
    if rest:
        texts.append(lines_within(rest, limit))
    return texts


def code_sections(lines: Sequence[str]) -> list[Block]:
    """Lines in monospace, as few sections as the 3000-character cap allows (a fence is never
    cut off: each section holds whole lines)."""
    fence = 8  # "```\n" + "\n```"
    blocks: list[Block] = []
    chunk: list[str] = []
    size = 0
    for raw in lines:
        line = clip(escape(raw), SECTION_CHARS - fence)
        if chunk and size + len(line) + 1 > SECTION_CHARS - fence:
            blocks.append(section("```\n" + "\n".join(chunk) + "\n```"))
            chunk, size = [], 0
        chunk.append(line)
        size += len(line) + 1
    if chunk:
        blocks.append(section("```\n" + "\n".join(chunk) + "\n```"))
    return blocks


def within_limits(blocks: list[Block]) -> list[Block]:
    """The blocks cut to Block Kit's limits: a last resort behind the builders, which already
    keep to them, so that no answer is ever refused by Slack for its size."""
    out: list[Block] = []
    for block in blocks:
        block = dict(block)
        kind = block.get("type")
        if kind == "header":
            block["text"] = {**block["text"], "text": clip(block["text"]["text"], HEADER_CHARS)}
        elif kind == "section":
            if "text" in block:
                block["text"] = {**block["text"],
                                 "text": clip(block["text"]["text"], SECTION_CHARS)}
            if "fields" in block:
                block["fields"] = [{**f, "text": clip(f["text"], FIELD_CHARS)}
                                   for f in block["fields"][:MAX_FIELDS]]
        elif kind == "context":
            block["elements"] = [{**e, "text": clip(e["text"], CONTEXT_CHARS)}
                                 for e in block["elements"][:MAX_CONTEXT_ELEMENTS]]
        out.append(block)
    if len(out) > MAX_BLOCKS:
        dropped = len(out) - (MAX_BLOCKS - 1)
        out = [*out[: MAX_BLOCKS - 1], context([f"{ELLIPSIS} {dropped} more blocks not shown."])]
    return out


def message(text: str, blocks: list[Block]) -> Message:
    return Message(clip(escape(text), FALLBACK_CHARS), within_limits(blocks))


# --- a Report ------------------------------------------------------------------------------------


def _where(report: Report) -> str:
    gpu = report.gpu
    return f"{gpu.count} x {gpu.name}" if gpu.count > 1 else gpu.name


def _facts(report: Report) -> list[tuple[str, str]]:
    """The numbers a reader looks for first, as (label, value) fields."""
    gpu = report.gpu
    per = " per GPU" if gpu.count > 1 else ""
    facts = [("Peak memory", f"{format_bytes(report.total_bytes)} of "
                             f"{format_bytes(gpu.usable_bytes)}{per}"),
             ("Longest context that fits",
              f"{format_tokens(report.max_context)} tokens" if report.max_context
              else "none, even the shortest")]
    if report.max_batch:
        facts.append(("Largest batch at this ctx", str(report.max_batch)))
    if report.best_quant:
        facts.append(("Best quant that fits", report.best_quant))
    speed = report.speed
    if speed.step_seconds is not None:
        facts.append(("Training speed", f"{speed.step_seconds:g} s per step, "
                                        f"{speed.train_tokens_per_s:g} tokens/s"))
    elif speed.decode_tokens_per_s is not None:
        facts.append(("Decoding", f"{speed.decode_tokens_per_s:g} tokens/s{together_words(report)} "
                                  f"({speed.bound}-bound)"))
        prompt = prompt_words(report)
        if prompt:
            facts.append(("Prompt processing", prompt))
        if speed.parallelism:
            facts.append(("GPUs", speed.parallelism))
    kv_pool = kv_pool_phrase(report)
    if kv_pool:
        facts.append(("KV cache", kv_pool))
    facts += ram_facts(report)
    llama = report.engine_details.engine
    if isinstance(llama, LlamaCppDetails):
        if llama.partial_offload is not None:
            facts.append(("Partial offload", f"{llama.partial_offload}; system RAM "
                                             f"{format_bytes(llama.system_ram_bytes)}"))
        if llama.ram is not None:
            enough = "enough" if llama.ram.ram_fits else "NOT enough"
            facts.append(("System RAM", f"needs {format_bytes(llama.ram.ram_needed_bytes)} of "
                                        f"{format_bytes(llama.ram.ram_available_bytes)} usable: "
                                        f"{enough}"))
    return facts


def _breakdown_lines(report: Report) -> list[str]:
    usable = report.gpu.usable_bytes

    def row(name: str, value: int) -> str:
        blocks = bar(value, usable, BAR_WIDTH).replace("#", "█").replace(".", "░")
        return f"{name:<12} {format_bytes(value):>10}  {blocks}"

    lines = [row(name, value) for name, value in breakdown_rows(report)]
    lines.append(f"{row('total', report.total_bytes)}  of {format_bytes(usable)}")
    return lines


def _source_line(report: Report) -> str:
    model = report.model
    count = "exact" if model.exact_params else "estimated"
    active = (f", {model.active_params:,} active" if model.active_params != model.params else "")
    source = SOURCE_WORDS.get(model.source, model.source)
    return escape(f"Model: {model.id} · {model.params:,} parameters{active} ({count}) · "
                  f"from {source}")


def report_message(report: Report) -> Message:
    icon = VERDICT_ICONS.get(report.verdict, "")
    title = f"{icon} {VERDICT_WORDS[report.verdict]}: {report.model.id} on {_where(report)}"
    blocks = [header(title), section(escape(verdict_sentence(report))),
              *code_sections(_breakdown_lines(report)), fields_section(_facts(report))]
    if report.run is not None:
        blocks.append(section(f"*Run it* ({escape(report.run.engine)})"))
        blocks += code_sections(report.run.command.splitlines())
    if report.suggestions:
        lines = [escape(f"• `{s.change}` → {format_bytes(s.total_bytes)}"
                        + (f" ({s.why})" if s.why else ""))
                 for s in report.suggestions]
        blocks.append(section(lines_within([f"*{suggestions_title(report)}*", *lines],
                                           SECTION_CHARS)))
    if report.warnings:
        lines = [f":warning: {escape(w)}" for w in report.warnings]
        blocks.append(section(lines_within(lines, SECTION_CHARS)))
    # One element while it fits: context elements flow side by side, lines read better.
    notes = [_source_line(report), *(escape(f"• {a}") for a in report.assumptions)]
    blocks.append(context(packed(notes, CONTEXT_CHARS, MAX_CONTEXT_ELEMENTS)))
    return message(verdict_sentence(report), blocks)


# --- the other answers ---------------------------------------------------------------------------


def help_message(text: str) -> Message:
    first = text.strip().splitlines()[0] if text.strip() else "fits"
    return message(first, code_sections(text.strip("\n").splitlines()))


def gpus_message(answer: GpuListAnswer) -> Message:
    if not answer.gpus:
        said = f"No GPU matches “{answer.query}”."
        return message(said, [section(escape(said)), context(
            ["Try a name or a size: `/fits gpus 4090`, `/fits gpus a100`, `/fits gpus 24gb`."])])
    lines = []
    for gpu in answer.gpus:
        facts = [format_bytes(gpu.memory_bytes)]
        if gpu.bandwidth_gbs:
            facts.append(f"{gpu.bandwidth_gbs:g} GB/s")
        lines.append(escape(f"• {gpu.name}: {', '.join(facts)}"))
    title = f"GPUs matching “{answer.query}”" if answer.query else "GPUs"
    blocks = [section(lines_within([f"*{escape(title)}*", *lines], SECTION_CHARS))]
    if answer.more_line:
        blocks.append(context([escape(answer.more_line)]))
    return message(f"{title}: {len(answer.gpus) + answer.more}", blocks)


def models_message(answer: ModelListAnswer) -> Message:
    notes = [escape(answer.note)] if answer.note else []
    if not answer.ids:
        said = f"No model matches “{answer.query}”."
        return message(said, [section(escape(said)), context(
            ["Try part of a Hub id: `/fits models llama-3`, `/fits models qwen`.", *notes])])
    title = f"Models matching “{answer.query}”"
    lines = [f"• `{escape(model_id)}`" for model_id in answer.ids]
    blocks = [section(lines_within([f"*{escape(title)}*", *lines], SECTION_CHARS))]
    more = [escape(answer.more_line)] if answer.more_line else []
    if notes or more:
        blocks.append(context([*more, *notes]))
    return message(f"{title}: {len(answer.ids)}", blocks)


class SlackRenderer:
    """Block Kit messages (with their plain-text fallback)."""

    def report(self, report: Report) -> Message:
        return report_message(report)

    def help(self, answer: HelpAnswer) -> Message:
        return help_message(answer.text)

    def gpus(self, answer: GpuListAnswer) -> Message:
        return gpus_message(answer)

    def models(self, answer: ModelListAnswer) -> Message:
        return models_message(answer)

    def best(self, answer: BestAnswer) -> Message:
        title = best_title(answer)
        lines = [escape(f"{n}. {e.id}: {e.quant} ({e.engine}), {format_bytes(e.total_bytes)}; "
                        f"{e.reason}") for n, e in enumerate(answer.entries, 1)]
        blocks = [section(lines_within([f"*{escape(title)}*", *lines], SECTION_CHARS))]
        blocks.append(context([escape(n) for n in answer.notes]))
        return message(title, blocks)

    def compare(self, answer: CompareAnswer) -> Message:
        rows = text_table(answer.table())
        return message(f"Comparison of {len(answer.cells)} setups", code_sections(rows))

    def error(self, error: UserError) -> Message:
        return error_message(error)


SLACK = SlackRenderer()


def answer_message(answer: Answer) -> Message:
    return render(answer, SLACK)


def error_message(err: UserError) -> Message:
    """The user's error: its sentence, and its hint underneath."""
    icon = ":hourglass_flowing_sand:" if isinstance(err, RateLimited) else ":warning:"
    blocks = [section(f"{icon} {escape(err.message)}")]
    if err.hint:
        blocks.append(context([escape(err.hint)]))
    return message(f"{err.message} {err.hint}" if err.hint else err.message, blocks)


def failure_message() -> Message:
    """A bug on our side: one generic sentence, nothing of the exception."""
    return message(FAILURE, [section(f":warning: {FAILURE}")])


def with_picture(message: Message, url: str) -> Message:
    """The message with the answer's chart as an image block (Slack fetches it by URL), within
    the 50-block limit."""
    image: Block = {"type": "image", "image_url": url, "alt_text": "memory chart"}
    blocks = [*message.blocks[:MAX_BLOCKS - 1], image]
    return replace(message, blocks=blocks)
