"""Roughly how fast: decode is bound by reading the weights (and KV) once per token plus fixed
per-layer costs, prefill by matrix throughput.

llama.cpp and Ollama (all on a GPU, all in RAM, or split) have their own model below; vLLM,
SGLang, TGI, transformers and ExLlamaV2 share serving_speed, which answers per request and for a
whole batch. Every efficiency and fixed cost is stated in the answer's assumptions, and the
constants fitted on published measurements name their records.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from core import gguf
from core.engines.base import release_numbers
from core.formats import BYTES_16, WeightFormat, gguf_types, is_gguf, tensor_bytes
from core.kv import kv_bytes
from core.memo import per_spec
from core.spec import ModelSpec
from core.tensors import Tensor

if TYPE_CHECKING:
    from core.cpus import Host
    from core.engines.details import Placement
    from core.gpus import Gpu

# Share of the GPU's rated bandwidth llama.cpp's CUDA decode reaches (its kernels' published
# roofline results); checked, not fitted, on the llama.cpp GPU records of speed_cases_gpu.jsonl.
DECODE_EFFICIENCY = {"llama.cpp": 0.7}
# Share of dense FP16 tensor TFLOPS that prompt processing reaches, every engine.
PREFILL_MFU = 0.45
NO_GPU_NOTE = "speed needs a named GPU (bandwidth, TFLOPS), not only a size"


def _rate(tokens_per_s: float) -> float:
    """One decimal, but never rounded to zero: a very slow answer keeps two significant digits."""
    return round(tokens_per_s, 1) if tokens_per_s >= 1 else float(f"{tokens_per_s:.2g}")


def _seconds(seconds: float) -> float:
    """A duration to three significant digits: an estimate, not a measurement."""
    return float(f"{seconds:.3g}")


@dataclass(frozen=True)
class SpeedEstimate:
    """Decode speed of each sequence (what one user sees) and, with a batch, of all of them
    together; prompt time for one prompt and for all the batch's prompts."""

    decode_tokens_per_s: float | None  # each sequence (request)
    prefill_seconds: float | None  # one prompt
    bound: str  # memory | compute | latency (fixed kernel and communication costs dominate)
    notes: tuple[str, ...]
    aggregate_decode_tokens_per_s: float | None = None  # batch > 1: every sequence together
    batch_prefill_seconds: float | None = None  # batch > 1: all the batch's prompts
    parallelism: str | None = None  # several GPUs: how they share the work, in words


def training_speed(*, flops_per_token: int, tokens_per_step: int, tflops: float | None,
                   gpu_count: int, mfu: float) -> tuple[float | None, float | None, str]:
    """(seconds per optimizer step, tokens/s, note): training is compute-bound."""
    if not tflops:
        return None, None, "training speed needs a named GPU (TFLOPS), not only a size"
    seconds = flops_per_token * tokens_per_step / (tflops * 1e12 * gpu_count * mfu)
    return (_seconds(seconds), round(tokens_per_step / seconds, 1),
            f"step time at {mfu:.0%} of {tflops:g} dense FP16 TFLOPS per GPU "
            "(6 x params x tokens, 8 x with checkpointing, 4 x for LoRA)")


# --- llama.cpp and Ollama: a GPU, system RAM, or both ---------------------------------------------
# Each factor is fitted on the records of bench/reference/speed_cases.jsonl named next to it
# (python -m bench.speed_accuracy prints the error on them and on the held-out ones;
# docs/speed-accuracy.md has the method and table).

