"""Markdown rendering of an Answer (GitHub-flavoured: tables, <details>, alerts).

The Report is rendered, never recomputed: the sentences come from adapters.text, the sizes from
core.units. Text that may hold what a user typed (a model or GPU name echoed in an assumption or
an error) goes through ``escape`` so that it cannot ping people (@name), cross-reference other
issues (org/repo#1) or inject HTML; what is a command goes in a code span.
"""

from __future__ import annotations

import re

from adapters.render import render
from adapters.text import (
    best_rows,
    best_title,
    breakdown_rows,
    kv_pool_phrase,
    limits_line,
    placement_lines,
    ram_facts,
    speed_line,
    suggestions_title,
    verdict_sentence,
)
from core.answer import Answer
from core.answers import GpuListAnswer, HelpAnswer, ModelListAnswer
from core.compare import CompareAnswer
from core.errors import ModelNotFound, UserError
from core.ranking import BestAnswer
from core.report import Report
from core.units import format_bytes

_HTML = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
# A zero-width space after @ and # keeps the text readable but stops mentions and references.
_MENTION = re.compile(r"([@#])(?=[\w-])")


def escape(text: str) -> str:
    """Plain text safe to drop into Markdown: no HTML, no @mentions, no #references."""
    return _MENTION.sub("\\1\u200b", text.translate(_HTML))


def cell(text: str) -> str:
    """``escape`` for a table cell: a pipe would end the cell, a newline the row."""
    return escape(text).replace("|", "\\|").replace("\n", " ")


