"""The Report: the one answer every surface renders and `fits --json` prints (design.md keys)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields, is_dataclass
from types import NoneType, UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints

from core.engines.details import ReportDetails, as_json, from_tagged, to_tagged


# Plain dataclasses, not pydantic models: core builds every Report itself, so there is nothing to
# validate on the way out, and pydantic's import and schema building were most of the CLI's
# start-up. The JSON is written by ``report_as_dict`` (the same keys and order pydantic wrote);
# what comes back from outside (a shared cache) is checked by ``report_from_json``.
@dataclass(slots=True, kw_only=True)
class ModelInfo:
    """The model as resolved: where it came from, its parameters, its weights' format."""

    id: str
    source: str  # snapshot | hub | config | size
    params: int
    active_params: int
    architecture: str
    exact_params: bool
    weight_format: str


@dataclass(slots=True, kw_only=True)
class GpuInfo:
    """The GPUs asked about: how many, their memory and what of it a model may use."""

    name: str
    count: int
    memory_bytes: int
    usable_bytes: int
    usable_note: str
    runtime: str = "CUDA"  # CUDA | ROCm | Metal | SYCL | TPU | CPU: whose context the overhead is


@dataclass(slots=True, kw_only=True)
class Breakdown:
    """Peak memory per GPU by part, in bytes."""

    weights: int
    kv_cache: int
    activations: int
    gradients: int = 0
    optimizer: int = 0
    overhead: int


@dataclass(slots=True, kw_only=True)
class Suggestion:
    """A change to the question (ctx=8192, Q4_K_M) and the total it gives."""

    change: str
    total_bytes: int
    fits: bool
    why: str = ""


@dataclass(slots=True, kw_only=True)
class RuleFinding:
    """A rule of the engine that the request meets (core.rules): what it enforces (refuse) or
    warns about, and where the engine does it."""

    rule: str  # parallel | context | hardware | format
    severity: str  # refuse | warn
    message: str
    source: str


@dataclass(slots=True, kw_only=True)
class RunInfo:
    """The command that runs the answer as it was answered (core/run_command.py)."""

    engine: str
    command: str
    notes: list[str] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class Speed:
    """Roughly how fast it runs: decode, prefill and, for training, a step."""

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


@dataclass(slots=True, kw_only=True)
class Report:
    """The answer to one question: the verdict, the peak and its parts, what fits instead."""

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
    engine_details: ReportDetails
    assumptions: list[str]
    warnings: list[str]
    reason: str | None = None  # why NO (the engine's refusal, vLLM's pool) or how it splits
    rules: list[RuleFinding] = field(default_factory=list)
    run: RunInfo | None = None  # how to run it, when it fits


def report_as_dict(report: Report) -> dict[str, Any]:
    """The report as the JSON object `fits --json` prints (engine_details flattened by
    core.engines.details.as_json; a number that is not finite as null, as pydantic wrote it)."""
    body: dict[str, Any] = _finite(as_json(report))
    return body


def report_json_text(report: Report, indent: int | None = None) -> str:
    """``report_as_dict`` as JSON text: compact without ``indent``, UTF-8 as it is."""
    separators = (",", ":") if indent is None else (",", ": ")
    return json.dumps(report_as_dict(report), ensure_ascii=False, indent=indent,
                      separators=separators)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def report_to_json(report: Report) -> str:
    """The report as JSON that ``report_from_json`` turns back into an equal Report (the JSON
    `fits --json` prints flattens engine_details and cannot): what a shared cache stores."""
    body = {k: v for k, v in as_json(report).items() if k != "engine_details"}
    return json.dumps({"report": body, "details": to_tagged(report.engine_details)},
                      separators=(",", ":"))


def report_from_json(text: str | bytes) -> Report:
    """The Report ``report_to_json`` wrote; ValueError for anything else (a missing or unknown
    key, a value of the wrong kind)."""
    data = json.loads(text)
    if not isinstance(data, dict) or not isinstance(data.get("report"), dict):
        raise ValueError("not a stored report")
    details = from_tagged(data.get("details"))
    if not isinstance(details, ReportDetails):
        raise ValueError("a stored report without its engine details")
    report: Report = _load(Report, {**data["report"], "engine_details": details})
    return report


def _load(cls: type, data: object) -> Any:
    """An instance of the dataclass ``cls`` from JSON ``data``, each value checked against its
    field's type."""
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__}: an object is needed")
    hints = _hints(cls)
    unknown = set(data) - hints.keys()
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown key {sorted(unknown)[0]!r}")
    values = {name: _typed(hints[name], value, name) for name, value in data.items()}
    try:
        return cls(**values)
    except TypeError as exc:  # a field without a default is missing
        raise ValueError(f"{cls.__name__}: {exc}") from None


def _typed(kind: Any, value: object, name: str) -> Any:
    origin = get_origin(kind)
    if origin is Union or origin is UnionType:
        options = get_args(kind)
        if value is None and NoneType in options:
            return None
        (kind,) = [t for t in options if t is not NoneType]
        return _typed(kind, value, name)
    if origin is list:
        if not isinstance(value, list):
            raise ValueError(f"{name}: a list is needed")
        (item,) = get_args(kind)
        return [_typed(item, x, name) for x in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{name}: an object is needed")
        return dict(value)
    if kind is ReportDetails:
        return value  # built by from_tagged
    if isinstance(kind, type) and is_dataclass(kind):
        return _load(kind, value)
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, bool):
        raise ValueError(f"{name}: a whole number is needed")
    if isinstance(value, kind):
        return value
    raise ValueError(f"{name}: {kind.__name__} is needed")


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        hints = get_type_hints(cls)
        _HINTS[cls] = {f.name: hints[f.name] for f in fields(cls)}
    return _HINTS[cls]
