"""The command that runs an answer as it was answered ("...and how?"): the engine's own CLI or
config with the flags the estimate assumed (context, layers on the GPU, tensor parallel, the
memory budget, the KV cache type), so that what the user runs is what fits sized.

Pure: built from the resolved request and the engine's details; flags are the engines' own
(llama.cpp common/arg.cpp, vllm serve --help, sglang launch_server, TGI's launcher, TabbyAPI's
config_sample.yml, transformers/PEFT/TRL, torchtune, LitGPT and Unsloth APIs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.engines.details import LlamaCppDetails, TrainingDetails, VllmDetails

if TYPE_CHECKING:
    from core.engines.details import EngineDetails
    from core.formats import WeightFormat
    from core.request import EstimateRequest

GGML_CACHE = {"q8": "q8_0", "q4": "q4_0", "fp8": "q8_0"}
VLLM_KV = {"fp8": "fp8", "q8": "fp8", "q4": "fp8"}
TABBY_CACHE = {"fp16": "FP16", "bf16": "FP16", "q8": "Q8", "q4": "Q4", "fp8": "Q8"}
BNB_4BIT = ("nf4", "fp4")


@dataclass(frozen=True)
class RunCommand:
    """The engine's command line that runs the answer as answered."""

    engine: str
    command: str
    notes: tuple[str, ...] = ()


def run_command(request: EstimateRequest, model_id: str, fmt: WeightFormat,
                details: EngineDetails, tp: int, pp: int) -> RunCommand:
    """The command for ``request`` as answered (engine, format and layout resolved)."""
    if isinstance(details, TrainingDetails):
        return _training(request, model_id, fmt, details)
    engine = request.engine or "hf"
    if isinstance(details, LlamaCppDetails):
        return _ollama(request, model_id, fmt, details) if engine == "ollama" else \
            _llama_server(request, model_id, fmt, details)
    if isinstance(details, VllmDetails):
        return {"vllm": _vllm, "sglang": _sglang, "tgi": _tgi}[engine](
            request, model_id, fmt, details, tp, pp)
    if engine == "exllamav2":
        return _tabby(request, model_id, fmt)
    return _transformers(request, model_id, fmt)


# --- llama.cpp and Ollama -----------------------------------------------------------------------


def _gguf_source(model_id: str, quant: str) -> tuple[str, list[str]]:
    """llama-server's -hf <repo>:<QUANT> for a GGUF repo; a local file otherwise."""
    if "gguf" in model_id.lower():
        return f"-hf {model_id}:{quant}", []
    name = model_id.split("/")[-1]
    return f"-m {name}-{quant}.gguf", [
        f"{model_id} ships no GGUF: convert it (convert_hf_to_gguf.py, then llama-quantize "
        f"to {quant}) or pick a GGUF repo of it (`fits models {name} gguf`)"]


def _llama_server(request: EstimateRequest, model_id: str, fmt: WeightFormat,
                  details: LlamaCppDetails) -> RunCommand:
    source, notes = _gguf_source(model_id, fmt.name)
    ngl = details.n_gpu_layers if details.n_gpu_layers < details.n_layers else 99
    parts = ["llama-server", source, f"-ngl {ngl}", f"-c {details.n_ctx}",
             f"-fa {'on' if details.flash_attn else 'off'}"]
    if request.batch > 1:
        parts.append(f"-np {request.batch}")  # the sequences share -c
    if details.kv_type != "f16":
        parts.append(f"-ctk {details.kv_type} -ctv {details.kv_type}")
    if ngl < details.n_layers and ngl > 0:
        notes.append(f"-ngl {ngl}: the layers that fit in VRAM; the rest run from system RAM")
    return RunCommand("llama.cpp", " ".join(parts), tuple(notes))