def code_span(text: str) -> str:
    """``text`` as inline code, whatever backticks it holds (CommonMark's longer fence rule)."""
    text = text.replace("\n", " ")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def code_block(text: str) -> str:
    longest = max((len(run) for run in re.findall(r"`{3,}", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def _share(part: int, whole: int) -> str:
    return f"{round(100 * part / whole)}%" if whole > 0 else "-"


def verdict_line(report: Report) -> str:
    """adapters.text's verdict sentence with the verdict words in bold."""
    head, _, rest = verdict_sentence(report).partition(": ")
    return f"**{head}**: {escape(rest)}"


def breakdown_table(report: Report) -> str:
    usable = report.gpu.usable_bytes
    per = " per GPU" if report.gpu.count > 1 else ""
    lines = [f"| Memory{per} | Size | Share of {format_bytes(usable)} usable |",
             "| :-- | --: | --: |"]
    lines += [f"| {name} | {format_bytes(value)} | {_share(value, usable)} |"
              for name, value in breakdown_rows(report)]
    lines.append(f"| **total** | **{format_bytes(report.total_bytes)}** | "
                 f"**{_share(report.total_bytes, usable)}** |")
    return "\n".join(lines)


def _detail_items(report: Report) -> list[str]:
    """The engine's own figures: vLLM's KV capacity, CPU offload RAM, llama.cpp's split."""
    items = []
    kv_pool = kv_pool_phrase(report)
    if kv_pool:
        items.append(f"**KV cache:** {kv_pool}")
    items += [f"**{label}:** {value}" for label, value in ram_facts(report)]
    # llama.cpp/Ollama: what sits in VRAM and what in RAM (its partial offload among them)
    items += [escape(line.strip()) for line in placement_lines(report)]
    return items


def render_report(report: Report) -> str:
    """The whole Report: verdict, breakdown table, limits, speed, suggestions, warnings and
    assumptions (folded, as they are long and read by few)."""
    parts = [verdict_line(report), breakdown_table(report)]
    items = [f"**Limits:** {escape(limits_line(report))}"]
    if speed := speed_line(report):
        items.append(f"**Speed:** {escape(speed)}")
    items += _detail_items(report)
    parts.append("\n".join(f"- {item}" for item in items))
    if report.run is not None:
        notes = "".join(f"\n- {escape(note)}" for note in report.run.notes)
        parts.append(f"**Run it** ({escape(report.run.engine)}):\n\n```sh\n"
                     f"{report.run.command.replace('```', '` ` `')}\n```{notes}")
    if report.suggestions:
        rows = [f"| {code_span(s.change)} | {format_bytes(s.total_bytes)} | "
                f"{'yes' if s.fits else 'no'} | {cell(s.why)} |" for s in report.suggestions]
        parts.append(f"**{suggestions_title(report)}**\n\n| Change | Needs | Fits | Why |\n"
                     "| :-- | --: | :-: | :-- |\n" + "\n".join(rows))
    if report.warnings:
        parts.append("> [!WARNING]\n" + "\n".join(f"> {escape(w)}" for w in report.warnings))
    if report.assumptions:
        listed = "\n".join(f"- {escape(a)}" for a in report.assumptions)
        parts.append(f"<details><summary>Assumptions ({len(report.assumptions)})</summary>\n\n"
                     f"{listed}\n\n</details>")
    return "\n\n".join(parts)


def render_error(error: UserError) -> str:
    """A UserError: its sentence, its hint, and 'did you mean' ids when there are some."""
    lines = [f"**Sorry:** {escape(error.message)}"]
    if error.hint:
        lines.append(escape(error.hint))
    if isinstance(error, ModelNotFound) and error.suggestions:
        lines.append("Did you mean " + ", ".join(code_span(s) for s in error.suggestions) + "?")
    return "\n\n".join(lines)


def render_gpus(answer: GpuListAnswer) -> str:
    if not answer.gpus:
        return f"No GPU in the catalogue matches {code_span(answer.query)}."
    rows = [f"| {cell(g.name)} | {format_bytes(g.memory_bytes)} | "
            f"{'-' if g.bandwidth_gbs is None else f'{g.bandwidth_gbs:g}'} | "
            f"{'-' if g.tflops_fp16 is None else f'{g.tflops_fp16:g}'} |" for g in answer.gpus]
    more = f"\n\n{answer.more_line}" if answer.more_line else ""
    return ("| GPU | Memory | Bandwidth (GB/s) | FP16 TFLOPS |\n| :-- | --: | --: | --: |\n"
            + "\n".join(rows) + more)


def render_models(answer: ModelListAnswer) -> str:
    note = f"\n\n> {answer.note}" if answer.note else ""
    if not answer.ids:
        return f"No model matches {code_span(answer.query)}.{note}"
    more = f"\n\n{answer.more_line}" if answer.more_line else ""
    return "\n".join(f"- {code_span(model_id)}" for model_id in answer.ids) + more + note


def render_best(answer: BestAnswer) -> str:
    rows = best_rows(answer)
    if not answer.entries:
        return escape(best_title(answer))
    table = "| " + " | ".join(rows[0]) + " |\n| --: | :-- | :-- | --: | --: | :-- |\n" + "\n".join(
        f"| {r[0]} | {code_span(r[1])} | {cell(r[2])} | {r[3]} | {r[4]} | {cell(r[5])} |"
        for r in rows[1:])
    notes = "\n".join(f"- {escape(n)}" for n in answer.notes)
    return f"**{escape(best_title(answer))}**\n\n{table}\n\n{notes}"


def render_compare(answer: CompareAnswer) -> str:
    rows = answer.table()
    head = "| " + " | ".join(cell(h) for h in rows[0]) + " |\n| :-- |" + " :-- |" * len(
        answer.columns)
    body = "\n".join("| " + " | ".join(cell(c) for c in r) + " |" for r in rows[1:])
    return f"**Comparison**\n\n{head}\n{body}"


class MarkdownRenderer:
    """GitHub-flavoured Markdown (a GitHub comment)."""

    def report(self, report: Report) -> str:
        return render_report(report)

    def help(self, answer: HelpAnswer) -> str:
        return code_block(answer.text)

    def gpus(self, answer: GpuListAnswer) -> str:
        return render_gpus(answer)

    def models(self, answer: ModelListAnswer) -> str:
        return render_models(answer)

    def best(self, answer: BestAnswer) -> str:
        return render_best(answer)

    def compare(self, answer: CompareAnswer) -> str:
        return render_compare(answer)

    def error(self, error: UserError) -> str:
        return render_error(error)


MARKDOWN = MarkdownRenderer()


def render_answer(answer: Answer) -> str:
    """Any answer of the answering service as Markdown."""
    return render(answer, MARKDOWN)