# Share of the CPU's theoretical RAM bandwidth (channels x MT/s x 8 B) llama.cpp's CPU decode
# reaches: the median over s001 (Xeon W-3245, 0.46), s007 (7950X, 0.81), s009 (EPYC 9554, 0.55) and
# s012 (i9-9980HK, 0.69), one workstation, desktop, server and laptop; the other CPU records of
# bench/reference/speed_cases.jsonl are held out.
CPU_DECODE_EFFICIENCY = 0.62
# Apple Silicon GPUs (Metal) reach a smaller share of the SoC bandwidth than CUDA cards: the
# median over the M2 Ultra's three records, s023-s025 (8B Q4_K_M 0.46, 8B F16 0.69, 70B Q4_K_M
# 0.66); the M1 Max and M3 Max records are held out.
METAL_DECODE_EFFICIENCY = 0.66
# Share of the CPU's FP32 FMA peak (cores x base clock x FLOPs/cycle) that llama.cpp's quantized
# matmuls reach in prompt processing: s012 (i9-9980HK, pp512, 0.58); s013 is held out.
CPU_PREFILL_EFFICIENCY = 0.58
# Share of the GPU's dense FP16 TFLOPS (as the catalogue gives them: FP32 accumulation on GeForce
# cards) llama.cpp's prompt processing reaches on CUDA and ROCm: its quantized MMQ kernels and
# FP16-accumulating GEMMs outrun that figure's 45% (PREFILL_MFU). Fitted on g001 (8B Q4_K_M,
# 4090, 0.69), g003 (70B Q4_K_M, 2 x 3090, 0.71) and g007 (7B F16, 4090, 0.90).
LLAMACPP_PREFILL_MFU = 0.71
# Extra time per MoE layer on the GPU: the router, top-k, the ids and the expert kernels run at
# batch 1 far below the bandwidth their reads need. Fitted on g010 (gpt-oss-20b, 3090, 66 us),
# g012 (gpt-oss-20b, RTX PRO 6000, 21 us) and g049 (Qwen3-30B-A3B, 3090, 86 us).
LLAMACPP_MOE_LAYER_US = 66.0
# With a GPU present, llama.cpp runs large batches (>= 32 tokens) on the GPU and copies the
# weights of layers kept in RAM over PCIe once per ubatch (ggml-backend's offload of big ops).
PCIE_GBS = 25.0  # PCIe 4.0 x16, as measured by bandwidthTest-style copies (~25 of 32 GB/s)
UBATCH = 512


@dataclass(frozen=True)
class Device:
    """What one side of a llama.cpp split reads with: bandwidth, efficiency and compute."""

    bandwidth_gbs: float
    efficiency: float
    flops: float | None  # FLOP/s usable for prompt processing, already times its efficiency


def llamacpp_speed(*, gpu_bytes: int, ram_bytes: int, gpu: Device | None, cpu: Device,
                   active_params: int, gpu_share: float, prompt_tokens: int, batch: int,
                   ram_weight_bytes: int, gpu_moe_layers: int = 0) -> SpeedEstimate:
    """Decode: each token reads its VRAM bytes at the GPU's bandwidth, then its RAM bytes at the
    RAM's (llama.cpp runs the layers one after another, so the times add). Prefill: compute-bound
    on the GPU when there is one (plus the PCIe copies of RAM-resident weights per ubatch), on the
    CPU otherwise.

    ``gpu_share`` is the share of the active weights that sits on the GPU, ``gpu_moe_layers``
    the MoE layers there.
    """
    notes: list[str] = []
    gpu_time = 0.0
    if gpu_bytes:
        assert gpu is not None
        gpu_time = (gpu_bytes / (gpu.bandwidth_gbs * 1e9 * gpu.efficiency)
                    + gpu_moe_layers * LLAMACPP_MOE_LAYER_US / 1e6)
        notes.append(f"VRAM read at {gpu.efficiency:.0%} of {gpu.bandwidth_gbs:g} GB/s "
                     f"({gpu_bytes / 1e9:.2f} GB per token)")
        if gpu_moe_layers:
            notes.append(f"{LLAMACPP_MOE_LAYER_US:g} us of expert dispatch per MoE layer on the "
                         "GPU")
    cpu_mem = ram_bytes / (cpu.bandwidth_gbs * 1e9 * cpu.efficiency) if ram_bytes else 0.0
    cpu_compute = 0.0
    if ram_bytes and cpu.flops:
        cpu_compute = 2 * active_params * (1 - gpu_share) * batch / cpu.flops
    if ram_bytes:
        notes.append(f"RAM read at {cpu.efficiency:.0%} of {cpu.bandwidth_gbs:g} GB/s "
                     f"({ram_bytes / 1e9:.2f} GB per token)")
    cpu_time = max(cpu_mem, cpu_compute)
    step = gpu_time + cpu_time
    bound = "compute" if cpu_compute > cpu_mem and cpu_compute > gpu_time else "memory"
    decode = _rate(1 / step) if step > 0 else None

    def prompt_seconds(sequences: int) -> float | None:
        tokens = prompt_tokens * sequences
        flops = 2 * active_params * tokens
        if gpu is not None and gpu.flops:
            copies = (math.ceil(tokens / UBATCH) * ram_weight_bytes / (PCIE_GBS * 1e9)
                      if ram_weight_bytes else 0.0)
            return _seconds(flops / gpu.flops + copies)
        if gpu is None and cpu.flops:
            return _seconds(flops / cpu.flops)
        return None

    if gpu is not None and gpu.flops and ram_weight_bytes:
        notes.append(f"prompt on the GPU, RAM-resident weights copied over PCIe at "
                     f"{PCIE_GBS:g} GB/s once per {UBATCH}-token ubatch")
    # llama.cpp decodes parallel sequences in one batch: each step gives each of them a token.
    return SpeedEstimate(decode, prompt_seconds(1), bound, tuple(notes),
                         aggregate_decode_tokens_per_s=(_rate(1 / step * batch)
                                                        if step > 0 and batch > 1 else None),
                         batch_prefill_seconds=prompt_seconds(batch) if batch > 1 else None)


