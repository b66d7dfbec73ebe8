"""KV-cache sizes: what each engine keeps per token, per layer, per sequence."""

from __future__ import annotations

from core.spec import KvLayer, ModelSpec

# Bytes per cached element. q8/q4 are llama.cpp's q8_0 and q4_0 blocks (34 and 18 bytes per
# 32 values, ggml-common.h); fp8 is vLLM's fp8_e4m3 cache.
KV_ELEMENT_BYTES = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "fp8": 1.0, "q8": 34 / 32, "q4": 18 / 32}


def layer_tokens(layer: KvLayer, ctx: int, honor_window: bool) -> int:
    if layer.kind == "sliding" and honor_window and layer.window:
        return min(ctx, layer.window)
    return ctx


def token_width(layer: KvLayer, *, latent: bool, transformers: bool = False) -> int:
    """Elements one cached token costs in ``layer`` (0 for a recurrent state layer)."""
    if layer.kind == "state":
        return 0
    if layer.kind == "latent" and latent:
        return layer.latent_width + layer.extra_width
    kv = (layer.k_width + layer.v_width) * (layer.hf_expand if transformers else 1)
    return kv + layer.extra_width + layer.cross_width


def kv_elements(spec: ModelSpec, ctx: int, *, latent: bool, honor_window: bool,
                layers: range | None = None, transformers: bool = False) -> int:
    """Cached elements for one sequence of ``ctx`` tokens.

    ``latent``: the engine caches MLA's compressed vector rather than full K and V (every engine
    fits models does today; transformers switched in v5). ``honor_window``: sliding-window layers keep only the window.
    """
    total = 0
    for i, layer in enumerate(spec.kv_layers):
        if layers is not None and i not in layers:
            continue
        if layer.kind == "state":
            total += layer.state_elements
        else:
            total += (token_width(layer, latent=latent, transformers=transformers)
                      * layer_tokens(layer, ctx, honor_window))
    return total


def kv_bytes(spec: ModelSpec, ctx: int, batch: int, kv_type: str, *, latent: bool,
             honor_window: bool, layers: range | None = None, transformers: bool = False) -> int:
    elements = kv_elements(spec, ctx, latent=latent, honor_window=honor_window, layers=layers,
                           transformers=transformers)
    return int(elements * batch * KV_ELEMENT_BYTES[kv_type])


def kv_bytes_per_token(spec: ModelSpec, kv_type: str, *, latent: bool) -> float:
    """Bytes each cached token costs across layers (state layers do not grow with tokens).

    Sliding-window layers count too, for a token that still sits inside their window."""
    return sum(token_width(layer, latent=latent) for layer in spec.kv_layers) \
        * KV_ELEMENT_BYTES[kv_type]
