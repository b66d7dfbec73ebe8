"""GGUF weight sizes: the ggml type llama-quantize gives each tensor under a preset, and its bytes.

A preset such as Q4_K_M is a mix, not one type: llama.cpp (src/llama-quant.cpp,
``llama_tensor_get_type``) starts every quantizable tensor at the preset's default type, then gives
``output``/``token_embd``, ``attn_v``, ``ffn_down`` and friends more (or fewer) bits depending on the
layer index, the layer count, the GQA factor and the number of experts, and finally falls back to a
compatible type when a row length is not a multiple of the type's block. This module reproduces
those rules; the tables they read (block sizes, default types, the fallback table, the tensors that
are never quantized) live in ``core/data/ggml_types.json`` and ``core/data/gguf_presets.json``.

Only the language model goes in a GGUF: a vision or audio tower ships as a separate ``mmproj``
file, so every function here skips tensors whose ``part`` is not ``"text"``. Byte counts are the
tensor data only; the file adds a header with the metadata (the tokenizer vocabulary, a few MB)
and up to 32 bytes of alignment per tensor.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

from core.errors import UserError
from core.tensors import Tensor

_DATA = Path(__file__).parent / "data"

# Presets grouped the way llama_tensor_get_type tests them.
_LOW_BIT = frozenset({"IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ1_S", "IQ1_M"})
_OUTPUT_Q5_K = _LOW_BIT | {"IQ3_XXS"}
_MOE8_ATTN_OUTPUT_Q5_K = frozenset(
    {"Q2_K", "IQ3_XS", "IQ3_XXS", "Q3_K_S", "Q3_K_M", "IQ4_NL", "Q4_K_S", "Q4_K_M", "IQ3_S",
     "IQ3_M", "IQ4_XS"}
)


@cache
def _types() -> dict[str, tuple[int, int]]:
    raw = json.loads((_DATA / "ggml_types.json").read_text())["types"]
    return {name: (int(v["block"]), int(v["bytes"])) for name, v in raw.items()}


@cache
def _presets() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((_DATA / "gguf_presets.json").read_text())
    return data


def preset_names() -> tuple[str, ...]:
    """Every llama-quantize preset this module knows, as llama-quantize spells them."""
    return tuple(_presets()["presets"])


def resolve_preset(name: str) -> str:
    """The canonical preset name for ``name`` (case-insensitive; Q4_K means Q4_K_M)."""
    key = name.strip().upper()
    key = str(_presets()["aliases"]["map"].get(key, key))
    if key not in _presets()["presets"]:
        raise UserError(
            f"{name!r} is not a llama.cpp quantization preset.",
            hint="Try Q4_K_M, Q5_K_M, Q8_0, IQ4_XS or another llama-quantize type.",
        )
    return key


def type_bits(type_name: str) -> float:
    """Bits per weight of a ggml type: Q4_K is 144 bytes per 256 weights = 4.5."""
    block, nbytes = _types()[type_name.upper()]
    return 8 * nbytes / block


def tensor_bytes(t: Tensor, type_name: str) -> int:
    """Bytes of ``t`` stored as ``type_name``: whole blocks along each row, as ggml_row_size."""
    block, nbytes = _types()[type_name.upper()]
    return t.count * t.rows * (-(-t.cols // block)) * nbytes


def _is_quantized(type_name: str) -> bool:
    return _types()[type_name][0] > 1


@dataclass(frozen=True, slots=True)
class GgufModelInfo:
    """The model facts llama-quantize's type rules read (llama_hparams and llm_type).

    n_gqa: n_head // n_head_kv, integer division as llama_hparams.n_gqa(). n_expert: routed experts
    (0 or 1 for dense). arch: llama.cpp's architecture name; only "falcon" (and "bailingmoe3" under
    MXFP4_MOE) change the rules.
    tied_embeddings: no ``output`` tensor, so ``token_embd`` is quantized like ``output``.
    imatrix: quantized with an importance matrix; None takes the preset's own requirement
    (llama.cpp refuses the IQ1/IQ2/IQ3_XXS/IQ3_XS/Q2_K_S presets without one).
    llm_type_70b: llama.cpp's LLM_TYPE_70B (80-layer Llama-2/3-70B, Qwen2-72B ...), which gives
    attn_v Q5_K instead of Q3_K/Q4_K; None guesses n_layer == 80 with GQA.
    n_attention_wv: number of attn_v-like tensors (attn_v, attn_qkv, attn_kv_b); None: n_layer.
    Only the one-tensor ``tensor_type`` reads it; the list functions count them.
    """

    n_layer: int
    n_expert: int = 0
    n_gqa: int = 1
    arch: str = "llama"
    tied_embeddings: bool = False
    imatrix: bool | None = None
    llm_type_70b: bool | None = None
    n_attention_wv: int | None = None


class _Ordinals(NamedTuple):
    """Running counters llama.cpp keeps while it walks the tensors (llama-quant.cpp i_* / n_*)."""

    attn_v: int
    n_attn_v: int
    ffn_down: int
    ffn_gate: int
    ffn_up: int


def _category(name: str) -> str:
    # Mirrors tensor_get_category: exact names first, then substrings, in llama.cpp's order.
    if name == "output":
        return "output"
    if name in ("token_embd", "per_layer_token_embd"):
        return "token_embd"
    for suffix in ("attn_qkv", "attn_kv_b", "attn_v", "attn_k", "attn_q", "attn_output"):
        if name.endswith(suffix):
            return "attn_v" if suffix in ("attn_qkv", "attn_kv_b") else suffix
    for part in ("ffn_up", "ffn_gate", "ffn_down"):
        if part in name:
            return part
    return "other"


def _allows_quantization(t: Tensor) -> bool:
    if t.rows == 1 and t.count == 1:  # ggml_n_dims < 2
        return False
    if t.kind in ("norm", "bias", "router"):
        return False
    rules = _presets()["never_quantized"]
    return not (
        t.name in rules["exact"]
        or any(s in t.name for s in rules["contains"])
        or any(t.name.endswith(s) for s in rules["suffix"])
    )


def _use_more_bits(i: int, n: int) -> bool:
    # The first and last eighth of the layers, and every third layer in between.
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def _output_type(preset: str, default: str, ne0: int, info: GgufModelInfo) -> str:
    if preset == "MXFP4_MOE":
        return "Q8_0"
    if info.arch == "falcon" or ne0 % _types()[default][0] != 0:
        return "Q8_0"
    if preset in _OUTPUT_Q5_K:
        return "Q5_K"
    return default if default == "Q8_0" else "Q6_K"


def _token_embd_type(preset: str, default: str) -> str:
    if preset in ("IQ2_XXS", "IQ2_XS", "IQ1_S", "IQ1_M"):
        return "Q2_K"
    if preset in ("IQ2_S", "IQ2_M", "IQ3_XXS"):
        return "IQ3_S"
    if preset in ("TQ1_0", "TQ2_0", "Q2_0"):
        return "Q4_K"
    return default


def _low_bit_type(cat: str, preset: str, default: str, info: GgufModelInfo, pos: _Ordinals) -> str:
    """The IQ1_S/IQ1_M/IQ2_* presets, which llama.cpp handles in a branch of their own."""
    two = "IQ3_S" if preset in ("IQ2_S", "IQ2_M") else "Q2_K"
    if cat == "attn_v":
        return "Q4_K" if info.n_gqa >= 4 or info.n_expert >= 4 else two
    if cat == "attn_k" and info.n_expert == 8:
        return "Q4_K"
    if cat == "ffn_down":
        # A raw count of ffn_down tensors against n_layer/8, not the layer index.
        return two if pos.ffn_down < info.n_layer // 8 else default
    if cat == "attn_output":
        if info.n_expert == 8:
            return "Q5_K"
        if preset in ("IQ1_S", "IQ1_M"):
            return "IQ2_XXS"
        if preset in ("IQ2_S", "IQ2_M"):
            return "IQ3_S"
    return default


def _attn_v_type(
    preset: str, default: str, info: GgufModelInfo, pos: _Ordinals, imatrix: bool
) -> str:
    gqa4 = info.n_gqa >= 4
    new = default
    if preset == "Q2_K":
        new = "Q4_K" if gqa4 else "Q3_K"
    elif preset == "Q2_K_S" and gqa4:
        new = "Q4_K"
    elif preset == "IQ3_XXS":
        new = "Q4_K" if gqa4 else ("IQ3_XXS" if imatrix else "IQ3_S")
    elif preset == "IQ3_M" or (preset in ("IQ3_XS", "IQ3_S") and gqa4):
        new = "Q4_K"
    elif preset == "Q3_K_M":
        new = "Q5_K" if pos.attn_v < 2 else "Q4_K"
    elif preset == "Q3_K_L" or (preset in ("IQ4_NL", "IQ4_XS") and gqa4):
        new = "Q5_K"
    elif preset in ("Q4_K_M", "Q5_K_M") and _use_more_bits(pos.attn_v, pos.n_attn_v):
        new = "Q6_K"
    elif preset == "Q4_K_S" and pos.attn_v < 4:
        new = "Q5_K"
    is_70b = info.llm_type_70b
    if is_70b is None:
        is_70b = info.n_layer == 80 and info.n_gqa > 1
    if is_70b and new in ("Q3_K", "Q4_K"):
        new = "Q5_K"  # 8 heads share attn_v: more bits cost little
    return "Q8_0" if info.n_expert == 8 else new


def _ffn_down_type(preset: str, default: str, info: GgufModelInfo, i: int, imatrix: bool) -> str:
    n = info.n_layer
    falcon = info.arch == "falcon"
    more = _use_more_bits(i, n)
    if preset == "Q2_K":
        return "Q3_K"
    if preset == "Q2_K_S":
        return "Q4_K" if i < n // 8 else default
    if preset == "IQ3_XXS" and not imatrix:
        return "Q4_K" if i < n // 8 else "Q3_K"
    if preset == "Q3_K_M":
        if i < n // 16:
            return "Q5_K"
        return "Q4_K" if not falcon or more else "Q3_K"
    if preset == "IQ3_M" and (i < n // 8 or (info.n_expert == 8 and more)):
        return "Q4_K"
    if preset == "Q3_K_L":
        return "Q4_K" if falcon else "Q5_K"
    if preset == "Q4_K_M":
        if falcon:
            return "Q6_K" if i < n // 16 else ("Q5_K" if more else "Q4_K")
        return "Q6_K" if more else default
    if preset in ("IQ4_NL", "IQ4_XS") and i < n // 8 and not imatrix:
        return "Q5_K"
    if preset == "Q5_K_M" and more:
        return "Q6_K"
    if preset == "Q4_K_S" and not falcon and i < n // 8:
        return "Q5_K"
    if preset in ("Q4_0", "Q5_0") and imatrix and i < n // 8:
        return "Q4_1" if preset == "Q4_0" else "Q5_1"
    return default


def _attn_output_type(preset: str, default: str, info: GgufModelInfo) -> str:
    if info.arch == "falcon":
        return "Q4_K" if preset == "Q3_K_L" else default
    if info.n_expert == 8:
        return "Q5_K" if preset in _MOE8_ATTN_OUTPUT_Q5_K else default
    bumps = {"Q2_K": "Q3_K", "IQ3_XXS": "IQ3_S", "Q3_K_M": "Q4_K", "Q3_K_L": "Q5_K", "IQ3_M": "Q4_K"}
    return bumps.get(preset, default)


def _mix_type(t: Tensor, preset: str, default: str, info: GgufModelInfo, pos: _Ordinals,
              cat: str) -> str:
    """llama_tensor_get_type_impl: the preset's per-tensor adjustments of the default type."""
    imatrix = info.imatrix
    if imatrix is None:
        imatrix = bool(_presets()["presets"][preset]["requires_imatrix"])
    if cat == "output" or (cat == "token_embd" and info.tied_embeddings):
        return _output_type(preset, default, t.cols, info)
    if preset == "MXFP4_MOE":
        # 3-D tensors (expert stacks, but also MLA's attn_k_b/attn_v_b) get MXFP4, the rest Q8_0.
        ffn = cat in ("ffn_up", "ffn_gate", "ffn_down")
        return "MXFP4" if t.count > 1 and (info.arch != "bailingmoe3" or ffn) else "Q8_0"
    if cat == "token_embd":
        return _token_embd_type(preset, default)
    if preset in _LOW_BIT:
        return _low_bit_type(cat, preset, default, info, pos)
    if cat == "attn_v":
        return _attn_v_type(preset, default, info, pos, imatrix)
    if cat in ("attn_k", "attn_q"):
        if cat == "attn_k" and info.n_expert == 8:
            return "Q8_0"
        return {"IQ3_XS": "IQ3_XXS", "IQ3_XXS": "IQ2_S"}.get(preset, default)
    # MoE tensors are placed by the layer in their name; dense ones by their running count.
    layer = t.layer if info.n_expert > 1 and t.layer is not None else None
    if cat == "ffn_down":
        i = pos.ffn_down if layer is None else layer
        return _ffn_down_type(preset, default, info, i, imatrix)
    if cat == "attn_output":
        return _attn_output_type(preset, default, info)
    if cat in ("ffn_gate", "ffn_up") and preset == "IQ3_XS":
        i = layer if layer is not None else (pos.ffn_gate if cat == "ffn_gate" else pos.ffn_up)
        n = info.n_layer
        if n // 8 <= i < 7 * n // 8:
            return "IQ3_XXS"
    return default


