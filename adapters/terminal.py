"""The terminal's rendering of every kind of answer (the `fits` CLI): the text report or, with
--json, the Report as JSON; GPU and model lists as plain lines."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from adapters.render import render
from core.answers import GpuListAnswer, HelpAnswer, ModelListAnswer
from core.units import format_bytes

if TYPE_CHECKING:
    from core.answer import Answer
    from core.compare import CompareAnswer
    from core.errors import UserError
    from core.ranking import BestAnswer
    from core.report import Report

# The CLI's own way to give a config.json, for errors where one would help.
CONFIG_WAY = "Or pass its config.json: fits --config config.json \"<model> ...\"."


class TerminalRenderer:
    def __init__(self, as_json: bool = False) -> None:
        self.as_json = as_json

    def report(self, report: Report) -> str:
        if self.as_json:
            from core.report import report_json_text

            return report_json_text(report, indent=2)
        from adapters.text import render_text  # loads only when a report is shown

        return render_text(report)

    def help(self, answer: HelpAnswer) -> str:
        return answer.text

    def gpus(self, answer: GpuListAnswer) -> str:
        rows = [f"{g.name:<40} {format_bytes(g.memory_bytes):>10}  "
                f"{g.bandwidth_gbs or 0:>7g} GB/s  {g.tflops_fp16 or 0:>6g} TFLOPS"
                for g in answer.gpus]
        if not rows:
            return f"No GPU matches '{answer.query}'. Try a name such as 4090 or a100."
        return "\n".join([*rows, *([answer.more_line] if answer.more_line else [])])

    def models(self, answer: ModelListAnswer) -> str:
        lines = list(answer.ids) or [f"No model matches '{answer.query}'."]
        more = [answer.more_line] if answer.more_line and answer.ids else []
        return "\n".join([*lines, *more, *([f"note: {answer.note}"] if answer.note else [])])

    def best(self, answer: BestAnswer) -> str:
        from adapters.json_api import best_json
        from adapters.text import render_best

        return json.dumps(best_json(answer), indent=2) if self.as_json else render_best(answer)

    def compare(self, answer: CompareAnswer) -> str:
        from adapters.json_api import compare_json
        from adapters.text import render_compare

        return json.dumps(compare_json(answer), indent=2) if self.as_json else \
            render_compare(answer)

    def error(self, error: UserError) -> str:
        hint = error.hint_with(CONFIG_WAY)
        return f"error: {error.message}" + (f"\nhint: {hint}" if hint else "")


def render_terminal(answer: Answer, as_json: bool = False) -> str:
    return render(answer, TerminalRenderer(as_json))
