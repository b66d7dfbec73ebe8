"""Whether an engine runs on the GPU at all, and which weight formats it runs there.

Platforms (engines.md): vLLM routes macOS to its CPU backend; GPUs on Apple need the community
vllm-metal plugin, whose memory rules are not vLLM's (1.23-1.24). SGLang has no Apple silicon
support (2.9), TGI no MPS path (3.7), ExLlamaV2 builds for CUDA and ROCm only (6.3). vLLM needs
CUDA compute capability 7.0 (1.17) and a per-method minimum for each quantization (1.18, 1.20);
it refuses an explicit bf16 below 8.0 (1.16). transformers dequantizes fine-grained FP8 to bf16
below 8.9 (7.5), which doubles the weights: ``adjust`` applies that before the estimate."""

from __future__ import annotations

from core.engines.base import release_numbers
from core.formats import WeightFormat
from core.rules.base import Case, Finding, Fix, engine_name

# vllm@0.34.0 quantization/*.py get_min_capability (engines.md 1.18), as major*10 + minor;
# vllm@0.11.0 where it differs.
VLLM_MIN_CC = {"fp8": 75, "awq": 75, "gptq": 60, "mxfp4": 80}
VLLM_0_11_MIN_CC = {"fp8": 80, "awq": 75, "gptq": 60, "mxfp4": 80}
VLLM_SOURCE = "vllm@0.34.0 config/vllm.py (_get_quantization_config); quantization/*.py"
# vLLM's ROCm list (docs, engines.md 1.17): MI200, MI300, MI350, RX 7900 (gfx1100/1101),
# RX 9000 (gfx1200/1201).
VLLM_ROCM_ARCHS = ("CDNA2", "CDNA3", "CDNA4", "RDNA3", "RDNA4")
TGI_ROCM_ARCHS = ("CDNA2", "CDNA3")  # MI210/MI250/MI300 (engines.md 3.7)
FP8_COMPUTE_CC = 89  # native FP8 tensor cores: Ada and Hopper on


def _cc(case: Case) -> int | None:
    text = case.gpu.gpu.compute_capability
    if not text or case.gpu.gpu.vendor != "nvidia":
        return None
    major, _, minor = text.partition(".")
    return int(major) * 10 + int(minor or 0) if major.isdigit() else None


def _gguf_engines(case: Case) -> tuple[Fix, ...]:
    """llama.cpp and Ollama with a 4-bit GGUF: they run on every GPU the others refuse."""
    where = {"apple": "Metal", "intel": "SYCL and Vulkan"}.get(case.gpu.gpu.vendor, "CUDA")
    return (Fix("engine=llama.cpp q4", f"llama.cpp runs on {where}",
                {"engine": "llama.cpp", "quant": "q4"}),
            Fix("engine=ollama q4", f"Ollama runs on {where}",
                {"engine": "ollama", "quant": "q4"}))


def _platform(case: Case) -> list[Finding]:
    gpu, engine = case.gpu.gpu, case.engine
    name = engine_name(engine)
    if gpu.vendor == "apple" and engine in ("vllm", "sglang", "tgi", "exllamav2"):
        why = {
            "vllm": "on macOS vLLM runs only its CPU backend (the community vllm-metal plugin "
                    "uses Metal with other memory rules)",
            "sglang": "SGLang does not support Apple silicon (sgl-project/sglang#19137)",
            "tgi": "TGI has no Metal (MPS) backend",
            "exllamav2": "ExLlamaV2 runs on CUDA and ROCm only",
        }[engine]
        return [Finding("hardware", "refuse", f"{name} does not run on {gpu.name}: {why}.",
                        "engines.md 1.23-1.24, 2.9, 3.7, 6.3", _gguf_engines(case))]
    if gpu.vendor == "google" and engine in ("llama.cpp", "ollama", "exllamav2", "hf"):
        return [Finding("hardware", "refuse", f"{name} has no TPU backend for {gpu.name}.",
                        "engines.md 4.6, 6.3",
                        (Fix("engine=vllm", "vLLM serves on TPUs (tpu_inference)",
                             {"engine": "vllm"}),))]
    if gpu.vendor == "amd":
        if engine in ("vllm", "sglang") and gpu.arch not in VLLM_ROCM_ARCHS:
            return [Finding("hardware", "warn",
                            f"{gpu.name} ({gpu.arch}) is not in {name}'s list of supported ROCm "
                            "GPUs (MI200/MI300/MI350, RX 7900, RX 9000)", "engines.md 1.17")]
        if engine == "tgi" and gpu.arch not in TGI_ROCM_ARCHS:
            return [Finding("hardware", "warn",
                            f"TGI supports MI210/MI250/MI300 on ROCm; {gpu.name} is not listed",
                            "engines.md 3.7")]
    if gpu.vendor == "intel" and engine == "exllamav2":
        return [Finding("hardware", "refuse",
                        f"ExLlamaV2 does not run on {gpu.name}: it runs on CUDA and ROCm only.",
                        "engines.md 6.3", _gguf_engines(case))]
    return []


