"""Families whose layers differ from one another: Qwen3-Next (linear + full attention) and
Nemotron-NAS (per-layer searched widths, some blocks removed)."""

from __future__ import annotations

from dataclasses import replace

from core.architectures._blocks import Config, embeddings, get, linear, mlp, norm
from core.architectures._decoder import (
    DecoderLayout,
    build_decoder,
    dtype_of,
    experts,
    router,
    shared_expert,
)
from core.architectures.registry import register
from core.spec import KvLayer, ModelSpec, MoeSpec
from core.tensors import Tensor


def _gated_deltanet(cfg: Config, i: int, hidden: int) -> tuple[list[Tensor], KvLayer]:
    k_heads, v_heads = int(cfg["linear_num_key_heads"]), int(cfg["linear_num_value_heads"])
    k_dim, v_dim = int(cfg["linear_key_head_dim"]), int(cfg["linear_value_head_dim"])
    kernel = int(get(cfg, "linear_conv_kernel_dim", default=4))
    key, value = k_heads * k_dim, v_heads * v_dim
    conv = 2 * key + value
    out = linear("ssm_in_qkvz", hidden, 2 * key + 2 * value, i)
    out += linear("ssm_in_ba", hidden, 2 * v_heads, i)
    out.append(Tensor("ssm_conv1d", conv, kernel, "conv", i))
    out += norm("ssm_dt_bias", v_heads, i) + norm("ssm_a", v_heads, i) + norm("ssm_norm", v_dim, i)
    out += linear("ssm_out", value, hidden, i)
    # The recurrent state is a k_dim x v_dim matrix per value head, plus the conv window.
    state = KvLayer("state", 0, 0, state_elements=v_heads * k_dim * v_dim + conv * kernel)
    return out, state


@register("qwen3_next")
def qwen3_next(cfg: Config) -> ModelSpec:
    hidden, n_layers = int(cfg["hidden_size"]), int(cfg["num_hidden_layers"])
    n_heads, n_kv = int(cfg["num_attention_heads"]), int(cfg["num_key_value_heads"])
    head_dim = int(get(cfg, "head_dim", default=hidden // n_heads))
    interval = int(get(cfg, "full_attention_interval", default=4))
    n_exp, top_k = int(cfg["num_experts"]), int(cfg["num_experts_per_tok"])
    moe_ffn, shared = int(cfg["moe_intermediate_size"]), int(cfg["shared_expert_intermediate_size"])
    vocab = int(cfg["vocab_size"])
    tied = bool(get(cfg, "tie_word_embeddings", default=False))

    embed, head = embeddings(vocab, hidden, tied)
    tensors, kv = list(embed), []
    for i in range(n_layers):
        if (i + 1) % interval == 0:
            # Gated attention: q_proj also emits an output gate, doubling its width.
            tensors += linear("attn_q", hidden, 2 * n_heads * head_dim, i)
            tensors += linear("attn_k", hidden, n_kv * head_dim, i)
            tensors += linear("attn_v", hidden, n_kv * head_dim, i)
            tensors += linear("attn_output", n_heads * head_dim, hidden, i)
            tensors += norm("attn_q_norm", head_dim, i) + norm("attn_k_norm", head_dim, i)
            kv.append(KvLayer("full", n_kv * head_dim, n_kv * head_dim))
        else:
            block, state = _gated_deltanet(cfg, i, hidden)
            tensors += block
            kv.append(state)
        tensors += norm("attn_norm", hidden, i) + norm("ffn_norm", hidden, i)
        tensors += router(i, hidden, n_exp) + experts(i, hidden, moe_ffn, n_exp)
        tensors += shared_expert(i, hidden, shared) + linear("ffn_gate_inp_shexp", hidden, 1, i)
    tensors += norm("output_norm", hidden, None) + head
    return ModelSpec(
        model_type="qwen3_next", tensors=tuple(tensors), n_layers=n_layers, hidden=hidden,
        n_heads=n_heads, n_kv_heads=n_kv, head_dim=head_dim, vocab=vocab,
        intermediate=int(cfg["intermediate_size"]), kv_layers=tuple(kv),
        max_position=get(cfg, "max_position_embeddings"), dtype=dtype_of(cfg),
        tied_embeddings=tied, moe=MoeSpec(n_exp, top_k, 1, n_layers),
    )


def _nas_ffn_width(ffn_mult: float, hidden: int) -> int:
    # DeciLM's rule: two thirds of mult x hidden, rounded up to a multiple of 256.
    width = int(2 * ffn_mult * hidden / 3)
    return width if width % 256 == 0 else width + 256 - width % 256


@register("nemotron-nas")
def nemotron_nas(cfg: Config) -> ModelSpec:
    hidden, n_heads = int(cfg["hidden_size"]), int(cfg["num_attention_heads"])
    head_dim = hidden // n_heads
    blocks = cfg["block_configs"]
    base = build_decoder({**cfg, "num_hidden_layers": 0}, "nemotron-nas", DecoderLayout())
    tensors = [t for t in base.tensors if t.name == "token_embd"]
    kv: list[KvLayer] = []
    widths = []
    for i, block in enumerate(blocks):
        attn, ffn = block["attention"], block["ffn"]
        if attn.get("replace_with_linear"):
            tensors += linear("attn_linear", hidden, hidden, i) + norm("attn_norm", hidden, i)
        elif not attn.get("no_op"):
            n_kv = n_heads // int(attn["n_heads_in_group"])
            for name, width in (("attn_q", n_heads), ("attn_k", n_kv), ("attn_v", n_kv)):
                tensors += linear(name, hidden, width * head_dim, i)
            tensors += linear("attn_output", n_heads * head_dim, hidden, i)
            tensors += norm("attn_norm", hidden, i)
            kv.append(KvLayer("full", n_kv * head_dim, n_kv * head_dim))
        if ffn.get("replace_with_linear"):
            tensors += linear("ffn_linear", hidden, hidden, i) + norm("ffn_norm", hidden, i)
        elif not ffn.get("no_op"):
            width = _nas_ffn_width(float(ffn["ffn_mult"]), hidden)
            widths.append(width)
            tensors += mlp(i, hidden, width, gated=True) + norm("ffn_norm", hidden, i)
    tensors += [t for t in base.tensors if t.name in ("output_norm", "output")]
    n_kv_typical = max((layer.k_width for layer in kv), default=hidden) // head_dim
    return replace(base, tensors=tuple(tensors), n_layers=len(blocks), kv_layers=tuple(kv),
                   n_kv_heads=n_kv_typical, intermediate=max(widths, default=0))


__all__ = ["shared_expert"]