def llamacpp_report_speed(placement: Placement, gpu: Gpu, host: Host, *, active_params: int,
                          prompt_tokens: int, batch: int, gpu_count: int,
                          moe_layers: int = 0) -> SpeedEstimate:
    """Speed of a llama.cpp/Ollama placement (core.engines.llamacpp), with its assumptions.
    ``moe_layers``: the model's layers with routed experts (the last ones sit on the GPU)."""
    read = placement.read_per_token_bytes
    gpu_bytes, ram_bytes = read.gpu, read.ram
    device: Device | None = None
    if not placement.cpu_only:
        if not gpu.bandwidth_gbs:
            return SpeedEstimate(None, None, "memory", (NO_GPU_NOTE,))
        metal = gpu.vendor == "apple"
        eff = METAL_DECODE_EFFICIENCY if metal else DECODE_EFFICIENCY["llama.cpp"]
        mfu = PREFILL_MFU if metal else LLAMACPP_PREFILL_MFU
        flops = gpu.tflops_fp16 * 1e12 * mfu if gpu.tflops_fp16 else None
        device = Device(gpu.bandwidth_gbs, eff, flops)
    cpu = Device(host.bandwidth_gbs, CPU_DECODE_EFFICIENCY,
                 host.flops * CPU_PREFILL_EFFICIENCY)
    total = gpu_bytes + ram_bytes
    ram_weights = placement.ram_bytes.weights
    est = llamacpp_speed(gpu_bytes=gpu_bytes, ram_bytes=ram_bytes, gpu=device, cpu=cpu,
                         active_params=active_params, gpu_share=gpu_bytes / total if total else 1,
                         prompt_tokens=prompt_tokens, batch=batch,
                         ram_weight_bytes=ram_weights if not host.unified else 0,
                         gpu_moe_layers=(min(moe_layers, placement.layers_on_gpu)
                                         if device is not None else 0))
    notes = [f"decode speed at {placement.decode_context_tokens:,} tokens of context "
             "(the prompt plus half the generation; prompt= and gen= change it)", *est.notes]
    if ram_bytes:
        notes.append(host.bandwidth_note)
    if device is None:
        notes.append(f"prompt processing at {CPU_PREFILL_EFFICIENCY:.0%} of the {host.flops_note}")
    elif device.flops and gpu.tflops_fp16:
        notes.append(f"prompt processing at {device.flops / (gpu.tflops_fp16 * 1e12):.0%} of "
                     f"{gpu.tflops_fp16:g} dense FP16 TFLOPS")
    parallelism = None
    if gpu_count > 1 and device is not None:
        parallelism = (f"llama.cpp splits the layers over the {gpu_count} GPUs, which take "
                       "turns: one GPU's bandwidth per token")
        notes.append(parallelism)
    return replace(est, notes=tuple(notes), parallelism=parallelism)