def _fallback(type_name: str, ne0: int, name: str) -> str:
    """tensor_type_fallback: a type whose block divides the row length ne0."""
    if ne0 % _types()[type_name][0] == 0:
        return type_name
    table = _presets()["fallback"]
    new = table["types"].get(type_name)
    if new is None:
        raise UserError(
            f"llama.cpp cannot quantize {name} (row length {ne0}) to {type_name}.",
            hint="Pick another GGUF preset.",
        )
    return new if ne0 % _types()[new][0] == 0 else str(table["last_resort"])


def _tensor_type(t: Tensor, preset: str, info: GgufModelInfo, pos: _Ordinals) -> str:
    if t.part != "text":
        raise ValueError(f"{t.name} belongs to the {t.part} part, which a GGUF does not hold")
    if not _allows_quantization(t):
        return "F32"  # convert_hf_to_gguf writes these in F32 and llama-quantize copies them
    return _quantized_type(t, preset, info, pos, _category(t.name))


def _quantized_type(t: Tensor, preset: str, info: GgufModelInfo, pos: _Ordinals,
                    cat: str) -> str:
    default = str(_presets()["presets"][preset]["default_type"])
    if not _is_quantized(default):
        return default
    return _fallback(_mix_type(t, preset, default, info, pos, cat), t.cols, t.name)


