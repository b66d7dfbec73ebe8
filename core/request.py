"""The normalized request every surface builds, and the vocabulary of its values."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Engine = Literal["hf", "vllm", "llama.cpp", "ollama", "exllamav2", "sglang", "tgi"]
KvCacheType = Literal["fp16", "bf16", "fp8", "q8", "q4"]
Attention = Literal["eager", "sdpa", "flash"]

# Formats that are not GGUF presets. int8/nf4/fp4 are bitsandbytes; gptq/awq default to 4 bits.
PLAIN_QUANTS = ("fp32", "fp16", "bf16", "fp8", "mxfp4", "int8", "nf4", "fp4", "gptq", "awq", "exl2")
# llama.cpp `llama-quantize` presets (the names `llama-quantize --help` lists), upper case.
GGUF_PRESETS = (
    "F32", "F16", "BF16", "Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q5_1", "Q5_0", "Q4_K_M", "Q4_K_S",
    "Q4_1", "Q4_0", "IQ4_XS", "IQ4_NL", "Q3_K_L", "Q3_K_M", "Q3_K_S", "IQ3_M", "IQ3_S", "IQ3_XS",
    "IQ3_XXS", "Q2_K", "Q2_K_S", "IQ2_M", "IQ2_S", "IQ2_XS", "IQ2_XXS", "IQ1_M", "IQ1_S",
    "TQ2_0", "TQ1_0", "MXFP4_MOE",
)
# Generic levels; what they mean depends on the engine (the answer says what it assumed).
GENERIC_QUANTS = ("q8", "q6", "q5", "q4", "q3", "q2", "int4")


class EstimateRequest(BaseModel):
    """One question, with every default filled in. What `fits --json` echoes under "request"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(description="Hub repo id, alias, bare size like '7b', or 'config' for an upload")
    quant: str | None = Field(
        default=None,
        description="fp16, bf16, int8, nf4, gptq, awq, exl2, a GGUF preset (Q4_K_M), or q4/q8; "
        "None means the model's own dtype",
    )
    bits: float | None = Field(default=None, description="bits per weight for exl2/gptq/awq")
    ctx: int = Field(default=4096, ge=1, le=10_485_760)
    batch: int = Field(default=1, ge=1, le=65_536)
    gpu: str = Field(default="24GB", description="GPU as typed: 24GB, 4090, 2x3090, a100-80g ...")
    engine: Engine | None = Field(default=None, description="None: chosen from the quantization")
    kv: KvCacheType = "fp16"
    util: float = Field(default=0.9, gt=0.0, le=1.0, description="vLLM gpu_memory_utilization")
    tp: int = Field(default=1, ge=1, le=1024, description="tensor-parallel GPUs")
    prompt: int | None = Field(default=None, ge=1, description="prompt tokens; None: ctx")
    gen: int = Field(default=256, ge=1, description="generated tokens, for speed")
    attn: Attention = "sdpa"
    gpu_given: bool = Field(default=True, description="False when gpu= was not typed")