def _capability(case: Case) -> list[Finding]:
    cc, engine, fmt = _cc(case), case.engine, case.fmt.name
    if cc is None:
        return []
    gpu = case.gpu.gpu.name
    if engine in ("vllm", "sglang") and cc < 70:
        return [Finding("hardware", "refuse",
                        f"{engine_name(engine)} needs CUDA compute capability 7.0 or higher; "
                        f"{gpu} has {case.gpu.gpu.compute_capability}.", "engines.md 1.17",
                        _gguf_engines(case)[:1])]
    found: list[Finding] = []
    if engine == "vllm":
        old = release_numbers(case.request.version)
        table = VLLM_0_11_MIN_CC if old is not None and old <= (0, 11) else VLLM_MIN_CC
        need = table.get(fmt)
        if need is not None and cc < need:
            fixes = (Fix("gptq", "GPTQ runs from compute capability 6.0", {"quant": "gptq"}),
                     ) if fmt != "gptq" else ()
            found.append(Finding(
                "format", "refuse",
                f"vLLM refuses {fmt} on {gpu}: the method needs compute capability "
                f"{need // 10}.{need % 10}, the GPU has {case.gpu.gpu.compute_capability}.",
                VLLM_SOURCE, fixes))
        elif fmt == "fp8" and cc < FP8_COMPUTE_CC:
            found.append(Finding(
                "format", "warn",
                f"{gpu} has no FP8 tensor cores: vLLM runs fp8 weights as weight-only W8A16 "
                "(FP8 Marlin), at the same memory", "vllm@0.34.0 quantization/fp8.py"))
        if fmt == "bf16" and cc < 80:
            if case.explicit_dtype:
                found.append(Finding(
                    "format", "refuse",
                    f"vLLM refuses bf16 on {gpu} (compute capability "
                    f"{case.gpu.gpu.compute_capability}): bfloat16 needs 8.0.",
                    "vllm@0.34.0 platforms/cuda.py (check_if_supports_dtype)",
                    (Fix("fp16", "vLLM's --dtype=half, the same memory", {"quant": "fp16"}),)))
            else:
                found.append(Finding(
                    "format", "warn", f"vLLM runs this bf16 model in fp16 on {gpu} (no bfloat16 "
                    "below compute capability 8.0), at the same memory",
                    "vllm@0.34.0 config/model.py (_resolve_auto_dtype)"))
    return found


def check(case: Case) -> list[Finding]:
    return [*_platform(case), *_capability(case)]


def transformers_fp8_fallback(case: Case) -> tuple[WeightFormat, str] | None:
    """transformers below CC 8.9: FP8 checkpoints load dequantized to bf16 (the new format and
    the warning), else None."""
    cc = _cc(case)
    if case.engine != "hf" or case.fmt.name != "fp8" or case.request.mode != "infer":
        return None
    if cc is None or cc >= FP8_COMPUTE_CC:
        return None
    return WeightFormat("bf16"), (
        f"transformers loads FP8 weights dequantized to bf16 on {case.gpu.gpu.name} (FP8 needs "
        "compute capability 8.9): the weights take twice the memory "
        "(transformers@5.25.0 quantizer_finegrained_fp8.py)")