def tensor_type(t: Tensor, preset: str, ctx: GgufModelInfo) -> str:
    """The ggml type llama-quantize gives one text tensor under ``preset``.

    llama.cpp counts attn_v and ffn_down tensors as it walks the file; here the layer index stands
    in for those counts, which is exact when every layer has one of each (``tensor_types`` counts).
    """
    preset = resolve_preset(preset)
    i = t.layer if t.layer is not None else 0
    n_wv = ctx.n_attention_wv if ctx.n_attention_wv is not None else ctx.n_layer
    return _tensor_type(t, preset, ctx, _Ordinals(i, n_wv, i, i, i))


def _file_order(t: Tensor) -> tuple[int, str]:
    # llama_model_loader's weight_name_comparer: by block number (none first), then by full name.
    suffix = ".bias" if t.kind == "bias" else ".weight"
    return (-1 if t.layer is None else t.layer, t.name + suffix)


@dataclass(frozen=True, slots=True)
class Walk:
    """What llama-quantize's walk over a model's tensors needs that no preset changes: the
    text tensors in file order, each one's category and whether it may be quantized. Computed
    once per model (core.formats memoizes it), so that each preset only assigns types."""

    order: tuple[int, ...]  # indices of the text tensors, in llama.cpp's file order
    quantizable: tuple[bool, ...]  # by index into the tensor list
    categories: tuple[str, ...]  # by index; "" for non-text tensors
    n_attention_wv: int
    tied: bool  # no ``output`` tensor: llama.cpp quantizes token_embd as the head


