"""The JSON API's bodies (GET/POST /api/v1/fits): the Report as `fits --json` prints it, and the
other answers as small objects."""

from __future__ import annotations

import json

from adapters.render import render
from core.answer import Answer, GpuListAnswer, HelpAnswer, ModelListAnswer
from core.errors import UserError
from core.report import Report


class JsonRenderer:
    """JSON text of each kind of answer."""

    def report(self, report: Report) -> str:
        return report.model_dump_json()

    def help(self, answer: HelpAnswer) -> str:
        return json.dumps({"text": answer.text})

    def gpus(self, answer: GpuListAnswer) -> str:
        return json.dumps({"gpus": [
            {"name": g.name, "vendor": g.vendor, "memory_bytes": g.memory_bytes,
             "bandwidth_gbs": g.bandwidth_gbs, "tflops_fp16": g.tflops_fp16}
            for g in answer.gpus], "more": answer.more})

    def models(self, answer: ModelListAnswer) -> str:
        body: dict[str, object] = {"models": answer.ids, "more": answer.more,
                                   "more_on_hub": answer.more_on_hub}
        if answer.note:
            body["note"] = answer.note
        return json.dumps(body)

    def error(self, error: UserError) -> str:
        return json.dumps({"error": error.message, "hint": error.hint})


JSON = JsonRenderer()


def answer_json(answer: Answer) -> str:
    return render(answer, JSON)
