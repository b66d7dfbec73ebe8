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


@pytest.mark.parametrize("model_id", sorted(PARAMS["models"]))
def test_parameter_count_matches_transformers_exactly(model_id: str) -> None:
    golden = PARAMS["models"][model_id]
    spec = build_spec(config_of(model_id))
    assert spec.params == golden["params"]
    assert not spec.approximate


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
