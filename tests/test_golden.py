"""Every bundled config against what transformers itself builds.

The golden files are made by scripts/golden_from_transformers.py (torch + transformers, dev
only) and never edited by hand. Parameter counts must match exactly; KV-cache elements per token
must match what transformers' cache really holds after a forward pass.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from core.architectures import build_spec
from core.snapshot import entries

GOLDEN = Path(__file__).parent / "golden"
PARAMS = json.loads((GOLDEN / "param_counts.json").read_text()) if (
    GOLDEN / "param_counts.json").exists() else {"models": {}, "skipped": {}}
KV = json.loads((GOLDEN / "kv_cache.json").read_text())


def config_of(model_id: str) -> dict[str, Any]:
    return copy.deepcopy(entries()[model_id.lower()].config)


def with_overrides(config: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Apply the golden script's overrides; dotted keys reach into nested configs."""
    for key, value in overrides.items():
        target = config
        *path, last = key.split(".")
        for part in path:
            target = target.setdefault(part, {})
        target[last] = value
    return config


def test_every_bundled_model_is_golden_or_skipped_with_a_reason() -> None:
    known = set(PARAMS["models"]) | set(PARAMS["skipped"])
    missing = [e.id for e in entries().values() if e.id not in known]
    assert not missing, f"no golden count for {missing}; rerun the golden script"


# transformers 5.24 builds these differently from what their config.json says (and from the
# checkpoints on the Hub), so its count cannot be the reference; fits follows the config.
TRANSFORMERS_DEPARTS = {
    "deepseek-ai/DeepSeek-Coder-V2-Lite-Instruct": "transformers adds q_a_proj/q_b_proj (rank "
    "1536) although the config sets q_lora_rank null; the checkpoint has a plain q_proj",
    "deepseek-ai/DeepSeek-V2-Lite-Chat": "same q_lora_rank null as DeepSeek-Coder-V2-Lite",
    "bigscience/mt0-xxl": "the trimmed config has no tie_word_embeddings; MT5Config ties, the "
    "mT5/mT0 checkpoints carry a separate lm_head",
    "mistralai/Magistral-Small-2509": "the config has no top-level tie_word_embeddings, so "
    "transformers ties; the checkpoint has its own lm_head (the Hub's safetensors total, "
    "24,011,361,280, is checked below)",
}


def expected_params(model_id: str) -> int:
    """What the checkpoint holds: transformers' parameters plus its persistent buffers
    (DeepSeek-V3's router bias is a buffer there but a tensor in the checkpoint), plus the LM
    head when the config unties it and transformers ties it anyway (T5 and mT5 in
    transformers 5)."""
    golden = PARAMS["models"][model_id]
    count = golden["params"] + golden.get("buffers_persistent", 0)
    if golden.get("config_tie_word_embeddings") is False and golden["tied_embeddings"]:
        count += golden["embedding_params"]
    return int(count)


@pytest.mark.parametrize("model_id", [
    pytest.param(m, marks=pytest.mark.xfail(strict=True, reason=TRANSFORMERS_DEPARTS[m]))
    if m in TRANSFORMERS_DEPARTS else m for m in sorted(PARAMS["models"])])
def test_parameter_count_matches_the_checkpoint_exactly(model_id: str) -> None:
    spec = build_spec(config_of(model_id))
    assert spec.params == expected_params(model_id)
    assert not spec.approximate


@pytest.mark.parametrize("model_id", sorted(
    m for m in (*PARAMS["skipped"], *TRANSFORMERS_DEPARTS) if entries()[m.lower()].published_params))
def test_where_transformers_cannot_tell_the_hub_count_does(model_id: str) -> None:
    spec = build_spec(config_of(model_id))
    assert spec.params == entries()[model_id.lower()].published_params


def checked_by_a_reference(model_id: str) -> bool:
    """Whether a test above checks the model's count: transformers builds it as its checkpoint
    is, or a published exact count exists."""
    departs_or_skipped = model_id in TRANSFORMERS_DEPARTS or model_id in PARAMS["skipped"]
    return (model_id in PARAMS["models"] and not departs_or_skipped) or bool(
        entries()[model_id.lower()].published_params)


def test_every_exact_count_is_checked_and_the_rest_say_they_are_not() -> None:
    from core.resolve import resolve_offline

    for entry in entries().values():
        model = resolve_offline(entry.id)
        assert model.exact_params == checked_by_a_reference(entry.id), entry.id
        if entry.params_unchecked is not None:  # known, or not: the answer says it is not exact
            assert any("not checked against the checkpoint" in n for n in model.notes)


@pytest.mark.parametrize("model_id", sorted(KV["models"]))
def test_kv_cache_elements_per_token_match_transformers(model_id: str) -> None:
    golden = KV["models"][model_id]
    spec = build_spec(with_overrides(config_of(model_id), golden["config_overrides"]))
    per_token = sum((layer.k_width + layer.v_width) * layer.hf_expand for layer in spec.kv_layers
                    if layer.kind != "state")
    assert per_token == golden["kv_elements_per_token"]
    extra = golden.get("extra_state", {})
    assert sum(layer.extra_width for layer in spec.kv_layers) == extra.get("elements_per_token", 0)
    fixed = sum(layer.state_elements for layer in spec.kv_layers if layer.kind == "state")
    assert fixed == extra.get("fixed_elements", 0)
