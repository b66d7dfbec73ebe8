"""Golden parameter counts and KV-cache sizes, measured with Hugging Face `transformers`.

What it does
------------
For every row of ``core/data/models.jsonl`` (one real HF ``config.json`` per row) this script:

1. **Parameter counts** -> ``tests/golden/param_counts.json``.
   Builds the config with ``AutoConfig.for_model(model_type, **config)`` and instantiates the
   model class named in ``architectures`` (falling back to the causal-LM / image-text-to-text /
   seq2seq auto class) on the ``meta`` device, so nothing is allocated or downloaded and no
   remote code is run.  It records the total of unique parameters (tied weights counted once),
   the input/output embedding sizes, whether they are tied, a text/vision/projector split for
   multimodal models and the persistent buffers.  ``quantization_config`` (and mlx
   ``quantization``) is dropped, so counts are of the unquantized model; ``torch_dtype``/``dtype``
   are dropped as irrelevant.  A few remote-code model types whose architecture is the same as
   a native one are mapped (see ``MAPPINGS``; each mapped row says so in ``mapped_from``).
   Rows that cannot be built natively are listed in ``skipped`` with the reason.

2. **KV cache** -> ``tests/golden/kv_cache.json``.
   For each native decoder (and the T5 family), builds a *reduced* model on CPU: the real
   attention widths (hidden size, heads, kv heads, head_dim, MLA ranks, window sizes) but only
   a few layers (enough to contain every distinct layer kind, e.g. sliding + full), a 512-token
   vocabulary and, for heavy models, fewer experts and/or a narrower FFN (neither changes the
   cache).  Weights are float32 pseudo-random values (all parameters are views of one shared
   buffer, which keeps memory low; the cache depends only on shapes).  It runs one forward pass
   of 16 tokens (batch 1) with
   ``use_cache=True`` and sums the elements of every key/value tensor in the returned cache
   object.  ``kv_elements_per_token`` is that sum / 16 for the reduced layer count; bytes for a
   bf16 cache are ``2 *`` that.  A second pass with 8 tokens checks that the cache grows
   linearly and separates any per-token or fixed-size extra state (DSA indexer keys, linear-
   attention conv/recurrent state).  Every override applied is recorded in ``config_overrides``.

3. **Shape dumps** (developer aid, not committed) -> ``/tmp/golden_shapes/<id with / -> __>.txt``:
   the named parameters with shapes of the non-repeated parts, layer 0 and every later layer
   whose tensor names/shapes differ from the ones already shown (dense-first vs MoE, sliding vs
   full, T5 block 0 with its relative bias, ...).

How to rerun
------------
From the repository root::

    python3 -m venv .venv-golden
    .venv-golden/bin/pip install torch==2.13.0          # CPU build, install it alone first
    .venv-golden/bin/pip install -r scripts/requirements-golden.txt
    .venv-golden/bin/python scripts/golden_from_transformers.py

Options: ``--only ID`` (repeatable) runs the given ids and prints their records; add
``--update`` to merge them into the golden files.  ``--no-kv`` / ``--no-params`` /
``--no-shapes`` skip a part; ``--shapes-dir`` moves the dumps.  The output is deterministic
(sorted keys, no timestamps): rerunning with the same package versions gives identical files.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import io
import json
import logging
import math
import re
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch
import transformers
from transformers import AutoConfig
from transformers.models.auto import modeling_auto

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "core" / "data" / "models.jsonl"
PARAMS_OUT = ROOT / "tests" / "golden" / "param_counts.json"
KV_OUT = ROOT / "tests" / "golden" / "kv_cache.json"
SHAPES_DIR = Path("/tmp/golden_shapes")
COMMAND = ".venv-golden/bin/python scripts/golden_from_transformers.py"

KV_TOKENS = 16
KV_TOKENS_CHECK = 8
KV_VOCAB = 512
# Reduced models above this many parameters get fewer experts, then a narrower FFN.
KV_PARAM_LIMIT = 100_000_000
KV_FFN_WIDTH = 512

# Keys dropped from every config (at any nesting level) because they must not matter.
IRRELEVANT_KEYS = (
    "torch_dtype",
    "dtype",
    "transformers_version",
    "_name_or_path",
    "auto_map",
    "_attn_implementation",
    "attn_implementation",
)
QUANT_KEYS = ("quantization_config", "quantization")


# ---------------------------------------------------------------------------------------------
# Remote-code model types mapped to a native architecture (same tensors, maybe other names).
# Each function returns (native model_type, translated config dict, one-line reason).
# ---------------------------------------------------------------------------------------------


def _map_yi(cfg: dict[str, Any]) -> tuple[str, dict[str, Any], str]:
    return (
        "llama",
        cfg,
        "YiForCausalLM is the Llama architecture (01-ai re-published Yi as LlamaForCausalLM)",
    )


def _map_kimi_k2(cfg: dict[str, Any]) -> tuple[str, dict[str, Any], str]:
    return (
        "deepseek_v3",
        cfg,
        "config's architectures/auto_map name DeepseekV3ForCausalLM/DeepseekV3Config",
    )


def _map_refinedweb(cfg: dict[str, Any]) -> tuple[str, dict[str, Any], str]:
    out = dict(cfg)
    ren = {
        "n_head": "num_attention_heads",
        "n_layer": "num_hidden_layers",
        "n_embed": "hidden_size",
    }
    for old, new in ren.items():
        if old in out:
            out[new] = out.pop(old)
    if out.get("n_head_kv") is not None:
        # Falcon-40B style: grouped KV heads, two layer norms per block.
        out["num_kv_heads"] = out.pop("n_head_kv")
        out["new_decoder_architecture"] = True
        kind = "n_head_kv present -> new_decoder_architecture=True, num_kv_heads=n_head_kv"
    else:
        out.pop("n_head_kv", None)
        out["new_decoder_architecture"] = False
        out.setdefault("multi_query", True)
        kind = "no n_head_kv -> Falcon-7B style (multi_query, one input layernorm)"
    return (
        "falcon",
        out,
        f"RWForCausalLM is what transformers ported as Falcon; keys n_head/n_layer renamed; {kind}",
    )


def _map_internlm(cfg: dict[str, Any]) -> tuple[str, dict[str, Any], str]:
    out = dict(cfg)
    bias = bool(out.pop("bias", False))
    out["attention_bias"] = bias
    return (
        "llama",
        out,
        f"InternLM v1 is Llama with bias={bias} on q/k/v/o_proj (= Llama attention_bias)",
    )


def _map_internlm2(cfg: dict[str, Any]) -> tuple[str, dict[str, Any], str]:
    out = dict(cfg)
    bias = bool(out.pop("bias", False))
    out["attention_bias"] = bias
    return (
        "llama",
        out,
        "InternLM2 is Llama with fused wqkv (GQA) and w1/w2/w3 names; same tensor sizes",
    )


def _map_baichuan(cfg: dict[str, Any]) -> tuple[str, dict[str, Any], str]:
    return (
        "llama",
        cfg,
        "Baichuan(2) is Llama-shaped: fused W_pack=q|k|v (no bias), SwiGLU, RMSNorm, NormHead "
        "lm_head of the same shape; ALiBi vs RoPE has no parameters",
    )


def _map_minicpm(cfg: dict[str, Any]) -> tuple[str, dict[str, Any], str]:
    out = dict(cfg)
    for k in ("scale_emb", "dim_model_base", "scale_depth"):
        out.pop(k, None)
    if out.get("num_experts"):
        out["num_local_experts"] = out.pop("num_experts")
        return (
            "mixtral",
            out,
            "MiniCPM-MoE is Llama attention + Mixtral-style MoE (bias-free gate, w1/w2/w3 experts); "
            "muP scale_* fields have no parameters",
        )
    return (
        "llama",
        out,
        "MiniCPM is Llama with muP scalars (scale_emb/dim_model_base/scale_depth, no parameters)",
    )


def _map_chatglm(cfg: dict[str, Any]) -> tuple[str, dict[str, Any], str] | str:
    need = {
        "rmsnorm": True,
        "add_bias_linear": False,
        "post_layer_norm": True,
        "apply_residual_connection_post_layernorm": False,
    }
    for k, v in need.items():
        if cfg.get(k, v) != v:
            return f"chatglm variant with {k}={cfg.get(k)!r} has no native equivalent"
    heads = cfg["num_attention_heads"]
    out = {
        "vocab_size": cfg["padded_vocab_size"],
        "hidden_size": cfg["hidden_size"],
        "intermediate_size": cfg["ffn_hidden_size"],
        "num_hidden_layers": cfg["num_layers"],
        "num_attention_heads": heads,
        "num_key_value_heads": (
            cfg["multi_query_group_num"] if cfg.get("multi_query_attention") else heads
        ),
        "head_dim": cfg.get("kv_channels", cfg["hidden_size"] // heads),
        "attention_bias": bool(cfg.get("add_qkv_bias", False)),
        "rms_norm_eps": cfg.get("layernorm_epsilon", 1e-5),
        "max_position_embeddings": cfg.get("seq_length", 8192),
        "partial_rotary_factor": 0.5,
        "tie_word_embeddings": cfg.get("tie_word_embeddings", False),
        "pad_token_id": cfg.get("pad_token_id"),
        "eos_token_id": cfg.get("eos_token_id"),
    }
    return (
        "glm",
        out,
        "ChatGLM2/3 (ChatGLMModel) is the architecture transformers ported as Glm (GLM-4 uses the "
        "same remote code): fused qkv with bias, no o/MLP bias, RMSNorm, separate output_layer",
    )


def _map_phi_msft(cfg: dict[str, Any]) -> tuple[str, dict[str, Any], str]:
    hidden = cfg["n_embd"]
    heads = cfg["n_head"]
    out = {
        "vocab_size": cfg["vocab_size"],
        "hidden_size": hidden,
        "intermediate_size": cfg.get("n_inner") or 4 * hidden,
        "num_hidden_layers": cfg["n_layer"],
        "num_attention_heads": heads,
        "num_key_value_heads": cfg.get("n_head_kv") or heads,
        "max_position_embeddings": cfg.get("n_positions", 2048),
        "layer_norm_eps": cfg.get("layer_norm_epsilon", 1e-5),
        "hidden_act": cfg.get("activation_function", "gelu_new"),
        "partial_rotary_factor": cfg.get("rotary_dim", hidden // heads) / (hidden // heads),
        "tie_word_embeddings": cfg.get("tie_word_embeddings", False),
    }
    return (
        "phi",
        out,
        "phi-msft (old microsoft/phi-2 remote code) was re-published as native PhiForCausalLM; "
        "n_embd/n_head/n_layer/n_inner/rotary_dim translated",
    )


MAPPINGS = {
    "yi": _map_yi,
    "kimi_k2": _map_kimi_k2,
    "RefinedWeb": _map_refinedweb,
    "RefinedWebModel": _map_refinedweb,
    "internlm": _map_internlm,
    "internlm2": _map_internlm2,
    "baichuan": _map_baichuan,
    "minicpm": _map_minicpm,
    "chatglm": _map_chatglm,
    "phi-msft": _map_phi_msft,
}

SKIP_REASONS = {
    "deepseek": "DeepseekForCausalLM (DeepSeek-MoE v1) is remote code; no native class "
    "(transformers' deepseek_v2/v3 always use MLA, this model uses plain MHA)",
    "orion": "OrionForCausalLM is remote code; it uses LayerNorm with bias around a Llama-style "
    "block, which no native class reproduces",
    "bailing_moe": "BailingMoeV2ForCausalLM (Ling 2.0) is remote code; transformers only has "
    "bailing_hybrid, a different architecture",
    "nemotron-nas": "DeciLMForCausalLM is remote code with per-layer block_configs (variable FFN, "
    "skipped/linear attention); no native class",
    "phi3small": "Phi3SmallForCausalLM is remote code (blocksparse attention, gegelu MLP, muP); "
    "no native class",
    "phi3_v": "Phi3VForCausalLM is remote code (Phi-3 text + CLIP encoder with a custom HD "
    "projector); no native class",
}

# ---------------------------------------------------------------------------------------------
# Config preparation
# ---------------------------------------------------------------------------------------------


def _strip(obj: Any, dropped: dict[str, Any], path: str = "") -> Any:
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if k in IRRELEVANT_KEYS:
                continue
            if k in QUANT_KEYS:
                dropped[path + k] = v
                continue
            out[k] = _strip(v, dropped, path + k + ".")
        return out
    return obj


def _quant_summary(dropped: dict[str, Any]) -> str:
    parts = []
    for k, v in sorted(dropped.items()):
        if isinstance(v, dict):
            method = v.get("quant_method") or (f"{v.get('bits')}-bit" if "bits" in v else "?")
            parts.append(f"{k} (quant_method={method})")
        else:
            parts.append(k)
    return "dropped " + ", ".join(parts) + "; counts are of the unquantized model"


def prepare(entry: dict[str, Any]) -> dict[str, Any]:
    """Return {'skip': reason} or the native model_type, cleaned config dict and notes."""
    raw = entry["config"]
    mtype = raw["model_type"]
    dropped: dict[str, Any] = {}
    cfg = _strip(raw, dropped)
    cfg.pop("model_type")
    notes = []
    if dropped:
        notes.append(_quant_summary(dropped))
    mapped_from = None
    native = mtype
    if mtype in SKIP_REASONS:
        return {"skip": SKIP_REASONS[mtype]}
    if mtype in MAPPINGS:
        res = MAPPINGS[mtype](cfg)
        if isinstance(res, str):
            return {"skip": res}
        native, cfg, reason = res
        mapped_from = {"model_type": mtype, "to": native, "reason": reason}
    if native not in transformers.models.auto.configuration_auto.CONFIG_MAPPING_NAMES:
        return {
            "skip": f"model_type {mtype!r} is not native in transformers {transformers.__version__}"
        }
    return {
        "model_type": mtype,
        "native_type": native,
        "cfg": cfg,
        "mapped_from": mapped_from,
        "notes": notes,
        "architectures": raw.get("architectures") or [],
    }


@contextlib.contextmanager
def _quiet():
    """Silence transformers' warnings and stray prints while building configs/models."""
    buf = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(buf):
        warnings.simplefilter("ignore")
        yield


