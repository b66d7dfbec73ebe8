"""Answers and errors as Discord messages: a Report becomes one embed (colour by verdict, the
verdict sentence as title, the breakdown with text bars, limits, speed, suggestions, and the
assumptions and model source in the footer); a user error becomes an ephemeral line with its hint.

Messages are plain JSON dicts (Discord's wire format): the HTTP endpoint sends them as they are
and the gateway bot turns the embed into a discord.Embed. Discord refuses (HTTP 400) any
message past its limits and discord.py does not trim, so ``fit_embed`` trims every message here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from adapters.render import render
from adapters.text import (
    bar,
    best_title,
    breakdown_rows,
    engine_lines,
    limits_line,
    speed_line,
    suggestions_title,
    verdict_sentence,
)
from core.answer import Answer
from core.answers import GpuListAnswer, HelpAnswer, ModelListAnswer
from core.compare import CompareAnswer
from core.errors import UserError
from core.ranking import BestAnswer
from core.report import Report
from core.units import format_bytes

# Discord's limits (docs: resources/message.mdx "Embed Limits"; content: 2,000 characters).
TITLE_MAX = 256
DESCRIPTION_MAX = 4096
FIELDS_MAX = 25
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
FOOTER_MAX = 2048
AUTHOR_MAX = 256
EMBED_TOTAL_MAX = 6000
CONTENT_MAX = 2000
EPHEMERAL = 1 << 6  # message flag: only the user who asked sees it

COLOURS = {"fits": 0x2ECC71, "tight": 0xE67E22, "split": 0xF1C40F,
           "no": 0xE74C3C}  # green, orange, yellow, red
INFO_COLOUR = 0x5865F2  # Discord's blurple, for help and listings
BAR_WIDTH = 12  # three inline fields a row on desktop: a short bar keeps each on one line
SOURCES = {"snapshot": "the bundled snapshot", "hub": "the Hugging Face Hub",
           "config": "your config.json", "size": "its size only (an approximate Llama shape)"}


@dataclass(frozen=True)
class Reply:
    """One message for an interaction: an embed or a text, public or only for the asker."""

    embed: dict[str, Any] | None = None
    content: str | None = None
    ephemeral: bool = False
    # Attached files (name, bytes): the answer's chart, shown as the embed's image
    # (attachment://name) when the service has no PUBLIC_URL to link it from.
    files: tuple[tuple[str, bytes], ...] = ()

    def message(self) -> dict[str, Any]:
        """The message body Discord takes (callback data, webhook edit or follow-up)."""
        data: dict[str, Any] = {"content": clip(self.content or "", CONTENT_MAX),
                                "embeds": [fit_embed(self.embed)] if self.embed else [],
                                # Echoed user text must never ping anyone (@everyone, roles).
                                "allowed_mentions": {"parse": []}}
        if self.ephemeral:
            data["flags"] = EPHEMERAL
        if self.files:
            data["attachments"] = [{"id": i, "filename": name}
                                   for i, (name, _) in enumerate(self.files)]
        return data

    def without_files(self) -> Reply:
        """The reply as a first HTTP response can carry it: no files, no image pointing at one."""
        embed = self.embed
        if embed is not None and str((embed.get("image") or {}).get("url", "")).startswith(
                "attachment://"):
            embed = {k: v for k, v in embed.items() if k != "image"}
        return replace(self, embed=embed, files=())


# --- answers -------------------------------------------------------------------------------------


class DiscordRenderer:
    """Discord replies: an embed, or an ephemeral message for errors."""

    def report(self, report: Report) -> Reply:
        return Reply(embed=report_embed(report))

    def help(self, answer: HelpAnswer) -> Reply:
        return Reply(embed=help_embed(answer.text))

    def gpus(self, answer: GpuListAnswer) -> Reply:
        return Reply(embed=gpu_list_embed(answer))

    def models(self, answer: ModelListAnswer) -> Reply:
        return Reply(embed=model_list_embed(answer))

    def best(self, answer: BestAnswer) -> Reply:
        return Reply(embed=best_embed(answer))

    def compare(self, answer: CompareAnswer) -> Reply:
        return Reply(embed=compare_embed(answer))

    def error(self, error: UserError) -> Reply:
        return render_error(error)


DISCORD = DiscordRenderer()


def render_answer(answer: Answer) -> Reply:
    return render(answer, DISCORD)


def render_error(error: UserError) -> Reply:
    """The sentence and its hint, for the asker only."""
    hint = error.hint_with("Or attach its config.json as the config option of /fits.")
    text = f"**{error.message}**" + (f"\n{hint}" if hint else "")
    return Reply(content=text, ephemeral=True)


def report_embed(report: Report) -> dict[str, Any]:
    usable = report.gpu.usable_bytes
    fields = [_field(name, f"{format_bytes(value)}\n`{bar(value, usable, BAR_WIDTH)}`")
              for name, value in breakdown_rows(report)]
    fields.append(_field("total", f"**{format_bytes(report.total_bytes)}** of "
                                  f"{format_bytes(usable)}\n"
                                  f"`{bar(report.total_bytes, usable, BAR_WIDTH)}`"))
    fields.append(_field("Largest that fits", limits_line(report).replace("; ", "\n"), False))
    if speed := speed_line(report):
        fields.append(_field("Speed", speed, False))
    if report.run is not None:
        fields.append(_field("Run it", _code_block(report.run.command, FIELD_VALUE_MAX), False))
    if report.suggestions:
        fields.append(_field(suggestions_title(report), _lines(
            f"`{s.change}` {format_bytes(s.total_bytes)}" + (f" ({s.why})" if s.why else "")
            for s in report.suggestions), False))
    if report.warnings:
        fields.append(_field("Warnings", _lines(f"⚠ {w}" for w in report.warnings), False))
    embed = {"title": verdict_sentence(report), "color": COLOURS.get(report.verdict, INFO_COLOUR),
             "description": "\n".join(_summary(report)), "fields": fields,
             "footer": {"text": _footer(report)}}
    return fit_embed(embed)


def _summary(report: Report) -> list[str]:
    """The headroom, then what the engine does with the memory (vLLM's KV pool, llama.cpp's
    offload), as render_text says it."""
    gpu = report.gpu
    where = f"{gpu.count} x {gpu.name}" if gpu.count > 1 else gpu.name
    spare = "headroom" if report.headroom_bytes >= 0 else "short by"
    lines = [f"{spare} {format_bytes(abs(report.headroom_bytes))} on {where} "
             f"({format_bytes(gpu.usable_bytes)} usable{' each' if gpu.count > 1 else ''})"]
    # llama.cpp's partial offload is among the placement lines.
    lines += [line.strip() for line in engine_lines(report)]
    return lines


def _footer(report: Report) -> str:
    model = report.model
    exact = "exact" if model.exact_params else "approximate"
    source = (f"{model.id} from {SOURCES.get(model.source, model.source)}: "
              f"{model.params:,} parameters ({exact}), {model.architecture}")
    notes = "; ".join(a.strip().rstrip(".") for a in report.assumptions if a.strip())
    return f"{source}. Assumptions: {notes}." if notes else f"{source}."


def help_embed(text: str) -> dict[str, Any]:
    return fit_embed({"title": "fits: can my GPU run this LLM, and how?", "color": INFO_COLOUR,
                      "description": _code_block(text, DESCRIPTION_MAX),
                      "footer": {"text": "/fits model quant gpu ctx ... · /fits-gpus query · "
                                         "/fits-help topic"}})


def gpu_list_embed(answer: GpuListAnswer) -> dict[str, Any]:
    title = f"GPUs matching {answer.query}" if answer.query else "GPUs in the catalogue"
    lines = []
    for gpu in answer.gpus:
        facts = [f"{format_bytes(gpu.memory_bytes)} ({format_bytes(gpu.usable_bytes)} usable)"]
        if gpu.bandwidth_gbs:
            facts.append(f"{gpu.bandwidth_gbs:g} GB/s")
        if gpu.tflops_fp16:
            facts.append(f"{gpu.tflops_fp16:g} TFLOPS fp16")
        lines.append(f"**{gpu.name}**: {', '.join(facts)}")
    more = [answer.more_line] if answer.more_line else []
    description = _lines([*lines, *more], DESCRIPTION_MAX) if lines else (
        "No GPU in the catalogue matches that. A memory size works too: gpu:24GB.")
    return fit_embed({"title": title, "color": INFO_COLOUR, "description": description,
                      "footer": {"text": "Use a name as the gpu option of /fits, e.g. "
                                         "gpu:4090 or gpu:2x3090."}})


def model_list_embed(answer: ModelListAnswer) -> dict[str, Any]:
    more = [answer.more_line] if answer.more_line and answer.ids else []
    description = _lines([*(f"`{i}`" for i in answer.ids), *more],
                         DESCRIPTION_MAX) or "No model matches."
    embed: dict[str, Any] = {"title": f"Models matching {answer.query}", "color": INFO_COLOUR,
                             "description": description}
    if answer.note:
        embed["footer"] = {"text": answer.note}
    return fit_embed(embed)


# --- staying inside Discord's limits ---------------------------------------------------------------


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def _lines(lines: Iterable[str], limit: int = FIELD_VALUE_MAX) -> str:
    """Whole lines up to ``limit`` characters, then how many were left out."""
    items = [clip(line, limit) for line in lines]
    out: list[str] = []
    for i, line in enumerate(items):
        left = len(items) - i - 1
        tail = len(f"\n… and {left} more") if left else 0  # room to say what is left out
        if len("\n".join([*out, line])) + tail > limit:
            out.append(f"… and {left + 1} more")
            break
        out.append(line)
    return "\n".join(out)


def _code_block(text: str, limit: int) -> str:
    fence = "`" * 3
    body = clip(text.replace(fence, "'" * 3), limit - 2 * len(fence) - 2)
    return f"{fence}\n{body}\n{fence}"


def _field(name: str, value: str, inline: bool = True) -> dict[str, Any]:
    return {"name": name, "value": value, "inline": inline}


def embed_length(embed: dict[str, Any]) -> int:
    """What Discord counts against the 6,000 characters: title, description, field names and
    values, footer text and author name."""
    fields = embed.get("fields") or []
    return (len(embed.get("title") or "") + len(embed.get("description") or "")
            + sum(len(f.get("name") or "") + len(f.get("value") or "") for f in fields)
            + len((embed.get("footer") or {}).get("text") or "")
            + len((embed.get("author") or {}).get("name") or ""))


def fit_embed(embed: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``embed`` within every limit. What gives way when the whole is too long, in this
    order: the footer (assumptions), the description, then fields from the last one (warnings,
    suggestions) back; the verdict and the breakdown stay."""
    out = dict(embed)
    if out.get("title"):
        out["title"] = clip(out["title"], TITLE_MAX)
    if out.get("description"):
        out["description"] = clip(out["description"], DESCRIPTION_MAX)
    footer = (out.get("footer") or {}).get("text")
    if footer:
        out["footer"] = {**out["footer"], "text": clip(footer, FOOTER_MAX)}
    if (out.get("author") or {}).get("name"):
        out["author"] = {**out["author"], "name": clip(out["author"]["name"], AUTHOR_MAX)}
    fields = [{**f, "name": clip(f.get("name") or "\u200b", FIELD_NAME_MAX),
               "value": clip(f.get("value") or "\u200b", FIELD_VALUE_MAX)}
              for f in (out.get("fields") or [])[:FIELDS_MAX]]
    if "fields" in out:
        out["fields"] = fields
    excess = embed_length(out) - EMBED_TOTAL_MAX
    if excess > 0 and out.get("footer", {}).get("text"):
        text = out["footer"]["text"]
        out["footer"] = {**out["footer"], "text": clip(text, max(200, len(text) - excess))}
        excess = embed_length(out) - EMBED_TOTAL_MAX
    if excess > 0 and out.get("description"):
        text = out["description"]
        out["description"] = clip(text, max(200, len(text) - excess))
        excess = embed_length(out) - EMBED_TOTAL_MAX
    while excess > 0 and fields:
        last = fields[-1]
        if len(last["value"]) - excess >= 100:  # shorten the last field when that is enough
            fields[-1] = {**last, "value": clip(last["value"], len(last["value"]) - excess)}
        else:
            fields.pop()
        excess = embed_length(out) - EMBED_TOTAL_MAX
    if excess > 0:  # only a title and the shortened footer and description are left
        out["title"] = clip(out.get("title") or "", max(1, len(out.get("title") or "") - excess))
    return out


def best_embed(answer: BestAnswer) -> dict[str, Any]:
    """One field per pick (Discord shows up to 25): the model, its format, memory and why."""
    fields = [_field(f"{n}. {e.id}", f"`{e.quant}` ({e.engine}), {format_bytes(e.total_bytes)}\n"
                                      f"{e.reason}", False)
              for n, e in enumerate(answer.entries, 1)]
    return fit_embed({"title": clip(best_title(answer), 256), "color": INFO_COLOUR,
                      "fields": fields, "footer": {"text": "; ".join(answer.notes)}})


def compare_embed(answer: CompareAnswer) -> dict[str, Any]:
    """One inline field per cell, row by row: the setup on the GPU, then its answer."""
    fields = [_field(f"{c.row} · {c.column}", c.summary, True) for c in answer.cells]
    return fit_embed({"title": "Comparison", "color": INFO_COLOUR, "fields": fields})
