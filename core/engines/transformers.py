"""Hugging Face transformers: weights on the GPU, a KV cache grown as tokens arrive, and the
prefill peak of one layer's intermediates (plus attention scores under eager attention)."""

from __future__ import annotations

from core.engines.base import GIB, TORCH_CUDA_OVERHEAD, EngineEstimate, Scenario
from core.engines.details import TransformersDetails
from core.formats import weight_bytes
from core.kv import KV_ELEMENT_BYTES, kv_bytes


def activation_bytes(sc: Scenario, tokens: int, batch: int) -> int:
    """Largest set of live tensors while one layer runs the prompt (no grad).

    The MLP holds gate, up and act(gate) at once (3 x ffn per token) next to the residual stream
    and its normed copy (2 x hidden); MoE layers do that for top_k experts' share of tokens.
    Eager attention also materializes the scores, once in the model dtype and once as fp32 for
    the softmax. generate() computes logits for the last position only (logits_to_keep=1).
    """
    spec, req = sc.spec, sc.request
    act = KV_ELEMENT_BYTES.get(spec.dtype if spec.dtype != "fp32" else "fp32", 2.0)
    ffn = spec.intermediate
    if spec.moe is not None:
        ffn = max(ffn, (spec.expert_width or spec.intermediate) * spec.moe.top_k)
    per_token = 3 * ffn + 2 * spec.hidden
    mlp_peak = batch * tokens * per_token * act / sc.tp
    scores = 0.0
    if req.attn == "eager":
        scores = batch * (spec.n_heads / sc.tp) * tokens * tokens * (act + 4)
    logits = batch * spec.vocab * 4 * 2
    return int(mlp_peak + scores + logits)


def estimate(sc: Scenario) -> EngineEstimate:
    req, spec = sc.request, sc.spec
    kv_type = req.kv if req.kv != "fp16" else ("fp32" if spec.dtype == "fp32" else "fp16")
    weights = weight_bytes(spec, sc.fmt) // sc.tp
    kv = kv_bytes(spec, req.ctx, req.batch, kv_type, latent=True, honor_window=True,
                  transformers=True) // sc.tp
    prompt = req.prompt or req.ctx
    act = activation_bytes(sc, prompt, req.batch)
    grown = kv * max(0, req.ctx - prompt) // req.ctx if req.ctx else 0
    reserved = weights + kv + act + TORCH_CUDA_OVERHEAD + int(sc.calibration.growth_reserve * grown)
    est = EngineEstimate(weights, kv, act, TORCH_CUDA_OVERHEAD,
                         details=TransformersDetails(reserved_bytes=reserved))
    if grown and reserved - est.total >= GIB // 4:
        est.assumptions.append(
            f"nvidia-smi may show about {reserved / GIB:.1f} GiB: the cache grows a token at a time "
            f"and PyTorch keeps the freed blocks cached (they are released before an "
            f"out-of-memory error, so the verdict uses the allocated peak)")
    est.assumptions.append(
        f"transformers with {req.attn} attention: KV cache grows to ctx x batch, "
        f"peak while prefilling {prompt:,} tokens")
    if sc.tp > 1:
        est.assumptions.append(f"weights and cache split evenly over {sc.tp} GPUs (device_map)")
    if any(layer.hf_expand > 1 for layer in spec.kv_layers):
        est.assumptions.append("transformers' Falcon caches K/V expanded to every query head")
    return est