_INT_FOR_FLOAT = re.compile(r"Field '(\w+)' expected float, got int")


def _coerce_float(obj: Any, key: str) -> bool:
    hit = False
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == key and isinstance(v, int) and not isinstance(v, bool):
                obj[k] = float(v)
                hit = True
            else:
                hit = _coerce_float(v, key) or hit
    return hit


def build_config(native: str, cfg: dict[str, Any], notes: list[str] | None = None):
    """AutoConfig.for_model; ints given for float fields (rejected by strict validation) are
    converted to float and, when `notes` is given, noted there."""
    cfg = copy.deepcopy(cfg)
    for _ in range(10):
        try:
            with _quiet():
                config = AutoConfig.for_model(native, **copy.deepcopy(cfg))
            break
        except Exception as exc:
            m = _INT_FOR_FLOAT.search(str(exc))
            if not m or not _coerce_float(cfg, m.group(1)):
                raise
            if notes is not None:
                notes.append(f"config field {m.group(1)} given as int, passed as float")
    config._attn_implementation = "eager"
    for sub in ("text_config", "vision_config"):
        subcfg = getattr(config, sub, None)
        if subcfg is not None and hasattr(subcfg, "_attn_implementation"):
            subcfg._attn_implementation = "eager"
    return config


_AUTO_MAPS = (
    "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES",
    "MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES",
    "MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES",
)


