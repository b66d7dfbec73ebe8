"""Memory against context length for an answer, for the picture: the same engine model the
answer ran, at a grid of contexts from 1 token to the model's limit (or four times the asked
context when the model names none)."""

from __future__ import annotations

from dataclasses import dataclass

from core.cpus import host_for
from core.errors import ModelNotFound
from core.estimate import bind
from core.gpus import resolve_gpu
from core.report import Report
from core.request import FIELD_NAMES, EstimateRequest, checked_request
from core.resolve import ResolvedModel, resolve_offline

POINTS = 24


@dataclass(frozen=True)
class Curve:
    contexts: tuple[int, ...]
    totals: tuple[int, ...]  # bytes per GPU at each context
    usable_bytes: int
    asked: int  # the context the answer is for
    longest: int | None  # the longest that fits


def context_curve(request: EstimateRequest, model: ResolvedModel,
                  longest: int | None) -> Curve | None:
    """The curve for an inference answer on a GPU (None for training or no GPU)."""
    if request.mode != "infer" or request.gpu.strip().lower() in ("none", "cpu"):
        return None
    gpu = resolve_gpu(request.gpu)
    bound = bind(request, model, gpu, host_for(request, gpu), None)
    setup = bound.setup
    limit = setup.ctx_limit or model.spec.max_position or 4 * request.ctx
    top = max(limit, request.ctx, longest or 0)
    step = max(1, top // POINTS)
    contexts = sorted({min(top, max(1, i * step)) for i in range(1, POINTS + 1)} | {request.ctx})
    totals = tuple(setup.run(ctx=n, prompt=None).total for n in contexts)
    return Curve(tuple(contexts), totals, gpu.usable_bytes, request.ctx, longest)


def report_curve(report: Report) -> Curve | None:
    """The curve of an answer about a bundled model or a size (a Hub model would need its
    record again; none then)."""
    try:
        model = resolve_offline(report.model.id)
    except ModelNotFound:
        return None
    request = checked_request({k: v for k, v in report.request.items() if k in FIELD_NAMES})
    return context_curve(request, model, report.max_context)
