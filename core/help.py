"""Help texts shared by every surface."""

from __future__ import annotations

from core.vocabulary import GGUF_PRESETS

USAGE = "/fits <model> [quant] [key=value ...]"

HELP = {
    None: f"""fits answers "can my GPU run this LLM, and how?"

  {USAGE}
  e.g.  /fits meta-llama/Llama-2-7b q4 ctx=4096 gpu=24GB
        /fits Qwen/Qwen3-30B-A3B Q4_K_M engine=llama.cpp gpu=rtx-3060
        /fits llama3-70b awq engine=vllm gpu=2xA100-80G ctx=32k

model   a Hub repo id, a known name (llama-2-7b, llama3-8b) or a size (7b, 1.5B)
quant   fp16 bf16 fp8 int8 nf4 fp4 gptq awq exl2=<bpw> mxfp4, a GGUF type (Q4_K_M ...),
        or q8 q6 q5 q4 q3 q2 (read per engine; the answer says how)
keys    ctx= batch= gpu= engine= kv= util= tp= prompt= gen= attn=
cpu     gpu=none cpu= ram= membw= ngl= (llama.cpp/Ollama from system RAM: help cpu)
best    /fits best gpu=24GB [ctx=8k] [use=chat|code|reasoning|vision] [speed=20] [n=10]
compare /fits compare llama-3-8b q4,q8,fp16 gpu=4090,3060
more    help quant | help engines | help gpus | help keys | help cpu | gpus [query] | models <query>""",
    "cpu": "llama.cpp and Ollama can run layers from system RAM. gpu=none: CPU only. "
    "cpu=7950x|i9-13900k|m2-max|epyc-9654 (cores, clock, SIMD, memory channels and speed from "
    "a catalogue). ram=64GB, or ram=64GB@6000 with the memory speed in MT/s. membw=90 (GB/s) "
    "overrides the bandwidth. ngl=20: layers on the GPU (-ngl); without it, as many as fit. "
    "The answer says what sits in VRAM and in RAM, whether RAM suffices (1/8 of it, 2 to 8 GB, "
    "is left for the OS) and the tokens/s of that split.\n"
    "e.g.  /fits meta-llama/Meta-Llama-3-8B Q4_K_M gpu=none cpu=7950x ram=64GB\n"
    "      /fits Qwen/Qwen3-30B-A3B Q4_K_M gpu=rtx-3060 ram=32GB ctx=8192",
    "quant": "GGUF types: " + " ".join(GGUF_PRESETS) + "\n"
    "bitsandbytes: int8, nf4, fp4 (transformers). gptq, awq (bits=, default 4). fp8. mxfp4.\n"
    "exl2=<bpw> for ExLlamaV2. q4/q8...: Q4_K_M/Q8_0 on llama.cpp, nf4/int8 on transformers, "
    "awq/fp8 on vLLM, exl2 4.0/8.0 bpw on ExLlamaV2.",
    "engines": "engine=hf (transformers, default for fp16/bf16/int8/nf4/gptq/awq), vllm, sglang, "
    "tgi, llama.cpp (default for GGUF types and q4/q8...), ollama, exllamav2 (default for exl2).",
    "gpus": "gpu=24GB, 24GiB, 4090, rtx-4090, a100-80g, 2x3090, 4xh100, m2-max-64gb. "
    "'fits gpus <query>' lists the catalogue.",
    "keys": "ctx=4096|4k|128k  batch=1  gpu=24GB  engine=hf|vllm|llama.cpp|ollama|exllamav2|sglang|tgi"
    "  kv=fp16|fp8|q8|q4  util=0.9 (vLLM)  version=0.11 (an older vLLM)  tp=2  prompt=<tokens>  gen=<tokens>  "
    "attn=sdpa|eager|flash  gpu=none  cpu=7950x  ram=64GB[@6000]  membw=<GB/s>  ngl=<layers>\n"
    "training: train=full|lora|qlora  r=16  target=qv|attn|all  optim=adamw|adamw8bit|"
    "paged_adamw8bit|sgd|adafactor  precision=mixed|bf16|fp32  gc=on|off  zero=0-3  "
    "offload=cpu  loss=full|chunked|fused  bnb=0.41 (an older bitsandbytes, for QLoRA)  "
    "framework=hf|trl|axolotl|llama-factory|unsloth|torchtune|litgpt|fsdp  act_offload=on  "
    "opt_in_bwd=on  pp=2 (vLLM/SGLang)  fa=on|off (llama.cpp/Ollama)",
}


def help_text(topic: str | None) -> str:
    key = (topic or "").strip().lower() or None
    return HELP.get(key, HELP[None])