def _ollama(request: EstimateRequest, model_id: str, fmt: WeightFormat,
            details: LlamaCppDetails) -> RunCommand:
    env = [f"OLLAMA_CONTEXT_LENGTH={request.ctx}"]
    if details.flash_attn:
        env.append("OLLAMA_FLASH_ATTENTION=1")
    if details.kv_type != "f16":
        env.append(f"OLLAMA_KV_CACHE_TYPE={details.kv_type}")
    if request.batch > 1:
        env.append(f"OLLAMA_NUM_PARALLEL={request.batch}")
    notes: list[str] = []
    if "gguf" in model_id.lower():
        tag: str | None = f"hf.co/{model_id}:{fmt.name}"
    else:
        from core.ollama import tag_for  # the library table loads only here

        tag = tag_for(model_id, fmt.name)
        if tag is None:
            notes.append(f"{model_id} is not in Ollama's library table: run a GGUF repo of it "
                         f"as hf.co/<repo>:{fmt.name}")
        elif fmt.name != "Q4_K_M":
            notes.append(f"pick the {fmt.name.lower()} tag of {tag.split(':')[0]} in Ollama's "
                         "library (the default tag is 4-bit)")
    command = f"{' '.join(env)} ollama serve &\nollama run {tag or 'hf.co/<repo>:' + fmt.name}"
    return RunCommand("ollama", command, tuple(notes))


# --- GPU serving engines ---------------------------------------------------------------------------


def _vllm(request: EstimateRequest, model_id: str, fmt: WeightFormat, details: VllmDetails,
          tp: int, pp: int) -> RunCommand:
    parts = ["vllm serve", model_id]
    if tp > 1:
        parts.append(f"--tensor-parallel-size {tp}")
    if pp > 1:
        parts.append(f"--pipeline-parallel-size {pp}")
    parts += [f"--max-model-len {request.ctx}",
              f"--gpu-memory-utilization {details.gpu_memory_utilization:g}"]
    if request.kv in VLLM_KV:
        parts.append(f"--kv-cache-dtype {VLLM_KV[request.kv]}")
    if request.batch > 1:
        parts.append(f"--max-num-seqs {max(request.batch, details.max_num_seqs)}")
    notes = _checkpoint_note(model_id, fmt)
    if fmt.name == "fp16":
        parts.append("--dtype half")
    return RunCommand("vllm", " ".join(parts), tuple(notes))


def _sglang(request: EstimateRequest, model_id: str, fmt: WeightFormat, details: VllmDetails,
            tp: int, pp: int) -> RunCommand:
    parts = ["python -m sglang.launch_server", f"--model-path {model_id}"]
    if tp > 1:
        parts.append(f"--tp {tp}")
    if pp > 1:
        parts.append(f"--pp {pp}")
    parts += [f"--context-length {request.ctx}",
              f"--mem-fraction-static {details.gpu_memory_utilization:g}"]
    if request.kv in VLLM_KV:
        parts.append("--kv-cache-dtype fp8_e5m2")
    return RunCommand("sglang", " ".join(parts), tuple(_checkpoint_note(model_id, fmt)))


def _tgi(request: EstimateRequest, model_id: str, fmt: WeightFormat, details: VllmDetails,
         tp: int, pp: int) -> RunCommand:
    parts = ["docker run --gpus all --shm-size 1g -p 8080:80",
             "ghcr.io/huggingface/text-generation-inference", f"--model-id {model_id}"]
    if tp > 1:
        parts.append(f"--num-shard {tp}")
    parts += [f"--max-total-tokens {request.ctx}", f"--max-input-tokens {request.ctx - 1}"]
    if fmt.name in ("awq", "gptq"):
        parts.append(f"--quantize {fmt.name}")
    elif fmt.name in BNB_4BIT:
        parts.append(f"--quantize bitsandbytes-{fmt.name}")
    elif fmt.name == "int8":
        parts.append("--quantize bitsandbytes")
    if request.kv in VLLM_KV:
        parts.append("--kv-cache-dtype fp8_e5m2")
    return RunCommand("tgi", " ".join(parts), ())


def _checkpoint_note(model_id: str, fmt: WeightFormat) -> list[str]:
    """vLLM and SGLang read the quantization from the checkpoint: say when the repo is not one."""
    if fmt.name in ("awq", "gptq") and fmt.name not in model_id.lower():
        return [f"{fmt.name.upper()} is read from the checkpoint: serve an {fmt.name.upper()} "
                f"repo of this model (`fits models {model_id.split('/')[-1]} {fmt.name}`)"]
    return []


