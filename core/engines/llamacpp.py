"""llama.cpp and Ollama: GGUF weights, a KV cache allocated for all of n_ctx up front, a compute
buffer that grows with n_ctx and n_ubatch, and layers that can stay in system RAM.

Layout (llama.cpp src/llama-model.cpp): the token embedding always lives in host memory; with
-ngl N the last N repeating layers go to the GPU, and the output layer too once every layer has.
Each offloaded layer's KV cache sits with it. Sliding-window layers (Gemma 2/3, gpt-oss) keep
window + n_ubatch tokens (the iSWA cache, default since llama.cpp b5500); MLA models cache the
compressed latent.

Placement: every byte is on one side. VRAM holds the offloaded layers' weights and KV, the GPU
compute buffer and the CUDA context; system RAM holds the token embedding, the layers left on
the CPU with their KV, the output layer until every layer is offloaded, and a CPU compute buffer
whenever the CPU computes a layer or the logits. With gpu=none everything is in RAM. The bytes
each side reads per decoded token (active experts only, KV at the decode context) feed the speed
model (core.speed.llamacpp_speed).
"""

from __future__ import annotations

from core import gguf
from core.engines.base import GGML_CUDA_OVERHEAD, EngineEstimate, Scenario
from core.engines.details import LlamaCppDetails, Placement, RamBytes, ReadPerToken, VramBytes
from core.formats import WeightFormat, gguf_types, is_gguf, layer_weight_bytes, named_tensor_bytes
from core.kv import KV_ELEMENT_BYTES
from core.memo import per_spec
from core.spec import ModelSpec
from core.vocabulary import NO_GPU_WORDS

N_UBATCH = 512
# Architectures llama.cpp builds with an iSWA cache; for the others (Mistral v0.1 on the llama
# architecture) it ignores the window and caches every token.
ISWA_ARCHS = frozenset({"gemma2", "gemma3", "gemma3_text", "gpt_oss", "cohere2", "llama4",
                        "llama4_text"})


# The cache types as llama.cpp names them (--cache-type-k).
GGML_KV_TYPES = {"fp16": "f16", "q8": "q8_0", "q4": "q4_0"}


def _kv_type(kv: str) -> str:
    return {"bf16": "fp16", "fp8": "q8"}.get(kv, kv)


@per_spec(bound=4096)  # bounded: ctx varies freely while solving
def _kv_elements_by_layer(spec: ModelSpec, n_ctx: int) -> list[int]:
    """Cached elements per layer for n_ctx tokens, as llama.cpp lays the cache out."""
    iswa = spec.model_type in ISWA_ARCHS
    cached: list[int] = []
    for layer in spec.kv_layers:
        if layer.kind == "sliding" and layer.window and iswa:
            cached.append((layer.k_width + layer.v_width) * min(n_ctx, layer.window + N_UBATCH))
        elif layer.kind == "state":
            cached.append(layer.state_elements)
        elif layer.kind == "latent":
            cached.append(layer.latent_width * n_ctx)
        else:
            cached.append((layer.k_width + layer.v_width) * n_ctx)
    return cached


def compute_buffer_bytes(spec: ModelSpec, n_ctx: int, flash_attn: bool) -> int:
    """The graph's scratch for one ubatch: the largest of the logits and one layer's work.

    Logits are fp32 n_vocab x n_ubatch. Without flash attention the f32 KQ scores of all heads
    (n_ctx x n_ubatch each) are materialized; with it only a f16 mask of that size. The MLP holds
    gate and up (f32) for the ubatch.
    """
    logits = spec.vocab * N_UBATCH * 4
    scores = n_ctx * N_UBATCH * (2 if flash_attn else spec.n_heads * 4)
    mlp = N_UBATCH * (2 * spec.intermediate + 4 * spec.hidden) * 4
    return max(logits, scores + mlp)


@per_spec()
def _routed_by_layer(spec: ModelSpec, fmt: WeightFormat) -> dict[int, int]:
    """Bytes of the routed-expert tensors of each layer, of which a token reads top_k/n_experts."""
    out: dict[int, int] = {}
    if spec.moe is not None and is_gguf(fmt.name):
        types = gguf_types(spec, fmt.name)
        for t, ty in zip(spec.tensors, types, strict=True):
            if ty is not None and t.layer is not None and t.name.endswith("_exps"):
                out[t.layer] = out.get(t.layer, 0) + gguf.tensor_bytes(t, ty)
    return out


