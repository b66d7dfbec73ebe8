"""Building blocks shared by the architecture families: attention, MLP, norms, embeddings.

Each helper returns the tensors of one block, named by llama.cpp's GGUF roles (see core.tensors).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.tensors import Tensor, TensorPart

Config = Mapping[str, Any]


def get(cfg: Config, *keys: str, default: Any = None) -> Any:
    """The first of ``keys`` present with a non-None value (configs name one thing many ways)."""
    for key in keys:
        value = cfg.get(key)
        if value is not None:
            return value
    return default


def linear(
    name: str, d_in: int, d_out: int, layer: int | None, bias: bool = False,
    part: TensorPart = "text", count: int = 1,
) -> list[Tensor]:
    out = [Tensor(name, d_out, d_in, "linear", layer, count, part)]
    if bias:
        out.append(Tensor(name, 1, d_out, "bias", layer, count, part))
    return out


def norm(name: str, width: int, layer: int | None, bias: bool = False,
         part: TensorPart = "text") -> list[Tensor]:
    out = [Tensor(name, 1, width, "norm", layer, 1, part)]
    if bias:
        out.append(Tensor(name, 1, width, "bias", layer, 1, part))
    return out


def attention(
    layer: int, hidden: int, n_heads: int, n_kv: int, head_dim: int, *,
    qkv_bias: bool = False, o_bias: bool = False, fused: bool = False,
    part: TensorPart = "text", v_head_dim: int | None = None,
) -> list[Tensor]:
    q, kv = n_heads * head_dim, n_kv * head_dim
    v = n_kv * (v_head_dim or head_dim)
    if fused:
        out = linear("attn_qkv", hidden, q + kv + v, layer, qkv_bias, part)
    else:
        out = (linear("attn_q", hidden, q, layer, qkv_bias, part)
               + linear("attn_k", hidden, kv, layer, qkv_bias, part)
               + linear("attn_v", hidden, v, layer, qkv_bias, part))
    return out + linear("attn_output", n_heads * (v_head_dim or head_dim), hidden, layer, o_bias, part)


def mlp(layer: int, hidden: int, ffn: int, *, gated: bool, bias: bool = False,
        part: TensorPart = "text", suffix: str = "", count: int = 1) -> list[Tensor]:
    out: list[Tensor] = []
    if gated:
        out += linear(f"ffn_gate{suffix}", hidden, ffn, layer, bias, part, count)
    out += linear(f"ffn_up{suffix}", hidden, ffn, layer, bias, part, count)
    out += linear(f"ffn_down{suffix}", ffn, hidden, layer, bias, part, count)
    return out


def embeddings(vocab: int, hidden: int, tied: bool, *, lm_head_bias: bool = False,
               part: TensorPart = "text") -> tuple[list[Tensor], list[Tensor]]:
    """(input embedding, output head) — the head is empty when tied to the embedding."""
    embed = [Tensor("token_embd", vocab, hidden, "embedding", None, 1, part)]
    head: list[Tensor] = []
    if not tied:
        head.append(Tensor("output", vocab, hidden, "linear", None, 1, part))
    if lm_head_bias:
        head.append(Tensor("output", 1, vocab, "bias", None, 1, part))
    return embed, head


def tied(cfg: Config, default: bool) -> bool:
    value = cfg.get("tie_word_embeddings")
    return default if value is None else bool(value)