def plan_walk(tensors: Sequence[Tensor]) -> Walk:
    order = sorted(range(len(tensors)), key=lambda k: _file_order(tensors[k]))
    text = tuple(k for k in order if tensors[k].part == "text")
    categories = tuple(_category(t.name) if t.part == "text" else "" for t in tensors)
    return Walk(
        order=text,
        quantizable=tuple(t.part == "text" and _allows_quantization(t) for t in tensors),
        categories=categories,
        n_attention_wv=sum(1 for k in text
                           if categories[k] == "attn_v" and tensors[k].kind != "bias"),
        tied=not any(tensors[k].name == "output" for k in text),
    )


def tensor_types(tensors: Sequence[Tensor], preset: str, info: GgufModelInfo,
                 walk: Walk | None = None) -> list[str | None]:
    """The type of each tensor (None for non-text parts), with llama.cpp's running counters.

    Embeddings count as tied exactly when there is no ``output`` tensor, as llama.cpp decides.
    ``walk`` is ``plan_walk(tensors)``, when the caller keeps it.
    """
    preset = resolve_preset(preset)
    walk = walk or plan_walk(tensors)
    info = replace(info, tied_embeddings=walk.tied)
    seen = {"attn_v": 0, "ffn_down": 0, "ffn_gate": 0, "ffn_up": 0}
    out: list[str | None] = [None] * len(tensors)
    for k in walk.order:
        if not walk.quantizable[k]:
            out[k] = "F32"  # convert_hf_to_gguf writes these in F32 and llama-quantize copies them
            continue
        t, cat = tensors[k], walk.categories[k]
        pos = _Ordinals(seen["attn_v"], walk.n_attention_wv, seen["ffn_down"], seen["ffn_gate"],
                        seen["ffn_up"])
        out[k] = _quantized_type(t, preset, info, pos, cat)
        if cat in seen:
            seen[cat] += 1
    return out