def decode_context(sc: Scenario) -> int:
    """Tokens in each sequence's cache while decoding: the prompt plus half the generation."""
    req = sc.request
    return max(1, min(req.ctx, (req.prompt or req.ctx) + req.gen // 2))


def _offload_plan(per_layer: list[int], rest: int, room: int) -> int:
    """-ngl as llama.cpp's fit would choose it: the most trailing layers that fit in ``room``
    (all of them, and the output layer, when everything does)."""
    if sum(per_layer) + rest <= room:
        return len(per_layer)
    ngl, on_gpu = 0, 0
    for size in reversed(per_layer):  # the output layer stays on the CPU until all fit
        if on_gpu + size > room:
            break
        on_gpu += size
        ngl += 1
    return ngl


def estimate(sc: Scenario) -> EngineEstimate:
    """Memory with every layer on the GPU(s), plus the partial-offload plan when that is too much;
    with ngl= the GPU side of that split; with gpu=none everything in system RAM."""
    req, spec = sc.request, sc.spec
    # -fa auto (llama.cpp's default; Ollama's since v0.12.4 when every device supports it,
    # engines.md 4.1, 5.6) turns flash attention on on the GPUs fits knows.
    flash = req.fa if req.fa is not None else True
    cpu_only = req.gpu.strip().lower() in NO_GPU_WORDS
    kv_type = _kv_type(req.kv)
    n_ctx = req.ctx * req.batch  # parallel sequences share n_ctx in llama.cpp
    layers = layer_weight_bytes(spec, sc.fmt)
    n_layers, n = spec.n_layers, sc.gpu_count
    embd = named_tensor_bytes(spec, sc.fmt, "token_embd")  # memoized per format
    head_and_norm = layers.get(None, 0) - embd
    compute = compute_buffer_bytes(spec, n_ctx, flash)
    overhead = 0 if cpu_only else GGML_CUDA_OVERHEAD

    # Per layer, weights plus cache: -ngl k puts the last k of them on the GPUs.
    kv_per_layer = _kv_elements_by_layer(spec, n_ctx)
    kv_scale = KV_ELEMENT_BYTES[kv_type]
    layer_w = _layer_list(spec, sc.fmt)
    layer_kv = [int(e * kv_scale) for e in kv_per_layer[:n_layers]]
    layer_kv += [0] * (n_layers - len(layer_kv))
    per_layer = [w + k for w, k in zip(layer_w, layer_kv, strict=True)]
    weights = sum(layer_w) + head_and_norm
    kv = sum(layer_kv)
    room = (sc.gpu_usable_bytes - compute - overhead) * n
    if cpu_only:
        ngl = 0
    elif req.ngl is not None:
        ngl = min(req.ngl, n_layers)
    else:
        ngl = _offload_plan(per_layer, head_and_norm, room)
    output_on_gpu = ngl == n_layers and not cpu_only
    first_gpu = n_layers - ngl
    gpu_w = sum(layer_w[first_gpu:]) + (head_and_norm if output_on_gpu else 0)
    gpu_kv = sum(layer_kv[first_gpu:])
    gpu_compute = 0 if cpu_only else compute
    cpu_w = embd + sum(layer_w[:first_gpu]) + (0 if output_on_gpu else head_and_norm)
    cpu_kv = sum(layer_kv[:first_gpu])
    cpu_compute = 0 if output_on_gpu else compute  # logits or a layer computed on the CPU
    ram = cpu_w + cpu_kv + cpu_compute

    gpu_read, cpu_read, ctx_read = _read_per_token(sc, layer_w, first_gpu, output_on_gpu, embd,
                                                   kv_scale)
    placement = Placement(
        layers_on_gpu=ngl, output_on_gpu=output_on_gpu, cpu_only=cpu_only,
        vram_bytes=VramBytes(weights=gpu_w, kv_cache=gpu_kv, compute_buffer=gpu_compute,
                             overhead=overhead * n,
                             total=gpu_w + gpu_kv + (gpu_compute + overhead) * n),
        ram_bytes=RamBytes(weights=cpu_w - embd, token_embd=embd, kv_cache=cpu_kv,
                           compute_buffer=cpu_compute, total=ram),
        read_per_token_bytes=ReadPerToken(gpu=gpu_read, ram=cpu_read),
        decode_context_tokens=ctx_read)
    partial = None
    if 0 < ngl < n_layers or (req.ngl == 0 and not cpu_only):
        partial = f"-ngl {ngl}: {ngl} of {n_layers} layers on the GPU, the rest in system RAM"
    details = LlamaCppDetails(
        n_layers=n_layers, n_gpu_layers=ngl, n_ctx=n_ctx, n_ubatch=N_UBATCH, flash_attn=flash,
        kv_type=GGML_KV_TYPES[kv_type], system_ram_bytes=ram, token_embd_in_ram_bytes=embd,
        placement=placement, partial_offload=partial)
    # The breakdown: everything in RAM (gpu=none), the GPU side of an asked -ngl split, or every
    # layer on the GPUs (the plan above says how it would split when that is too much).
    if cpu_only:
        est = EngineEstimate(cpu_w, cpu_kv, cpu_compute, 0, details=details)
    elif req.ngl is not None:
        est = EngineEstimate(gpu_w // n, gpu_kv // n, gpu_compute, overhead, details=details)
    else:
        est = EngineEstimate(weights // n, kv // n, compute, overhead, details=details)
    name = "Ollama" if req.engine == "ollama" else "llama.cpp"
    where = "everything in system RAM" if cpu_only else "token embedding kept in system RAM"
    est.assumptions.append(
        f"{name}: KV cache for all of n_ctx={n_ctx:,} allocated up front "
        f"({details.kv_type}), n_ubatch={N_UBATCH}, flash attention "
        f"{'on' if flash else 'off'}{' (-fa auto)' if req.fa is None else ''}; {where}")
    if req.batch > 1:
        est.assumptions.append(f"{req.batch} parallel sequences share n_ctx = ctx x batch")
    if req.ngl is not None and req.ngl > n_layers and not cpu_only:
        est.assumptions.append(f"ngl={req.ngl} is more than the {n_layers} layers: all of them "
                               "and the output layer go to the GPU")
    return est


@per_spec()
def _layer_list(spec: ModelSpec, fmt: WeightFormat) -> list[int]:
    """Weight bytes of layers 0..n-1 as a list."""
    layers = layer_weight_bytes(spec, fmt)
    return [layers.get(i, 0) for i in range(spec.n_layers)]


@per_spec()
def _active_layer_bytes(spec: ModelSpec, fmt: WeightFormat) -> list[float]:
    """Per layer, the weight bytes one token reads: routed experts at top_k/n_experts."""
    routed = _routed_by_layer(spec, fmt)
    share = spec.moe.top_k / spec.moe.n_experts if spec.moe else 1.0
    return [w - routed.get(i, 0) * (1 - share) for i, w in enumerate(_layer_list(spec, fmt))]


def _read_per_token(sc: Scenario, layer_w: list[int], first_gpu: int, output_on_gpu: bool,
                    embd: int, kv_scale: float) -> tuple[int, int, int]:
    """(bytes read from VRAM, bytes read from RAM, context tokens) per decoded token: the active
    share of each layer's weights (routed experts at top_k/n_experts), each layer's KV for the
    decode context, and the output layer (the tied embedding when the head is tied)."""
    spec = sc.spec
    ctx = decode_context(sc)
    active = _active_layer_bytes(spec, sc.fmt)
    kv_elems = _kv_elements_by_layer(spec, ctx)
    scale = kv_scale * sc.request.batch
    per = [int(a + e * scale) for a, e in zip(active, kv_elems, strict=False)]
    per += [int(a) for a in active[len(per):]]
    # The head a token multiplies by: output.weight, or the tied token embedding (llama.cpp
    # duplicates it onto the output layer's device). Vision towers of the checkpoint are not in
    # a text GGUF and are never read.
    head = named_tensor_bytes(spec, sc.fmt, "output")
    output = head if head else embd
    gpu = sum(per[first_gpu:]) + (output if output_on_gpu else 0)
    cpu = sum(per[:first_gpu]) + (0 if output_on_gpu else output)
    return gpu, cpu, ctx