# --- vLLM, SGLang, TGI, transformers and ExLlamaV2: per request and all together ---------------
# One decode step gives every sequence of the batch one token. It costs
#   reads:   the weights the step touches (an MoE only the experts its batch routes to) and each
#            sequence's KV cache, at STREAM_EFFICIENCY of the rated bandwidth; or, at large
#            batches, 2 x active params x batch FLOPs when that takes longer (the roofline);
#   fixed:   per-layer work that does not shrink with bandwidth (a dozen small kernels, an MoE
#            layer's router and expert dispatch, MLA's extra projections);
#   comm:    tensor parallel's two all-reduces per layer, pipeline stages' hand-overs.
# transformers differs: Python dispatches every op (no CUDA graph), so a step lasts at least its
# per-layer dispatch time, whatever the GPU does meanwhile. Fitted constants name their records
# (bench/reference/speed_cases_gpu.jsonl); python -m bench.speed_accuracy prints the errors,
# fitted and held out apart, and docs/speed-accuracy.md has the table.

# A large streaming read reaches about 85-90% of the rated DRAM bandwidth: an elementwise op
# moved 1,727 of the A800 PCIe's 1,935 GB/s in mli/transformers-benchmarks#4. Taken as 85% for
# the weight GEMVs of every serving engine.
STREAM_EFFICIENCY = 0.85
# transformers reads through PyTorch's cuBLAS GEMVs: gpt-fast measured 72% of the A100's
# bandwidth for a compiled Llama-2-7B decode (pytorch.org/blog/accelerating-generative-ai-2).
HF_STREAM_EFFICIENCY = 0.72
# transformers' Python dispatch per decoder layer per step, in ms: fitted on g023 (Qwen2.5-7B,
# A100, 24.8 ms for 28 layers; the same benchmark's 0.5B and 1.5B rows, 0.88 and 0.90 ms, agree).
HF_LAYER_MS = 0.88
# Fixed time per decoder layer per step, in microseconds, of the engines that replay CUDA graphs:
# a dozen kernels each take a few microseconds however little they read, and the engine's own
# work between steps (scheduling, sampling) is spread over the layers. vLLM's V0 engine (before
# 0.8) ran more, unfused kernels and scheduled in the critical path (the vLLM v0.6.0 post); its
# V1 engine compiles the model (torch.compile fuses norms, activations, rotary) and overlaps
# scheduling with the GPU.
VLLM_V0_LAYER_US = 131.0  # fitted on g029
VLLM_LAYER_US = 55.0  # fitted on g039
SGLANG_LAYER_US = 43.0  # fitted on g041
# Extra per MoE layer: router GEMM and top-k, the expert-alignment sort, two grouped expert
# GEMMs over many small matrices, the activation and the weighted sum, latency-bound at small
# batches (DeepSeek-V3's fused MoE kernel took 0.33-0.37 ms for 1 to 16 tokens alike,
# sgl-project/sglang#7876; routing and packing kernels are pure launch latency at one token,
# sgl-project/sglang#32699).
MOE_LAYER_US = 62.0  # fitted on g043, g052, g054
# Extra per MLA layer (DeepSeek): the q/kv down- and up-projections, their norms, the absorbed
# GEMMs and the latent attention's split-KV combine.
MLA_LAYER_US = 120.0  # fitted on g038, g046, g048
# Engines no published record checks take vLLM V1's figures (TGI's router and flashinfer
# kernels, ExLlamaV2's C++ generator are of the same kind); their answers say so.
UNCHECKED_ENGINES = ("tgi", "exllamav2")
# Handing the hidden state to the next GPU (device_map, pipeline stages): a copy of a few KB
# and an event wait per boundary, tens of microseconds, next to milliseconds of layers.
HOP_US = 40.0

