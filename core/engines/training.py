"""Training memory per GPU: weights, gradients, optimizer states, saved activations, logits.

Full fine-tuning, LoRA and QLoRA on one GPU or several (DDP, ZeRO-1/2/3 = FSDP full shard, CPU
offload). What each precision keeps:
- mixed: fp32 weights, fp32 gradients and fp32 optimizer states, and the bf16 copies autocast
  makes of every matmul weight, which autograd keeps until backward (HF Trainer with an fp32
  model and bf16=True);
- bf16: weights, gradients and (torch AdamW follows the parameter dtype) optimizer states all in
  bf16, no master copy (torchtune, LitGPT "bf16-true");
- LoRA and QLoRA: the frozen base in bf16 (QLoRA: nf4 with double quantization) and fp32
  adapters with fp32 gradients and states (PEFT's default autocast_adapter_dtype).
"""

from __future__ import annotations

from math import ceil

from core.engines.activations import OFFLOAD_RESIDENT_LAYERS, activation_bytes
from core.engines.base import TORCH_CUDA_OVERHEAD, EngineEstimate, Scenario, release_numbers
from core.engines.details import TrainingDetails
from core.formats import WeightFormat, tensor_bytes, weight_bytes
from core.frameworks import peft_upcast
from core.memo import per_spec
from core.spec import ModelSpec
from core.tensors import Tensor
from core.units import format_bytes

ATTN_TARGETS = frozenset({"attn_q", "attn_k", "attn_v", "attn_output", "attn_qkv", "attn_q_a",
                          "attn_q_b", "attn_kv_a_mqa", "attn_kv_b"})
MLP_TARGETS = frozenset({"ffn_gate", "ffn_up", "ffn_down", "ffn_gate_exps", "ffn_up_exps",
                         "ffn_down_exps", "ffn_gate_shexp", "ffn_up_shexp", "ffn_down_shexp"})
MFU = 0.4  # training utilisation of dense tensor TFLOPS (typical for Llama-class, bf16)


QV_TARGETS = frozenset({"attn_q", "attn_v", "attn_qkv", "attn_q_b", "attn_kv_b"})


def lora_targets(spec: ModelSpec, target: str) -> list[Tensor]:
    names = {"qv": QV_TARGETS, "attn": ATTN_TARGETS}.get(target, ATTN_TARGETS | MLP_TARGETS)
    return [t for t in spec.tensors
            if t.part == "text" and t.kind == "linear" and t.name in names and t.layer is not None]


def lora_params(spec: ModelSpec, r: int, target: str) -> int:
    """r x (d_in + d_out) per targeted matrix (each expert has its own adapter)."""
    return sum(r * (t.cols + t.rows) * t.count for t in lora_targets(spec, target))


def optimizer_bytes(optim: str, params: int, state_bytes: int, tensors: list[Tensor]) -> int:
    """States of the optimizer for ``params`` trainable parameters."""
    if optim == "adamw":
        return 2 * state_bytes * params
    if optim in ("adamw8bit", "paged_adamw8bit"):
        # bitsandbytes: two uint8 states plus an fp32 absmax per 2,048-value block for each
        return 2 * params + 2 * 4 * ceil(params / 2048)
    if optim == "sgd":
        return 0  # torch SGD without momentum (HF Trainer's default momentum is 0)
    # Adafactor: factored second moment, one row and one column vector per matrix, no momentum
    return sum(4 * ((t.rows + t.cols) if t.rows > 1 else t.cols) * t.count for t in tensors)


def precision_of(sc: Scenario) -> str:
    req = sc.request
    if req.precision:
        return req.precision
    return "mixed" if req.train == "full" else "bf16"


# bitsandbytes 0.43.2 stopped keeping each 4-bit layer's input for backward (bitsandbytes#1270).
BNB_FREES_INPUTS = (0, 43, 2)


def bnb_keeps_inputs(release: str | None) -> bool:
    """Whether the asked bitsandbytes release keeps 4-bit layers' inputs (None: current)."""
    asked = release_numbers(release)
    return asked is not None and asked < BNB_FREES_INPUTS  # (0, 43) < (0, 43, 2) as well


def gc_of(sc: Scenario) -> bool:
    req = sc.request
    # PEFT's prepare_model_for_kbit_training (QLoRA, and LoRA over any bitsandbytes base: int8,
    # nf4, fp4) turns checkpointing on by default (use_gradient_checkpointing=True); the HF
    # Trainer otherwise leaves it off.
    if req.gc is not None:
        return req.gc
    return req.train == "qlora" or (req.train == "lora" and sc.fmt.name in ("int8", "nf4", "fp4"))


def peft_upcasts(sc: Scenario) -> bool:
    """Whether the recipe runs PEFT's prepare_model_for_kbit_training over a bitsandbytes base,
    which casts every non-quantized 16-bit parameter to fp32: the HF Trainer + PEFT recipe, fits'
    default (frameworks that prepare their own way say so in core/frameworks.py)."""
    return (sc.request.train != "full" and base_format(sc).name in ("nf4", "fp4", "int8")
            and peft_upcast(sc.request))


