"""GGUF per-tensor types and sizes (core/gguf.py) against llama.cpp's rules and published files."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from core.errors import UserError
from core.gguf import (
    GgufModelInfo,
    gguf_bits_per_weight,
    gguf_layer_bytes,
    gguf_weight_bytes,
    preset_names,
    resolve_preset,
    tensor_type,
    tensor_types,
    type_bits,
)
from core.request import GGUF_PRESETS
from core.tensors import Tensor

DATA = json.loads((Path(__file__).parent / "data" / "gguf_file_sizes.json").read_text())
TYPES = json.loads((Path(__file__).parents[1] / "core" / "data" / "ggml_types.json").read_text())
GIB = 2**30


def decoder(
    vocab: int, hidden: int, layers: int, heads: int, kv_heads: int, ffn: int, *,
    rope_freqs: bool = False, qkv_bias: bool = False, output_tensor: bool = True, **_: Any,
) -> list[Tensor]:
    """A Llama-style tensor list. Stand-in until core.models builds these from config.json."""
    hd = hidden // heads
    ts = [Tensor("token_embd", vocab, hidden, kind="embedding"),
          Tensor("output_norm", 1, hidden, kind="norm")]
    if output_tensor:
        ts.append(Tensor("output", vocab, hidden))
    if rope_freqs:
        ts.append(Tensor("rope_freqs", 1, hd // 2, kind="other"))
    for i in range(layers):
        ts += [Tensor("attn_norm", 1, hidden, kind="norm", layer=i),
               Tensor("attn_q", heads * hd, hidden, layer=i),
               Tensor("attn_k", kv_heads * hd, hidden, layer=i),
               Tensor("attn_v", kv_heads * hd, hidden, layer=i),
               Tensor("attn_output", hidden, heads * hd, layer=i),
               Tensor("ffn_norm", 1, hidden, kind="norm", layer=i),
               Tensor("ffn_gate", ffn, hidden, layer=i),
               Tensor("ffn_up", ffn, hidden, layer=i),
               Tensor("ffn_down", hidden, ffn, layer=i)]
        if qkv_bias:
            ts += [Tensor(n, 1, w, kind="bias", layer=i)
                   for n, w in (("attn_q", heads * hd), ("attn_k", kv_heads * hd), ("attn_v", kv_heads * hd))]
    return ts


def info_for(shape: dict[str, Any], imatrix: bool | None = None) -> GgufModelInfo:
    return GgufModelInfo(n_layer=shape["layers"], n_gqa=shape["heads"] // shape["kv_heads"], imatrix=imatrix)


LLAMA2 = DATA["models"]["Llama-2-7B"]


# --- ggml types -------------------------------------------------------------------------------

EXPECTED_BPW = {
    "F32": 32, "F16": 16, "BF16": 16, "Q4_0": 4.5, "Q4_1": 5, "Q5_0": 5.5, "Q5_1": 6, "Q8_0": 8.5,
    "Q2_K": 2.625, "Q3_K": 3.4375, "Q4_K": 4.5, "Q5_K": 5.5, "Q6_K": 6.5625, "IQ1_S": 1.5625,
    "IQ1_M": 1.75, "IQ2_XXS": 2.0625, "IQ2_XS": 2.3125, "IQ2_S": 2.5625, "IQ3_XXS": 3.0625,
    "IQ3_S": 3.4375, "IQ4_NL": 4.5, "IQ4_XS": 4.25, "TQ1_0": 1.6875, "TQ2_0": 2.0625, "MXFP4": 4.25,
    "NVFP4": 4.5, "Q1_0": 1.125, "Q2_0": 2.25,
}


@pytest.mark.parametrize("name", sorted(TYPES["types"]))
def test_type_bits(name: str) -> None:
    entry = TYPES["types"][name]
    assert entry["source"]
    assert type_bits(name) == EXPECTED_BPW[name] == 8 * entry["bytes"] / entry["block"]


def test_every_type_has_an_expectation() -> None:
    assert set(EXPECTED_BPW) == set(TYPES["types"])


# --- presets ----------------------------------------------------------------------------------

def test_presets_cover_the_request_vocabulary() -> None:
    assert set(GGUF_PRESETS) <= set(preset_names())


@pytest.mark.parametrize("preset", preset_names())
def test_every_preset_computes(preset: str) -> None:
    ts = decoder(**LLAMA2)
    types = tensor_types(ts, preset, info_for(LLAMA2))
    assert all(ty is not None and ty in TYPES["types"] for ty in types)
    bpw = gguf_bits_per_weight(ts, preset, info_for(LLAMA2))
    assert 1.0 < bpw <= 32.0


def test_aliases_and_unknown_presets() -> None:
    assert resolve_preset("q4_k") == "Q4_K_M"
    assert resolve_preset(" q8_0 ") == "Q8_0"
    with pytest.raises(UserError):
        resolve_preset("Q7_K")


# --- published sizes --------------------------------------------------------------------------

def _weights(model: str, preset: str, imatrix: bool | None = None) -> int:
    shape = DATA["models"][model]
    return gguf_weight_bytes(decoder(**shape), preset, info_for(shape, imatrix))


@pytest.mark.parametrize("rec", DATA["records"], ids=lambda r: r["id"])
def test_published_sizes(rec: dict[str, Any]) -> None:
    ours = _weights(rec["model"], rec["preset"], rec.get("imatrix"))
    if rec["kind"] == "file_bytes":
        # The file adds its header (vocab etc.); weights must be within 1% below it.
        assert 0 < rec["value"] - ours < 0.01 * rec["value"]
        assert rec["value"] - ours == DATA["header_bytes"][rec["producer"]]
    elif rec["kind"] == "weights_gib":
        assert round(ours / GIB, 2) == rec["value"]
    else:
        numel = sum(t.numel for t in decoder(**DATA["models"][rec["model"]]))
        assert round(8 * ours / numel, 4) == rec["value"]


def test_llama31_readme_table_every_preset() -> None:
    extra = next(e for e in DATA["extra"] if e["id"] == "l31-readme-all")
    shape = DATA["models"]["Meta-Llama-3.1-8B"]
    ts = decoder(**shape)
    for preset, bpw in extra["values"].items():
        assert round(gguf_bits_per_weight(ts, preset, info_for(shape)), 4) == bpw, preset


def test_llama31_bartowski_imatrix_files() -> None:
    extra = next(e for e in DATA["extra"] if e["id"] == "l31-bartowski-imatrix")
    header = DATA["header_bytes"][extra["producer"]]
    for preset, size in extra["file_bytes"].items():
        assert size - _weights("Meta-Llama-3.1-8B", preset, imatrix=True) == header, preset


def test_fallback_matches_qwen25_05b_files() -> None:
    extra = next(e for e in DATA["extra"] if e["id"] == "qwen05-fallback")
    shape = extra["shape"]
    ts, info = decoder(**shape), info_for(shape)
    for preset, size in extra["file_bytes"].items():
        assert size - gguf_weight_bytes(ts, preset, info) == DATA["header_bytes"][extra["producer"]]
    kinds = {(t.name, ty) for t, ty in zip(ts, tensor_types(ts, "Q4_K_M", info), strict=True)}
    assert ("attn_q", "Q5_0") in kinds and ("ffn_gate", "Q5_0") in kinds  # 896 % 256 != 0
    assert ("output", "Q8_0") in kinds and ("token_embd", "Q5_0") in kinds
    assert ("ffn_down", "Q4_K") in kinds and ("ffn_down", "Q6_K") in kinds  # 4864 = 19 * 256


def test_70b_rule_type_counts() -> None:
    extra = next(e for e in DATA["extra"] if e["id"] == "l31-70b-q3_k_m")
    shape = extra["shape"]
    ts = decoder(**shape)
    counts = Counter(tensor_types(ts, extra["preset"], info_for(shape)))
    assert dict(counts) == extra["type_counts"]
    assert round(gguf_weight_bytes(ts, extra["preset"], info_for(shape)) / GIB, 2) == extra["weights_gib"]


# --- rules ------------------------------------------------------------------------------------

def one(name: str, rows: int, cols: int, preset: str, info: GgufModelInfo, **kw: Any) -> str:
    return tensor_type(Tensor(name, rows, cols, **kw), preset, info)


def test_fallback_table() -> None:
    info = GgufModelInfo(n_layer=24, n_gqa=8)  # gpt-oss: rows of 2880 = 11.25 * 256
    assert one("attn_q", 4096, 2880, "Q4_K_M", info, layer=5) == "Q5_0"
    assert one("attn_q", 4096, 2880, "Q6_K", info, layer=5) == "Q8_0"
    assert one("attn_q", 4096, 2880, "Q5_K_S", info, layer=5) == "Q5_1"
    assert one("attn_q", 4096, 2880, "IQ2_XXS", info, layer=5) == "IQ4_NL"
    assert one("attn_q", 4096, 2880, "Q2_K", info, layer=5) == "Q4_0"
    assert one("attn_q", 4096, 100, "Q4_K_M", info, layer=5) == "F16"  # not even 32-aligned
    with pytest.raises(UserError):
        one("attn_q", 4096, 100, "Q8_0", info, layer=5)  # llama.cpp has no fallback for Q8_0


def test_never_quantized_tensors_stay_f32() -> None:
    info = GgufModelInfo(n_layer=32, n_expert=8, n_gqa=4)
    assert one("ffn_gate_inp", 8, 4096, "Q4_K_M", info, kind="router", layer=0) == "F32"
    assert one("pos_embd", 2048, 768, "Q4_K_M", info, kind="embedding") == "F32"
    assert one("attn_norm", 1, 4096, "Q4_K_M", info, kind="norm", layer=0) == "F32"
    assert one("attn_q", 1, 4096, "Q4_K_M", info, kind="bias", layer=0) == "F32"
    assert one("ssm_conv1d", 4096, 4, "Q4_K_M", info, kind="conv", layer=0) == "F32"
    assert one("ffn_gate_inp", 8, 4096, "F16", info, kind="router", layer=0) == "F32"


def test_q4_k_m_mix_for_llama2() -> None:
    ts = decoder(**LLAMA2)
    got = {(t.name, t.layer): ty for t, ty in zip(ts, tensor_types(ts, "Q4_K_M", info_for(LLAMA2)), strict=True)}
    more = [i for i in range(32) if got[("attn_v", i)] == "Q6_K"]
    assert more == [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31]  # "half"
    assert more == [i for i in range(32) if got[("ffn_down", i)] == "Q6_K"]
    assert got[("output", None)] == "Q6_K" and got[("token_embd", None)] == "Q4_K"
    assert got[("attn_q", 7)] == got[("ffn_up", 7)] == "Q4_K"


def test_single_tensor_api_agrees_with_list_api() -> None:
    ts, info = decoder(**LLAMA2), info_for(LLAMA2)
    for preset in ("Q3_K_M", "Q4_K_S", "Q5_K_M", "IQ3_XS", "IQ2_M"):
        assert [tensor_type(t, preset, info) for t in ts] == tensor_types(ts, preset, info)


def test_q3_k_m_and_gqa_rules() -> None:
    mha, gqa = GgufModelInfo(n_layer=32, n_gqa=1), GgufModelInfo(n_layer=32, n_gqa=4)
    assert one("attn_v", 4096, 4096, "Q3_K_M", mha, layer=1) == "Q5_K"
    assert one("attn_v", 4096, 4096, "Q3_K_M", mha, layer=2) == "Q4_K"
    assert one("attn_output", 4096, 4096, "Q3_K_M", mha, layer=2) == "Q4_K"
    assert one("attn_v", 1024, 4096, "Q2_K", gqa, layer=9) == "Q4_K"
    assert one("attn_v", 4096, 4096, "Q2_K", mha, layer=9) == "Q3_K"
    assert one("attn_v", 1024, 4096, "IQ4_XS", gqa, layer=9) == "Q5_K"
    assert one("attn_qkv", 12288, 4096, "Q4_K_M", mha, layer=0) == "Q6_K"  # attn_v rules


def test_moe_rules() -> None:
    mixtral = GgufModelInfo(n_layer=32, n_expert=8, n_gqa=4)
    assert one("attn_v", 1024, 4096, "Q4_K_M", mixtral, layer=10) == "Q8_0"
    assert one("attn_k", 1024, 4096, "Q4_K_M", mixtral, layer=10) == "Q8_0"
    assert one("attn_output", 4096, 4096, "Q4_K_M", mixtral, layer=10) == "Q5_K"
    assert one("ffn_down_exps", 4096, 14336, "Q4_K_M", mixtral, layer=31, count=8) == "Q6_K"
    assert one("ffn_down_exps", 4096, 14336, "Q4_K_M", mixtral, layer=10, count=8) == "Q4_K"
    oss = GgufModelInfo(n_layer=24, n_expert=32, n_gqa=8)
    assert one("ffn_up_exps", 2880, 2880, "MXFP4_MOE", oss, layer=3, count=32) == "MXFP4"
    assert one("attn_q", 4096, 2880, "MXFP4_MOE", oss, layer=3) == "Q8_0"
    assert one("output", 201088, 2880, "MXFP4_MOE", oss) == "Q8_0"
    assert one("ffn_gate_inp", 32, 2880, "MXFP4_MOE", oss, kind="router", layer=3) == "F32"


def test_tied_embeddings_take_the_output_rule() -> None:
    ts = [t for t in decoder(**LLAMA2) if t.name != "output"]
    types = dict(zip((t.name for t in ts), tensor_types(ts, "Q4_K_M", info_for(LLAMA2)), strict=False))
    assert types["token_embd"] == "Q6_K"
    assert types["token_embd"] != tensor_types(decoder(**LLAMA2), "Q4_K_M", info_for(LLAMA2))[0]


def test_low_bit_embeddings() -> None:
    info = GgufModelInfo(n_layer=32, n_gqa=4)
    assert one("token_embd", 128256, 4096, "IQ2_XXS", info, kind="embedding") == "Q2_K"
    assert one("output", 128256, 4096, "IQ2_XXS", info) == "Q5_K"
    assert one("token_embd", 128256, 4096, "IQ2_M", info, kind="embedding") == "IQ3_S"


def test_vision_tensors_are_not_in_the_gguf() -> None:
    ts = decoder(**LLAMA2)
    vision = Tensor("v.blk.0.attn_q", 1024, 1024, layer=0, part="vision")
    info = info_for(LLAMA2)
    assert gguf_weight_bytes([*ts, vision], "Q8_0", info) == gguf_weight_bytes(ts, "Q8_0", info)
    assert tensor_types([vision], "Q8_0", info) == [None]
    with pytest.raises(ValueError):
        tensor_type(vision, "Q8_0", info)


def test_layer_bytes() -> None:
    ts, info = decoder(**LLAMA2), info_for(LLAMA2)
    per_layer = gguf_layer_bytes(ts, "Q4_K_M", info)
    assert set(per_layer) == {None, *range(32)}
    assert sum(per_layer.values()) == gguf_weight_bytes(ts, "Q4_K_M", info)
    # token_embd Q4_K + output Q6_K + output_norm F32
    assert per_layer[None] == 32000 * 4096 * (144 + 210) // 256 + 4096 * 4
    assert per_layer[0] > per_layer[4]  # layer 0 has Q6_K attn_v and ffn_down, layer 4 does not