# All-reduce over NVLink/NVSwitch (HGX/DGX SXM boards, B200/GB200, NVL bridges): vLLM's custom
# all-reduce took 9-10 us for 0.5-32 KB and 13-24 us for 256 KB on 2-8 H100s, 27-45 us for
# 1 MB (sgl-project/sglang#2904): 8 us plus the message at 40 GB/s.
NVLINK_LATENCY_US = 8.0
NVLINK_GBS = 40.0
# Over PCIe (GeForce cards have no peer-to-peer, so NCCL goes through host memory): an 8-byte
# all-reduce took 54 us on 8 RTX 3090s (NVIDIA/nccl#1439), 5 us plus 3.5 us for each of the
# ring's 2 x (n - 1) hops; messages move at about 10 GB/s through the host.
PCIE_BASE_US = 5.0
PCIE_HOP_US = 3.5
PCIE_ALLREDUCE_GBS = 10.0
_NVLINK_NAMES = ("SXM", "B200", "B300", "GB200", "GH200", " NVL", "HGX", "DGX", "MI300",
                 "MI325", "MI355", "MI250")


def allreduce_us(gpu: Gpu, ranks: int, message_bytes: float) -> tuple[float, str]:
    """One all-reduce of ``message_bytes`` over ``ranks`` GPUs, and the link it crosses: NVLink
    for SXM/HGX boards, NVL bridges and AMD Instinct OAM modules (Infinity Fabric, taken as
    NVLink-class), PCIe otherwise (from the catalogue name; gpus.json has no link field)."""
    if ranks <= 1:
        return 0.0, ""
    ring = 2 * (ranks - 1) / ranks * message_bytes
    if any(k in gpu.name for k in _NVLINK_NAMES):
        return NVLINK_LATENCY_US + ring / (NVLINK_GBS * 1e3), "NVLink"
    return (PCIE_BASE_US + PCIE_HOP_US * 2 * (ranks - 1) + ring / (PCIE_ALLREDUCE_GBS * 1e3),
            "PCIe")


def experts_touched(n_experts: int, top_k: int, tokens: int) -> float:
    """Expected distinct experts a layer reads for ``tokens`` tokens routed uniformly at random:
    n x (1 - (1 - k/n)^tokens), top_k for one token, all of them for large batches."""
    if n_experts <= 0:
        return 0.0
    return n_experts * (1 - (1 - top_k / n_experts) ** max(1, tokens))


@dataclass(frozen=True)
class _Reads:
    """Bytes of weights a decode step reads, split by what batching shares."""

    dense: int  # every layer's non-expert weights and the head, read once per step
    experts: int  # all routed experts of all layers
    moe_layers: int
    mla_layers: int


@per_spec()
def _reads(spec: ModelSpec, fmt: WeightFormat) -> _Reads:
    """What a decode step reads: the embedding is looked up (one row per token), the head (or
    the tied embedding acting as one) is read in full, routed experts as far as they are used."""
    sized: list[tuple[Tensor, int]]
    if is_gguf(fmt.name):
        types = gguf_types(spec, fmt.name)
        sized = [(t, gguf.tensor_bytes(t, ty)) for t, ty in zip(spec.tensors, types, strict=True)
                 if ty is not None]
    else:
        base = 4 if spec.dtype == "fp32" and fmt.name == "fp32" else BYTES_16
        sized = [(t, tensor_bytes(t, fmt, base)) for t in spec.tensors if t.part == "text"]
    dense = experts = head = embd = 0
    for t, size in sized:
        if t.name.endswith("_exps"):
            experts += size
        elif t.name == "token_embd":
            embd += size
        elif t.name == "output":
            head += size
        else:
            dense += size
    mla_layers = sum(1 for k in spec.kv_layers if k.kind == "latent")
    return _Reads(dense + (head or embd), experts, moe_layer_count(spec), mla_layers)


def moe_layer_count(spec: ModelSpec) -> int:
    """The layers that carry routed experts (all of them unless the config says fewer)."""
    return (spec.moe.moe_layers or spec.n_layers) if spec.moe else 0


