"""What the engines accept for the KV cache: llama.cpp refuses a quantized V cache without flash
attention ("quantized V cache requires flash_attn to be enabled", engines.md 4.8); under -fa
auto it turns flash attention on for it."""

from __future__ import annotations

from core.rules.base import Case, Finding, Fix

SOURCE = "llama.cpp src/llama-context.cpp: 'quantized V cache requires flash_attn to be enabled'"


def check(case: Case) -> list[Finding]:
    req = case.request
    if case.engine != "llama.cpp" or req.fa is not False or req.kv not in ("q8", "q4", "fp8"):
        return []
    return [Finding("cache", "refuse",
                    f"llama.cpp refuses a quantized V cache (kv={req.kv}) with flash attention "
                    "off.", SOURCE,
                    (Fix("fa=on", "flash attention on, as -fa auto would have it", {"fa": True}),
                     Fix("kv=fp16", "an f16 cache, which works without flash attention",
                         {"kv": "fp16"})))]
