"""The Report: the one answer every surface renders and `fits --json` prints (design.md keys)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


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


class Speed(_Model):
    decode_tokens_per_s: float | None
    prefill_seconds: float | None
    bound: str
    step_seconds: float | None = None  # training: one optimizer step over all GPUs
    train_tokens_per_s: float | None = None


class Report(_Model):
    request: dict[str, object]
    model: ModelInfo
    gpu: GpuInfo
    engine: str
    total_bytes: int
    breakdown: Breakdown
    fits: bool
    verdict: str  # fits | tight | no
    headroom_bytes: int
    max_context: int | None
    max_batch: int | None
    best_quant: str | None
    suggestions: list[Suggestion]
    speed: Speed
    engine_details: dict[str, object]
    assumptions: list[str]
    warnings: list[str]