def _layout(engine: str, gpu_count: int, tp: int, pp: int) -> tuple[int, int, str]:
    """(tensor-parallel ranks, stages that take turns, how the GPUs share the work in words)."""
    if gpu_count <= 1:
        return 1, 1, "one GPU"
    if engine in ("vllm", "sglang", "tgi"):
        stages = max(1, min(pp, gpu_count))
        ranks = max(1, min(tp, gpu_count // stages))
        if stages > 1:
            of = f" of tensor parallel {ranks}" if ranks > 1 else ""
            return ranks, stages, (f"pipeline parallel: {stages} stages{of}, one stage at a time "
                                   "works on a request")
        return ranks, 1, f"tensor parallel over {ranks} GPUs: each reads 1/{ranks} of every layer"
    name = "device_map" if engine == "hf" else engine
    return 1, gpu_count, (f"{name} splits the layers over {gpu_count} GPUs, which run one after "
                          "another: one GPU's bandwidth per token, whatever the count")


def _layer_us(engine: str, version: str | None) -> tuple[float, str]:
    """The fixed cost per layer of a CUDA-graph engine, and whose it is."""
    if engine == "sglang":
        return SGLANG_LAYER_US, "SGLang"
    release = release_numbers(version)
    if engine == "vllm" and release is not None and release < (0, 8):
        return VLLM_V0_LAYER_US, "vLLM's V0 engine"
    return VLLM_LAYER_US, "vLLM's V1 engine" if engine == "vllm" else f"{engine} (as vLLM V1)"


def serving_speed(*, engine: str, spec: ModelSpec, fmt: WeightFormat, gpu: Gpu, gpu_count: int,
                  tp: int, pp: int, batch: int, prompt_tokens: int, gen_tokens: int,
                  kv_type: str, version: str | None = None) -> SpeedEstimate:
    """Decode per request and for the whole batch, and prompt time for one prompt and for the
    batch, of a model served from GPU memory (vLLM, SGLang, TGI, transformers, ExLlamaV2).

    ``tp`` is the tensor-parallel size as the engine model resolved it, ``pp`` the pipeline
    stages asked for (vLLM, SGLang, TGI). transformers' device_map and ExLlamaV2's GPU split
    place layers on the GPUs in turn: one GPU works at a time.
    """
    if not gpu.bandwidth_gbs:
        return SpeedEstimate(None, None, "memory", (NO_GPU_NOTE,))
    batch = max(1, batch)
    ranks, stages, parallelism = _layout(engine, gpu_count, tp, pp)
    hf = engine == "hf"
    eff = HF_STREAM_EFFICIENCY if hf else STREAM_EFFICIENCY
    bandwidth = gpu.bandwidth_gbs * 1e9 * eff  # bytes/s of one GPU
    reads = _reads(spec, fmt)
    moe = spec.moe
    share = (experts_touched(moe.n_experts, moe.top_k, batch) / moe.n_experts
             if moe and moe.n_experts else 0.0)
    weights_ms = (reads.dense + reads.experts * share) / ranks / bandwidth * 1e3
    context = max(1, prompt_tokens + gen_tokens // 2)
    kv = kv_bytes(spec, context, batch, "fp16" if kv_type == "bf16" else kv_type, latent=True,
                  honor_window=True)
    # Each rank holds its share of the KV heads (one each, replicated, once tp exceeds them);
    # MLA's latent is one vector per token, held whole by every rank.
    kv_split = 1 if reads.mla_layers else max(1, min(ranks, spec.n_kv_heads))
    kv_ms = kv / kv_split / bandwidth * 1e3
    flops = gpu.tflops_fp16 * 1e12 * PREFILL_MFU if gpu.tflops_fp16 else None
    compute_ms = 2 * spec.active_params * batch / (flops * ranks) * 1e3 if flops else 0.0
    gpu_ms = max(weights_ms + kv_ms, compute_ms)
    layers = spec.n_layers
    layer_us, whose = _layer_us(engine, version)
    if hf:
        fixed_ms = layers * HF_LAYER_MS
    else:
        fixed_ms = (layers * layer_us + reads.moe_layers * MOE_LAYER_US
                    + reads.mla_layers * MLA_LAYER_US) / 1e3
    one_reduce, link = allreduce_us(gpu, ranks, batch * spec.hidden * BYTES_16)
    comm_ms = (2 * layers * one_reduce + (stages - 1) * HOP_US) / 1e3
    # transformers: the GPU runs behind the Python dispatch, the slower of the two sets the pace.
    body_ms = max(gpu_ms, fixed_ms) if hf else gpu_ms + fixed_ms
    step_ms = body_ms + comm_ms
    if compute_ms > weights_ms + kv_ms and (not hf or compute_ms >= fixed_ms):
        bound = "compute"
    elif (fixed_ms if hf else fixed_ms + comm_ms) > gpu_ms:
        bound = "latency"
    else:
        bound = "memory"
    per_request = 1000 / step_ms

    prefill = batch_prefill = None
    if flops:
        overhead = (fixed_ms + comm_ms) / 1e3
        prefill = _seconds(_prefill_seconds(spec, reads, prompt_tokens, 1, flops * ranks,
                                            bandwidth * ranks) + overhead)
        if batch > 1:
            batch_prefill = _seconds(_prefill_seconds(spec, reads, prompt_tokens, batch,
                                                      flops * ranks, bandwidth * ranks)
                                     + overhead)
    terms = [f"weights {weights_ms:.3g} ms", f"KV cache {kv_ms:.3g} ms"]
    if compute_ms > weights_ms + kv_ms:
        terms.append(f"compute {compute_ms:.3g} ms (2 x active params x batch at "
                     f"{PREFILL_MFU:.0%} of dense FP16 TFLOPS)")
    if hf:
        terms.append(f"Python dispatch {fixed_ms:.3g} ms ({HF_LAYER_MS:g} ms per layer; the "
                     "GPU runs behind it, the slower one sets the pace)")
    else:
        extra = [f"{us:g} us per {kind} layer" for us, kind, n in (
            (MOE_LAYER_US, "MoE", reads.moe_layers), (MLA_LAYER_US, "MLA", reads.mla_layers)) if n]
        terms.append(f"fixed costs {fixed_ms:.3g} ms ({whose}: {layer_us:g} us per layer"
                     + "".join(f", {e}" for e in extra) + ")")
    if comm_ms:
        terms.append(f"{'all-reduces' if ranks > 1 else 'hand-overs between GPUs'} "
                     f"{comm_ms:.3g} ms")
    notes = [f"decode step {step_ms:.3g} ms" + (f" for {batch} sequences" if batch > 1 else "")
             + ": " + ", ".join(terms),
             f"weights and KV read at {eff:.0%} of {gpu.bandwidth_gbs:g} GB/s"
             + (f" per GPU; {parallelism}" if gpu_count > 1 else ""),
             f"decode speed at {context:,} tokens of context (the prompt plus half the "
             "generation; prompt= and gen= change it)"]
    if moe and batch > 1:
        notes.append(f"MoE: a batch of {batch} routes to about "
                     f"{experts_touched(moe.n_experts, moe.top_k, batch):.0f} of {moe.n_experts} "
                     f"experts per layer ({moe.top_k} for one sequence)")
    if ranks > 1:
        notes.append(f"tensor parallel: 2 all-reduces per layer over {link}, {one_reduce:.3g} us "
                     "each")
    if engine in UNCHECKED_ENGINES:
        notes.append(f"no published measurement checks {engine}'s speed: vLLM V1's fixed costs "
                     "assumed")
    if flops:
        notes.append(f"prompt processing at {PREFILL_MFU:.0%} of {gpu.tflops_fp16:g} dense FP16 "
                     "TFLOPS per GPU" + (", one GPU at a time" if stages > 1 else ""))
    return SpeedEstimate(
        decode_tokens_per_s=_rate(per_request), prefill_seconds=prefill, bound=bound,
        notes=tuple(notes),
        aggregate_decode_tokens_per_s=_rate(per_request * batch) if batch > 1 else None,
        batch_prefill_seconds=batch_prefill, parallelism=parallelism if gpu_count > 1 else None)


def _prefill_seconds(spec: ModelSpec, reads: _Reads, prompt_tokens: int, batch: int,
                     flops: float, bandwidth: float) -> float:
    """Prompt processing: compute-bound (2 x active params per token plus causal attention),
    never faster than reading the weights the prompt's tokens route to."""
    tokens = prompt_tokens * batch
    attention = 2 * spec.n_layers * spec.n_heads * spec.head_dim * prompt_tokens ** 2 * batch
    compute = (2 * spec.active_params * tokens + attention) / flops
    moe = spec.moe
    share = (experts_touched(moe.n_experts, moe.top_k, tokens) / moe.n_experts
             if moe and moe.n_experts else 0.0)
    return max(compute, (reads.dense + reads.experts * share) / bandwidth)
