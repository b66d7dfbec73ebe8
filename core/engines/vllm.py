"""vLLM (and SGLang, TGI): pre-allocate a fixed share of the GPU and fill what the weights and
the profiling run leave with KV-cache blocks.

vLLM: budget = gpu_memory_utilization x total GPU memory (reference m002: 0.9 x 79.22 GiB =
71.29 GiB "instance can use"); the profiling run pushes max_num_batched_tokens through the model
and its sampler to find the activation peak; non-torch memory (CUDA context, NCCL) is subtracted too; the rest
holds KV blocks of 16 tokens.
"""

from __future__ import annotations

from core.calibration import ProfileConstants
from core.engines.base import GIB, EngineEstimate, Scenario, release_numbers
from core.engines.details import VllmDetails
from core.engines.vllm_kv import HYBRID_RELEASE, block_layout
from core.formats import (
    BYTES_16,
    WeightFormat,
    layer_weight_bytes,
    named_tensor_bytes,
    tensor_bytes,
    weight_bytes,
)
from core.kv import KV_ELEMENT_BYTES
from core.memo import per_spec
from core.spec import ModelSpec

# `vllm serve`'s scheduler defaults (EngineArgs.get_batch_defaults): cards with at least 70 GiB
# that are not A100s get 8,192 batched tokens and 1,024 sequences, the others 2,048 and 256.
BIG_GPU_BYTES = 70 * GIB


LAST_SORTING_RELEASE = (0, 11)  # the last release whose profiling run sorts the logits
V1_DEFAULT_RELEASE = (0, 8)  # before 0.8 the V0 engine ran by default
# SGLang's default static memory fraction is lower than vLLM's 0.9; TGI fills what is free
# (its CUDA_MEMORY_FRACTION defaults to 1.0).
ENGINE_UTIL = {"vllm": None, "sglang": 0.88, "tgi": 1.0}


# vLLM's MXFP4 MoE kernels (gpt-oss) round each expert's intermediate size up to a multiple
# of 256 before loading: gpt-oss's 2,880 becomes 3,072, so the expert weights grow 6.7% and the
# loaded model is ~5% larger than the checkpoint (m106: 13.47 GiB, m107: 64.38 GiB).
MXFP4_EXPERT_ALIGN = 256
EXPERT_TENSORS = frozenset({"ffn_up_exps", "ffn_gate_exps", "ffn_down_exps"})


# Position schemes without rotary embeddings (learned positions, ALiBi): no cos/sin table.
NO_ROPE_TYPES = frozenset({"gpt2", "gpt_bigcode", "opt", "bloom", "mpt"})


def rope_table_bytes(sc: Scenario) -> int:
    """The cos/sin table vLLM precomputes for every position the config allows.

    max_position_embeddings x the rotary dimension in the model's dtype, on every GPU and
    counted in "Model loading took": 32 MiB at 128k positions, but 2.5 GiB for Llama 4 Scout's
    10M (f031, whose weights are 2.7 GiB above the checkpoint's share). The head dimension
    stands in for the rotary one (partial-rotary models have a smaller table).
    """
    spec = sc.spec
    if spec.model_type in NO_ROPE_TYPES or not spec.max_position:
        return 0
    return spec.max_position * spec.head_dim * (4 if sc.fmt.name == "fp32" else 2)


