"""llama.cpp and Ollama: GGUF weights, a KV cache allocated for all of n_ctx up front, a compute
buffer that grows with n_ctx and n_ubatch, and layers that can stay in system RAM.

Layout (llama.cpp src/llama-model.cpp): the token embedding always lives in host memory; with
-ngl N the last N repeating layers go to the GPU, and the output layer too once every layer has.
Each offloaded layer's KV cache sits with it. Sliding-window layers (Gemma 2/3, gpt-oss) keep
window + n_ubatch tokens (the iSWA cache, default since llama.cpp b5500); MLA models cache the
compressed latent.
"""

from __future__ import annotations

from core.engines.base import GGML_CUDA_OVERHEAD, EngineEstimate, Scenario
from core.formats import layer_weight_bytes, named_tensor_bytes
from core.kv import KV_ELEMENT_BYTES
from core.spec import ModelSpec

N_UBATCH = 512
# Architectures llama.cpp builds with an iSWA cache; for the others (Mistral v0.1 on the llama
# architecture) it ignores the window and caches every token.
ISWA_ARCHS = frozenset({"gemma2", "gemma3", "gemma3_text", "gpt_oss", "cohere2", "llama4",
                        "llama4_text"})


def _kv_type(kv: str) -> str:
    return {"bf16": "fp16", "fp8": "q8"}.get(kv, kv)


def _kv_elements_by_layer(spec: ModelSpec, n_ctx: int) -> list[int]:
    """Cached elements per layer for n_ctx tokens, as llama.cpp lays the cache out."""
    key = ("llamacpp_kv", n_ctx)
    memo = spec.memo.get(key)
    if isinstance(memo, list):
        return memo
    iswa = spec.model_type in ISWA_ARCHS
    cached: list[int] = []
    for layer in spec.kv_layers:
        if layer.kind == "sliding" and layer.window and iswa:
            cached.append((layer.k_width + layer.v_width) * min(n_ctx, layer.window + N_UBATCH))
        elif layer.kind == "state":
            cached.append(layer.state_elements)
        elif layer.kind == "latent":
            cached.append(layer.latent_width * n_ctx)
        else:
            cached.append((layer.k_width + layer.v_width) * n_ctx)
    if len(spec.memo) < 4096:  # bounded: ctx varies freely while solving
        spec.memo[key] = cached
    return cached


def compute_buffer_bytes(spec: ModelSpec, n_ctx: int, flash_attn: bool) -> int:
    """The graph's scratch for one ubatch: the largest of the logits and one layer's work.

    Logits are fp32 n_vocab x n_ubatch. Without flash attention the f32 KQ scores of all heads
    (n_ctx x n_ubatch each) are materialized; with it only a f16 mask of that size. The MLP holds
    gate and up (f32) for the ubatch.
    """
    logits = spec.vocab * N_UBATCH * 4
    scores = n_ctx * N_UBATCH * (2 if flash_attn else spec.n_heads * 4)
    mlp = N_UBATCH * (2 * spec.intermediate + 4 * spec.hidden) * 4
    return max(logits, scores + mlp)


def estimate(sc: Scenario) -> EngineEstimate:
    """Memory with every layer on the GPU(s), plus the partial-offload plan when that is too much."""
    req, spec = sc.request, sc.spec
    ollama = req.engine == "ollama"
    flash = not ollama
    kv_type = _kv_type(req.kv)
    n_ctx = req.ctx * req.batch  # parallel sequences share n_ctx in llama.cpp
    layers = layer_weight_bytes(spec, sc.fmt)
    n_layers, n = spec.n_layers, sc.gpu_count
    embd = named_tensor_bytes(spec, sc.fmt, "token_embd")  # memoized per format
    head_and_norm = layers.get(None, 0) - embd
    compute = compute_buffer_bytes(spec, n_ctx, flash)

    # Per layer, weights plus cache: -ngl k puts the last k of them on the GPUs.
    kv_per_layer = _kv_elements_by_layer(spec, n_ctx)
    kv_scale = KV_ELEMENT_BYTES[kv_type]
    per_layer = [layers.get(i, 0) + int((kv_per_layer[i] if i < len(kv_per_layer) else 0)
                                        * kv_scale) for i in range(n_layers)]
    layers_total = sum(per_layer)
    weights = sum(layers.get(i, 0) for i in range(n_layers)) + head_and_norm
    kv = layers_total + head_and_norm - weights
    est = EngineEstimate(weights // n, kv // n, compute, GGML_CUDA_OVERHEAD)
    room = (sc.gpu_usable_bytes - compute - GGML_CUDA_OVERHEAD) * n
    if layers_total + head_and_norm <= room:
        ngl, on_gpu = n_layers, layers_total
    else:
        ngl, on_gpu = 0, 0
        for size in reversed(per_layer):  # the output layer stays on the CPU until all fit
            if on_gpu + size > room:
                break
            on_gpu += size
            ngl += 1
    ram = 0 if ngl == n_layers else (
        embd + head_and_norm + (layers_total - on_gpu) + compute)
    ram += embd if ngl == n_layers else 0
    est.details.update({
        "n_layers": n_layers, "n_gpu_layers": ngl, "n_ctx": n_ctx, "n_ubatch": N_UBATCH,
        "flash_attn": flash, "kv_type": {"fp16": "f16", "q8": "q8_0", "q4": "q4_0"}[kv_type],
        "system_ram_bytes": ram, "token_embd_in_ram_bytes": embd,
    })
    name = "Ollama" if ollama else "llama.cpp"
    est.assumptions.append(
        f"{name}: KV cache for all of n_ctx={n_ctx:,} allocated up front "
        f"({est.details['kv_type']}), n_ubatch={N_UBATCH}, flash attention "
        f"{'on' if flash else 'off'}; token embedding kept in system RAM")
    if req.batch > 1:
        est.assumptions.append(f"{req.batch} parallel sequences share n_ctx = ctx x batch")
    if ngl < n_layers:
        est.details["partial_offload"] = (
            f"-ngl {ngl}: {ngl} of {n_layers} layers on the GPU, the rest in system RAM")
    return est
