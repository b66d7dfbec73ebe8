"""The longest context a model's config.json allows, as each engine derives it.

Engines read different keys and treat RoPE scaling differently, so one config gives several
limits (sources: /work/shared/docs/engines.md):

- vLLM (§1.7-1.8): the smallest of the position keys present, multiplied by the rope ``factor``
  unless the rope type says max_position_embeddings is already scaled (0.34: su, longrope,
  llama3, yarn, deepseek_yarn, deepseek_llama_scaling; Gemma 3 is never scaled). vLLM 0.11
  excluded only su, longrope and llama3, and for yarn took original_max_position_embeddings x
  factor. No key at all: vLLM assumes 2,048; fits then knows no limit (the bundled configs
  are sometimes trimmed, and a guessed limit would refuse real answers).
- SGLang (§2.5): the first key present of its own list, multiplied by ``factor`` unless
  rope_scaling has original_max_position_embeddings or the type is llama3.
- The trained context (§4.4, §5.2, transformers): max_position_embeddings as the model card
  gives it; llama.cpp's n_ctx_train is the GGUF's context_length, converted from that key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# vllm@0.34.0 model_arch_config_convertor.py (derive_max_model_len_and_key): the keys it reads.
VLLM_KEYS = ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length",
             "model_max_length", "max_target_positions", "max_sequence_length",
             "max_seq_length", "seq_len")
# vllm@0.34.0 config/model.py (_get_and_verify_max_len): rope types whose
# max_position_embeddings is already the scaled length.
VLLM_PRESCALED = frozenset({"su", "longrope", "llama3", "yarn", "deepseek_yarn",
                            "deepseek_llama_scaling"})
VLLM_0_11_PRESCALED = frozenset({"su", "longrope", "llama3"})  # vllm@0.11.0 config/model.py
# sglang@0.5.23 srt/utils/hf_transformers/common.py (CONTEXT_LENGTH_KEYS), first one present.
SGLANG_KEYS = ("max_sequence_length", "seq_length", "max_seq_len", "model_max_length",
               "max_position_embeddings")
TRAINED_KEYS = ("max_position_embeddings", "n_positions", "max_seq_len")


@dataclass(frozen=True, slots=True)
class ContextLimits:
    """A model's context limits; None where the config names none."""

    trained: int | None  # the context it was trained for (transformers, llama.cpp, Ollama)
    vllm: int | None  # vLLM's derived max_model_len (current releases)
    vllm_0_11: int | None  # the same in vLLM 0.11 and older
    vllm_key: str  # what vLLM's message names: "max_position_embeddings=4096"
    sglang: int | None  # SGLang's derived context_length


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and value > 0 else None


def _rope(cfg: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    """(rope type, rope_scaling) of a config; ("", {}) without scaling."""
    rope = cfg.get("rope_scaling") or cfg.get("rope_parameters")
    if not isinstance(rope, Mapping):
        return "", {}
    return str(rope.get("rope_type") or rope.get("type") or ""), rope


def _factor(rope: Mapping[str, Any]) -> float:
    factor = rope.get("factor")
    return float(factor) if isinstance(factor, int | float) and factor > 0 else 1.0


def _vllm(cfg: Mapping[str, Any], model_type: str, prescaled: frozenset[str],
          yarn_from_original: bool) -> tuple[int | None, str]:
    present = [(value, key) for key in VLLM_KEYS if (value := _int(cfg.get(key)))]
    if not present:
        return None, ""
    derived, key = min(present)
    kind, rope = _rope(cfg)
    if rope and kind not in prescaled and not model_type.startswith("gemma3"):
        if yarn_from_original and kind == "yarn":
            derived = _int(rope.get("original_max_position_embeddings")) or derived
        derived = int(derived * _factor(rope))
    return derived, f"{key}={derived}"  # vLLM's message names the key with the derived value


def _sglang(cfg: Mapping[str, Any]) -> int | None:
    found = next((value for key in SGLANG_KEYS if (value := _int(cfg.get(key)))), None)
    if found is None:
        return None
    kind, rope = _rope(cfg)
    if rope and "original_max_position_embeddings" not in rope and kind != "llama3":
        return int(found * _factor(rope))
    return found


def context_limits(config: Mapping[str, Any]) -> ContextLimits:
    """The limits of a config.json (a multimodal model's text_config, where vLLM reads them)."""
    text = config.get("text_config")
    cfg = text if isinstance(text, Mapping) and any(k in text for k in VLLM_KEYS) else config
    model_type = str(config.get("model_type") or "")
    trained = next((value for key in TRAINED_KEYS if (value := _int(cfg.get(key)))), None)
    vllm, key = _vllm(cfg, model_type, VLLM_PRESCALED, yarn_from_original=False)
    old, _ = _vllm(cfg, model_type, VLLM_0_11_PRESCALED, yarn_from_original=True)
    return ContextLimits(trained=trained, vllm=vllm, vllm_0_11=old, vllm_key=key,
                         sglang=_sglang(cfg))
