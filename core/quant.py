"""Which engine and concrete weight format a request means ('q4' is Q4_K_M on llama.cpp, nf4 on
transformers, AWQ on vLLM, 4.0 bpw on ExLlamaV2), and the order of formats by quality."""

from __future__ import annotations

from typing import Any

from core.errors import UserError
from core.formats import WeightFormat, is_gguf
from core.request import EstimateRequest
from core.spec import ModelSpec

# Generic levels per engine family. llama.cpp names are the presets people download most.
_GENERIC = {
    "llama.cpp": {"q8": "Q8_0", "q6": "Q6_K", "q5": "Q5_K_M", "q4": "Q4_K_M", "int4": "Q4_K_M",
                  "q3": "Q3_K_M", "q2": "Q2_K"},
    "hf": {"q8": "int8", "q6": "int8", "q5": "int8", "q4": "nf4", "int4": "nf4", "q3": "nf4",
           "q2": "nf4"},
    "vllm": {"q8": "fp8", "q6": "fp8", "q5": "fp8", "q4": "awq", "int4": "awq", "q3": "gptq",
             "q2": "gptq"},
    "exllamav2": {"q8": "exl2:8.0", "q6": "exl2:6.0", "q5": "exl2:5.0", "q4": "exl2:4.0",
                  "int4": "exl2:4.0", "q3": "exl2:3.0", "q2": "exl2:2.5"},
}
_FAMILY = {"ollama": "llama.cpp", "sglang": "vllm", "tgi": "vllm"}
_BITS = {"q3": 3, "q2": 2}
# Unquantized weights as llama.cpp names them: `fp16` on llama.cpp/Ollama is the F16 GGUF that
# convert_hf_to_gguf.py writes (--outtype f16/bf16/f32), not a refusal.
_GGUF_FLOAT = {"fp16": "F16", "bf16": "BF16", "fp32": "F32"}
# ExLlamaV2 loads unquantized safetensors too (engines.md 6.1: the nn.Parameter path of
# ExLlamaV2Linear.load), at 2 bytes a weight.
_EXLLAMA_FLOAT = ("fp16", "bf16")

# Best first: what to try when looking for the best format that fits, per engine family.
QUALITY_ORDER = {
    "llama.cpp": ("F16", "Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q4_K_M", "Q4_K_S", "IQ4_XS",
                  "Q3_K_L", "Q3_K_M", "IQ3_M", "Q3_K_S", "IQ3_XXS", "Q2_K", "IQ2_M", "IQ2_XS",
                  "IQ1_M"),
    "hf": ("bf16", "int8", "nf4"),
    "vllm": ("bf16", "fp8", "awq"),
    "exllamav2": ("exl2:8.0", "exl2:6.0", "exl2:5.0", "exl2:4.65", "exl2:4.0", "exl2:3.5",
                  "exl2:3.0", "exl2:2.5"),
}


def engine_family(engine: str) -> str:
    return _FAMILY.get(engine, engine)


def default_engine(quant: str | None) -> str:
    if quant is None:
        return "hf"
    if is_gguf(quant) or quant in _GENERIC["llama.cpp"]:
        return "llama.cpp"
    if quant == "exl2":
        return "exllamav2"
    return "hf"


def format_from_name(name: str, bits: float | None = None, *, qlora: bool = False) -> WeightFormat:
    if name.startswith("exl2:"):
        return WeightFormat("exl2", float(name.split(":", 1)[1]))
    if name in ("gptq", "awq"):
        return WeightFormat(name, bits or 4)
    if name == "exl2":
        return WeightFormat("exl2", bits or 4.0)
    return WeightFormat(name, bits, double_quant=qlora)


def format_from_config(quant: dict[str, Any]) -> tuple[str, WeightFormat] | None:
    """A pre-quantized checkpoint's own format, from its quantization_config."""
    method = str(quant.get("quant_method", "")).lower()
    if method in ("gptq", "awq"):
        return method, WeightFormat(method, float(quant.get("bits", 4)),
                                    int(quant.get("group_size") or 128))
    if method in ("fp8", "compressed-tensors", "fbgemm_fp8"):
        block = quant.get("weight_block_size")
        return "fp8", WeightFormat("fp8", fp8_block=int(block[0]) if block else None)
    if method == "mxfp4":
        return "mxfp4", WeightFormat("mxfp4")
    if method == "bitsandbytes":
        if quant.get("load_in_4bit"):
            kind = str(quant.get("bnb_4bit_quant_type", "nf4"))
            return kind, WeightFormat(kind, double_quant=bool(
                quant.get("bnb_4bit_use_double_quant")))
        return "int8", WeightFormat("int8")
    return None


