"""Training frameworks' own defaults (``framework=``): what each one allocates when the user
types nothing else. Every default cites the framework's source or docs at the version read
(../shared/docs/engines.md, section 8); explicit keys still win, and the answer lists what the
preset set.

What a preset can set: the precision (fp32 master weights or pure bf16), the loss (full logits,
chunked, fused), gradient checkpointing and where the checkpoints live (GPU, or CPU RAM when
offloaded), the optimizer and whether it steps inside backward, the LoRA rank, the method
(Unsloth loads in 4 bit), and whether PEFT's prepare_model_for_kbit_training upcasts the
non-quantized parameters to fp32 (the HF Trainer + PEFT recipe does; frameworks that prepare
their own way do not).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.request import EstimateRequest

FRAMEWORK_NAMES: dict[str, str] = {
    "hf": "hf", "transformers": "hf", "trainer": "hf", "peft": "hf", "trl": "trl",
    "sft": "trl", "sfttrainer": "trl", "axolotl": "axolotl", "llama-factory": "llama-factory",
    "llamafactory": "llama-factory", "llama_factory": "llama-factory", "unsloth": "unsloth",
    "torchtune": "torchtune", "litgpt": "litgpt", "lit-gpt": "litgpt", "fsdp": "fsdp",
    "accelerate": "fsdp", "fsdp_qlora": "fsdp", "fsdp-qlora": "fsdp",
}


@dataclass(frozen=True)
class Default:
    """One default a framework sets, with where its code sets it."""

    key: str  # a request field
    value: object
    why: str  # the source, at its version
    only_for: tuple[str, ...] = ()  # train methods it applies to (empty: all)


@dataclass(frozen=True)
class Preset:
    """A training framework's defaults, and whether PEFT's kbit preparation runs."""

    name: str
    label: str
    defaults: tuple[Default, ...]
    peft_upcast: bool  # PEFT's prepare_model_for_kbit_training casts 16-bit params to fp32
    upcast_why: str


HF_TRAINER = "transformers@5.25.0 training_args.py; accelerate prepare_model leaves the dtype"
PRESETS: dict[str, Preset] = {
    "hf": Preset("hf", "Hugging Face Trainer + PEFT", (
        Default("precision", "bf16", "from_pretrained loads the checkpoint's dtype (dtype='auto', "
                "transformers 5.25 modeling_utils.py) and the Trainer's bf16 autocast does not "
                "recast the weights (accelerate accelerator.py prepare_model): pure bf16",
                ("full",)),
        Default("gc", False, f"gradient_checkpointing off by default ({HF_TRAINER})", ("full",)),
    ), True, "PEFT's prepare_model_for_kbit_training casts every non-quantized 16-bit parameter "
             "to fp32 (peft utils/other.py)"),
    "trl": Preset("trl", "TRL SFTTrainer", (
        Default("precision", "mixed", "SFTTrainer loads a model id in float32 (trl v1.9 "
                "trainer/utils.py create_model_from_path) and trains with bf16 autocast",
                ("full",)),
        Default("gc", True, "gradient_checkpointing=True (trl v1.9 trainer/base_config.py)"),
        Default("loss", "chunked", "loss_type='chunked_nll' (trl v1.9 sft_config.py)"),
    ), True, "PEFT's prepare_model_for_kbit_training casts every non-quantized 16-bit parameter "
             "to fp32 (peft utils/other.py)"),
    "axolotl": Preset("axolotl", "Axolotl", (
        Default("precision", "bf16", "bf16: auto loads the model in bf16 on a bf16 GPU and the HF "
                "Trainer keeps that dtype (axolotl v0.18 utils/config resolve_dtype)", ("full",)),
        Default("gc", False, "gradient_checkpointing: False (axolotl v0.18 schemas/config.py)"),
    ), True, "PEFT's prepare_model_for_kbit_training casts every non-quantized 16-bit parameter "
             "to fp32 (peft utils/other.py)"),
    "llama-factory": Preset("llama-factory", "LLaMA-Factory", (
        Default("precision", "mixed", "trainable parameters are upcast to fp32 unless pure_bf16 "
                "(LLaMA-Factory v0.9.5 model/adapter.py init_adapter)", ("full",)),
        Default("r", 8, "lora_rank=8 (LLaMA-Factory v0.9.5 hparams/finetuning_args.py)",
                ("lora", "qlora")),
    ), True, "PEFT's prepare_model_for_kbit_training casts every non-quantized 16-bit parameter "
             "to fp32 (peft utils/other.py)"),
    "unsloth": Preset("unsloth", "Unsloth", (
        Default("train", "qlora", "load_in_4bit=True (unsloth models/loader.py "
                "FastLanguageModel.from_pretrained)"),
        Default("gc", True, "use_gradient_checkpointing='unsloth' (models/loader.py)"),
        Default("act_offload", True, "'unsloth' checkpointing moves each saved hidden state to "
                "CPU RAM and back in backward (unsloth_zoo gradient_checkpointing.py)"),
        Default("loss", "fused", "unsloth_fused_ce_loss when logits are not requested "
                "(unsloth models/llama.py)"),
    ), False, "Unsloth's own prepare_model_for_kbit_training only casts the LoRA weights"),
    "torchtune": Preset("torchtune", "torchtune", (
        Default("precision", "bf16", "dtype=bf16: weights, activations, gradients and optimizer "
                "states all in bf16 (torchtune recipes/full_finetune_single_device.py)"),
        Default("gc", True, "enable_activation_checkpointing: True (llama3_1/8B configs)"),
        Default("loss", "chunked", "CEWithChunkedOutputLoss (torchtune recipe configs)"),
        Default("optim", "paged_adamw8bit", "bitsandbytes PagedAdamW8bit "
                "(llama3_1/8B_full_single_device.yaml)", ("full",)),
        Default("opt_in_bwd", True, "optimizer_in_bwd: True (llama3_1/8B_full_single_device.yaml)",
                ("full",)),
    ), False, "torchtune builds its own LoRA/QLoRA modules (no PEFT)"),
    "litgpt": Preset("litgpt", "LitGPT", (
        Default("precision", "mixed", "bf16-mixed without --precision "
                "(litgpt v0.5.13 utils.py get_default_supported_precision)"),
        Default("loss", "chunked", "chunked_cross_entropy(chunk_size=128) "
                "(litgpt v0.5.13 utils.py)"),
    ), False, "LitGPT quantizes through Fabric's bitsandbytes precision (no PEFT)"),
    "fsdp": Preset("fsdp", "FSDP via accelerate (Answer.AI fsdp_qlora)", (
        Default("zero", 3, "FSDP full shard = ZeRO-3 (on one GPU it shards nothing)"),
    ), False, "accelerate keeps each parameter's dtype (accelerate accelerator.py "
              "prepare_model); fsdp_qlora loads its own 4-bit layers"),
}


def apply(request: EstimateRequest) -> tuple[EstimateRequest, tuple[str, ...]]:
    """The request with the framework's defaults for the fields the user did not give, and one
    note per default taken (with its source)."""
    if request.framework is None or request.mode != "train":
        return request, ()
    preset = PRESETS[request.framework]
    given = request.given
    update: dict[str, object] = {}
    notes: list[str] = []
    for d in preset.defaults:
        method = update.get("train", request.train)
        if d.key in given or (d.only_for and method not in d.only_for):
            continue
        update[d.key] = d.value
        notes.append(f"framework={preset.name}: {d.key}={_word(d.value)} ({d.why})")
    return (request.updated(**update) if update else request), tuple(notes)


def peft_upcast(request: EstimateRequest) -> bool:
    """Whether a LoRA over a bitsandbytes base runs PEFT's kbit preparation (fits' default
    recipe, the HF Trainer + PEFT, does)."""
    return request.framework is None or PRESETS[request.framework].peft_upcast


def _word(value: object) -> str:
    return {True: "on", False: "off"}.get(value, str(value)) if isinstance(value, bool) else \
        str(value)
