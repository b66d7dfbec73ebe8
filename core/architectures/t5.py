"""T5 and mT5: encoder-decoder with relative position buckets and (gated) ReLU/GELU MLPs."""

from __future__ import annotations

from core.architectures._blocks import Config, get, linear, mlp, norm
from core.architectures.registry import register
from core.spec import KvLayer, ModelSpec
from core.tensors import Tensor, TensorPart


def _attn(prefix: str, layer: int, d_model: int, inner: int, part: TensorPart) -> list[Tensor]:
    return [t for name in ("q", "k", "v") for t in linear(f"{prefix}_{name}", d_model, inner, layer,
                                                          part=part)] + linear(
        f"{prefix}_output", inner, d_model, layer, part=part)


@register("t5", "mt5")
def t5(cfg: Config) -> ModelSpec:
    d_model, d_ff, d_kv = int(cfg["d_model"]), int(cfg["d_ff"]), int(get(cfg, "d_kv", default=64))
    n_heads, vocab = int(cfg["num_heads"]), int(cfg["vocab_size"])
    enc_layers = int(cfg["num_layers"])
    dec_layers = int(get(cfg, "num_decoder_layers", default=enc_layers))
    buckets = int(get(cfg, "relative_attention_num_buckets", default=32))
    default_proj = "gated-gelu" if cfg["model_type"] == "mt5" else "relu"
    gated = str(get(cfg, "feed_forward_proj", default=default_proj)).startswith("gated")
    is_tied = bool(get(cfg, "tie_word_embeddings", default=cfg["model_type"] == "t5"))
    inner = n_heads * d_kv

    tensors = [Tensor("token_embd", vocab, d_model, "embedding")]
    for i in range(enc_layers):
        tensors += _attn("enc_attn", i, d_model, inner, "encoder")
        tensors += mlp(i, d_model, d_ff, gated=gated, part="encoder")
        tensors += norm("enc_attn_norm", d_model, i, part="encoder")
        tensors += norm("enc_ffn_norm", d_model, i, part="encoder")
    tensors.append(Tensor("enc_attn_rel_b", buckets, n_heads, "other", 0, 1, "encoder"))
    tensors += norm("enc_output_norm", d_model, None, part="encoder")
    for i in range(dec_layers):
        tensors += _attn("attn", i, d_model, inner, "text")
        tensors += _attn("cross_attn", i, d_model, inner, "text")
        tensors += mlp(i, d_model, d_ff, gated=gated)
        for name in ("attn_norm", "cross_attn_norm", "ffn_norm"):
            tensors += norm(name, d_model, i)
    tensors.append(Tensor("attn_rel_b", buckets, n_heads, "other", 0))
    tensors += norm("output_norm", d_model, None)
    if not is_tied:
        tensors.append(Tensor("output", vocab, d_model, "linear"))

    # Self-attention K/V per decoder token; the cross-attention K/V of the encoder output per
    # input token, counted per position of the context too.
    kv = tuple(KvLayer("full", inner, inner, cross_width=2 * inner) for _ in range(dec_layers))
    return ModelSpec(
        model_type=str(cfg["model_type"]), tensors=tuple(tensors), n_layers=dec_layers,
        hidden=d_model, n_heads=n_heads, n_kv_heads=n_heads, head_dim=d_kv, vocab=vocab,
        intermediate=d_ff, kv_layers=kv, max_position=None, dtype="fp32", tied_embeddings=is_tied,
        encoder_decoder=True, encoder_layers=enc_layers, gated_mlp=gated,
    )