def pick_class(prep: dict[str, Any], config) -> type:
    for arch in prep["architectures"]:
        cls = getattr(transformers, arch, None)
        if cls is None or not isinstance(cls, type) or not hasattr(cls, "config_class"):
            continue
        if cls.config_class is not None and isinstance(config, cls.config_class):
            return cls
    for name in _AUTO_MAPS:
        mapping = getattr(modeling_auto, name)
        cls_name = mapping.get(config.model_type)
        if cls_name:
            return getattr(transformers, cls_name)
    raise LookupError(f"no causal-LM/image-text/seq2seq class for {config.model_type}")


def is_multimodal(config) -> bool:
    return getattr(config, "vision_config", None) is not None and (
        getattr(config, "text_config", None) is not None
    )


# ---------------------------------------------------------------------------------------------
# Parameter counting
# ---------------------------------------------------------------------------------------------

VISION_PREFIXES = ("vision_tower", "vision_model", "visual", "vision_encoder", "image_encoder")
PROJECTOR_PREFIXES = (
    "multi_modal_projector",
    "mm_projector",
    "visual.merger",
    "visual.deepstack_merger_list",
)


def part_of(name: str) -> str:
    parts = name.split(".")
    if parts and parts[0] == "model":
        parts = parts[1:]
    rest = ".".join(parts)
    if any(rest == p or rest.startswith(p + ".") for p in PROJECTOR_PREFIXES):
        return "projector"
    if parts and parts[0] in VISION_PREFIXES:
        return "vision"
    return "text"


def unique_named_parameters(model) -> list[tuple[str, torch.nn.Parameter]]:
    return list(model.named_parameters())  # named_parameters() already drops shared tensors


def persistent_buffers(model) -> list[tuple[str, torch.Tensor]]:
    out = []
    for mod_name, mod in model.named_modules():
        for bname, buf in mod._buffers.items():
            if buf is None or bname in mod._non_persistent_buffers_set:
                continue
            out.append((f"{mod_name}.{bname}" if mod_name else bname, buf))
    return out