def _tabby(request: EstimateRequest, model_id: str, fmt: WeightFormat) -> RunCommand:
    cache = TABBY_CACHE.get(request.kv, "FP16")
    lines = ["# TabbyAPI config.yml (the exllamav2 backend)", "model:",
             f"  model_name: {model_id.split('/')[-1]}", f"  max_seq_len: {request.ctx}",
             f"  cache_size: {max(request.ctx, 256 * -(-request.ctx * request.batch // 256))}",
             f"  cache_mode: {cache}", "  gpu_split_auto: true"]
    notes = [] if fmt.name != "exl2" else [
        f"download an EXL2 {fmt.bits or 4.0:g} bpw quant of {model_id} into models/"]
    return RunCommand("exllamav2", "\n".join(lines), tuple(notes))


def _transformers(request: EstimateRequest, model_id: str, fmt: WeightFormat) -> RunCommand:
    lines = ["from transformers import AutoModelForCausalLM, AutoTokenizer"]
    kwargs = ['dtype="auto"', 'device_map="auto"', f'attn_implementation="{_attn(request)}"']
    if fmt.name in BNB_4BIT or fmt.name == "int8":
        lines[0] += ", BitsAndBytesConfig"
        quant = ("BitsAndBytesConfig(load_in_8bit=True)" if fmt.name == "int8" else
                 f'BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="{fmt.name}", '
                 f"bnb_4bit_use_double_quant={fmt.double_quant}, "
                 "bnb_4bit_compute_dtype=torch.bfloat16)")
        lines.insert(0, "import torch")
        kwargs.append(f"quantization_config={quant}")
    lines += [f'model = AutoModelForCausalLM.from_pretrained("{model_id}", {", ".join(kwargs)})',
              f'tokenizer = AutoTokenizer.from_pretrained("{model_id}")',
              f"out = model.generate(**tokenizer(prompts, return_tensors='pt', padding=True)"
              f".to(model.device), max_new_tokens={request.gen})"]
    return RunCommand("hf", "\n".join(lines), (
        f"prompts: a list of {request.batch} prompt(s) of up to "
        f"{(request.prompt or request.ctx):,} tokens",))


def _attn(request: EstimateRequest) -> str:
    return {"flash": "flash_attention_2", "eager": "eager"}.get(request.attn, "sdpa")


# --- training ----------------------------------------------------------------------------------


def _training(request: EstimateRequest, model_id: str, fmt: WeightFormat,
              details: TrainingDetails) -> RunCommand:
    framework = request.framework or "hf"
    if framework == "torchtune":
        return _torchtune(request, model_id, details)
    if framework == "litgpt":
        return _litgpt(request, model_id)
    if framework == "unsloth":
        return _unsloth(request, model_id)
    if framework in ("axolotl", "llama-factory"):
        return _yaml_recipe(framework, request, model_id, details)
    return _trl(request, model_id, details)


def _lora_targets(request: EstimateRequest) -> str:
    return {"qv": '["q_proj", "v_proj"]', "attn": '["q_proj", "k_proj", "v_proj", "o_proj"]'}.get(
        request.target, '"all-linear"')


def _trl(request: EstimateRequest, model_id: str, details: TrainingDetails) -> RunCommand:
    lines = ["from trl import SFTConfig, SFTTrainer"]
    kwargs = [f'"{model_id}"', "train_dataset=dataset"]
    if request.train != "full":
        lines[0] = "from peft import LoraConfig\n" + lines[0]
        kwargs.append(f"peft_config=LoraConfig(r={request.r}, target_modules="
                      f"{_lora_targets(request)})")
    if request.train == "qlora":
        lines.insert(0, "import torch\nfrom transformers import BitsAndBytesConfig")
    args = [f"per_device_train_batch_size={request.batch}", f"max_length={request.ctx}",
            f"gradient_checkpointing={details.gradient_checkpointing}",
            f"bf16={details.precision != 'fp32'}", f'optim="{_hf_optim(request.optim)}"']
    if request.train == "qlora":
        args.append('model_init_kwargs={"quantization_config": BitsAndBytesConfig('
                    'load_in_4bit=True, bnb_4bit_quant_type="nf4", '
                    "bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=torch.bfloat16)}")
    if details.zero_stage:
        args.append(f"# launch with accelerate/DeepSpeed ZeRO-{details.zero_stage}")
    lines.append(f"args = SFTConfig(output_dir=\"out\", {', '.join(a for a in args if not a.startswith('#'))})")
    lines.append(f"SFTTrainer({', '.join(kwargs)}, args=args).train()")
    notes = [a[2:] for a in args if a.startswith("#")]
    return RunCommand("trl", "\n".join(lines), tuple(notes))


