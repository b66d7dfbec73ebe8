"""vLLM (and SGLang, TGI): pre-allocate a fixed share of the GPU and fill what the weights and
the profiling run leave with KV-cache blocks.

vLLM: budget = gpu_memory_utilization x total GPU memory (reference m002: 0.9 x 79.22 GiB =
71.29 GiB "instance can use"); the profiling run pushes max_num_batched_tokens through the model
to find the activation peak; non-torch memory (CUDA context, NCCL) is subtracted too; the rest
holds KV blocks of 16 tokens.
"""

from __future__ import annotations

from core.engines.base import GIB, MIB, EngineEstimate, Scenario
from core.formats import weight_bytes
from core.kv import KV_ELEMENT_BYTES, kv_bytes_per_token

BLOCK_TOKENS = 16
# vLLM V1's default chunked-prefill token budget for online serving.
MAX_NUM_BATCHED_TOKENS = 8192
# Sequences the sampler is profiled with (max_num_seqs default).
MAX_NUM_SEQS = 256
# Non-torch memory after start-up on one GPU: vLLM 0.11 reports 0.13-0.14 GiB (m106, m107,
# m111, m113; older builds more: m117 0.24, m002 1.79); with tensor parallelism NCCL buffers
# add about 2 GiB (m118, m119).
NON_TORCH_SINGLE = 140 * MIB
NON_TORCH_TP = 2 * GIB
# SGLang's default static memory fraction is lower than vLLM's 0.9; TGI fills what is free
# (its CUDA_MEMORY_FRACTION defaults to 1.0).
ENGINE_UTIL = {"vllm": None, "sglang": 0.88, "tgi": 1.0}


def profile_activation_bytes(sc: Scenario) -> int:
    """The profiling run's peak: MLP intermediates for the token budget plus sampler logits.

    It does not shrink with tensor parallelism: Qwen2.5-7B peaks at 2.21 GiB on 1, 2 and 4 GPUs
    (m117, m118, m119), so the sampler's unsharded logits and the gathered activations dominate.
    """
    spec = sc.spec
    ffn = spec.intermediate
    if spec.moe is not None:
        ffn = max(ffn, spec.moe.top_k * (spec.expert_width or spec.intermediate))
    act_bytes = 2
    mlp = MAX_NUM_BATCHED_TOKENS * (3 * ffn + 4 * spec.hidden) * act_bytes
    logits = MAX_NUM_SEQS * spec.vocab * 4 * 2
    return int(mlp + logits)


def estimate(sc: Scenario) -> EngineEstimate:
    req, spec = sc.request, sc.spec
    engine = req.engine or "vllm"
    util = req.util if req.util != 0.9 else (ENGINE_UTIL.get(engine) or req.util)
    # vLLM multiplies by the total CUDA reports (torch.cuda.mem_get_info), not the marketed size.
    budget = int(util * sc.gpu_usable_bytes)
    weights = weight_bytes(spec, sc.fmt) // sc.tp
    act = profile_activation_bytes(sc)
    non_torch = NON_TORCH_SINGLE if sc.tp == 1 else NON_TORCH_TP
    kv_type = "fp8" if req.kv in ("fp8", "q8", "q4") else "fp16"
    per_token = kv_bytes_per_token(spec, kv_type, latent=True) / sc.tp
    pool = max(0, budget - weights - act - non_torch)
    blocks = int(pool // (per_token * BLOCK_TOKENS)) if per_token else 0
    capacity = blocks * BLOCK_TOKENS
    needed = req.ctx * req.batch
    est = EngineEstimate(weights, pool, act, non_torch)
    est.fits_override = weights + act + non_torch < budget and capacity >= needed
    est.details.update({
        "budget_bytes": budget, "gpu_memory_utilization": util,
        "kv_cache_tokens": capacity, "kv_blocks": blocks,
        "max_concurrency": round(capacity / req.ctx, 2) if req.ctx else None,
        "one_sequence_fits": capacity >= req.ctx,
        "kv_bytes_per_token": round(per_token, 1),
        "max_num_batched_tokens": MAX_NUM_BATCHED_TOKENS,
        # The pool always fills the budget; what is left over is KV room beyond ctx x batch.
        "headroom_bytes": int((capacity - needed) * per_token),
    })
    est.assumptions.append(
        f"{engine} reserves {util:g} x GPU memory and fills what weights and the profiling run "
        f"({MAX_NUM_BATCHED_TOKENS:,} batched tokens) leave with KV blocks")
    if KV_ELEMENT_BYTES[kv_type] == 1.0:
        est.assumptions.append("KV cache in fp8 (kv_cache_dtype=fp8)")
    if capacity < needed:
        est.warnings.append(
            f"the KV pool holds {capacity:,} tokens, fewer than ctx x batch = {needed:,}")
    return est