def _tie_quirks(tied: bool, emb: int, config, raw: dict[str, Any]) -> list[str]:
    """Flag tying that disagrees with what the config file asked for."""
    if not tied:
        return []
    ver = transformers.__version__
    asked = raw.get("tie_word_embeddings")
    if asked is None:
        asked = (raw.get("text_config") or {}).get("tie_word_embeddings")
    if asked is False:
        return [
            f"config says tie_word_embeddings=false but transformers {ver} "
            f"({type(config).__name__}) ties lm_head to the input embedding; the checkpoint "
            f"stores a separate lm_head ({emb:,} params not counted here)"
        ]
    if asked is None and type(config).__name__ == "MT5Config":
        return [
            f"config sets no tie_word_embeddings; transformers {ver} MT5Config always ties, but "
            "4.x MT5Config defaulted to false, so mT5/mT0 checkpoints store a separate lm_head "
            f"({emb:,} params not counted here)"
        ]
    text = config.get_text_config()
    if asked is None and text is not config and getattr(text, "tie_word_embeddings", None) is False:
        return [
            f"config sets no tie_word_embeddings; transformers {ver} {type(config).__name__} "
            f"defaults it to true (its {type(text).__name__} defaults to false), so lm_head is "
            f"tied; a checkpoint with its own lm_head has {emb:,} params not counted here"
        ]
    return []


def count_params(model, config, raw: dict[str, Any]) -> dict[str, Any]:
    named = unique_named_parameters(model)
    total = sum(p.numel() for _, p in named)
    assert total == sum(p.numel() for p in model.parameters())
    inp = model.get_input_embeddings()
    out = model.get_output_embeddings()
    emb_w = inp.weight
    tied = out is not None and out.weight is emb_w
    lm_head = 0
    lm_head_bias = 0
    if out is not None:
        if not tied:
            lm_head += out.weight.numel()
        if getattr(out, "bias", None) is not None:
            lm_head_bias = out.bias.numel()
            lm_head += lm_head_bias
    rec: dict[str, Any] = {
        "params": total,
        "class": type(model).__name__,
        "tied_embeddings": bool(tied),
        "embedding_params": emb_w.numel(),
        "lm_head_params": lm_head,
        "config_tie_word_embeddings": raw.get(
            "tie_word_embeddings", (raw.get("text_config") or {}).get("tie_word_embeddings")
        ),
        "buffers_persistent": sum(b.numel() for _, b in persistent_buffers(model)),
    }
    if lm_head_bias:
        rec["lm_head_bias_params"] = lm_head_bias
    quirks = _tie_quirks(tied, emb_w.numel(), config, raw)
    mtp = getattr(config.get_text_config(), "num_nextn_predict_layers", None) or 0
    if mtp:
        quirks.append(
            f"config has num_nextn_predict_layers={mtp}: the checkpoint also stores {mtp} "
            "multi-token-prediction layer(s) that transformers does not build (not in params)"
        )
    if (
        type(config).__name__ in ("DeepseekV2Config", "DeepseekV3Config", "DeepseekV32Config")
        and "q_lora_rank" not in raw
        and getattr(config, "q_lora_rank", None)
    ):
        quirks.append(
            f"config has no q_lora_rank key; transformers defaults it to {config.q_lora_rank} "
            "(low-rank q_a/q_b projections). A hub config with q_lora_rank=null (plain q_proj, "
            "e.g. DeepSeek-V2-Lite) would count fewer params"
        )
    if quirks:
        rec["quirks"] = quirks
    if is_multimodal(config):
        parts = {"text": 0, "vision": 0, "projector": 0}
        for name, p in named:
            parts[part_of(name)] += p.numel()
        rec["by_part"] = parts
    return rec


# ---------------------------------------------------------------------------------------------
# Shape dumps
# ---------------------------------------------------------------------------------------------

_LAYER_RE = re.compile(r"^(.*?)\.(\d+)\.(.*)$")


def _ranges(idx: list[int]) -> str:
    out, start, prev = [], None, None
    for i in idx:
        if start is None:
            start = prev = i
        elif i == prev + 1:
            prev = i
        else:
            out.append(f"{start}" if start == prev else f"{start}-{prev}")
            start = prev = i
    if start is not None:
        out.append(f"{start}" if start == prev else f"{start}-{prev}")
    return ",".join(out)


def shape_dump(mid: str, model, config, rec: dict[str, Any], note: str = "") -> str:
    named = unique_named_parameters(model)
    lines = [
        f"# {mid}",
        f"# class {type(model).__name__}; params {rec['params']:,}; tied_embeddings "
        f"{rec['tied_embeddings']}",
        "# Shared (tied) tensors appear once. Repeated layers: layer 0 and every later layer whose",
        "# (name, shape) list differs from those already shown; 'same as' lists the indices.",
    ]
    if note:
        lines.append(f"# {note}")
    text_cfg = config.get_text_config()
    layer_types = getattr(text_cfg, "layer_types", None)
    if layer_types and len(set(layer_types)) > 1:
        where: dict[str, list[int]] = {}
        for i, t in enumerate(layer_types):
            where.setdefault(t, []).append(i)
        kinds = "; ".join(f"{t} at {_ranges(idx)}" for t, idx in where.items())
        lines.append(f"# text layer_types (same tensors, different attention): {kinds}")
    lines.append("")
    groups: dict[str, dict[int, list[tuple[str, tuple[int, ...]]]]] = {}
    order: list[tuple[str, Any]] = []
    for name, p in named:
        m = _LAYER_RE.match(name)
        if m:
            prefix, idx, suffix = m.group(1), int(m.group(2)), m.group(3)
            if prefix not in groups:
                groups[prefix] = {}
                order.append(("group", prefix))
            groups[prefix].setdefault(idx, []).append((suffix, tuple(p.shape)))
        else:
            order.append(("param", (name, tuple(p.shape), p.numel())))
    for kind, item in order:
        if kind == "param":
            name, shape, n = item
            lines.append(f"{name}  {list(shape)}  {n:,}")
            continue
        prefix = item
        layers = groups[prefix]
        sigs: dict[tuple, list[int]] = {}
        for idx in sorted(layers):
            sigs.setdefault(tuple(layers[idx]), []).append(idx)
        lines.append(f"--- {prefix}.<i>  ({len(layers)} entries, {len(sigs)} distinct)")
        for sig, idxs in sigs.items():
            first = idxs[0]
            n = sum(math.prod(s) for _, s in sig)
            lines.append(f"  [{prefix}.{first}]  same as: {_ranges(idxs)}  ({n:,} per entry)")
            for suffix, shape in sig:
                lines.append(f"    {prefix}.{first}.{suffix}  {list(shape)}  {math.prod(shape):,}")
    bufs = persistent_buffers(model)
    if bufs:
        lines.append("")
        lines.append("# persistent buffers (not in params; same-shaped per-layer ones collapsed)")
        seen: dict[tuple[str, str, tuple[int, ...]], list[int]] = {}
        for name, b in bufs:
            m = _LAYER_RE.match(name)
            if m:
                key = (m.group(1), m.group(3), tuple(b.shape))
                if key not in seen:
                    seen[key] = []
                    lines.append(f"{name}  {list(b.shape)}")
                seen[key].append(int(m.group(2)))
            else:
                lines.append(f"{name}  {list(b.shape)}")
        for (prefix, suffix, _), idxs in seen.items():
            if len(idxs) > 1:
                lines.append(f"  ({prefix}.<i>.{suffix} for i in {_ranges(idxs)})")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# KV cache measurement
