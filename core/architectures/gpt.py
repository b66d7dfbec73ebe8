"""GPT-style families: LayerNorm with bias, plain (ungated) MLPs, fused QKV, learned positions."""

from __future__ import annotations

from dataclasses import replace

from core.architectures._blocks import Config, get, linear, norm
from core.architectures._decoder import DecoderLayout, build_decoder
from core.architectures.registry import register
from core.spec import ModelSpec
from core.tensors import Tensor

_GPT = DecoderLayout(qkv_bias=True, o_bias=True, mlp_bias=True, gated_mlp=False, fused_qkv=True,
                     norm_bias=True, tied_default=True)


@register("gpt2")
def gpt2(cfg: Config) -> ModelSpec:
    positions = int(get(cfg, "n_positions", "max_position_embeddings", default=1024))
    # GPT2Config's defaults, for configs that leave them out
    cfg = {"activation_function": "gelu_new", "resid_pdrop": 0.1, **cfg}
    return build_decoder(cfg, "gpt2", replace(_GPT, learned_positions=positions))


@register("openai-gpt")
def openai_gpt(cfg: Config) -> ModelSpec:
    # GPT-1 normalizes after each sublayer and has no final LayerNorm.
    positions = int(get(cfg, "n_positions", default=512))
    layout = replace(_GPT, learned_positions=positions, final_norm=False)
    return build_decoder(cfg, "openai-gpt", layout)


@register("gpt_bigcode")
def gpt_bigcode(cfg: Config) -> ModelSpec:
    positions = int(get(cfg, "n_positions", default=2048))
    kv_heads = 1 if get(cfg, "multi_query", default=True) else None
    cfg = {**cfg, "num_key_value_heads": kv_heads}
    return build_decoder(cfg, "gpt_bigcode", replace(_GPT, learned_positions=positions))


@register("gptj")
def gptj(cfg: Config) -> ModelSpec:
    layout = DecoderLayout(mlp_bias=True, gated_mlp=False, norm_bias=True, norms_per_layer=1,
                           lm_head_bias=True)
    return build_decoder(cfg, "gptj", layout)


@register("gpt_neox")
def gpt_neox(cfg: Config) -> ModelSpec:
    return build_decoder(cfg, "gpt_neox", replace(_GPT, tied_default=False))


@register("bloom")
def bloom(cfg: Config) -> ModelSpec:
    hidden = int(get(cfg, "hidden_size", "n_embed", "n_embd"))
    cfg = {**cfg, "hidden_size": hidden, "intermediate_size": 4 * hidden}
    return build_decoder(cfg, "bloom", replace(_GPT, embed_norm=True))


@register("opt")
def opt(cfg: Config) -> ModelSpec:
    hidden = int(cfg["hidden_size"])
    proj = int(get(cfg, "word_embed_proj_dim", default=hidden))
    # OPT offsets its learned positions by 2, so the table has two extra rows.
    positions = int(get(cfg, "max_position_embeddings", default=2048)) + 2
    final = bool(get(cfg, "do_layer_norm_before", default=True)) and not cfg.get(
        "_remove_final_layer_norm", False)
    layout = DecoderLayout(qkv_bias=True, o_bias=True, mlp_bias=True, gated_mlp=False,
                           norm_bias=True, tied_default=True, learned_positions=positions,
                           final_norm=final)
    cfg = {**cfg, "intermediate_size": get(cfg, "ffn_dim", default=4 * hidden)}
    spec = build_decoder(cfg, "opt", layout)
    if proj == hidden:
        return spec
    # Small OPTs embed at a narrower width and project in and out of the hidden size.
    vocab = int(cfg["vocab_size"])
    tensors = [t for t in spec.tensors if t.name != "token_embd"]
    tensors.append(Tensor("token_embd", vocab, proj, "embedding"))
    tensors += linear("project_in", proj, hidden, None) + linear("project_out", hidden, proj, None)
    return replace(spec, tensors=tuple(tensors))


def _falcon_cfg(cfg: Config) -> dict[str, object]:
    """Falcon's many spellings (RefinedWeb remote code, new and old decoder) made uniform."""
    out = dict(cfg)
    out["num_hidden_layers"] = get(cfg, "num_hidden_layers", "n_layer")
    out["num_attention_heads"] = get(cfg, "num_attention_heads", "n_head")
    new_arch = bool(get(cfg, "new_decoder_architecture", default=False)) or "n_head_kv" in cfg
    if new_arch:
        out["num_key_value_heads"] = get(cfg, "num_kv_heads", "n_head_kv", default=1)
    elif get(cfg, "multi_query", default=True):
        out["num_key_value_heads"] = 1
    else:
        out["num_key_value_heads"] = out["num_attention_heads"]
    out["_falcon_new_arch"] = new_arch
    out["intermediate_size"] = get(cfg, "ffn_hidden_size", default=4 * int(cfg["hidden_size"]))
    return out


@register("falcon", "RefinedWeb", "RefinedWebModel")
def falcon(cfg: Config) -> ModelSpec:
    fcfg = _falcon_cfg(cfg)
    bias = bool(get(cfg, "bias", default=False))
    parallel = bool(get(cfg, "parallel_attn", default=True))
    norms = 2 if fcfg["_falcon_new_arch"] or not parallel else 1
    layout = DecoderLayout(qkv_bias=bias, o_bias=bias, mlp_bias=bias, gated_mlp=False,
                           fused_qkv=True, norm_bias=True, norms_per_layer=norms, tied_default=True)
    spec = build_decoder(fcfg, "falcon", layout)
    if fcfg["_falcon_new_arch"] and spec.n_kv_heads < spec.n_heads:
        expand = spec.n_heads // spec.n_kv_heads
        spec = replace(spec, kv_layers=tuple(replace(k, hf_expand=expand) for k in spec.kv_layers))
    return spec


@register("mpt")
def mpt(cfg: Config) -> ModelSpec:
    hidden = int(cfg["d_model"])
    bias = not bool(get(cfg, "no_bias", default=True))
    cfg = {**cfg, "hidden_size": hidden, "num_hidden_layers": cfg["n_layers"],
           "num_attention_heads": cfg["n_heads"], "max_position_embeddings": cfg.get("max_seq_len"),
           "intermediate_size": int(get(cfg, "expansion_ratio", default=4)) * hidden}
    layout = DecoderLayout(qkv_bias=bias, o_bias=bias, mlp_bias=bias, gated_mlp=False,
                           fused_qkv=True, norm_bias=bias, tied_default=True)
    return build_decoder(cfg, "mpt", layout)


__all__ = ["norm"]
