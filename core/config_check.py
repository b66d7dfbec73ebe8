"""The boundary for config.json files fits did not write: uploads and the Hub's.

A config is data from anyone. Before any family builder reads it, every number in it must be
finite, and every field that sizes the model (layers, widths, heads, experts, positions) must be a
whole number within bounds no real model comes near, so that no estimate can loop forever, build
a billion-layer model or divide by zero. Heads must divide the width where the attention needs
it. The bounds are several times the largest real values: the bundled snapshot's largest are
126 layers (Llama 3.1 405B), hidden 16,384, 53,248 intermediate, 128 heads, 512 experts,
262,144 vocabulary and 10,485,760 positions (Llama 4 Scout), and every bundled config passes
(tests/test_config_check.py).

A bad config gets one sentence naming the field and its value, as a UserError.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, model_validator

from core.errors import UserError

MAX_LAYERS = 512
MAX_WIDTH = 1 << 18  # 262,144
MAX_HEADS = 4096
MAX_HEAD_DIM = 1 << 16
MAX_VOCAB = 1 << 22  # 4,194,304
MAX_POSITIONS = 1 << 30  # 1,073,741,824 tokens
MAX_EXPERTS = 1 << 14
MAX_SMALL = 1 << 16  # steps, intervals, patterns, patch and image sizes
MAX_ANY_NUMBER = 1e18  # no number in a real config comes near it (rope_theta tops out near 1e9)
MAX_NODES = 200_000  # values in one config, nested ones included


def _int(low: int, high: int) -> Any:
    return Field(default=None, ge=low, le=high)


class _Sizes(BaseModel):
    """The fields that size a model, wherever they appear (the top level, text_config,
    vision_config, a NAS block ...). Other fields pass through untouched."""

    model_config = ConfigDict(extra="allow", frozen=True)

    # layers
    num_hidden_layers: StrictInt | None = _int(1, MAX_LAYERS)
    n_layer: StrictInt | None = _int(1, MAX_LAYERS)
    n_layers: StrictInt | None = _int(1, MAX_LAYERS)
    num_layers: StrictInt | None = _int(1, MAX_LAYERS)
    num_decoder_layers: StrictInt | None = _int(0, MAX_LAYERS)
    num_encoder_layers: StrictInt | None = _int(0, MAX_LAYERS)
    encoder_layers: StrictInt | None = _int(0, MAX_LAYERS)
    decoder_layers: StrictInt | None = _int(0, MAX_LAYERS)
    depth: StrictInt | None = _int(0, MAX_LAYERS)
    num_nextn_predict_layers: StrictInt | None = _int(0, MAX_LAYERS)
    first_k_dense_replace: StrictInt | None = _int(0, MAX_LAYERS)
    max_window_layers: StrictInt | None = _int(0, 1 << 20)
    # widths
    hidden_size: StrictInt | None = _int(1, MAX_WIDTH)
    n_embd: StrictInt | None = _int(1, MAX_WIDTH)
    n_embed: StrictInt | None = _int(1, MAX_WIDTH)
    d_model: StrictInt | None = _int(1, MAX_WIDTH)
    intermediate_size: StrictInt | None = _int(1, MAX_WIDTH)
    intermediate_size_mlp: StrictInt | None = _int(1, MAX_WIDTH)
    ff_intermediate_size: StrictInt | None = _int(1, MAX_WIDTH)
    n_inner: StrictInt | None = _int(1, MAX_WIDTH)
    ffn_hidden_size: StrictInt | None = _int(1, MAX_WIDTH)
    ffn_dim: StrictInt | None = _int(1, MAX_WIDTH)
    d_ff: StrictInt | None = _int(1, MAX_WIDTH)
    moe_intermediate_size: StrictInt | None = _int(1, MAX_WIDTH)
    shared_expert_intermediate_size: StrictInt | None = _int(0, MAX_WIDTH)
    moe_shared_expert_intermediate_size: StrictInt | None = _int(0, MAX_WIDTH)
    word_embed_proj_dim: StrictInt | None = _int(1, MAX_WIDTH)
    out_hidden_size: StrictInt | None = _int(1, MAX_WIDTH)
    projection_dim: StrictInt | None = _int(1, MAX_WIDTH)
    # heads
    num_attention_heads: StrictInt | None = _int(1, MAX_HEADS)
    n_head: StrictInt | None = _int(1, MAX_HEADS)
    n_heads: StrictInt | None = _int(1, MAX_HEADS)
    num_heads: StrictInt | None = _int(1, MAX_HEADS)
    num_key_value_heads: StrictInt | None = _int(1, MAX_HEADS)
    num_kv_heads: StrictInt | None = _int(1, MAX_HEADS)
    n_head_kv: StrictInt | None = _int(1, MAX_HEADS)
    kv_n_heads: StrictInt | None = _int(1, MAX_HEADS)
    multi_query_group_num: StrictInt | None = _int(1, MAX_HEADS)
    n_heads_in_group: StrictInt | None = _int(1, MAX_HEADS)
    linear_num_key_heads: StrictInt | None = _int(1, MAX_HEADS)
    linear_num_value_heads: StrictInt | None = _int(1, MAX_HEADS)
    index_n_heads: StrictInt | None = _int(1, MAX_HEADS)
    # head widths (MLA parts may be 0)
    head_dim: StrictInt | None = _int(1, MAX_HEAD_DIM)
    kv_channels: StrictInt | None = _int(1, MAX_HEAD_DIM)
    d_kv: StrictInt | None = _int(1, MAX_HEAD_DIM)
    qk_nope_head_dim: StrictInt | None = _int(0, MAX_HEAD_DIM)
    qk_rope_head_dim: StrictInt | None = _int(0, MAX_HEAD_DIM)
    v_head_dim: StrictInt | None = _int(1, MAX_HEAD_DIM)
    kv_lora_rank: StrictInt | None = _int(1, MAX_HEAD_DIM)
    q_lora_rank: StrictInt | None = _int(1, MAX_WIDTH)
    index_head_dim: StrictInt | None = _int(1, MAX_HEAD_DIM)
    linear_key_head_dim: StrictInt | None = _int(1, MAX_HEAD_DIM)
    linear_value_head_dim: StrictInt | None = _int(1, MAX_HEAD_DIM)
    linear_conv_kernel_dim: StrictInt | None = _int(1, MAX_SMALL)
    rotary_dim: StrictInt | None = _int(0, MAX_HEAD_DIM)
    # vocabulary and positions
    vocab_size: StrictInt | None = _int(1, MAX_VOCAB)
    padded_vocab_size: StrictInt | None = _int(1, MAX_VOCAB)
    max_position_embeddings: StrictInt | None = _int(1, MAX_POSITIONS)
    n_positions: StrictInt | None = _int(1, MAX_POSITIONS)
    max_seq_len: StrictInt | None = _int(1, MAX_POSITIONS)
    seq_length: StrictInt | None = _int(1, MAX_POSITIONS)
    n_ctx: StrictInt | None = _int(1, MAX_POSITIONS)
    max_sequence_length: StrictInt | None = _int(1, MAX_POSITIONS)
    sliding_window: StrictInt | None = _int(0, MAX_POSITIONS)
    sliding_window_size: StrictInt | None = _int(0, MAX_POSITIONS)
    attention_chunk_size: StrictInt | None = _int(1, MAX_POSITIONS)
    relative_attention_num_buckets: StrictInt | None = _int(1, MAX_SMALL)
    # experts
    num_experts: StrictInt | None = _int(0, MAX_EXPERTS)
    num_local_experts: StrictInt | None = _int(0, MAX_EXPERTS)
    n_routed_experts: StrictInt | None = _int(0, MAX_EXPERTS)
    moe_num_experts: StrictInt | None = _int(0, MAX_EXPERTS)
    num_experts_per_tok: StrictInt | None = _int(0, MAX_EXPERTS)
    experts_per_token: StrictInt | None = _int(0, MAX_EXPERTS)
    moe_top_k: StrictInt | None = _int(0, MAX_EXPERTS)
    moe_k: StrictInt | None = _int(0, MAX_EXPERTS)
    n_shared_experts: StrictInt | None = _int(0, MAX_EXPERTS)
    num_shared_experts: StrictInt | None = _int(0, MAX_EXPERTS)
    moe_num_shared_experts: StrictInt | None = _int(0, MAX_EXPERTS)
    # layer patterns: steps and intervals that builders divide by
    decoder_sparse_step: StrictInt | None = _int(1, MAX_SMALL)
    interleave_moe_layer_step: StrictInt | None = _int(1, MAX_SMALL)
    moe_layer_interval: StrictInt | None = _int(1, MAX_SMALL)
    moe_layer_start_index: StrictInt | None = _int(0, MAX_SMALL)
    moe_layer_end_index: StrictInt | None = _int(-1, MAX_SMALL)
    full_attention_interval: StrictInt | None = _int(1, MAX_SMALL)
    sliding_window_pattern: StrictInt | None = _int(1, MAX_SMALL)
    expansion_ratio: StrictInt | None = _int(1, MAX_SMALL)
    # vision towers
    image_size: StrictInt | None = _int(1, MAX_SMALL)
    patch_size: StrictInt | None = _int(1, MAX_SMALL)
    num_channels: StrictInt | None = _int(1, MAX_SMALL)
    spatial_merge_size: StrictInt | None = _int(1, MAX_SMALL)
    temporal_patch_size: StrictInt | None = _int(1, MAX_SMALL)

    @model_validator(mode="after")
    def _shapes_agree(self) -> _Sizes:
        hidden = _first(self, "hidden_size", "n_embd", "n_embed", "d_model")
        heads = _first(self, "num_attention_heads", "n_head", "n_heads", "num_heads")
        kv = _first(self, "num_key_value_heads", "num_kv_heads", "n_head_kv")
        explicit_head_dim = _first(self, "head_dim", "kv_channels", "d_kv", "qk_nope_head_dim")
        if hidden is not None and heads is not None and explicit_head_dim is None \
                and hidden % heads:
            raise ValueError(f"hidden_size {hidden} is not divisible by its {heads} attention "
                             "heads, and no head_dim is given")
        if heads is not None and kv is not None and (kv > heads or heads % kv):
            raise ValueError(f"its {heads} attention heads cannot share {kv} key/value heads "
                             "(grouped-query attention needs a divisor)")
        experts = _first(self, "num_experts", "num_local_experts", "n_routed_experts",
                         "moe_num_experts")
        top_k = _first(self, "num_experts_per_tok", "experts_per_token", "moe_top_k", "moe_k")
        if experts is not None and top_k is not None and top_k > experts:
            raise ValueError(f"it routes each token to {top_k} experts but has only {experts}")
        if experts and top_k == 0:
            raise ValueError(f"it has {experts} experts but routes each token to none")
        if self.patch_size is not None and self.image_size is not None \
                and self.patch_size > self.image_size:
            raise ValueError(f"its patch_size {self.patch_size} is larger than its image_size "
                             f"{self.image_size}")
        return self


def _first(sizes: _Sizes, *names: str) -> int | None:
    for name in names:
        value = getattr(sizes, name)
        if value is not None:
            return int(value)
    return None


class _QuantizationConfig(BaseModel):
    """The parts of a quantization_config that weight formats read."""

    model_config = ConfigDict(extra="allow", frozen=True)

    bits: StrictInt | float | None = Field(default=None, ge=1, le=32)
    group_size: StrictInt | None = Field(default=None, ge=-1, le=MAX_WIDTH)
    weight_block_size: list[StrictInt] | None = None

    @model_validator(mode="after")
    def _blocks(self) -> _QuantizationConfig:
        blocks = self.weight_block_size
        if blocks is not None and (not blocks or any(not 1 <= b <= MAX_WIDTH for b in blocks)):
            raise ValueError("weight_block_size must list positive block sizes")
        if self.group_size == 0:
            raise ValueError("group_size 0 is not a group size (use -1 for one group per row)")
        return self


def check_config(config: Any) -> None:
    """Raise UserError with one sentence if ``config`` is not a config.json fits can read
    safely; return quietly otherwise. The config is not changed."""
    if not isinstance(config, Mapping):
        raise UserError("That config.json is not a JSON object.", HINT)
    _check_numbers(config)
    _check_node(config, "")


HINT = "Check that it is the model's own config.json from its Hugging Face repo."


def _check_numbers(config: Mapping[str, Any]) -> None:
    """Every number finite and of a sane magnitude; the tree bounded in size."""
    stack: list[tuple[str, Any]] = [("", config)]
    seen = 0
    while stack:
        path, value = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            raise UserError(f"That config.json holds more than {MAX_NODES:,} values; a model's "
                            "config has a few hundred.", HINT)
        if isinstance(value, bool) or value is None or isinstance(value, str):
            continue
        if isinstance(value, int | float):
            if isinstance(value, float) and not math.isfinite(value):
                raise UserError(f"The config's {path or 'value'} is {value}, not a number a "
                                "model can have.", HINT)
            if abs(value) > MAX_ANY_NUMBER:
                raise UserError(f"The config's {path or 'value'} is {_short(value)}, larger than "
                                "any model's.", HINT)
        elif isinstance(value, Mapping):
            stack.extend((_join(path, str(k)), v) for k, v in value.items())
        elif isinstance(value, list | tuple):
            stack.extend((f"{path}[{i}]", v) for i, v in enumerate(value))


def _check_node(node: Mapping[str, Any], path: str) -> None:
    """Validate one dict of the tree, then every dict below it."""
    stack: list[tuple[str, Mapping[str, Any]]] = [(path, node)]
    while stack:
        where, item = stack.pop()
        model: type[BaseModel] = (_QuantizationConfig if where.endswith("quantization_config")
                                  else _Sizes)
        try:
            model.model_validate(item)
        except ValidationError as exc:
            raise UserError(_sentence(exc, where), HINT) from None
        for key, value in item.items():
            if isinstance(value, Mapping):
                stack.append((_join(where, str(key)), value))
            elif isinstance(value, list):
                stack.extend((f"{_join(where, str(key))}[{i}]", v)
                             for i, v in enumerate(value) if isinstance(v, Mapping))


def _join(path: str, key: str) -> str:
    return f"{path}.{key[:60]}" if path else key[:60]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 24 else f"{text[:12]}...({len(text)} characters)"


def _sentence(exc: ValidationError, where: str) -> str:
    """The first problem as the sentence a user reads."""
    error = exc.errors(include_url=False)[0]
    field = ".".join(str(part) for part in error["loc"] if not isinstance(part, int))
    name = _join(where, field) if field else (where or "config")
    value = error.get("input")
    kind = error["type"]
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"The config's {name} must be a whole number, not {_short(value)}."
    if kind in ("greater_than_equal", "greater_than"):
        limit = error.get("ctx", {}).get("ge", error.get("ctx", {}).get("gt"))
        return f"The config's {name} is {_short(value)}; it must be at least {limit}."
    if kind in ("less_than_equal", "less_than"):
        limit = error.get("ctx", {}).get("le", error.get("ctx", {}).get("lt"))
        return (f"The config's {name} is {_short(value)}, more than any real model has "
                f"(fits reads up to {limit:,}).")
    if kind == "value_error":
        reason = str(error.get("msg", "")).removeprefix("Value error, ")
        where_text = f"config's {where}" if where else "config"
        return f"The {where_text} does not describe a model: {reason}."
    return f"The config's {name} is not valid ({error.get('msg', kind)})."