# ---------------------------------------------------------------------------------------------

LAYER_KEYS = ("num_hidden_layers", "n_layer", "n_layers", "num_layers")
EXPERT_KEYS = ("num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts")
TOPK_KEYS = ("num_experts_per_tok", "experts_per_token", "moe_k", "moe_top_k")
FFN_KEYS = (
    "intermediate_size",
    "intermediate_size_mlp",
    "moe_intermediate_size",
    "shared_expert_intermediate_size",
    "moe_shared_expert_intermediate_size",
    "ffn_hidden_size",
    "n_inner",
    "d_ff",
    "ffn_dim",
)
VISION_LAYER_KEYS = ("num_hidden_layers", "depth", "num_layers")


def _text_dict(cfg: dict[str, Any], config) -> tuple[dict[str, Any], str]:
    """The dict that holds the text-model fields, and its path ('' or 'text_config.')."""
    if is_multimodal(config):
        cfg.setdefault("text_config", {})
        return cfg["text_config"], "text_config."
    return cfg, ""


def _encoder_decoder(config) -> bool:
    return bool(getattr(config, "is_encoder_decoder", False))


def reduced_kv_config(
    prep: dict[str, Any], full_config
) -> tuple[dict[str, Any], dict[str, Any], int]:
    cfg = copy.deepcopy(prep["cfg"])
    overrides: dict[str, Any] = {}
    tcfg, tpath = _text_dict(cfg, full_config)
    text_full = (
        full_config.get_text_config() if hasattr(full_config, "get_text_config") else full_config
    )

    def put(d: dict[str, Any], path: str, key: str, value: Any) -> None:
        d[key] = value
        overrides[path + key] = value

    n_full = text_full.num_hidden_layers
    layer_types = list(getattr(text_full, "layer_types", None) or [])
    if layer_types:
        kinds = set(layer_types)
        n = next(i for i in range(1, len(layer_types) + 1) if set(layer_types[:i]) == kinds)
    else:
        n = 1
    n = max(n, 2)
    fkd = getattr(text_full, "first_k_dense_replace", None)
    if fkd is not None and fkd > 1:
        put(tcfg, tpath, "first_k_dense_replace", 1)
    n = min(n, n_full)

    if _encoder_decoder(full_config):
        put(tcfg, tpath, "num_layers", n)
        put(tcfg, tpath, "num_decoder_layers", n)
    else:
        key = next((k for k in LAYER_KEYS if k in tcfg), "num_hidden_layers")
        put(tcfg, tpath, key, n)
    # Per-layer lists: slice lists that are one-per-layer, filter lists of layer indices.
    for k, v in list(tcfg.items()):
        if not isinstance(v, list) or k in ("architectures", "eos_token_id"):
            continue
        if len(v) == n_full:
            put(tcfg, tpath, k, v[:n])
        elif all(isinstance(i, int) for i in v) and k.endswith("layers"):
            put(tcfg, tpath, k, [i for i in v if i < n])
    for k in ("moe_layer_end_index",):
        if isinstance(tcfg.get(k), int) and tcfg[k] >= n:
            put(tcfg, tpath, k, n - 1)

    # Small vocabulary (embedding/lm_head do not touch the cache).
    put(tcfg, tpath, "vocab_size", KV_VOCAB)
    if tpath and "vocab_size" in cfg:
        put(cfg, "", "vocab_size", KV_VOCAB)
    # An embedding's padding_idx must lie inside the shrunk vocabulary.
    for d, path in [(tcfg, tpath)] + ([(cfg, "")] if tpath else []):
        if isinstance(d.get("pad_token_id"), int) and d["pad_token_id"] >= KV_VOCAB:
            put(d, path, "pad_token_id", 0)
    if "decoder_start_token_id" in tcfg and (tcfg["decoder_start_token_id"] or 0) >= KV_VOCAB:
        put(tcfg, tpath, "decoder_start_token_id", 0)

    # Multimodal: one vision layer (the text-only forward never runs the vision tower).
    if is_multimodal(full_config):
        vcfg = cfg.setdefault("vision_config", {})
        vkey_l = next((k for k in VISION_LAYER_KEYS if k in vcfg), None)
        if vkey_l is None:
            vkey_l = next(k for k in VISION_LAYER_KEYS if hasattr(full_config.vision_config, k))
        put(vcfg, "vision_config.", vkey_l, 1)
        if "deepstack_visual_indexes" in vcfg or hasattr(
            full_config.vision_config, "deepstack_visual_indexes"
        ):
            put(vcfg, "vision_config.", "deepstack_visual_indexes", [0])
        if getattr(full_config, "vision_feature_layer", None) not in (None, -1, [-1]):
            put(cfg, "", "vision_feature_layer", -1)

    # Heavy models: fewer experts, then a narrower FFN.
    def n_params(c: dict[str, Any]) -> int:
        conf = build_config(prep["native_type"], c)
        cls = pick_class(prep, conf)
        with _quiet(), torch.device("meta"):
            m = cls(conf)
        return sum(p.numel() for p in m.parameters())

    containers = [(tcfg, tpath)]
    if isinstance(tcfg.get("ffn_config"), dict):  # dbrx
        containers.append((tcfg["ffn_config"], tpath + "ffn_config."))

    def present(d: dict[str, Any], keys: tuple[str, ...]) -> list[str]:
        found = [k for k in keys if isinstance(d.get(k), int)]
        if not found and d is tcfg:
            found = [k for k in keys if isinstance(getattr(text_full, k, None), int)][:1]
        return found

    def value(d: dict[str, Any], k: str) -> int:
        return d[k] if k in d else getattr(text_full, k)

    if n_params(cfg) > KV_PARAM_LIMIT:
        topk = max([value(d, k) for d, _ in containers for k in present(d, TOPK_KEYS)] + [1])
        n_group = getattr(text_full, "n_group", None) or 1
        target = max(8, topk, 2 * n_group)
        target = int(math.ceil(target / n_group) * n_group)
        for d, path in containers:
            for ek in present(d, EXPERT_KEYS):
                if value(d, ek) > target:
                    put(d, path, ek, target)
    if n_params(cfg) > KV_PARAM_LIMIT:
        for d, path in containers:
            for fk in present(d, FFN_KEYS):
                if value(d, fk) > KV_FFN_WIDTH:
                    put(d, path, fk, KV_FFN_WIDTH)
    return cfg, overrides, n