def mxfp4_padding_bytes(sc: Scenario) -> int:
    """What vLLM's padding of MXFP4 experts adds to the checkpoint's weights, on one GPU."""
    if sc.fmt.name != "mxfp4":
        return 0
    width = sc.spec.expert_width // sc.tp
    if not width:
        return 0
    padded = -(-width // MXFP4_EXPERT_ALIGN) * MXFP4_EXPERT_ALIGN
    return _expert_bytes(sc.spec, sc.fmt) // sc.tp * (padded - width) // width


@per_spec()
def _expert_bytes(spec: ModelSpec, fmt: WeightFormat) -> int:
    """Bytes of the routed-expert tensors in ``fmt``."""
    return sum(tensor_bytes(t, fmt, BYTES_16) for t in spec.tensors if t.name in EXPERT_TENSORS)


def release(sc: Scenario) -> tuple[int, ...] | None:
    """The vLLM release asked for with version=, as numbers; None: the current one."""
    return release_numbers(sc.request.version)


def sorting_sampler(sc: Scenario) -> bool:
    """Whether the asked release profiles the sampler the 0.11 way (version=0.11 or older)."""
    asked = release(sc)
    return asked is not None and asked[:2] <= LAST_SORTING_RELEASE


def hybrid_allocator(sc: Scenario) -> bool:
    """Whether the asked release sizes sliding-window layers by their window (0.10 and later)."""
    asked = release(sc)
    return asked is None or asked[:2] >= HYBRID_RELEASE


def batch_defaults(sc: Scenario) -> tuple[int, int]:
    """(max_num_batched_tokens, max_num_seqs) that `vllm serve` picks on this card."""
    asked = release(sc)
    if asked is not None and asked[:2] < V1_DEFAULT_RELEASE:
        # The V0 engine: 256 sequences, and a prompt of max_model_len tokens in one batch.
        return max(sc.request.ctx, 2048), 256
    big = sc.gpu_memory_bytes >= BIG_GPU_BYTES and "a100" not in sc.gpu_name.lower()
    return (8192, 1024) if big else (2048, 256)


def dense_width(sc: Scenario) -> int:
    """The dense MLP intermediate on one GPU (tensor parallelism splits it)."""
    return sc.spec.intermediate // sc.tp


def moe_workspace_bytes(sc: Scenario) -> int:
    """The fused-MoE kernel's workspace for max_num_batched_tokens routed to top-k experts: the
    gate/up output (2 x expert width, sharing its buffer with the down output of hidden width)
    and the activated half, in bf16. MXFP4 (gpt-oss) runs other kernels: none."""
    spec = sc.spec
    if spec.moe is None or sc.fmt.name == "mxfp4":
        return 0
    width = (spec.expert_width or spec.intermediate) // sc.tp
    tokens, _ = batch_defaults(sc)
    return tokens * spec.moe.top_k * (max(2 * width, spec.hidden) + width) * 2


def profile_activation_bytes(sc: Scenario, constants: ProfileConstants | None = None) -> int:
    """The profiling run's torch peak on one GPU (what vLLM logs as the activation peak).

    The sampler part does not shrink with tensor parallelism: Qwen2.5-7B peaks at 2.21 GiB on
    1, 2 and 4 GPUs (m117, m118, m119), as every rank holds the whole vocabulary's logits.
    """
    if constants is None:
        fitted = sc.calibration
        constants = fitted.profile_up_to_0_11 if sorting_sampler(sc) else fitted.profile
    tokens, seqs = batch_defaults(sc)
    sampler = seqs * sc.spec.vocab * constants.sampler_bytes
    forward = tokens * dense_width(sc) * constants.ffn_bytes
    return int(constants.base_bytes + max(sampler, forward) + moe_workspace_bytes(sc))


def stage_weight_bytes(sc: Scenario) -> int:
    """The weights of the largest pipeline stage (all of them without pp): its share of the
    layers, and the token embedding (first stage) or the head (last stage), whichever is
    larger; a vision tower sits with the first stage."""
    if sc.pp <= 1:
        return weight_bytes(sc.spec, sc.fmt)
    per_layer = layer_weight_bytes(sc.spec, sc.fmt)
    layers = sorted((v for k, v in per_layer.items() if k is not None), reverse=True)
    stage = sum(layers[: -(-len(layers) // sc.pp)])
    embd = named_tensor_bytes(sc.spec, sc.fmt, "token_embd")
    head = named_tensor_bytes(sc.spec, sc.fmt, "output")
    rest = per_layer.get(None, 0) - embd - head
    return stage + max(embd + rest, head)


def estimate(sc: Scenario) -> EngineEstimate:
    req, spec = sc.request, sc.spec
    engine = req.engine or "vllm"
    util = req.util if req.util != 0.9 else (ENGINE_UTIL.get(engine) or req.util)
    # vLLM multiplies by the total CUDA reports (torch.cuda.mem_get_info), not the marketed size.
    budget = int(util * sc.gpu_usable_bytes)
    weights = stage_weight_bytes(sc) // sc.tp + mxfp4_padding_bytes(sc) + rope_table_bytes(sc)
    act = profile_activation_bytes(sc)
    tokens, seqs = batch_defaults(sc)
    old = sorting_sampler(sc)
    fitted = sc.calibration
    non_torch = fitted.non_torch_tp if sc.tp > 1 else \
        fitted.non_torch_single_up_to_0_11 if old else fitted.non_torch_single
    # kv_cache_dtype=auto is the model's dtype: fp32 weights keep an fp32 cache (f021).
    kv_type = "fp8" if req.kv in ("fp8", "q8", "q4") else \
        "fp32" if sc.fmt.name == "fp32" else "fp16"
    layout = block_layout(spec, kv_type, sc.tp, engine == "vllm" and hybrid_allocator(sc),
                          sc.pp)
    pool = max(0, budget - weights - act - non_torch)
    blocks = layout.blocks(pool)
    capacity = layout.logged_tokens(blocks)
    per_request = max(1, layout.blocks_per_request(req.ctx, tokens))
    fits = weights + act + non_torch < budget and blocks >= per_request * req.batch
    headroom = int((blocks - per_request * req.batch) * layout.block_bytes)
    # What the solvers interpolate on: the KV headroom, or how far the fixed part overflows.
    margin = headroom if weights + act + non_torch < budget else \
        min(headroom, budget - weights - act - non_torch - 1)
    est = EngineEstimate(weights, pool, act, non_torch, fits_override=fits, fit_margin=margin,
                         details=VllmDetails(
        budget_bytes=budget, gpu_memory_utilization=util,
        kv_cache_tokens=capacity, kv_blocks=blocks,
        max_concurrency=round(blocks / per_request, 2) if req.ctx else None,
        one_sequence_fits=blocks >= per_request,
        kv_bytes_per_token=round(layout.token_bytes, 1),
        kv_groups=len(layout.groups),
        max_num_batched_tokens=tokens, max_num_seqs=seqs,
        headroom_bytes=headroom,
    ))
    est.assumptions.append(
        f"{engine} reserves {util:g} x GPU memory and fills what weights and the profiling run "
        f"({tokens:,} batched tokens, {seqs:,} sequences: vllm serve's defaults on this card) "
        f"leave with KV blocks")
    if engine == "vllm":
        est.assumptions.append(
            "profiling as vLLM 0.11 and older do (the sampler sorts fp32 logits)" if old else
            "profiling as vLLM 0.19 does; say version=0.11 for older releases")
    if KV_ELEMENT_BYTES[kv_type] == 1.0:
        est.assumptions.append("KV cache in fp8 (kv_cache_dtype=fp8)")
    if blocks < per_request * req.batch:
        est.warnings.append(
            f"the KV pool holds {blocks / per_request:.2f} sequences of {req.ctx:,} tokens, "
            f"fewer than batch = {req.batch}")
    return est
