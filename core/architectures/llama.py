"""Llama and the families that are Llama with small changes (bias, norms, QK-norm, tying)."""

from __future__ import annotations

from core.architectures._blocks import Config, get
from core.architectures._decoder import DecoderLayout, build_decoder
from core.architectures.registry import register
from core.spec import ModelSpec


def _bias(cfg: Config, key: str = "attention_bias") -> bool:
    return bool(get(cfg, key, default=False))


@register("llama", "mistral", "yi", "granite", "baichuan", "minicpm", "exaone", "deepseek_llm")
def llama(cfg: Config) -> ModelSpec:
    layout = DecoderLayout(qkv_bias=_bias(cfg), o_bias=_bias(cfg), mlp_bias=_bias(cfg, "mlp_bias"))
    return build_decoder(cfg, str(cfg["model_type"]), layout)


@register("internlm")
def internlm(cfg: Config) -> ModelSpec:
    # InternLM (v1) puts a bias on q, k, v and o when config "bias" is true (its default).
    bias = bool(get(cfg, "bias", default=True))
    return build_decoder(cfg, "internlm", DecoderLayout(qkv_bias=bias, o_bias=bias))


@register("internlm2")
def internlm2(cfg: Config) -> ModelSpec:
    bias = bool(get(cfg, "bias", default=False))
    return build_decoder(cfg, "internlm2", DecoderLayout(qkv_bias=bias, o_bias=bias, fused_qkv=True))


@register("qwen2")
def qwen2(cfg: Config) -> ModelSpec:
    return build_decoder(cfg, "qwen2", DecoderLayout(qkv_bias=True))


@register("qwen3")
def qwen3(cfg: Config) -> ModelSpec:
    layout = DecoderLayout(qkv_bias=_bias(cfg), o_bias=_bias(cfg), qk_norm="head")
    return build_decoder(cfg, "qwen3", layout)


@register("gemma")
def gemma(cfg: Config) -> ModelSpec:
    return build_decoder(cfg, "gemma", DecoderLayout(tied_default=True))


def _with_layer_types(cfg: Config, full_every: int, full_first: bool = False) -> Config:
    """Fill `layer_types` for configs from before transformers spelled the pattern out."""
    if cfg.get("layer_types") or not cfg.get("sliding_window"):
        return cfg
    n = int(cfg["num_hidden_layers"])
    if full_first:  # Gemma 2: even layers slide, odd layers are global
        kinds = ["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(n)]
    else:  # Gemma 3, Cohere 2: every `full_every`-th layer is global
        kinds = ["full_attention" if (i + 1) % full_every == 0 else "sliding_attention"
                 for i in range(n)]
    return {**cfg, "layer_types": kinds}


@register("gemma2")
def gemma2(cfg: Config) -> ModelSpec:
    return build_decoder(_with_layer_types(cfg, 2, full_first=True), "gemma2",
                         DecoderLayout(tied_default=True, norms_per_layer=4))


@register("gemma3_text")
def gemma3_text(cfg: Config) -> ModelSpec:
    layout = DecoderLayout(tied_default=True, norms_per_layer=4, qk_norm="head")
    pattern = int(get(cfg, "sliding_window_pattern", default=6))
    return build_decoder(_with_layer_types(cfg, pattern), "gemma3_text", layout)


@register("olmo2")
def olmo2(cfg: Config) -> ModelSpec:
    # OLMo 2 normalizes after attention and MLP, and its QK-norm spans all heads.
    layout = DecoderLayout(qkv_bias=_bias(cfg), o_bias=_bias(cfg), qk_norm="full")
    return build_decoder(cfg, "olmo2", layout)


@register("starcoder2")
def starcoder2(cfg: Config) -> ModelSpec:
    bias = bool(get(cfg, "use_bias", default=True))
    layout = DecoderLayout(qkv_bias=bias, o_bias=bias, mlp_bias=bias, gated_mlp=False,
                           norm_bias=True, tied_default=True)
    return build_decoder(cfg, "starcoder2", layout)


@register("stablelm")
def stablelm(cfg: Config) -> ModelSpec:
    layout = DecoderLayout(
        qkv_bias=bool(get(cfg, "use_qkv_bias", default=False)), norm_bias=True,
        qk_norm="per_head" if get(cfg, "qk_layernorm", default=False) else None,
    )
    return build_decoder(cfg, "stablelm", layout)


@register("cohere", "cohere2")
def cohere(cfg: Config) -> ModelSpec:
    # One LayerNorm (no bias) feeds attention and MLP in parallel; embeddings are tied.
    layout = DecoderLayout(
        qkv_bias=_bias(cfg), o_bias=_bias(cfg), norms_per_layer=1, tied_default=True,
        qk_norm="per_head" if get(cfg, "use_qk_norm", default=False) else None,
    )
    if cfg["model_type"] == "cohere2":
        cfg = _with_layer_types(cfg, int(get(cfg, "sliding_window_pattern", default=4)))
    return build_decoder(cfg, str(cfg["model_type"]), layout)


@register("phi3")
def phi3(cfg: Config) -> ModelSpec:
    return build_decoder(cfg, "phi3", DecoderLayout(fused_qkv=True))


@register("orion")
def orion(cfg: Config) -> ModelSpec:
    return build_decoder(cfg, "orion", DecoderLayout(norm_bias=True))


@register("phi", "phi-msft")
def phi(cfg: Config) -> ModelSpec:
    # Phi-1/1.5/2: parallel attention and MLP behind one LayerNorm, biases everywhere,
    # and a biased, untied LM head. phi-msft is the original remote-code spelling of Phi-2.
    layout = DecoderLayout(qkv_bias=True, o_bias=True, mlp_bias=True, gated_mlp=False,
                           norm_bias=True, norms_per_layer=1, lm_head_bias=True)
    return build_decoder(cfg, "phi", layout)


@register("chatglm")
def chatglm(cfg: Config) -> ModelSpec:
    # ChatGLM2/3 is Llama-shaped under other names: fused, biased QKV over grouped KV heads.
    flat = {**cfg, "num_hidden_layers": get(cfg, "num_hidden_layers", "num_layers"),
            "vocab_size": cfg["padded_vocab_size"],
            "intermediate_size": cfg["ffn_hidden_size"], "head_dim": cfg.get("kv_channels"),
            "max_position_embeddings": cfg.get("seq_length"),
            "num_key_value_heads": cfg.get("multi_query_group_num")
            if cfg.get("multi_query_attention") else cfg["num_attention_heads"]}
    bias = bool(get(cfg, "add_bias_linear", default=False))
    layout = DecoderLayout(qkv_bias=bool(get(cfg, "add_qkv_bias", default=True)) or bias,
                           o_bias=bias, mlp_bias=bias, fused_qkv=True)
    return build_decoder(flat, "chatglm", layout)
