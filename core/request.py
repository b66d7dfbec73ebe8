"""The normalized request every surface builds, and the vocabulary of its values.

A plain frozen dataclass: the CLI builds one per answer and the estimator copies it per
suggestion, and a pydantic model cost the CLI about 100 ms of imports and schema building. The
bounds pydantic checked are a table here, applied by ``checked_request`` where requests come in
from outside (the parser; stored answers); copies made inside core are not re-checked."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal, get_args

from core.vocabulary import GENERIC_QUANTS, GGUF_PRESETS, PLAIN_QUANTS

Engine = Literal["hf", "vllm", "llama.cpp", "ollama", "exllamav2", "sglang", "tgi"]
KvCacheType = Literal["fp16", "bf16", "fp8", "q8", "q4"]
Attention = Literal["eager", "sdpa", "flash"]
Mode = Literal["infer", "train"]
TrainMethod = Literal["full", "lora", "qlora"]
LoraTarget = Literal["qv", "attn", "all"]
# The training frameworks with presets (core/frameworks.py).
Framework = Literal["hf", "trl", "axolotl", "llama-factory", "unsloth", "torchtune", "litgpt",
                    "fsdp"]
Optimizer = Literal["adamw", "adamw8bit", "paged_adamw8bit", "sgd", "adafactor"]
# mixed: fp32 weights with bf16 autocast (HF Trainer, fp32-loaded model, bf16=True);
# bf16: everything in bf16, no fp32 master copy; fp32: no reduced precision at all.
Precision = Literal["mixed", "bf16", "fp32"]

__all__ = [
    "DEFAULT_GPU",
    "FIELD_NAMES",
    "GENERIC_QUANTS",
    "GGUF_PRESETS",
    "PLAIN_QUANTS",
    "EstimateRequest",
    "FieldError",
    "checked_request",
]

DEFAULT_GPU = "24GB"
_RELEASE = r"^\d{1,3}(\.\d{1,4}){0,2}$"  # 0.4, 0.43.2


@dataclass(frozen=True, slots=True)
class Check:
    """What a field accepts: its kind, whether None is allowed, and its bounds."""

    kind: Literal["int", "float", "str", "bool"]
    optional: bool = False
    ge: float | None = None
    le: float | None = None
    gt: float | None = None
    choices: tuple[str, ...] = ()
    pattern: str | None = None
    max_length: int | None = None


def _meta(check: Check) -> dict[str, Check]:
    return {"check": check}


@dataclass(frozen=True, slots=True)
class EstimateRequest:
    """One question, with every default filled in. What `fits --json` echoes under "request"
    (every field but ``given``)."""

    # Hub repo id, alias, bare size like '7b', or 'config' for an upload.
    model: str = field(metadata=_meta(Check("str")))
    # fp16, bf16, int8, nf4, gptq, awq, exl2, a GGUF preset (Q4_K_M), or q4/q8; None means the
    # model's own dtype.
    quant: str | None = field(default=None, metadata=_meta(Check("str", True)))
    bits: float | None = field(default=None, metadata=_meta(Check("float", True)))  # exl2/gptq/awq
    ctx: int = field(default=4096, metadata=_meta(Check("int", ge=1, le=10_485_760)))
    batch: int = field(default=1, metadata=_meta(Check("int", ge=1, le=65_536)))
    gpu: str = field(default=DEFAULT_GPU, metadata=_meta(Check("str")))  # as typed: 2x3090 ...
    engine: Engine | None = field(default=None, metadata=_meta(
        Check("str", True, choices=get_args(Engine))))  # None: chosen from the quantization
    kv: KvCacheType = field(default="fp16", metadata=_meta(
        Check("str", choices=get_args(KvCacheType))))
    util: float = field(default=0.9, metadata=_meta(Check("float", gt=0.0, le=1.0)))  # vLLM's
    # The engine's release where its memory behaviour changed between releases (vLLM); None: the
    # current one.
    version: str | None = field(default=None, metadata=_meta(Check("str", True, pattern=_RELEASE)))
    tp: int = field(default=1, metadata=_meta(Check("int", ge=1, le=1024)))  # tensor parallel
    pp: int = field(default=1, metadata=_meta(Check("int", ge=1, le=1024)))  # pipeline stages
    prompt: int | None = field(default=None, metadata=_meta(Check("int", True, ge=1)))  # None: ctx
    gen: int = field(default=256, metadata=_meta(Check("int", ge=1)))  # generated, for speed
    attn: Attention = field(default="sdpa", metadata=_meta(
        Check("str", choices=get_args(Attention))))
    mode: Mode = field(default="infer", metadata=_meta(Check("str", choices=get_args(Mode))))
    train: TrainMethod = field(default="full", metadata=_meta(
        Check("str", choices=get_args(TrainMethod))))  # with mode=train
    r: int = field(default=16, metadata=_meta(Check("int", ge=1, le=4096)))  # LoRA rank
    # LoRA on q and v (PEFT's Llama default), all attention projections, or every linear layer.
    target: LoraTarget = field(default="all", metadata=_meta(
        Check("str", choices=get_args(LoraTarget))))
    optim: Optimizer = field(default="adamw", metadata=_meta(
        Check("str", choices=get_args(Optimizer))))
    gc: bool | None = field(default=None, metadata=_meta(Check("bool", True)))  # None: per method
    precision: Precision | None = field(default=None, metadata=_meta(
        Check("str", True, choices=get_args(Precision))))  # None: per method
    zero: int = field(default=0, metadata=_meta(Check("int", ge=0, le=3)))  # FSDP full shard = 3
    offload: Literal["none", "cpu"] = field(default="none", metadata=_meta(
        Check("str", choices=("none", "cpu"))))
    # full: logits of every token in bf16, upcast to fp32 for the loss (transformers);
    # chunked: the head and loss run over chunks (torchtune); fused: a fused linear +
    # cross-entropy kernel never holds the logits (Liger, Cut Cross-Entropy, Unsloth).
    loss: Literal["full", "chunked", "fused"] = field(default="full", metadata=_meta(
        Check("str", choices=("full", "chunked", "fused"))))
    # The training framework whose defaults apply (core/frameworks.py).
    framework: Framework | None = field(default=None, metadata=_meta(
        Check("str", True, choices=get_args(Framework))))
    # Checkpointed activations kept in CPU RAM (Unsloth's checkpointing, torchtune's offloading).
    act_offload: bool = field(default=False, metadata=_meta(Check("bool")))
    # The optimizer steps each parameter in backward, so no full set of gradients is alive
    # (torchtune).
    opt_in_bwd: bool = field(default=False, metadata=_meta(Check("bool")))
    # The bitsandbytes release behind QLoRA; before 0.43.2 its 4-bit layers kept their inputs for
    # backward; None: current.
    bnb: str | None = field(default=None, metadata=_meta(Check("str", True, pattern=_RELEASE)))
    gpu_given: bool = field(default=True, metadata=_meta(Check("bool")))  # False: gpu= not typed
    # The CPU side (llama.cpp and Ollama): what runs from system RAM, and how fast.
    cpu: str | None = field(default=None, metadata=_meta(
        Check("str", True, max_length=100)))  # as typed: 7950x, m2-max; None: assumed
    ram: int | None = field(default=None, metadata=_meta(
        Check("int", True, ge=1 << 30, le=1 << 44)))  # bytes; None: 32 GB assumed
    ram_speed: int | None = field(default=None, metadata=_meta(
        Check("int", True, ge=400, le=20_000)))  # MT/s (ram=64GB@6000)
    membw: float | None = field(default=None, metadata=_meta(
        Check("float", True, gt=0, le=20_000)))  # GB/s; overrides cpu= and the RAM speed
    ngl: int | None = field(default=None, metadata=_meta(
        Check("int", True, ge=0, le=1000)))  # layers on the GPU (-ngl); None: as many as fit
    # llama.cpp/Ollama flash attention (-fa on|off); None: auto, on where the device supports it.
    fa: bool | None = field(default=None, metadata=_meta(Check("bool", True)))
    # The fields given when the request was made or changed: a training framework's defaults
    # apply to the others only (core/frameworks.py). Not part of the question's identity.
    given: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    def updated(self, **changes: Any) -> EstimateRequest:
        """A copy with ``changes``, which count as given (as if typed)."""
        return replace(self, given=self.given | changes.keys(), **changes)

    def as_dict(self) -> dict[str, Any]:
        """The fields as `fits --json` shows them under "request"."""
        return {name: getattr(self, name) for name in FIELD_NAMES}


_CHECKS: dict[str, Check] = {f.name: f.metadata["check"] for f in fields(EstimateRequest)
                             if "check" in f.metadata}
FIELD_NAMES: tuple[str, ...] = tuple(_CHECKS)


class FieldError(ValueError):
    """A field's value out of its bounds or of the wrong kind; ``bound`` is "ge", "le" or "gt"
    when a limit was crossed, with the ``limit``."""

    def __init__(self, name: str, bound: str | None = None, limit: float | None = None) -> None:
        super().__init__(f"{name}: {bound} {limit}" if bound else f"{name}: not valid")
        self.name, self.bound, self.limit = name, bound, limit


def checked_request(values: Mapping[str, Any]) -> EstimateRequest:
    """The request for ``values`` (field names to values), each checked against its field's
    kind and bounds; FieldError names the first that is not accepted. Every key given counts
    as given. Integral floats are taken for whole-number fields and whole numbers for floats,
    as JSON writes them."""
    if "model" not in values:
        raise FieldError("model")
    checked: dict[str, Any] = {}
    for name, value in values.items():
        check = _CHECKS.get(name)
        if check is None:
            raise FieldError(name)
        checked[name] = _checked(name, value, check)
    return EstimateRequest(**checked, given=frozenset(checked))


def _checked(name: str, value: Any, check: Check) -> Any:
    if value is None:
        if check.optional:
            return None
        raise FieldError(name)
    if check.kind == "bool":
        if not isinstance(value, bool):
            raise FieldError(name)
        return value
    if check.kind == "str":
        if not isinstance(value, str) or (check.choices and value not in check.choices):
            raise FieldError(name)
        if check.pattern is not None and not re.match(check.pattern, value):
            raise FieldError(name)
        if check.max_length is not None and len(value) > check.max_length:
            raise FieldError(name)
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FieldError(name)
    if check.kind == "int":
        if isinstance(value, float):
            if not value.is_integer():
                raise FieldError(name)
            value = int(value)
    else:
        value = float(value)
        if value != value or value in (float("inf"), float("-inf")):
            raise FieldError(name)
    if check.gt is not None and not value > check.gt:
        raise FieldError(name, "gt", check.gt)
    if check.ge is not None and value < check.ge:
        raise FieldError(name, "ge", check.ge)
    if check.le is not None and value > check.le:
        raise FieldError(name, "le", check.le)
    return value