def base_format(sc: Scenario) -> WeightFormat:
    req = sc.request
    if req.train == "qlora":
        return WeightFormat("nf4", double_quant=True)
    if sc.fmt.name in ("int8", "nf4", "fp4"):
        return sc.fmt
    return WeightFormat("fp32" if precision_of(sc) == "fp32" else "bf16")


def estimate(sc: Scenario) -> EngineEstimate:
    req, spec = sc.request, sc.spec
    n = sc.gpu_count
    precision = precision_of(sc)
    gc = gc_of(sc)
    zero = req.zero if n > 1 or req.offload == "cpu" else 0
    assumptions: list[str] = []

    if req.train == "full":
        trainable = spec.params
        trainable_tensors = list(spec.tensors)
        width = {"mixed": 4, "bf16": 2, "fp32": 4}[precision]
        weights = spec.params * width
        if precision == "mixed":
            matmul = sum(t.numel for t in spec.tensors if t.kind in ("linear", "router"))
            weights += 2 * matmul  # autocast's bf16 copies, held for backward
        grads = trainable * width
        state = 2 if precision == "bf16" else 4
        assumptions.append(
            {"mixed": "full fine-tuning in mixed precision: fp32 weights, gradients and optimizer "
                      "states, plus autocast's bf16 weight copies",
             "bf16": "full fine-tuning in pure bf16: weights, gradients and optimizer states in "
                     "bf16, no fp32 master copy",
             "fp32": "full fine-tuning in fp32"}[precision])
    else:
        fmt = base_format(sc)
        targets = lora_targets(spec, req.target)
        trainable = lora_params(spec, req.r, req.target)
        trainable_tensors = targets
        weights = weight_bytes(spec, fmt) + trainable * 4
        if peft_upcasts(sc):
            weights += 2 * _unquantized_params(spec)  # their bf16 bytes again: now fp32
            assumptions.append(
                "PEFT's prepare_model_for_kbit_training casts every 16-bit parameter (embeddings, "
                "LM head, norms) to fp32, so the residual stream is fp32 too (peft "
                "utils/other.py)")
        grads = trainable * 4
        state = 4
        what = {"qv": "the q and v projections", "attn": "the attention projections"}.get(
            req.target, "every linear layer")
        assumptions.append(
            f"{'QLoRA' if req.train == 'qlora' else 'LoRA'} rank {req.r} on {what}: "
            f"{trainable:,} trainable parameters in fp32 over a frozen {fmt.label} base")
    optim = optimizer_bytes(req.optim, trainable, state, trainable_tensors)
    if req.opt_in_bwd:
        # Each parameter steps in its gradient hook and frees its gradient: one tensor's
        # gradient is alive at a time (torchtune training/_optimizer_in_bwd.py).
        largest = max((t.numel for t in trainable_tensors), default=0)
        grads = min(grads, largest * (grads // max(1, trainable)))
        assumptions.append("optimizer step fused into backward: one parameter's gradient alive "
                           "at a time")

    # What FSDP gathers is the layer as it is stored: the compute dtype for full fine-tuning,
    # the frozen base's own format (nf4 for QLoRA) for adapters.
    gather_fmt = None if req.train == "full" else base_format(sc)
    gather_width = 4 if precision == "fp32" else 2
    # Sharding: ZeRO-1 optimizer states, ZeRO-2 + gradients, ZeRO-3 (FSDP) + parameters.
    cpu_ram = 0
    gather = 0
    if zero >= 1:
        optim //= n
    if zero >= 2:
        grads //= n
    if zero >= 3:
        weights //= n
        # FSDP gathers the current and the prefetched layer in full, and holds one layer's full
        # gradient until it is reduce-scattered (only for weights that train).
        layer = _largest_layer_bytes(spec, gather_fmt, gather_width)
        grad_width = {"mixed": 4, "bf16": 2, "fp32": 4}[precision] if req.train == "full" else 0
        gather = 2 * layer + layer // 2 * grad_width
    if req.offload == "cpu":
        # DeepSpeed's offload_optimizer and FSDP's CPUOffload move the optimizer states and the
        # gradient shards to the CPU (FSDP and ZeRO-3 offload the parameter shards too).
        cpu_ram = (optim + grads + (weights if zero >= 3 else 0)) * n
        optim, grads = 0, 0
        if zero >= 3:
            weights = 0
        moved = "optimizer states, gradients and parameters" if zero >= 3 else (
            "optimizer states and gradients")
        assumptions.append(f"{moved} offloaded to CPU RAM")
    if n > 1:
        layout = {0: "DDP: a full replica per GPU", 1: "ZeRO-1: optimizer states sharded",
                  2: "ZeRO-2: optimizer states and gradients sharded",
                  3: "ZeRO-3 / FSDP full shard: parameters, gradients and states sharded, "
                     "two layers gathered at a time"}[zero]
        assumptions.append(f"{n} GPUs, {layout}")
        if zero == 0:
            grads *= 2  # DDP's bucket buffers hold a second copy of the gradients

    micro = req.batch
    four_bit = base_format(sc).name in ("nf4", "fp4")
    keeps_inputs = four_bit and bnb_keeps_inputs(req.bnb)
    int8 = req.train != "full" and base_format(sc).name == "int8"
    peak = activation_bytes(spec, batch=micro, seq=req.ctx, attn=req.attn, gc=gc,
                            method=req.train, target=req.target, loss=req.loss,
                            keeps_4bit_inputs=keeps_inputs, int8_base=int8,
                            residual_bytes=4 if req.train != "full" and peft_upcasts(sc) else 2,
                            offload=req.act_offload)
    if req.act_offload:
        assumptions.append(
            f"activations saved for backward wait in CPU RAM ({format_bytes(int(peak.cpu_ram))}),"
            f" {OFFLOAD_RESIDENT_LAYERS} layers at a time on the GPU")
    # The verdict uses what the allocator reserves: that is what runs out.
    acts, allocated_acts = peak.reserved, peak.allocated
    if keeps_inputs:
        assumptions.append(f"bitsandbytes {req.bnb}: each 4-bit layer keeps its input for "
                           "backward (0.43.2 and later free it)")
    if req.train == "qlora" or int8:
        # bitsandbytes dequantizes one weight to 16 bit for each matmul (4-bit: forward and
        # backward; LLM.int8: backward's grad_A, state.CB.to(dtype) x SCB); the largest such
        # weight is a quantized one (the LM head stays in 16 bit, m063).
        dequantized = 2 * _largest_quantized_linear(spec)
        acts += dequantized
        allocated_acts += dequantized
    if int8:
        assumptions.append("LLM.int8 base: each linear keeps an int8 copy of its input for "
                           "backward (bitsandbytes MatMul8bitLt)")
    assumptions.append(
        f"micro-batch {micro} x {req.ctx:,} tokens, {req.attn} attention, gradient checkpointing "
        f"{'on' if gc else 'off'}; " + {
            "full": "logits of every token upcast to fp32 for the loss",
            "chunked": "loss over logit chunks",
            "fused": "fused linear cross-entropy, no full logits"}[req.loss])

    allocated = int(weights + grads + optim + allocated_acts + gather)
    flops_per_token = (6 if req.train == "full" else 4) * spec.active_params
    if gc:
        flops_per_token += 2 * spec.active_params  # the forward runs twice
    details = TrainingDetails(
        allocated_bytes=allocated, trainable_params=trainable, precision=precision,
        gradient_checkpointing=gc, zero_stage=zero, cpu_ram_bytes=cpu_ram, micro_batch=micro,
        flops_per_token=flops_per_token, activation_ram_bytes=int(peak.cpu_ram) * n)
    est = EngineEstimate(weights=int(weights), kv_cache=0, activations=int(acts + gather),
                         overhead=TORCH_CUDA_OVERHEAD, gradients=int(grads), optimizer=int(optim),
                         details=details)
    if allocated_acts < acts:
        assumptions.append(
            "with checkpointing the loss's logits and the recomputed layer peak one after the "
            f"other: torch.cuda.max_memory_allocated shows about {format_bytes(allocated)}, "
            "while the allocator reserves room for both, as counted here")
    est.assumptions += assumptions
    if req.bnb and not four_bit:
        est.warnings.append("bnb= only changes estimates with a 4-bit base (train=qlora)")
    if req.optim == "paged_adamw8bit":
        est.assumptions.append("paged AdamW 8-bit: states can spill to CPU RAM under pressure")
    return est


@per_spec()  # the solvers run the estimate many times
def _largest_layer_bytes(spec: ModelSpec, fmt: WeightFormat | None, width: int) -> int:
    """The largest layer as FSDP gathers it: in ``fmt`` (a frozen base), else ``width`` bytes
    each."""
    largest = 0
    for layer in range(spec.n_layers):
        tensors = spec.layer_tensors.get(layer, ())
        size = (sum(t.numel * width for t in tensors) if fmt is None
                else sum(tensor_bytes(t, fmt, width) for t in tensors))
        largest = max(largest, size)
    return largest


@per_spec()
def _largest_quantized_linear(spec: ModelSpec) -> int:
    """Elements of the largest weight bitsandbytes dequantizes (the LM head stays 16-bit)."""
    return max(t.rows * t.cols for t in spec.tensors
               if t.kind == "linear" and t.name != "output")


@per_spec()
def _unquantized_params(spec: ModelSpec) -> int:
    """Parameters bitsandbytes leaves in 16 bit: embeddings, the LM head, norms, biases."""
    return sum(t.numel for t in spec.tensors
               if t.part == "text" and not (t.kind == "linear" and t.name != "output"))
