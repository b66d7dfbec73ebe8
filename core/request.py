"""The normalized request every surface builds, and the vocabulary of its values."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

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

__all__ = ["GENERIC_QUANTS", "GGUF_PRESETS", "PLAIN_QUANTS", "EstimateRequest"]


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
    version: str | None = Field(default=None, pattern=r"^\d{1,3}(\.\d{1,4}){0,2}$",
                                description="the engine's release where its memory behaviour "
                                "changed between releases (vLLM); None: the current one")
    tp: int = Field(default=1, ge=1, le=1024, description="tensor-parallel GPUs")
    pp: int = Field(default=1, ge=1, le=1024, description="pipeline-parallel stages")
    prompt: int | None = Field(default=None, ge=1, description="prompt tokens; None: ctx")
    gen: int = Field(default=256, ge=1, description="generated tokens, for speed")
    attn: Attention = "sdpa"
    mode: Mode = "infer"
    train: TrainMethod = Field(default="full", description="with mode=train")
    r: int = Field(default=16, ge=1, le=4096, description="LoRA rank")
    target: LoraTarget = Field(default="all", description="LoRA on q and v (PEFT's Llama default), all attention "
                                "projections, or every linear layer")
    optim: Optimizer = "adamw"
    gc: bool | None = Field(default=None, description="gradient checkpointing; None: per method")
    precision: Precision | None = Field(default=None, description="None: per method")
    zero: int = Field(default=0, ge=0, le=3, description="ZeRO stage; FSDP full shard = 3")
    offload: Literal["none", "cpu"] = "none"
    # full: logits of every token in bf16, upcast to fp32 for the loss (transformers);
    # chunked: the head and loss run over chunks (torchtune); fused: a fused linear +
    # cross-entropy kernel never holds the logits (Liger, Cut Cross-Entropy, Unsloth).
    loss: Literal["full", "chunked", "fused"] = "full"
    framework: Framework | None = Field(default=None, description="the training framework "
                                        "whose defaults apply (core/frameworks.py)")
    act_offload: bool = Field(default=False, description="checkpointed activations kept in CPU "
                              "RAM (Unsloth's checkpointing, torchtune's activation offloading)")
    opt_in_bwd: bool = Field(default=False, description="the optimizer steps each parameter in "
                             "backward, so no full set of gradients is alive (torchtune)")
    bnb: str | None = Field(default=None, pattern=r"^\d{1,3}(\.\d{1,4}){0,2}$",
                            description="the bitsandbytes release behind QLoRA; before 0.43.2 "
                            "its 4-bit layers kept their inputs for backward; None: current")
    gpu_given: bool = Field(default=True, description="False when gpu= was not typed")
    # The CPU side (llama.cpp and Ollama): what runs from system RAM, and how fast.
    cpu: str | None = Field(default=None, max_length=100,
                            description="CPU as typed: 7950x, i9-13900k, m2-max; None: assumed")
    ram: int | None = Field(default=None, ge=1 << 30, le=1 << 44,
                            description="system RAM in bytes; None: 32 GB assumed")
    ram_speed: int | None = Field(default=None, ge=400, le=20_000,
                                  description="memory speed in MT/s (ram=64GB@6000)")
    membw: float | None = Field(default=None, gt=0, le=20_000,
                                description="RAM bandwidth in GB/s; overrides cpu= and ram speed")
    ngl: int | None = Field(default=None, ge=0, le=1000,
                            description="layers on the GPU (llama.cpp -ngl); None: as many as fit")
    fa: bool | None = Field(default=None, description="llama.cpp/Ollama flash attention (-fa "
                            "on|off); None: auto, on where the device supports it")
