"""Roughly how fast: decode is bound by reading the weights (and KV) once per token, prefill by
matrix throughput.

Efficiency factors are stated in every answer: decode reaches about 70% of peak memory
bandwidth in llama.cpp, ExLlamaV2 and vLLM on one GPU (their kernels' published roofline
results), transformers' eager Python loop about 50%; prefill reaches about 45% of dense tensor
TFLOPS.
"""

from __future__ import annotations

from dataclasses import dataclass

DECODE_EFFICIENCY = {"hf": 0.5, "llama.cpp": 0.7, "ollama": 0.7, "exllamav2": 0.7, "vllm": 0.7,
                     "sglang": 0.7, "tgi": 0.7}
PREFILL_MFU = 0.45


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
    return SpeedEstimate(round(1 / step, 1), round(prefill, 3) if prefill is not None else None,
                         bound, tuple(notes))


def training_speed(*, flops_per_token: int, tokens_per_step: int, tflops: float | None,
                   gpu_count: int, mfu: float) -> tuple[float | None, float | None, str]:
    """(seconds per optimizer step, tokens/s, note): training is compute-bound."""
    if not tflops:
        return None, None, "training speed needs a named GPU (TFLOPS), not only a size"
    seconds = flops_per_token * tokens_per_step / (tflops * 1e12 * gpu_count * mfu)
    return (round(seconds, 3), round(tokens_per_step / seconds, 1),
            f"step time at {mfu:.0%} of {tflops:g} dense FP16 TFLOPS per GPU "
            "(6 x params x tokens, 8 x with checkpointing, 4 x for LoRA)")
