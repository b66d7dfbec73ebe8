"""Build the bundled offline model snapshot, core/data/models.jsonl.

Input: the curated config collection (default ../shared/data/model_configs.jsonl), where each row
holds a real Hugging Face config.json with its source. This script keeps the source and notes of
every row, fills a missing `model_type` from `architectures` (some rows were scraped with size
fields only), and drops rows that are not Hugging Face configs at all.

    python scripts/build_snapshot.py [path/to/model_configs.jsonl]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INPUT = ROOT.parent / "shared" / "data" / "model_configs.jsonl"
OUTPUT = ROOT / "core" / "data" / "models.jsonl"

# Rows that are not usable as a Hugging Face config.json, with the reason.
EXCLUDED = {
    "tiiuae/falcon-180B": "TensorRT-LLM checkpoint config, not an HF config.json",
    "google/gemma-2-27b": "MaxText kwargs only (no vocab); google/gemma-2-27b-it has the full config",
    "liuhaotian/llava-v1.5-7b": "size fields only, vision tower missing; llava-hf/llava-1.5-7b-hf has it",
    "liuhaotian/llava-v1.5-13b": "size fields only, vision tower missing",
}

# Bundled models whose parameter count nothing checks: transformers cannot build them as their
# checkpoints are (remote code, or it departs from the config), and no published exact count is
# at hand. Their answers say the count is from the architecture, not exact
# (tests/test_golden.py keeps this list and the checks in step).
UNCHECKED_PARAMS = {
    "bigscience/mt0-xxl": "transformers ties the LM head the checkpoint keeps separate",
    "deepseek-ai/DeepSeek-Coder-V2-Lite-Instruct": "transformers adds a q_lora projection the "
    "checkpoint does not have",
    "deepseek-ai/DeepSeek-V2-Lite-Chat": "transformers adds a q_lora projection the checkpoint "
    "does not have",
    "deepseek-ai/deepseek-moe-16b-chat": "remote code in transformers",
    "nvidia/Llama-3_3-Nemotron-Super-49B-v1": "remote code in transformers",
    "OrionStarAI/Orion-14B-Chat": "remote code in transformers",
}

ARCH_TO_MODEL_TYPE = {
    "LlamaForCausalLM": "llama",
    "GPTNeoXForCausalLM": "gpt_neox",
    "GPT2LMHeadModel": "gpt2",
    "MT5ForConditionalGeneration": "mt5",
    "BloomForCausalLM": "bloom",
}


def normalize(row: dict) -> dict | None:
    if row["id"] in EXCLUDED:
        return None
    config = dict(row["config"])
    if not config.get("model_type"):
        archs = config.get("architectures") or []
        model_type = next((ARCH_TO_MODEL_TYPE[a] for a in archs if a in ARCH_TO_MODEL_TYPE), None)
        if model_type is None:
            raise SystemExit(f"{row['id']}: cannot infer model_type from {archs}")
        config["model_type"] = model_type
    out = {"id": row["id"], "config": config, "source": row["source"]}
    if row.get("params"):
        out["published_params"] = row["params"]
        out["published_params_source"] = row.get("params_source")
    if row.get("notes"):
        out["notes"] = row["notes"]
    if row["id"] in UNCHECKED_PARAMS:
        out["params_unchecked"] = UNCHECKED_PARAMS[row["id"]]
    return out


def main() -> None:
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_INPUT
    rows = [json.loads(line) for line in src.read_text().splitlines() if line.strip()]
    kept = [r for r in (normalize(row) for row in rows) if r is not None]
    seen: set[str] = set()
    unique = []
    for r in kept:
        if r["id"].lower() in seen:
            continue
        seen.add(r["id"].lower())
        unique.append(r)
    unique.sort(key=lambda r: r["id"].lower())
    OUTPUT.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in unique))
    print(f"wrote {len(unique)} models to {OUTPUT.relative_to(ROOT)} ({len(rows) - len(unique)} dropped)")


if __name__ == "__main__":
    main()