def choose(req: EstimateRequest, spec: ModelSpec,
           quantization: dict[str, Any] | None) -> tuple[str, WeightFormat, list[str]]:
    """(engine, format, notes)."""
    notes: list[str] = []
    engine = req.engine or default_engine(req.quant)
    family = engine_family(engine)
    quant = req.quant
    if quant in ("mxfp4", "MXFP4_MOE") and spec.moe is None:
        # MXFP4 checkpoints (gpt-oss) and llama.cpp's MXFP4_MOE quantize the routed experts
        # only; on a dense model every weight would stay 16-bit under a 4-bit label.
        raise UserError(f"{quant} quantizes the experts of MoE models (gpt-oss); "
                        f"{spec.model_type} is dense, so its weights would stay 16-bit.",
                        "Use a 4-bit format for dense models: awq, gptq, nf4 or Q4_K_M.")
    if quant is None:
        native = format_from_config(quantization) if quantization else None
        if native is not None and family != "llama.cpp":
            notes.append(f"weights as the checkpoint ships them: {native[1].label}")
            return engine, native[1], notes
        if family == "llama.cpp":
            quant = "F16" if spec.dtype != "fp32" else "F32"
            notes.append(f"no quantization given: {quant} GGUF")
        elif family == "exllamav2":
            quant = "exl2"
        else:
            quant = "bf16" if spec.dtype == "bf16" else ("fp16" if spec.dtype == "fp16" else "fp32")
            notes.append(f"no quantization given: the model's own dtype, {quant}")
            return engine, WeightFormat(quant), notes
    if family == "llama.cpp" and quant in _GGUF_FLOAT:
        notes.append(f"{quant} on {engine} taken as the {_GGUF_FLOAT[quant]} GGUF")
        quant = _GGUF_FLOAT[quant]
    if family == "exllamav2" and quant in _EXLLAMA_FLOAT:
        notes.append(f"ExLlamaV2 loads unquantized {quant} weights (2 bytes each), without EXL2")
        return engine, WeightFormat(quant), notes
    if quant in _GENERIC["llama.cpp"]:
        concrete = _GENERIC[family][quant] if family in _GENERIC else None
        if concrete is None:
            raise UserError(f"'{quant}' has no meaning on {engine}.", "Name the format, e.g. fp8.")
        notes.append(f"{quant} on {engine} taken as {concrete.replace('exl2:', 'exl2 ')}"
                     f"{' bpw' if concrete.startswith('exl2:') else ''}")
        fmt = format_from_name(concrete, _BITS.get(quant))
        return engine, fmt, notes
    if is_gguf(quant) and family != "llama.cpp":
        raise UserError(f"{quant} is a GGUF format, which {engine} does not load.",
                        "Use engine=llama.cpp or engine=ollama, or a format such as awq or nf4.")
    if quant == "exl2" and family != "exllamav2":
        raise UserError(f"EXL2 weights run on ExLlamaV2, not {engine}.", "Use engine=exllamav2.")
    if family == "llama.cpp" and not is_gguf(quant):
        raise UserError(f"{engine} loads GGUF files, not {quant}.",
                        "Use a GGUF type such as Q4_K_M or Q8_0, or another engine.")
    if family == "exllamav2" and quant not in ("exl2", "gptq"):
        raise UserError(f"ExLlamaV2 loads EXL2, GPTQ and unquantized fp16 weights, not {quant}.",
                        "Use exl2=4.0, fp16 or another engine.")
    if quant in ("nf4", "fp4", "int8") and family == "vllm":
        notes.append(f"{engine} loads bitsandbytes {quant} checkpoints")
    return engine, format_from_name(quant, req.bits), notes


def choose_training(req: EstimateRequest) -> tuple[str, WeightFormat, list[str]]:
    """Training runs on transformers (+ PEFT); a quant only names LoRA's frozen base."""
    if req.engine not in (None, "hf"):
        raise UserError(f"fits estimates training with transformers, not {req.engine}.",
                        "Drop engine= for a training estimate.")
    quant = req.quant
    if req.train == "qlora" and quant in _QLORA_BASES:
        # "nf4 train=qlora" is how most guides say QLoRA: the quant names QLoRA's own base.
        return "hf", WeightFormat("bf16"), [_QLORA_BASES[quant]]
    if quant in (None, "fp16", "bf16", "fp32"):
        return "hf", WeightFormat(quant or "bf16"), []
    if quant in ("int8", "nf4", "fp4") and req.train == "lora":
        return "hf", WeightFormat(quant, double_quant=quant != "int8"), [
            f"LoRA over a {quant} base"]
    if req.train == "qlora":
        raise UserError(f"QLoRA trains over a 4-bit (nf4 or fp4) base, not {quant}.",
                        "Use train=qlora alone (or with nf4), or train=lora int8 for an 8-bit "
                        "base.")
    raise UserError(f"Training does not take {quant} weights here.",
                    "Use train=qlora for a 4-bit base, or train=lora nf4 / int8.")


# What a 4-bit word with train=qlora is taken as. fits models QLoRA's base as bitsandbytes nf4
# with double quantization (the QLoRA paper's recipe); fp4 blocks take the same memory.
_QLORA_BASES = {
    "nf4": "nf4 train=qlora: QLoRA over an nf4 base with double quantization (what train=qlora "
           "means)",
    "fp4": "fp4 train=qlora: QLoRA's 4-bit base, estimated as nf4 with double quantization "
           "(bitsandbytes fp4 takes the same memory)",
}