def _tensors(obj: Any, name: str, out: list[tuple[str, torch.Tensor]]) -> None:
    if isinstance(obj, torch.Tensor):
        out.append((name, obj))
    elif isinstance(obj, list | tuple):
        for x in obj:
            _tensors(x, name, out)
    elif isinstance(obj, dict):
        for x in obj.values():
            _tensors(x, name, out)


def walk_cache(cache: Any) -> list[dict[str, Any]]:
    """Per cache layer: class name and {attribute: [shapes]} of every tensor it holds."""
    layers = []
    if hasattr(cache, "layers"):
        for layer in cache.layers:
            found: list[tuple[str, torch.Tensor]] = []
            for attr, val in vars(layer).items():
                if not attr.startswith("_"):  # skip private scalars like _sliding_window_tensor
                    _tensors(val, attr, found)
            entry: dict[str, Any] = {"class": type(layer).__name__, "tensors": {}}
            for attr, t in found:
                if t.dim() > 0:
                    entry["tensors"].setdefault(attr, []).append(list(t.shape))
            layers.append(entry)
    elif isinstance(cache, list | tuple):  # legacy ((k, v), ...) per layer
        for layer in cache:
            entry = {"class": "tuple", "tensors": {}}
            for attr, t in zip(("keys", "values"), layer, strict=False):
                entry["tensors"].setdefault(attr, []).append(list(t.shape))
            layers.append(entry)
    else:
        raise TypeError(f"unknown cache type {type(cache).__name__}")
    return layers


def _sum(
    layers: list[dict[str, Any]], attrs: tuple[str, ...] | None, exclude: tuple[str, ...] = ()
) -> int:
    total = 0
    for layer in layers:
        for attr, shapes in layer["tensors"].items():
            if (attrs is None or attr in attrs) and attr not in exclude:
                total += sum(math.prod(s) for s in shapes)
    return total


def _run_cache(model, config, tokens: int) -> dict[str, list[dict[str, Any]]]:
    ids = (torch.arange(tokens, dtype=torch.long) % (KV_VOCAB - 10) + 5).unsqueeze(0)
    kwargs: dict[str, Any] = {"input_ids": ids, "use_cache": True}
    via = None
    if _encoder_decoder(config):
        kwargs["decoder_input_ids"] = ids
    with torch.no_grad(), _quiet():
        try:
            out = model(**kwargs)
        except AttributeError as exc:
            # transformers 5.24 Llama4ForConditionalGeneration.forward reads a field its
            # language model output lacks (text-only input); the cache is built by the
            # language model either way, so run that directly.
            inner = getattr(model, "language_model", None)
            if inner is None or "image_outputs" not in str(exc):
                raise
            out = inner(**kwargs)
            via = f"{type(model).__name__}.language_model (wrapper forward raised {exc})"
    cache = getattr(out, "cache", None)
    if cache is None:
        cache = getattr(out, "past_key_values", None)
    if cache is None:
        raise RuntimeError(f"{type(model).__name__}.forward returns no cache (no KV-cache support)")
    res: dict[str, Any] = {}
    if hasattr(cache, "self_attention_cache"):
        res["self"] = walk_cache(cache.self_attention_cache)
        res["cross"] = walk_cache(cache.cross_attention_cache)
    else:
        res["self"] = walk_cache(cache)
    if via:
        res["via"] = via
    return res


def _build_and_run(cls: type, config, dtype: torch.dtype) -> tuple[Any, Any, Any]:
    """Build the reduced model on CPU without init, fill it deterministically, run 16 and 8 tokens."""
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with _quiet(), transformers.initialization.no_init_weights():
            model = cls(config)
    finally:
        torch.set_default_dtype(previous)
    # All parameters become views of ONE deterministic pseudo-random buffer, as large as the
    # largest parameter: the cache only depends on shapes, and this keeps the reduced model's
    # memory (and the time spent touching it) to a single tensor. The torch.empty storage made
    # under no_init_weights is never written, so it costs no real memory before it is dropped.
    params = list(model.parameters())
    biggest = max(p.numel() for p in params)
    gen = torch.Generator().manual_seed(0)
    pool = torch.empty(biggest, dtype=dtype).uniform_(-0.02, 0.02, generator=gen)
    with torch.no_grad():
        for p in params:
            p.data = pool[: p.numel()].view(p.shape)
        for _, b in model.named_buffers():
            if b.is_floating_point() and not torch.isfinite(b).all():
                raise RuntimeError("non-finite buffer after no_init_weights build")
    model.eval()
    big = _run_cache(model, config, KV_TOKENS)
    small = _run_cache(model, config, KV_TOKENS_CHECK)
    return model, big, small


