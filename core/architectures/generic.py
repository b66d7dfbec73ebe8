"""The fallback for architectures fits has no builder for: a Llama-shaped guess, marked approximate."""

from __future__ import annotations

from dataclasses import replace

from core.architectures._blocks import Config, get
from core.architectures._decoder import DecoderLayout, build_decoder
from core.errors import UserError
from core.spec import ModelSpec


def build_generic(cfg: Config) -> ModelSpec:
    text = cfg.get("text_config") or cfg.get("llm_config") or cfg
    required = {"hidden_size": get(text, "hidden_size", "n_embd", "d_model"),
                "num_hidden_layers": get(text, "num_hidden_layers", "n_layer", "num_layers"),
                "num_attention_heads": get(text, "num_attention_heads", "n_head", "num_heads"),
                "vocab_size": get(text, "vocab_size", "padded_vocab_size")}
    missing = [k for k, v in required.items() if not isinstance(v, int) or v <= 0]
    if missing:
        raise UserError(
            f"This config.json lacks {', '.join(missing)}, so its size cannot be worked out.",
            "Give the size instead, e.g. `fits 7b q4`.")
    flat = {**text, **required,
            "intermediate_size": get(text, "intermediate_size", "ffn_hidden_size", "n_inner",
                                     default=4 * required["hidden_size"]),
            "num_key_value_heads": get(text, "num_key_value_heads", "num_kv_heads",
                                       "multi_query_group_num", "n_head_kv")}
    model_type = str(cfg.get("model_type") or "unknown")
    spec = build_decoder(flat, model_type, DecoderLayout())
    note = (f"architecture '{model_type}' is not one fits models exactly: parameters and cache "
            "are estimated as a Llama-style decoder")
    return replace(spec, approximate=True, notes=(*spec.notes, note))
