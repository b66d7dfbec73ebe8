"""Roughly how fast: decode is bound by reading the weights (and KV) once per token, prefill by
matrix throughput.

Efficiency factors are stated in every answer: decode reaches about 70% of peak memory
bandwidth in llama.cpp, ExLlamaV2 and vLLM on one GPU (their kernels' published roofline
results), transformers' eager Python loop about 50%; prefill reaches about 45% of dense tensor
TFLOPS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.cpus import Host
    from core.engines.details import Placement
    from core.gpus import Gpu

DECODE_EFFICIENCY = {"hf": 0.5, "llama.cpp": 0.7, "ollama": 0.7, "exllamav2": 0.7, "vllm": 0.7,
                     "sglang": 0.7, "tgi": 0.7}
PREFILL_MFU = 0.45


def _rate(tokens_per_s: float) -> float:
    """One decimal, but never rounded to zero: a very slow answer keeps two significant digits."""
    return round(tokens_per_s, 1) if tokens_per_s >= 1 else float(f"{tokens_per_s:.2g}")


def _seconds(seconds: float) -> float:
    """A duration to three significant digits: an estimate, not a measurement."""
    return float(f"{seconds:.3g}")


@dataclass(frozen=True)
class SpeedEstimate:
    decode_tokens_per_s: float | None
    prefill_seconds: float | None
    bound: str
    notes: tuple[str, ...]


def estimate_speed(*, engine: str, bytes_per_token: float, active_params: int, prompt_tokens: int,
                   batch: int, bandwidth_gbs: float | None, tflops: float | None,
                   gpu_count: int) -> SpeedEstimate:
    if not bandwidth_gbs:
        return SpeedEstimate(None, None, "memory",
                             ("speed needs a named GPU (bandwidth, TFLOPS), not only a size",))
    eff = DECODE_EFFICIENCY.get(engine, 0.6)
    bandwidth = bandwidth_gbs * 1e9 * gpu_count * eff
    memory_time = bytes_per_token / bandwidth
    compute_time = 0.0
    prefill = None
    notes = [f"decode at {eff:.0%} of {bandwidth_gbs:g} GB/s per GPU"]
    if tflops:
        flops = tflops * 1e12 * gpu_count * PREFILL_MFU
        compute_time = 2 * active_params * batch / flops
        prefill = 2 * active_params * prompt_tokens * batch / flops
        notes.append(f"prefill at {PREFILL_MFU:.0%} of {tflops:g} dense FP16 TFLOPS per GPU")
    step = max(memory_time, compute_time)
    bound = "compute" if compute_time > memory_time else "memory"
    return SpeedEstimate(_rate(1 / step), _seconds(prefill) if prefill is not None else None,
                         bound, tuple(notes))


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
                   ram_weight_bytes: int) -> SpeedEstimate:
    """Decode: each token reads its VRAM bytes at the GPU's bandwidth, then its RAM bytes at the
    RAM's (llama.cpp runs the layers one after another, so the times add). Prefill: compute-bound
    on the GPU when there is one (plus the PCIe copies of RAM-resident weights per ubatch), on the
    CPU otherwise.

    ``gpu_share`` is the share of the active weights that sits on the GPU.
    """
    notes: list[str] = []
    gpu_time = 0.0
    if gpu_bytes:
        assert gpu is not None
        gpu_time = gpu_bytes / (gpu.bandwidth_gbs * 1e9 * gpu.efficiency)
        notes.append(f"VRAM read at {gpu.efficiency:.0%} of {gpu.bandwidth_gbs:g} GB/s "
                     f"({gpu_bytes / 1e9:.2f} GB per token)")
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

    prefill: float | None = None
    flops = 2 * active_params * prompt_tokens * batch
    if gpu is not None and gpu.flops:
        ubatches = math.ceil(prompt_tokens * batch / UBATCH)
        copies = ubatches * ram_weight_bytes / (PCIE_GBS * 1e9) if ram_weight_bytes else 0.0
        prefill = flops / gpu.flops + copies
        if copies:
            notes.append(f"prompt on the GPU, RAM-resident weights copied over PCIe at "
                         f"{PCIE_GBS:g} GB/s once per {UBATCH}-token ubatch")
    elif gpu is None and cpu.flops:
        prefill = flops / cpu.flops
    return SpeedEstimate(decode, _seconds(prefill) if prefill is not None else None, bound,
                         tuple(notes))


def llamacpp_report_speed(placement: Placement, gpu: Gpu, host: Host, *, active_params: int,
                          prompt_tokens: int, batch: int, gpu_count: int) -> SpeedEstimate:
    """Speed of a llama.cpp/Ollama placement (core.engines.llamacpp), with its assumptions."""
    read = placement.read_per_token_bytes
    gpu_bytes, ram_bytes = read.gpu, read.ram
    device: Device | None = None
    if not placement.cpu_only:
        if not gpu.bandwidth_gbs:
            return SpeedEstimate(None, None, "memory",
                                 ("speed needs a named GPU (bandwidth, TFLOPS), not only a size",))
        metal = gpu.vendor == "apple"
        eff = METAL_DECODE_EFFICIENCY if metal else DECODE_EFFICIENCY["llama.cpp"]
        flops = gpu.tflops_fp16 * 1e12 * PREFILL_MFU if gpu.tflops_fp16 else None
        device = Device(gpu.bandwidth_gbs, eff, flops)
    cpu = Device(host.bandwidth_gbs, CPU_DECODE_EFFICIENCY,
                 host.flops * CPU_PREFILL_EFFICIENCY)
    total = gpu_bytes + ram_bytes
    ram_weights = placement.ram_bytes.weights
    est = llamacpp_speed(gpu_bytes=gpu_bytes, ram_bytes=ram_bytes, gpu=device, cpu=cpu,
                         active_params=active_params, gpu_share=gpu_bytes / total if total else 1,
                         prompt_tokens=prompt_tokens, batch=batch,
                         ram_weight_bytes=ram_weights if not host.unified else 0)
    notes = [f"decode speed at {placement.decode_context_tokens:,} tokens of context "
             "(the prompt plus half the generation; prompt= and gen= change it)", *est.notes]
    if ram_bytes:
        notes.append(host.bandwidth_note)
    if device is None:
        notes.append(f"prompt processing at {CPU_PREFILL_EFFICIENCY:.0%} of the {host.flops_note}")
    elif device.flops and gpu.tflops_fp16:
        notes.append(f"prompt processing at {PREFILL_MFU:.0%} of {gpu.tflops_fp16:g} dense FP16 "
                     "TFLOPS")
    if gpu_count > 1 and device is not None:
        notes.append(f"llama.cpp splits layers over the {gpu_count} GPUs, which take turns: "
                     "one GPU's bandwidth per token")
    return SpeedEstimate(est.decode_tokens_per_s, est.prefill_seconds, est.bound, tuple(notes))
