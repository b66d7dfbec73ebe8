"""Vision-language models: a language model plus a vision tower and a projector.

Memory counts all three (transformers and vLLM load them all); llama.cpp keeps the vision side
in a separate mmproj file, which core.gguf leaves out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from core.architectures._blocks import Config, get, linear, mlp, norm
from core.architectures.registry import build_spec, register
from core.spec import ModelSpec
from core.tensors import Tensor

# Fields transformers fills in when a multimodal config leaves them out of text_config.
_LLAMA_DEFAULTS: dict[str, Any] = {
    "model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008,
    "num_hidden_layers": 32, "num_attention_heads": 32, "vocab_size": 32000,
    "max_position_embeddings": 2048, "tie_word_embeddings": False,
}


def _vit_layers(n_layers: int, hidden: int, ffn: int, *, gated: bool = False,
                bias: bool = True, norm_bias: bool = True) -> list[Tensor]:
    out: list[Tensor] = []
    for i in range(n_layers):
        for name in ("q", "k", "v", "o"):
            out += linear(f"v.attn_{name}", hidden, hidden, i, bias, "vision")
        out += mlp(i, hidden, ffn, gated=gated, bias=bias, part="vision")
        out += norm("v.ln1", hidden, i, norm_bias, "vision") + norm("v.ln2", hidden, i, norm_bias,
                                                                    "vision")
    return out


def _patches(vision: Mapping[str, Any]) -> int:
    return (int(vision["image_size"]) // int(vision["patch_size"])) ** 2


def clip_vision(vision: Mapping[str, Any]) -> list[Tensor]:
    hidden, patch = int(vision["hidden_size"]), int(vision["patch_size"])
    channels = int(get(vision, "num_channels", default=3))
    out = [Tensor("v.class_embd", 1, hidden, "embedding", None, 1, "vision"),
           Tensor("v.patch_embd", hidden, channels * patch * patch, "conv", None, 1, "vision"),
           Tensor("v.position_embd", _patches(vision) + 1, hidden, "embedding", None, 1, "vision")]
    out += norm("v.pre_ln", hidden, None, True, "vision")
    out += _vit_layers(int(vision["num_hidden_layers"]), hidden, int(vision["intermediate_size"]))
    return out + norm("v.post_ln", hidden, None, True, "vision")


def siglip_vision(vision: Mapping[str, Any]) -> list[Tensor]:
    hidden, patch = int(vision["hidden_size"]), int(vision["patch_size"])
    channels = int(get(vision, "num_channels", default=3))
    out = linear("v.patch_embd", channels * patch * patch, hidden, None, True, "vision")
    out.append(Tensor("v.position_embd", _patches(vision), hidden, "embedding", None, 1, "vision"))
    out += _vit_layers(int(vision["num_hidden_layers"]), hidden, int(vision["intermediate_size"]))
    return out + norm("v.post_ln", hidden, None, True, "vision")


def _with_vision(text: ModelSpec, model_type: str, extra: list[Tensor]) -> ModelSpec:
    return replace(text, model_type=model_type, tensors=text.tensors + tuple(extra))


@register("llava")
def llava(cfg: Config) -> ModelSpec:
    text_cfg = {**_LLAMA_DEFAULTS, **(cfg.get("text_config") or {})}
    text = build_spec(text_cfg)
    vision = {"image_size": 224, "patch_size": 32, **(cfg.get("vision_config") or {})}
    v_hidden, t_hidden = int(vision["hidden_size"]), text.hidden
    projector = (linear("mm.1", v_hidden, t_hidden, None, True, "projector")
                 + linear("mm.2", t_hidden, t_hidden, None, True, "projector"))
    return _with_vision(text, "llava", clip_vision(vision) + projector)


@register("gemma3")
def gemma3(cfg: Config) -> ModelSpec:
    text = build_spec({"model_type": "gemma3_text", **(cfg.get("text_config") or {})})
    vision = cfg.get("vision_config") or {}
    v_hidden = int(vision["hidden_size"])
    projector = [Tensor("mm.input_projection", text.hidden, v_hidden, "linear", None, 1,
                        "projector"), *norm("mm.soft_emb_norm", v_hidden, None, False, "projector")]
    return _with_vision(text, "gemma3", siglip_vision(vision) + projector)


def pixtral_vision(vision: Mapping[str, Any]) -> list[Tensor]:
    hidden, patch = int(vision["hidden_size"]), int(vision["patch_size"])
    channels = int(get(vision, "num_channels", default=3))
    out = [Tensor("v.patch_embd", hidden, channels * patch * patch, "conv", None, 1, "vision")]
    out += norm("v.pre_ln", hidden, None, False, "vision")
    return out + _vit_layers(int(vision["num_hidden_layers"]), hidden,
                             int(vision["intermediate_size"]), gated=True, bias=False,
                             norm_bias=False)


@register("mistral3")
def mistral3(cfg: Config) -> ModelSpec:
    text = build_spec({"model_type": "mistral", **(cfg.get("text_config") or {})})
    vision = cfg.get("vision_config") or {}
    v_hidden, merge = int(vision["hidden_size"]), int(get(cfg, "spatial_merge_size", default=2))
    bias = bool(get(cfg, "multimodal_projector_bias", default=False))
    projector = (norm("mm.norm", v_hidden, None, False, "projector")
                 + linear("mm.patch_merger", v_hidden * merge * merge, v_hidden, None, False,
                          "projector")
                 + linear("mm.1", v_hidden, text.hidden, None, bias, "projector")
                 + linear("mm.2", text.hidden, text.hidden, None, bias, "projector"))
    return _with_vision(text, "mistral3", pixtral_vision(vision) + projector)


def qwen3_vl_vision(vision: Mapping[str, Any]) -> list[Tensor]:
    hidden, patch = int(vision["hidden_size"]), int(vision["patch_size"])
    temporal = int(get(vision, "temporal_patch_size", default=2))
    channels = int(get(vision, "in_channels", "in_chans", default=3))
    merge = int(get(vision, "spatial_merge_size", default=2))
    out_hidden = int(vision["out_hidden_size"])
    out = linear("v.patch_embd", channels * temporal * patch * patch, hidden, None, True, "vision")
    out.append(Tensor("v.position_embd", int(vision["num_position_embeddings"]), hidden,
                      "embedding", None, 1, "vision"))
    depth = int(get(vision, "depth", "num_hidden_layers"))
    for i in range(depth):
        out += linear("v.attn_qkv", hidden, 3 * hidden, i, True, "vision")
        out += linear("v.attn_o", hidden, hidden, i, True, "vision")
        out += mlp(i, hidden, int(vision["intermediate_size"]), gated=False, bias=True,
                   part="vision")
        out += norm("v.ln1", hidden, i, True, "vision") + norm("v.ln2", hidden, i, True, "vision")
    merged = hidden * merge * merge
    mergers = 1 + len(get(vision, "deepstack_visual_indexes", default=[]))
    for m in range(mergers):
        # The main merger normalizes before the 2x2 shuffle; the deepstack ones after it.
        out += norm("mm.norm", hidden if m == 0 else merged, m, True, "projector")
        out += linear("mm.fc1", merged, merged, m, True, "projector")
        out += linear("mm.fc2", merged, out_hidden, m, True, "projector")
    return out


@register("qwen3_vl")
def qwen3_vl(cfg: Config) -> ModelSpec:
    text_cfg = {**(cfg.get("text_config") or {}), "model_type": "qwen3"}
    if "tie_word_embeddings" in cfg:
        text_cfg["tie_word_embeddings"] = cfg["tie_word_embeddings"]
    text = build_spec(text_cfg)
    return _with_vision(text, "qwen3_vl", qwen3_vl_vision(cfg.get("vision_config") or {}))


# transformers' Llama4VisionConfig defaults, used for whatever a config leaves out.
_LLAMA4_VISION_DEFAULTS: dict[str, Any] = {
    "hidden_size": 768, "num_hidden_layers": 34, "intermediate_size": 5632, "image_size": 448,
    "patch_size": 14, "num_channels": 3, "vision_output_dim": 7680, "projector_input_dim": 4096,
    "projector_output_dim": 4096,
}


@register("llama4")
def llama4(cfg: Config) -> ModelSpec:
    text = build_spec({"model_type": "llama4_text", **(cfg.get("text_config") or {})})
    vision = {**_LLAMA4_VISION_DEFAULTS, **(cfg.get("vision_config") or {})}
    hidden, patch = int(vision["hidden_size"]), int(vision["patch_size"])
    channels = int(vision["num_channels"])
    tower = [Tensor("v.class_embd", 1, hidden, "embedding", None, 1, "vision"),
             Tensor("v.position_embd", _patches(vision) + 1, hidden, "embedding", None, 1,
                    "vision"),
             Tensor("v.patch_embd", hidden, channels * patch * patch, "conv", None, 1, "vision")]
    tower += norm("v.pre_ln", hidden, None, True, "vision") + norm("v.post_ln", hidden, None, True,
                                                                   "vision")
    tower += _vit_layers(int(vision["num_hidden_layers"]), hidden, int(vision["intermediate_size"]))
    # The adapter MLP reads the pixel-shuffled features, intermediate_size wide.
    tower += linear("v.adapter_fc1", int(vision["intermediate_size"]),
                    int(vision["projector_input_dim"]), None, False, "vision")
    tower += linear("v.adapter_fc2", int(vision["projector_output_dim"]),
                    int(vision["projector_output_dim"]), None, False, "vision")
    projector = linear("mm.linear_1", int(vision["vision_output_dim"]), text.hidden, None, False,
                       "projector")
    return _with_vision(text, "llama4", tower + projector)
