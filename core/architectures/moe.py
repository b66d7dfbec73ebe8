"""Mixture-of-experts families: routed experts, shared experts, dense first layers, MLA."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from core.architectures._blocks import Config, get, linear, mlp, norm
from core.architectures._decoder import DecoderLayout, build_decoder, experts, router, shared_expert
from core.architectures.registry import register
from core.spec import KvLayer, ModelSpec, MoeSpec
from core.tensors import Tensor


def _moe_spec(n_experts: int, top_k: int, n_shared: int, is_moe: Callable[[int], bool],
              n_layers: int) -> MoeSpec:
    return MoeSpec(n_experts, top_k, n_shared, sum(1 for i in range(n_layers) if is_moe(i)))


def _sparse_layers(cfg: Config, n_layers: int) -> Callable[[int], bool]:
    """Qwen-MoE style: every `decoder_sparse_step`-th layer, minus `mlp_only_layers`."""
    step = int(get(cfg, "decoder_sparse_step", default=1))
    dense = set(get(cfg, "mlp_only_layers", default=[]))
    return lambda i: i not in dense and (i + 1) % step == 0


@register("mixtral")
def mixtral(cfg: Config) -> ModelSpec:
    hidden, ffn = int(cfg["hidden_size"]), int(cfg["intermediate_size"])
    n_exp, top_k = int(cfg["num_local_experts"]), int(cfg["num_experts_per_tok"])
    n_layers = int(cfg["num_hidden_layers"])
    return build_decoder(cfg, "mixtral", DecoderLayout(),
                         lambda i: router(i, hidden, n_exp) + experts(i, hidden, ffn, n_exp),
                         MoeSpec(n_exp, top_k, 0, n_layers))


@register("phimoe")
def phimoe(cfg: Config) -> ModelSpec:
    hidden, ffn = int(cfg["hidden_size"]), int(cfg["intermediate_size"])
    n_exp, top_k = int(cfg["num_local_experts"]), int(cfg["num_experts_per_tok"])
    bias = bool(get(cfg, "attention_bias", default=False))
    layout = DecoderLayout(qkv_bias=bias, o_bias=bias, norm_bias=True,
                           lm_head_bias=bool(get(cfg, "lm_head_bias", default=False)))
    return build_decoder(cfg, "phimoe", layout,
                         lambda i: router(i, hidden, n_exp) + experts(i, hidden, ffn, n_exp),
                         MoeSpec(n_exp, top_k, 0, int(cfg["num_hidden_layers"])))


def _qwen_moe(cfg: Config, model_type: str, layout: DecoderLayout) -> ModelSpec:
    hidden, n_layers = int(cfg["hidden_size"]), int(cfg["num_hidden_layers"])
    n_exp, top_k = int(cfg["num_experts"]), int(cfg["num_experts_per_tok"])
    moe_ffn, dense_ffn = int(cfg["moe_intermediate_size"]), int(cfg["intermediate_size"])
    shared = int(get(cfg, "shared_expert_intermediate_size", default=0))
    is_moe = _sparse_layers(cfg, n_layers)

    def ffn(i: int) -> list[Tensor]:
        if not is_moe(i):
            return mlp(i, hidden, dense_ffn, gated=True)
        out = router(i, hidden, n_exp) + experts(i, hidden, moe_ffn, n_exp)
        if shared:
            # Qwen's shared expert is scaled by a sigmoid gate of width one.
            out += shared_expert(i, hidden, shared) + linear("ffn_gate_inp_shexp", hidden, 1, i)
        return out

    return build_decoder(cfg, model_type, layout, ffn,
                         _moe_spec(n_exp, top_k, 1 if shared else 0, is_moe, n_layers))


@register("qwen2_moe")
def qwen2_moe(cfg: Config) -> ModelSpec:
    return _qwen_moe(cfg, "qwen2_moe", DecoderLayout(qkv_bias=True))


@register("qwen3_moe")
def qwen3_moe(cfg: Config) -> ModelSpec:
    bias = bool(get(cfg, "attention_bias", default=False))
    return _qwen_moe(cfg, "qwen3_moe", DecoderLayout(qkv_bias=bias, o_bias=bias, qk_norm="head"))


@register("minicpm")
def minicpm(cfg: Config) -> ModelSpec:
    # MiniCPM is Llama with scaled residuals; its MoE variant keeps the same model_type.
    if not cfg.get("num_experts"):
        return build_decoder(cfg, "minicpm", DecoderLayout(tied_default=True))
    hidden, ffn = int(cfg["hidden_size"]), int(cfg["intermediate_size"])
    n_exp, top_k = int(cfg["num_experts"]), int(cfg["num_experts_per_tok"])
    return build_decoder(cfg, "minicpm", DecoderLayout(tied_default=True),
                         lambda i: router(i, hidden, n_exp) + experts(i, hidden, ffn, n_exp),
                         MoeSpec(n_exp, top_k, 0, int(cfg["num_hidden_layers"])))


@register("dbrx")
def dbrx(cfg: Config) -> ModelSpec:
    attn, ffn_cfg = cfg.get("attn_config") or {}, cfg.get("ffn_config") or {}
    hidden = int(cfg["d_model"])
    n_exp, top_k = int(ffn_cfg.get("moe_num_experts", 16)), int(ffn_cfg.get("moe_top_k", 4))
    ffn = int(ffn_cfg["ffn_hidden_size"])
    flat = {**cfg, "hidden_size": hidden, "num_hidden_layers": cfg["n_layers"],
            "num_attention_heads": cfg["n_heads"], "num_key_value_heads": attn.get("kv_n_heads", 8),
            "max_position_embeddings": cfg.get("max_seq_len"), "intermediate_size": ffn}
    return build_decoder(flat, "dbrx", DecoderLayout(fused_qkv=True),
                         lambda i: router(i, hidden, n_exp) + experts(i, hidden, ffn, n_exp),
                         MoeSpec(n_exp, top_k, 0, int(cfg["n_layers"])))


def _gpt_oss_extras(cfg: Config, i: int) -> list[Tensor]:
    # Learned attention sinks: one logit per head.
    return [Tensor("attn_sinks", 1, int(cfg["num_attention_heads"]), "norm", i)]


@register("gpt_oss")
def gpt_oss(cfg: Config) -> ModelSpec:
    hidden, ffn = int(cfg["hidden_size"]), int(cfg["intermediate_size"])
    n_exp = int(get(cfg, "num_local_experts"))
    top_k = int(get(cfg, "num_experts_per_tok", "experts_per_token", default=4))
    layout = DecoderLayout(qkv_bias=True, o_bias=True, extra=_gpt_oss_extras)
    return build_decoder(
        cfg, "gpt_oss", layout,
        lambda i: router(i, hidden, n_exp, bias=True) + experts(i, hidden, ffn, n_exp, bias=True),
        MoeSpec(n_exp, top_k, 0, int(cfg["num_hidden_layers"])))


def _deepseek_dense_first(cfg: Config) -> Callable[[int], bool]:
    first_dense = int(get(cfg, "first_k_dense_replace", default=0))
    freq = int(get(cfg, "moe_layer_freq", default=1))
    return lambda i: i >= first_dense and i % freq == 0


def _deepseek_ffn(cfg: Config, hidden: int, router_bias: bool) -> Callable[[int], list[Tensor]]:
    n_exp = int(get(cfg, "n_routed_experts", "num_experts"))
    moe_ffn, dense_ffn = int(cfg["moe_intermediate_size"]), int(cfg["intermediate_size"])
    n_shared = int(get(cfg, "n_shared_experts", "num_shared_experts", default=0))
    is_moe = _deepseek_dense_first(cfg)

    def ffn(i: int) -> list[Tensor]:
        if not is_moe(i):
            return mlp(i, hidden, dense_ffn, gated=True)
        out = router(i, hidden, n_exp) + experts(i, hidden, moe_ffn, n_exp)
        if router_bias:
            out.append(Tensor("ffn_exp_probs_b", 1, n_exp, "bias", i))
        if n_shared:
            out += shared_expert(i, hidden, moe_ffn * n_shared)
        return out

    return ffn


@register("deepseek")
def deepseek(cfg: Config) -> ModelSpec:
    hidden, n_layers = int(cfg["hidden_size"]), int(cfg["num_hidden_layers"])
    is_moe = _deepseek_dense_first(cfg)
    moe = _moe_spec(int(cfg["n_routed_experts"]), int(cfg["num_experts_per_tok"]),
                    int(get(cfg, "n_shared_experts", default=0)), is_moe, n_layers)
    return build_decoder(cfg, "deepseek", DecoderLayout(), _deepseek_ffn(cfg, hidden, False), moe)


def _mla_attention(cfg: Config, i: int) -> list[Tensor]:
    hidden, n_heads = int(cfg["hidden_size"]), int(cfg["num_attention_heads"])
    q_rank = get(cfg, "q_lora_rank")
    kv_rank, rope = int(cfg["kv_lora_rank"]), int(cfg["qk_rope_head_dim"])
    nope, v_dim = int(cfg["qk_nope_head_dim"]), int(cfg["v_head_dim"])
    q_width = n_heads * (nope + rope)
    if q_rank:
        out = (linear("attn_q_a", hidden, int(q_rank), i) + norm("attn_q_a_norm", int(q_rank), i)
               + linear("attn_q_b", int(q_rank), q_width, i))
    else:
        out = linear("attn_q", hidden, q_width, i)
    out += linear("attn_kv_a_mqa", hidden, kv_rank + rope, i) + norm("attn_kv_a_norm", kv_rank, i)
    out += linear("attn_kv_b", kv_rank, n_heads * (nope + v_dim), i)
    out += linear("attn_output", n_heads * v_dim, hidden, i)
    if cfg.get("index_n_heads"):
        # DeepSeek-V3.2's lightning indexer picks the tokens sparse attention reads.
        idx_heads, idx_dim = int(cfg["index_n_heads"]), int(cfg["index_head_dim"])
        out += linear("indexer_q_b", int(q_rank or hidden), idx_heads * idx_dim, i)
        out += linear("indexer_k", hidden, idx_dim, i) + norm("indexer_k_norm", idx_dim, i, True)
        out += linear("indexer_proj", hidden, idx_heads, i)
    return out + norm("attn_norm", hidden, i) + norm("ffn_norm", hidden, i)


@register("deepseek_v2", "deepseek_v3", "kimi_k2", "deepseek_v32")
def deepseek_mla(cfg: Config) -> ModelSpec:
    model_type = str(cfg["model_type"])
    hidden, n_layers = int(cfg["hidden_size"]), int(cfg["num_hidden_layers"])
    n_heads = int(cfg["num_attention_heads"])
    router_bias = get(cfg, "topk_method") == "noaux_tc"
    ffn = _deepseek_ffn(cfg, hidden, router_bias)
    is_moe = _deepseek_dense_first(cfg)
    moe = _moe_spec(int(cfg["n_routed_experts"]), int(cfg["num_experts_per_tok"]),
                    int(get(cfg, "n_shared_experts", default=0)), is_moe, n_layers)
    base = build_decoder({**cfg, "intermediate_size": cfg["intermediate_size"]}, model_type,
                         DecoderLayout(), ffn, moe)
    # Swap the plain attention for MLA, keeping embeddings, experts and norms.
    kept = [t for t in base.tensors if t.layer is None or not (t.name.startswith("attn_")
                                                               or t.name == "ffn_norm")]
    attn = [t for i in range(n_layers) for t in _mla_attention(cfg, i)]
    nope, rope = int(cfg["qk_nope_head_dim"]), int(cfg["qk_rope_head_dim"])
    kv_rank = int(cfg["kv_lora_rank"])
    # The cache holds the normed latent (as K) and the shared RoPE key (as V), plus V3.2's
    # indexer keys; the per-head K and V are re-expanded from the latent at every step.
    index = int(get(cfg, "index_head_dim", default=0)) if cfg.get("index_n_heads") else 0
    kv = tuple(KvLayer("latent", kv_rank, rope, None, kv_rank + rope, extra_width=index)
               for _ in range(n_layers))
    return replace(base, tensors=tuple(sorted(kept + attn, key=_layer_order)), kv_layers=kv,
                   head_dim=nope + rope, n_kv_heads=n_heads)


def _layer_order(t: Tensor) -> int:
    return -1 if t.layer is None and t.name == "token_embd" else (t.layer if t.layer is not None
                                                                   else 1 << 30)


@register("ernie4_5_moe")
def ernie4_5_moe(cfg: Config) -> ModelSpec:
    hidden, n_layers = int(cfg["hidden_size"]), int(cfg["num_hidden_layers"])
    n_exp, top_k = int(cfg["moe_num_experts"]), int(cfg["moe_k"])
    moe_ffn, dense_ffn = int(cfg["moe_intermediate_size"]), int(cfg["intermediate_size"])
    n_shared = int(get(cfg, "moe_num_shared_experts", default=0))
    start = int(get(cfg, "moe_layer_start_index", default=0))
    end = int(get(cfg, "moe_layer_end_index", default=n_layers - 1))
    step = int(get(cfg, "moe_layer_interval", default=1))
    bias = bool(get(cfg, "use_bias", default=False))

    def is_moe(i: int) -> bool:
        return start <= i <= end and (i - start) % step == 0

    def ffn(i: int) -> list[Tensor]:
        if not is_moe(i):
            return mlp(i, hidden, dense_ffn, gated=True, bias=bias)
        out = router(i, hidden, n_exp) + experts(i, hidden, moe_ffn, n_exp, bias=bias)
        out.append(Tensor("ffn_exp_probs_b", 1, n_exp, "bias", i))
        if n_shared:
            out += shared_expert(i, hidden, moe_ffn * n_shared)
        return out

    layout = DecoderLayout(qkv_bias=bias, o_bias=bias, tied_default=True)
    return build_decoder(cfg, "ernie4_5_moe", layout, ffn,
                         _moe_spec(n_exp, top_k, n_shared, is_moe, n_layers))


@register("bailing_moe")
def bailing_moe(cfg: Config) -> ModelSpec:
    hidden, n_layers = int(cfg["hidden_size"]), int(cfg["num_hidden_layers"])
    n_exp, top_k = int(cfg["num_experts"]), int(cfg["num_experts_per_tok"])
    moe_ffn, dense_ffn = int(cfg["moe_intermediate_size"]), int(cfg["intermediate_size"])
    n_shared = int(get(cfg, "num_shared_experts", default=0))
    first_dense = int(get(cfg, "first_k_dense_replace", default=0))
    expert_bias = bool(get(cfg, "moe_router_enable_expert_bias", default=False))

    def ffn(i: int) -> list[Tensor]:
        if i < first_dense:
            return mlp(i, hidden, dense_ffn, gated=True)
        out = router(i, hidden, n_exp) + experts(i, hidden, moe_ffn, n_exp)
        if expert_bias:
            out.append(Tensor("ffn_exp_probs_b", 1, n_exp, "bias", i))
        if n_shared:
            width = int(get(cfg, "moe_shared_expert_intermediate_size", default=moe_ffn))
            out += shared_expert(i, hidden, width * n_shared)
        return out

    layout = DecoderLayout(qkv_bias=bool(get(cfg, "use_qkv_bias", default=False)),
                           o_bias=bool(get(cfg, "use_bias", default=False)), fused_qkv=True,
                           qk_norm="head" if get(cfg, "use_qk_norm", default=False) else None)
    return build_decoder(cfg, "bailing_moe", layout, ffn,
                         _moe_spec(n_exp, top_k, n_shared, lambda i: i >= first_dense, n_layers))


@register("llama4_text")
def llama4_text(cfg: Config) -> ModelSpec:
    hidden, n_layers = int(cfg["hidden_size"]), int(cfg["num_hidden_layers"])
    n_exp, top_k = int(cfg["num_local_experts"]), int(cfg["num_experts_per_tok"])
    moe_ffn = int(cfg["intermediate_size"])
    dense_ffn = int(get(cfg, "intermediate_size_mlp", default=moe_ffn))
    step = int(get(cfg, "interleave_moe_layer_step", default=1))
    moe_layers = get(cfg, "moe_layers")
    layers = set(moe_layers) if moe_layers is not None else set(range(step - 1, n_layers, step))

    def ffn(i: int) -> list[Tensor]:
        if i not in layers:
            return mlp(i, hidden, dense_ffn, gated=True)
        return router(i, hidden, n_exp) + experts(i, hidden, moe_ffn, n_exp) + shared_expert(
            i, hidden, moe_ffn)

    spec = build_decoder({**cfg, "intermediate_size": dense_ffn}, "llama4_text", DecoderLayout(),
                         ffn, _moe_spec(n_exp, top_k, 1, lambda i: i in layers, n_layers))
    chunk = get(cfg, "attention_chunk_size")
    no_rope = get(cfg, "no_rope_layers")
    if chunk and isinstance(no_rope, list) and len(no_rope) >= n_layers:
        # RoPE layers attend within chunks of `attention_chunk_size`; NoPE layers see everything.
        kv = tuple(replace(layer, kind="sliding", window=int(chunk)) if no_rope[i] else layer
                   for i, layer in enumerate(spec.kv_layers))
        spec = replace(spec, kv_layers=kv)
    return spec