def gguf_layer_bytes(
    tensors: Sequence[Tensor], preset: str, info: GgufModelInfo
) -> dict[int | None, int]:
    """Weight bytes per layer (key None: embeddings, output and other non-layer tensors).

    What llama.cpp moves to the GPU per offloaded layer (``-ngl``); text tensors only.
    """
    return bytes_by_layer(tensors, tensor_types(tensors, preset, info))


def bytes_by_layer(tensors: Sequence[Tensor], types: Sequence[str | None]) -> dict[int | None, int]:
    """Bytes per layer of the tensors that have a type (``tensor_types``'s answer)."""
    out: dict[int | None, int] = {}
    for t, ty in zip(tensors, types, strict=True):
        if ty is not None:
            out[t.layer] = out.get(t.layer, 0) + tensor_bytes(t, ty)
    return out


def gguf_weight_bytes(tensors: Sequence[Tensor], preset: str, info: GgufModelInfo) -> int:
    """Exact tensor-data bytes of the GGUF (norms, biases and routers in F32 included)."""
    return sum(gguf_layer_bytes(tensors, preset, info).values())


def gguf_bits_per_weight(tensors: Sequence[Tensor], preset: str, info: GgufModelInfo) -> float:
    """Average bits per weight over the text tensors, as llama-quantize and llama-bench print."""
    numel = sum(t.numel for t in tensors if t.part == "text")
    return 8 * gguf_weight_bytes(tensors, preset, info) / numel if numel else 0.0
