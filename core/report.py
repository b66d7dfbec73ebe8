"""The Report: the one answer every surface renders and `fits --json` prints (design.md keys)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, GetCoreSchemaHandler, GetPydanticSchema
from pydantic_core import CoreSchema, core_schema

from core.engines.details import ReportDetails, as_json, from_tagged, to_tagged


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelInfo(_Model):
    id: str
    source: str  # snapshot | hub | config | size
    params: int
    active_params: int
    architecture: str
    exact_params: bool
    weight_format: str


class GpuInfo(_Model):
    name: str
    count: int
    memory_bytes: int
    usable_bytes: int
    usable_note: str
    runtime: str = "CUDA"  # CUDA | ROCm | Metal | SYCL | TPU | CPU: whose context the overhead is


class Breakdown(_Model):
    weights: int
    kv_cache: int
    activations: int
    gradients: int = 0
    optimizer: int = 0
    overhead: int


class Suggestion(_Model):
    change: str
    total_bytes: int
    fits: bool
    why: str = ""


class RuleFinding(_Model):
    """A rule of the engine that the request meets (core.rules): what it enforces (refuse) or
    warns about, and where the engine does it."""

    rule: str  # parallel | context | hardware | format
    severity: str  # refuse | warn
    message: str
    source: str


class RunInfo(_Model):
    """The command that runs the answer as it was answered (core/run_command.py)."""

    engine: str
    command: str
    notes: list[str] = []


class Speed(_Model):
    decode_tokens_per_s: float | None
    prefill_seconds: float | None
    bound: str
    step_seconds: float | None = None  # training: one optimizer step over all GPUs
    train_tokens_per_s: float | None = None
    # Serving: decode_tokens_per_s is each request's speed and prefill_seconds one prompt's time;
    # with batch > 1 these give all the sequences together and all their prompts.
    aggregate_decode_tokens_per_s: float | None = None
    batch_prefill_seconds: float | None = None
    parallelism: str | None = None  # several GPUs: how they share the work, in words


def _details_schema(source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
    """engine_details is built typed by core (no validation beyond its type) and written as the
    flat JSON object of core.engines.details.as_json."""
    return core_schema.is_instance_schema(
        ReportDetails, serialization=core_schema.plain_serializer_function_ser_schema(
            as_json, return_schema=core_schema.dict_schema(core_schema.str_schema(),
                                                          core_schema.any_schema())))


EngineDetailsField = Annotated[ReportDetails, GetPydanticSchema(_details_schema)]


class Report(_Model):
    request: dict[str, object]
    model: ModelInfo
    gpu: GpuInfo
    engine: str
    total_bytes: int
    breakdown: Breakdown
    fits: bool
    verdict: str  # fits | tight | split | no
    headroom_bytes: int
    max_context: int | None
    max_batch: int | None
    best_quant: str | None
    suggestions: list[Suggestion]
    speed: Speed
    engine_details: EngineDetailsField
    assumptions: list[str]
    warnings: list[str]
    reason: str | None = None  # why NO (the engine's refusal, vLLM's pool) or how it splits
    rules: list[RuleFinding] = []
    run: RunInfo | None = None  # how to run it, when it fits


def report_to_json(report: Report) -> str:
    """The report as JSON that ``report_from_json`` turns back into an equal Report (the JSON
    `fits --json` prints flattens engine_details and cannot): what a shared cache stores."""
    body = report.model_dump(mode="json", exclude={"engine_details"})
    return json.dumps({"report": body, "details": to_tagged(report.engine_details)},
                      separators=(",", ":"))


def report_from_json(text: str | bytes) -> Report:
    """The Report ``report_to_json`` wrote; ValueError (pydantic's included) for anything else."""
    data = json.loads(text)
    if not isinstance(data, dict) or not isinstance(data.get("report"), dict):
        raise ValueError("not a stored report")
    details = from_tagged(data.get("details"))
    if not isinstance(details, ReportDetails):
        raise ValueError("a stored report without its engine details")
    return Report.model_validate({**data["report"], "engine_details": details})
