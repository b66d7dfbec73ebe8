"""The words of the command language, without pydantic, so `fits help` starts fast."""

from __future__ import annotations

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
# gpu=none and its spellings: a machine without a GPU (llama.cpp/Ollama on the CPU).
NO_GPU_WORDS = frozenset({"none", "cpu", "cpu-only", "cpu only", "cpu_only", "no-gpu", "nogpu"})
# The engines that run layers from system RAM (partial offload, CPU only).
LLAMA_CPP_ENGINES = ("llama.cpp", "ollama")
