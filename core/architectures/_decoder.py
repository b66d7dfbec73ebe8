"""The decoder-only transformer most families are a variation of, described by a layout."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from core.architectures._blocks import Config, attention, embeddings, get, linear, mlp, norm
from core.spec import KvLayer, ModelSpec, MoeSpec
from core.tensors import Tensor

DTYPES = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32", "half": "fp16", "float": "fp32"}


@dataclass(frozen=True)
class DecoderLayout:
    """How one family departs from the plain Llama block. Defaults are Llama's."""

    qkv_bias: bool = False
    o_bias: bool = False
    mlp_bias: bool = False
    gated_mlp: bool = True
    fused_qkv: bool = False
    norm_bias: bool = False  # LayerNorm with bias instead of RMSNorm
    norms_per_layer: int = 2
    qk_norm: str | None = None  # "head": head_dim wide; "full": heads x head_dim; "per_head": heads x head_dim weights
    qk_norm_bias: bool = False
    final_norm: bool = True
    tied_default: bool = False
    lm_head_bias: bool = False
    learned_positions: int = 0  # rows of a learned position embedding
    embed_norm: bool = False  # a LayerNorm right after the token embedding (BLOOM)
    extra: Callable[[Config, int], list[Tensor]] | None = None  # per-layer extras (e.g. attention sinks)
    notes: tuple[str, ...] = field(default=())


def dtype_of(cfg: Config) -> str:
    raw = str(get(cfg, "torch_dtype", "dtype", default="bfloat16"))
    return DTYPES.get(raw, "bf16")


def head_dim_of(cfg: Config, hidden: int, n_heads: int) -> int:
    return int(get(cfg, "head_dim", default=hidden // n_heads))


def layer_kinds(cfg: Config, n_layers: int) -> list[str]:
    """'full' or 'sliding' per layer, from `layer_types` or the sliding-window settings."""
    types = cfg.get("layer_types")
    if isinstance(types, Sequence) and len(types) >= n_layers:
        return ["sliding" if "sliding" in str(t) else "full" for t in types[:n_layers]]
    window = cfg.get("sliding_window")
    if not window or cfg.get("use_sliding_window") is False:
        return ["full"] * n_layers
    return ["sliding"] * n_layers


def kv_layers(cfg: Config, n_layers: int, n_kv: int, head_dim: int,
              v_head_dim: int | None = None) -> tuple[KvLayer, ...]:
    window = cfg.get("sliding_window")
    return tuple(
        KvLayer(kind, n_kv * head_dim, n_kv * (v_head_dim or head_dim),  # type: ignore[arg-type]
                int(window) if kind == "sliding" and window else None)
        for kind in layer_kinds(cfg, n_layers)
    )


def decoder_layer(cfg: Config, layout: DecoderLayout, i: int, hidden: int, n_heads: int,
                  n_kv: int, head_dim: int) -> list[Tensor]:
    out = attention(i, hidden, n_heads, n_kv, head_dim, qkv_bias=layout.qkv_bias,
                    o_bias=layout.o_bias, fused=layout.fused_qkv)
    if layout.qk_norm == "head":
        out += norm("attn_q_norm", head_dim, i, layout.qk_norm_bias)
        out += norm("attn_k_norm", head_dim, i, layout.qk_norm_bias)
    elif layout.qk_norm in ("full", "per_head"):
        out += norm("attn_q_norm", n_heads * head_dim, i, layout.qk_norm_bias)
        out += norm("attn_k_norm", n_kv * head_dim, i, layout.qk_norm_bias)
    names = ("attn_norm", "ffn_norm", "attn_post_norm", "ffn_post_norm")
    for name in names[: layout.norms_per_layer]:
        out += norm(name, hidden, i, layout.norm_bias)
    if layout.extra is not None:
        out += layout.extra(cfg, i)
    return out


def build_decoder(
    cfg: Config, model_type: str, layout: DecoderLayout,
    ffn_for_layer: Callable[[int], list[Tensor]] | None = None,
    moe: MoeSpec | None = None,
) -> ModelSpec:
    """A decoder-only model. ``ffn_for_layer`` replaces the dense MLP (MoE families)."""
    hidden = int(get(cfg, "hidden_size", "n_embd", "d_model"))
    n_layers = int(get(cfg, "num_hidden_layers", "n_layer", "num_layers"))
    n_heads = int(get(cfg, "num_attention_heads", "n_head", "num_heads"))
    n_kv = int(get(cfg, "num_key_value_heads", "num_kv_heads", "n_head_kv", default=n_heads))
    head_dim = head_dim_of(cfg, hidden, n_heads)
    vocab = int(get(cfg, "vocab_size"))
    ffn = int(get(cfg, "intermediate_size", "n_inner", "ffn_hidden_size", default=4 * hidden))
    is_tied = bool(get(cfg, "tie_word_embeddings", default=layout.tied_default))

    embed, head = embeddings(vocab, hidden, is_tied, lm_head_bias=layout.lm_head_bias)
    tensors: list[Tensor] = list(embed)
    if layout.learned_positions:
        tensors.append(Tensor("pos_embd", layout.learned_positions, hidden, "embedding"))
    if layout.embed_norm:
        tensors += norm("token_embd_norm", hidden, None, True)
    for i in range(n_layers):
        tensors += decoder_layer(cfg, layout, i, hidden, n_heads, n_kv, head_dim)
        if ffn_for_layer is not None:
            tensors += ffn_for_layer(i)
        else:
            tensors += mlp(i, hidden, ffn, gated=layout.gated_mlp, bias=layout.mlp_bias)
    if layout.final_norm:
        tensors += norm("output_norm", hidden, None, layout.norm_bias)
    tensors += head

    return ModelSpec(
        model_type=model_type,
        tensors=tuple(tensors),
        n_layers=n_layers,
        hidden=hidden,
        n_heads=n_heads,
        n_kv_heads=n_kv,
        head_dim=head_dim,
        vocab=vocab,
        intermediate=ffn,
        kv_layers=kv_layers(cfg, n_layers, n_kv, head_dim),
        max_position=get(cfg, "max_position_embeddings", "n_positions", "max_seq_len"),
        dtype=dtype_of(cfg),
        tied_embeddings=is_tied,
        moe=moe,
        gated_mlp=layout.gated_mlp,
        layer_norm=layout.norm_bias or model_type in ("cohere", "cohere2", "mpt", "dbrx"),
        parallel_block=layout.norms_per_layer == 1,
        activation=str(get(cfg, "hidden_act", "activation_function", default="silu")),
        residual_dropout=float(get(cfg, "resid_pdrop", "hidden_dropout", default=0.0) or 0) > 0,
        notes=layout.notes,
    )


def router(layer: int, hidden: int, n_experts: int, bias: bool = False) -> list[Tensor]:
    out = [Tensor("ffn_gate_inp", n_experts, hidden, "router", layer)]
    if bias:
        out.append(Tensor("ffn_gate_inp", 1, n_experts, "bias", layer))
    return out


def experts(layer: int, hidden: int, ffn: int, n_experts: int, *, gated: bool = True,
            bias: bool = False) -> list[Tensor]:
    return mlp(layer, hidden, ffn, gated=gated, bias=bias, suffix="_exps", count=n_experts)


def shared_expert(layer: int, hidden: int, ffn: int, *, gated: bool = True) -> list[Tensor]:
    return mlp(layer, hidden, ffn, gated=gated, suffix="_shexp")


__all__ = ["DecoderLayout", "build_decoder", "experts", "linear", "router", "shared_expert"]
