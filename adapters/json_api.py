"""The JSON API's bodies (GET/POST /api/v1/fits): the Report as `fits --json` prints it, and the
other answers as small objects."""

from __future__ import annotations

import json

from adapters.render import render
from core.answer import Answer
from core.answers import GpuListAnswer, HelpAnswer, ModelListAnswer
from core.compare import CompareAnswer
from core.errors import UserError
from core.ranking import BestAnswer
from core.report import Report, report_as_dict, report_json_text


class JsonRenderer:
    """JSON text of each kind of answer."""

    def report(self, report: Report) -> str:
        return report_json_text(report)

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

    def best(self, answer: BestAnswer) -> str:
        return json.dumps(best_json(answer))

    def compare(self, answer: CompareAnswer) -> str:
        return json.dumps(compare_json(answer))

    def error(self, error: UserError) -> str:
        return json.dumps({"error": error.message, "hint": error.hint})


JSON = JsonRenderer()


def answer_json(answer: Answer) -> str:
    return render(answer, JSON)


def best_json(answer: BestAnswer) -> dict[str, object]:
    """design.md's best answer: entries with id, quant, engine, total_bytes, fits, verdict,
    speed and a one-line reason, plus the command that gives each one's own answer."""
    return {"gpu": answer.gpu, "use": answer.use, "considered": answer.considered,
            "fitting": answer.fitting, "notes": list(answer.notes), "entries": [
                {"id": e.id, "quant": e.quant, "engine": e.engine, "total_bytes": e.total_bytes,
                 "headroom_bytes": e.headroom_bytes, "fits": True, "verdict": e.verdict,
                 "speed": {"decode_tokens_per_s": e.decode_tokens_per_s}, "reason": e.reason,
                 "command": e.command, "released": e.released, "score": e.score}
                for e in answer.entries]}


def compare_json(answer: CompareAnswer) -> dict[str, object]:
    return {"rows": list(answer.rows), "columns": list(answer.columns), "cells": [
        {"row": c.row, "column": c.column, "command": c.command,
         "report": report_as_dict(c.report) if c.report else None, "error": c.error}
        for c in answer.cells]}
