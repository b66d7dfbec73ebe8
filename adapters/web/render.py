"""The web page's HTML for every kind of answer: the page with its form, or the answer alone
(the fragment the page's script swaps in). Jinja2 with autoescaping on: no text the user typed
or the Hub returned reaches the page unescaped; the charts are SVG built with escaped text."""

from __future__ import annotations

from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from adapters.charts import breakdown_svg, compare_svg, context_svg
from adapters.text import (
    best_rows,
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
from core.curve import Curve
from core.errors import UserError
from core.parser import with_change
from core.ranking import BestAnswer
from core.report import Report
from core.units import format_bytes


@cache
def _env() -> Environment:
    return Environment(loader=PackageLoader("adapters.web", "templates"),
                       autoescape=select_autoescape(["j2", "html"]), trim_blocks=True,
                       lstrip_blocks=True)


def context(q: str, answer: Answer | None, error: UserError | None,
            curve: Curve | None = None) -> dict[str, Any]:
    """What the templates show for one question."""
    out: dict[str, Any] = {"q": q, "error": error, "report": None, "table": None, "text": None,
                           "chart_svg": None}
    if isinstance(answer, Report):
        out.update(_report(q, answer, curve))
    elif isinstance(answer, BestAnswer):
        rows = best_rows(answer)
        out.update(table=rows, table_title=best_title(answer), table_notes=answer.notes)
    elif isinstance(answer, CompareAnswer):
        out.update(table=answer.table(), table_title="Comparison", table_notes=[
            f"{c.row} on {c.column}: {c.error}" for c in answer.cells if c.error],
            chart_svg=compare_svg(answer))
    elif isinstance(answer, GpuListAnswer):
        out.update(table=[["GPU", "memory", "GB/s"], *[[g.name, format_bytes(g.memory_bytes),
                                                       f"{g.bandwidth_gbs or 0:g}"]
                                                      for g in answer.gpus]],
                   table_title=f"GPUs matching {answer.query}" if answer.query else "GPUs",
                   table_notes=[answer.more_line] if answer.more_line else [])
    elif isinstance(answer, ModelListAnswer):
        out.update(table=[["model"], *[[i] for i in answer.ids]],
                   table_title=f"Models matching {answer.query}",
                   table_notes=[n for n in (answer.more_line, answer.note) if n])
    elif isinstance(answer, HelpAnswer):
        out["text"] = answer.text
    return out


def _report(q: str, report: Report, curve: Curve | None) -> dict[str, Any]:
    return {
        "report": report, "headline": verdict_sentence(report),
        "bar_svg": breakdown_svg(report), "curve_svg": context_svg(curve) if curve else None,
        "rows": [(name, format_bytes(v)) for name, v in breakdown_rows(report)],
        "total": format_bytes(report.total_bytes), "usable": format_bytes(report.gpu.usable_bytes),
        "limits": limits_line(report), "speed": speed_line(report),
        "engine_lines": [line.strip() for line in engine_lines(report)],
        "suggestions_title": suggestions_title(report),
        "suggestions": [{"change": s.change, "total": format_bytes(s.total_bytes), "why": s.why,
                         "q": with_change(q, s.change)} for s in report.suggestions],
    }


QUANTS = ("", "q4", "q8", "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0", "fp16", "bf16", "fp8", "awq",
          "gptq", "nf4", "int8", "mxfp4")
ENGINES = ("", "llama.cpp", "ollama", "vllm", "sglang", "tgi", "hf", "exllamav2")
TRAINS = ("", "lora", "qlora", "full")


def page(q: str, answer: Answer | None, error: UserError | None, models: list[str],
         share_url: str | None = None, curve: Curve | None = None,
         fields: dict[str, str] | None = None, gpus: list[str] | None = None) -> str:
    ctx = context(q, answer, error, curve)
    title = "fits: can my GPU run this LLM?"
    description = "Memory, verdict and speed for any LLM on your GPU, per engine."
    if isinstance(answer, Report):
        title = verdict_sentence(answer)[:200]
        description = (f"needs {format_bytes(answer.total_bytes)} of "
                       f"{format_bytes(answer.gpu.usable_bytes)} usable")
    elif error is not None:
        title = error.message[:200]
    return _env().get_template("page.html.j2").render(
        **ctx, title=title, description=description, models=models, share_url=share_url,
        fields=fields or {}, gpus=gpus or [], quants=QUANTS, engines=ENGINES, trains=TRAINS)


def fragment(q: str, answer: Answer | None, error: UserError | None,
             curve: Curve | None = None) -> str:
    return _env().get_template("answer.html.j2").render(**context(q, answer, error, curve))


FIELD_KEYS = ("gpu", "ctx", "engine", "batch", "train")


def question_from_fields(fields: dict[str, str]) -> str:
    """The command language for the form's parts (model first, then the quantization and the
    keys given); empty when no model was given."""
    model = fields.get("model", "").strip()
    if not model:
        return ""
    words = [model]
    if quant := fields.get("quant", "").strip():
        words.append(quant)
    for key in FIELD_KEYS:
        value = fields.get(key, "").strip()
        if value:
            words.append(f'{key}="{value}"' if " " in value else f"{key}={value}")
    return " ".join(words)