_KV_MEMO: dict[str, dict[str, Any]] = {}
_NOT_SHAPE = re.compile(
    r"(token_id|token_index|_name_or_path|architectures|transformers_version|"
    r"task_specific_params|id2label|label2id|^use_cache$|dropout|initializer)"
)


def _shape_relevant(d: Any) -> Any:
    """A config dict without the fields that cannot change any tensor shape (token ids, names,
    dropout, init scale), used to recognise rows whose reduced runs would be identical."""
    if isinstance(d, dict):
        return {k: _shape_relevant(v) for k, v in d.items() if not _NOT_SHAPE.search(k)}
    return d


def kv_measure(prep: dict[str, Any], full_config) -> dict[str, Any]:
    cfg, overrides, n = reduced_kv_config(prep, full_config)
    config = build_config(prep["native_type"], cfg)
    cls = pick_class(prep, config)
    # Rows whose reduced config is identical (e.g. Llama-3.1-70B and its fine-tunes) give an
    # identical run; reuse it.
    key = json.dumps([cls.__name__, _shape_relevant(config.to_dict())], sort_keys=True, default=str)
    if key not in _KV_MEMO:
        _KV_MEMO[key] = _kv_measure(cls, config, n)
    rec = copy.deepcopy(_KV_MEMO[key])
    rec["config_overrides"] = overrides
    return rec


def _kv_measure(cls: type, config, n: int) -> dict[str, Any]:
    # float32 on purpose: CPU bfloat16 kernels (bmm in particular) are very slow without
    # AVX512-BF16, and the cache's element count does not depend on the dtype.
    model, big, small = _build_and_run(cls, config, torch.float32)
    weights_dtype = "float32"
    n_params = sum(p.numel() for p in model.parameters())
    del model

    kv = ("keys", "values")
    self_kv = _sum(big["self"], kv)
    self_kv_small = _sum(small["self"], kv)
    text_cfg = config.get_text_config() if hasattr(config, "get_text_config") else config
    rec: dict[str, Any] = {
        "layers": n,
        "tokens": KV_TOKENS,
        "kv_elements_per_token": self_kv / KV_TOKENS,
        "kv_bytes_per_token_bf16": 2 * self_kv / KV_TOKENS,
        "linear_in_tokens": self_kv * KV_TOKENS_CHECK == self_kv_small * KV_TOKENS,
        "class": cls.__name__,
        "reduced_model_params": n_params,
        "weights_dtype": weights_dtype,
        "per_layer": [
            {"class": layer["class"], **{k: v for k, v in layer["tensors"].items()}}
            for layer in big["self"]
        ],
    }
    if "via" in big:
        rec["forward_via"] = big["via"]
    lt = getattr(text_cfg, "layer_types", None)
    if lt:
        rec["layer_types"] = list(lt)
    if any("Sliding" in layer["class"] for layer in big["self"]):
        for attr in ("sliding_window", "attention_chunk_size"):
            if getattr(text_cfg, attr, None):
                rec[attr] = getattr(text_cfg, attr)
    if type(text_cfg).__name__ == "FalconConfig" and text_cfg.new_decoder_architecture:
        rec["note"] = (
            f"transformers' Falcon (new_decoder_architecture) expands K/V to all "
            f"{text_cfg.num_attention_heads} heads before caching, although the model has "
            f"num_kv_heads={text_cfg.num_kv_heads}"
        )
    extra_big = _sum(big["self"], None, exclude=kv)
    if extra_big:
        extra_small = _sum(small["self"], None, exclude=kv)
        per_tok = (extra_big - extra_small) / (KV_TOKENS - KV_TOKENS_CHECK)
        rec["extra_state"] = {
            "attrs": sorted({a for layer in big["self"] for a in layer["tensors"] if a not in kv}),
            "elements_per_token": per_tok,
            "fixed_elements": extra_big - per_tok * KV_TOKENS,
        }
    if "cross" in big:
        cross = _sum(big["cross"], kv)
        rec["cross_kv_elements_per_encoder_token"] = cross / KV_TOKENS
        rec["note"] = (
            "encoder-decoder: kv_elements_per_token is the decoder self-attention cache per "
            "decoder token; cross-attention K/V per encoder token is listed separately"
        )
    return rec


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------


def load_entries() -> list[dict[str, Any]]:
    with MODELS.open() as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return sorted(rows, key=lambda r: r["id"])


