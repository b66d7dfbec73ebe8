"""ExLlamaV2: EXL2 weights at any bits per weight, the embedding in system RAM, a cache sized for
max_seq_len x batch in fp16, Q8, Q6 or Q4, and scratch for one prompt chunk."""

from __future__ import annotations

from core.engines.base import TORCH_CUDA_OVERHEAD, EngineEstimate, Scenario
from core.engines.details import ExllamaDetails
from core.formats import named_tensor_bytes, weight_bytes
from core.kv import kv_elements

# Bytes per cached element: Q8/Q4 caches add one fp16 scale per 32 values (exllamav2 cache.py).
CACHE_BYTES = {"fp16": 2.0, "bf16": 2.0, "fp8": 1.0 + 2 / 32, "q8": 1.0 + 2 / 32, "q4": 0.5 + 2 / 32}
# Prompts are processed in chunks of max_input_len tokens (default 2048).
CHUNK_TOKENS = 2048


def estimate(sc: Scenario) -> EngineEstimate:
    req, spec = sc.request, sc.spec
    embd = named_tensor_bytes(spec, sc.fmt, "token_embd")
    weights = (weight_bytes(spec, sc.fmt) - embd) // sc.gpu_count
    elements = kv_elements(spec, req.ctx, latent=False, honor_window=False)
    kv = int(elements * req.batch * CACHE_BYTES[req.kv]) // sc.gpu_count
    chunk = min(CHUNK_TOKENS, req.ctx)
    act = int(chunk * (3 * spec.intermediate + 4 * spec.hidden) * 2
              + spec.n_heads * chunk * chunk * 2 + spec.vocab * chunk * 4 / 16)
    est = EngineEstimate(weights, kv, act, TORCH_CUDA_OVERHEAD, details=ExllamaDetails(
        cache=req.kv, chunk_tokens=chunk, embedding_in_ram_bytes=embd))
    est.assumptions.append(
        f"ExLlamaV2: {req.kv} cache for ctx x batch, prompt processed in {chunk:,}-token chunks, "
        "token embedding in system RAM")
    return est