def _hf_optim(optim: str) -> str:
    return {"adamw": "adamw_torch_fused", "adamw8bit": "adamw_bnb_8bit",
            "paged_adamw8bit": "paged_adamw_8bit", "sgd": "sgd",
            "adafactor": "adafactor"}.get(optim, "adamw_torch_fused")


def _torchtune(request: EstimateRequest, model_id: str,
               details: TrainingDetails) -> RunCommand:
    recipe = {"full": "full_finetune_single_device", "lora": "lora_finetune_single_device",
              "qlora": "lora_finetune_single_device"}[request.train]
    if details.zero_stage:
        recipe = recipe.replace("single_device", "distributed")
    overrides = [f"batch_size={request.batch}", f"tokenizer.max_seq_len={request.ctx}",
                 f"enable_activation_checkpointing={details.gradient_checkpointing}",
                 f"enable_activation_offloading={request.act_offload}"]
    if request.train == "full":
        overrides.append(f"optimizer_in_bwd={request.opt_in_bwd}")
    else:
        overrides.append(f"model.lora_rank={request.r}")
    return RunCommand("torchtune", f"tune run {recipe} --config <{model_id} config> "
                      + " ".join(overrides), ("pick the recipe config of this model "
                                              "(`tune ls`)",))


def _litgpt(request: EstimateRequest, model_id: str) -> RunCommand:
    method = {"full": "full", "lora": "lora", "qlora": "lora"}[request.train]
    parts = [f"litgpt finetune {method} {model_id}",
             f"--train.micro_batch_size {request.batch}", f"--train.max_seq_length {request.ctx}",
             f"--precision {'bf16-true' if request.precision == 'bf16' else 'bf16-mixed'}"]
    if request.train == "qlora":
        parts.append("--quantize bnb.nf4-dq")
    if request.train != "full":
        parts.append(f"--lora_r {request.r}")
    return RunCommand("litgpt", " ".join(parts), ())


def _unsloth(request: EstimateRequest, model_id: str) -> RunCommand:
    lines = ["from unsloth import FastLanguageModel",
             f'model, tokenizer = FastLanguageModel.from_pretrained("{model_id}", '
             f"max_seq_length={request.ctx}, load_in_4bit={request.train == 'qlora'})",
             f"model = FastLanguageModel.get_peft_model(model, r={request.r}, "
             'use_gradient_checkpointing="unsloth")',
             f"# then TRL's SFTTrainer with per_device_train_batch_size={request.batch}"]
    return RunCommand("unsloth", "\n".join(lines), ())


def _yaml_recipe(framework: str, request: EstimateRequest, model_id: str,
                 details: TrainingDetails) -> RunCommand:
    if framework == "axolotl":
        adapter = {"full": "", "lora": "lora", "qlora": "qlora"}[request.train]
        lines = [f"base_model: {model_id}", f"sequence_len: {request.ctx}",
                 f"micro_batch_size: {request.batch}",
                 f"gradient_checkpointing: {str(details.gradient_checkpointing).lower()}",
                 "bf16: auto"]
        if adapter:
            lines += [f"adapter: {adapter}", f"lora_r: {request.r}", "lora_target_linear: true"]
        if request.train == "qlora":
            lines.append("load_in_4bit: true")
        return RunCommand("axolotl", "\n".join(lines), ("axolotl train config.yml",))
    lines = [f"model_name_or_path: {model_id}", "stage: sft",
             f"finetuning_type: {'full' if request.train == 'full' else 'lora'}",
             f"cutoff_len: {request.ctx}", f"per_device_train_batch_size: {request.batch}",
             "bf16: true"]
    if request.train != "full":
        lines.append(f"lora_rank: {request.r}")
    if request.train == "qlora":
        lines.append("quantization_bit: 4")
    return RunCommand("llama-factory", "\n".join(lines), ("llamafactory-cli train config.yaml",))
