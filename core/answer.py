"""The offline path from a parsed command to a Report: snapshot (or uploaded config or size),
GPU catalogue, estimate. The Hub path (issue 5) wraps the same steps around a fetched config."""

from __future__ import annotations

from typing import Any

from core.estimate import build_report
from core.gpus import resolve_gpu
from core.parser import EstimateCommand
from core.report import Report
from core.resolve import from_config, resolve_offline


def estimate_command(command: EstimateCommand, config: dict[str, Any] | None = None) -> Report:
    request = command.request
    if config is not None:
        model = from_config(request.model, config, "config")
    else:
        model = resolve_offline(request.model)
    gpu = resolve_gpu(request.gpu)
    notes = tuple(n for n in command.notes if "left for the engine" not in n)
    return build_report(request, model, gpu, notes)