def process(entry: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    mid = entry["id"]
    prep = prepare(entry)
    if "skip" in prep:
        return {"skip": prep["skip"]}
    result: dict[str, Any] = {}
    try:
        config = build_config(prep["native_type"], prep["cfg"], prep["notes"])
        cls = pick_class(prep, config)
    except Exception as exc:
        return {"skip": f"config/class build failed: {type(exc).__name__}: {exc}"[:300]}
    if not args.no_params or not args.no_shapes:
        try:
            with _quiet(), torch.device("meta"):
                model = cls(config)
        except Exception as exc:
            return {"skip": f"meta instantiation failed: {type(exc).__name__}: {exc}"[:300]}
        rec = count_params(model, config, entry["config"])
        rec["model_type"] = prep["model_type"]
        if prep["mapped_from"]:
            rec["mapped_from"] = prep["mapped_from"]
        if prep["notes"]:
            rec["notes"] = prep["notes"]
        result["params"] = rec
        if not args.no_shapes:
            note = prep["mapped_from"]["reason"] if prep["mapped_from"] else ""
            args.shapes_dir.mkdir(parents=True, exist_ok=True)
            path = args.shapes_dir / (mid.replace("/", "__") + ".txt")
            path.write_text(shape_dump(mid, model, config, rec, note))
        del model
    if not args.no_kv:
        try:
            result["kv"] = kv_measure(prep, config)
        except Exception as exc:
            result["kv_skip"] = f"{type(exc).__name__}: {exc}"[:300]
    gc.collect()
    return result


def _meta(args: argparse.Namespace, what: str) -> dict[str, Any]:
    meta = {
        "what": what,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "command": COMMAND,
        "input": "core/data/models.jsonl",
        "script": "scripts/golden_from_transformers.py",
    }
    if what == "params":
        meta["notes"] = [
            "params = sum(p.numel() for p in model.parameters()) on the meta device: tied "
            "tensors counted once",
            "lm_head_params = output embedding weight (0 if tied to the input embedding) plus "
            "its bias if any (also in lm_head_bias_params)",
            "quantization_config / mlx quantization dropped: counts are of the unquantized model",
            "by_part (multimodal): vision = vision tower; projector = multi_modal_projector "
            "(Qwen3-VL: visual.merger + visual.deepstack_merger_list); text = the rest incl. lm_head",
            "buffers_persistent is informational (not in params)",
        ]
    else:
        meta["notes"] = [
            f"reduced models: few layers (every distinct layer type kept), vocab {KV_VOCAB}, "
            f"float32 pseudo-random weights (views of one shared buffer), batch 1, {KV_TOKENS} "
            "tokens; config_overrides lists every change",
            "kv_elements_per_token counts keys+values tensors of the returned cache for the "
            "reduced layer count; kv_bytes_per_token_bf16 = 2 * that",
            "per_layer lists the shapes [batch, heads, tokens, head_dim] of each cached tensor",
            f"linear_in_tokens: the cache at {KV_TOKENS_CHECK} tokens is exactly half",
            "extra_state: other cached tensors (DSA indexer keys, linear-attention "
            "conv/recurrent state), split into per-token and fixed parts",
            "experts and FFN widths are shrunk only when the reduced model would exceed "
            f"{KV_PARAM_LIMIT:,} params; neither changes the cache",
        ]
    return meta


def _write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", action="append", default=[], help="model id (repeatable)")
    ap.add_argument("--update", action="store_true", help="with --only: merge into golden files")
    ap.add_argument("--no-kv", action="store_true")
    ap.add_argument("--no-params", action="store_true")
    ap.add_argument("--no-shapes", action="store_true")
    ap.add_argument("--shapes-dir", type=Path, default=SHAPES_DIR)
    args = ap.parse_args(argv)

    logging.getLogger("transformers").setLevel(logging.ERROR)
    transformers.logging.set_verbosity_error()
    torch.set_num_threads(2)

    entries = load_entries()
    if args.only:
        wanted = set(args.only)
        entries = [e for e in entries if e["id"] in wanted]
        missing = wanted - {e["id"] for e in entries}
        if missing:
            print(f"unknown ids: {sorted(missing)}", file=sys.stderr)
            return 2

    params: dict[str, Any] = {}
    kv: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    kv_skipped: dict[str, str] = {}
    start = time.time()
    for i, entry in enumerate(entries, 1):
        mid = entry["id"]
        t0 = time.time()
        res = process(entry, args)
        if "skip" in res:
            skipped[mid] = res["skip"]
            kv_skipped[mid] = "not built natively (see param_counts.json skipped)"
            status = "SKIP " + res["skip"][:80]
        else:
            if "params" in res:
                params[mid] = res["params"]
            if "kv" in res:
                kv[mid] = res["kv"]
            if "kv_skip" in res:
                kv_skipped[mid] = res["kv_skip"]
            p = res.get("params", {}).get("params")
            k = res.get("kv", {}).get("kv_elements_per_token")
            status = f"params={p:,}" if p is not None else ""
            status += f" kv/tok={k:g}" if k is not None else f" kv: {res.get('kv_skip', '-')[:80]}"
        print(f"[{i}/{len(entries)}] {mid}: {status} ({time.time() - t0:.1f}s)", file=sys.stderr)
    elapsed = time.time() - start
    print(f"done in {elapsed:.0f}s", file=sys.stderr)

    if args.only and not args.update:
        print(
            json.dumps(
                {"params": params, "kv": kv, "skipped": skipped, "kv_skipped": kv_skipped},
                indent=1,
                sort_keys=True,
            )
        )
        return 0

    def merge(path: Path, models: dict[str, Any], skips: dict[str, str], what: str) -> None:
        if args.only and path.exists():
            data = json.loads(path.read_text())
            for mid in list(models) + list(skips):
                data["models"].pop(mid, None)
                data["skipped"].pop(mid, None)
            data["models"].update(models)
            data["skipped"].update(skips)
            data["_meta"].update({k: v for k, v in _meta(args, what).items() if k != "command"})
        else:
            data = {"_meta": _meta(args, what), "models": models, "skipped": skips}
        _write(path, data)

    if not args.no_params:
        merge(PARAMS_OUT, params, skipped, "params")
    if not args.no_kv:
        merge(KV_OUT, kv, kv_skipped, "kv")

    _compare_published(entries, params)
    return 0


def _compare_published(entries: list[dict[str, Any]], params: dict[str, Any]) -> None:
    """Print (stderr) how the golden counts compare with published_params in models.jsonl."""
    for e in entries:
        pub = e.get("published_params")
        rec = params.get(e["id"])
        if pub is None or rec is None:
            continue
        got = rec["params"]
        text = rec.get("by_part", {}).get("text")
        tag = "OK" if got == pub else ("OK(text part)" if text == pub else "DIFF")
        if tag == "DIFF":
            print(
                f"published {e['id']}: golden {got:,} vs published {pub:,} (delta {got - pub:+,})",
                file=sys.stderr,
            )


if __name__ == "__main__":
    sys.exit(main())
