"""The vocabulary of the rules: a case, a finding, a fix."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from core.formats import WeightFormat
    from core.gpus import GpuSelection
    from core.request import EstimateRequest
    from core.spec import ModelSpec

Severity = Literal["refuse", "warn"]


@dataclass(frozen=True)
class Fix:
    """A change that answers a refusal: the words to type and the request fields they set."""

    change: str  # as the user would type it: "tp=2", "ctx=4096", "engine=llama.cpp"
    why: str
    fields: dict[str, object] = field(default_factory=dict)
    gpus: int | None = None  # a different GPU count (using fewer of the given GPUs)


@dataclass(frozen=True)
class Finding:
    """A rule of the engine that the request meets, and the fixes it accepts."""

    rule: str  # parallel | context | hardware | format
    severity: Severity
    message: str  # one sentence, in the engine's terms
    source: str  # where the engine does it
    fixes: tuple[Fix, ...] = ()


@dataclass(frozen=True)
class Case:
    """What the rules look at: the request as resolved to an engine, a format and GPUs."""

    request: EstimateRequest
    spec: ModelSpec
    gpu: GpuSelection
    engine: str
    fmt: WeightFormat
    explicit_dtype: bool = False  # the user typed the 16-bit dtype (vLLM refuses bf16, not auto)


def engine_name(engine: str) -> str:
    return {"hf": "transformers", "vllm": "vLLM", "sglang": "SGLang", "tgi": "TGI",
            "exllamav2": "ExLlamaV2", "ollama": "Ollama"}.get(engine, engine)
