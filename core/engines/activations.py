"""Activation memory of training: what autograd keeps for backward, per token and layer.

Counted tensor by tensor for the transformers implementations (bf16 activations), and checked
against what PyTorch really saves (tests/golden/activations.json, made by
scripts/golden_activations.py with torch.autograd.graph.saved_tensors_hooks):

- a norm keeps its input upcast to fp32 and, when its weight trains, its bf16 output;
- SDPA keeps q, k, v and its output; GQA's K/V are expanded to every head (repeat_kv) before it;
- a linear keeps its input only when its weight trains (full fine-tuning) — frozen LoRA bases
  don't, but each adapter keeps its dropout mask and its fp32 input;
- a gated MLP keeps gate, act(gate), up and their product; a plain one its pre- and
  post-activation;
- eager attention also keeps the scores (fp32 softmax output and its bf16 copy);
- after the last layer: the final norm, the LM head input, bf16 logits, their fp32 upcast and
  the log-softmax the loss keeps.

Gradient checkpointing keeps only each layer's input, recomputing one layer at a time during
backward: the loss's logits and the recomputed layer then peak one after the other, so the
allocated peak holds the larger, while the caching allocator's reserved memory holds both
(ActivationPeak).
"""

from __future__ import annotations

from dataclasses import dataclass

from core.spec import ModelSpec

ACT = 2  # bf16 activations
FP32 = 4


def _widths(spec: ModelSpec) -> tuple[int, int, int, int]:
    """(hidden, q width, kv width, MLP width per token: dense, or top_k experts + shared)."""
    q = spec.n_heads * spec.head_dim
    kv = spec.n_kv_heads * spec.head_dim
    ffn = spec.intermediate
    if spec.moe is not None:
        width = spec.expert_width * spec.moe.top_k if spec.expert_width else ffn
        ffn = width + spec.shared_expert_width
    return spec.hidden, q, kv, ffn


# Extra bf16 tensors a composite activation keeps per MLP element: the tanh form of GELU
# ("gelu_new", GPT-2) is built from elementwise ops whose kept inputs cost 5 more bytes per
# element (measured, tests/golden/activations.json).
ACTIVATION_EXTRA = {"gelu_new": 5, "gelu_pytorch_tanh": 0, "gelu_fast": 5}
# Bytes eager attention keeps per score: the fp32 softmax and its bf16 copy (Llama); GPT-2 keeps
# a dropout mask instead of the copy, GPT-NeoX only the fp32 softmax. transformers' Falcon calls
# SDPA in its eager path too, so it keeps no scores at all.
SCORE_BYTES = {"gpt2": FP32 + 1, "gpt_neox": FP32, "falcon": 0}


def layer_bytes_per_token(spec: ModelSpec, method: str, target: str,
                          attn: str = "sdpa", keeps_4bit_inputs: bool = False,
                          int8_base: bool = False) -> float:
    """Saved bytes per token of one layer, without checkpointing.

    Checked against tests/golden/activations.json (Llama-2/3, GPT-2, GPT-NeoX, Falcon, Mixtral).
    ``keeps_4bit_inputs``: bitsandbytes before 0.43.2 kept every 4-bit linear's input for a
    backward that never used it (fixed in bitsandbytes#1270): the normed inputs of attention and
    MLP (shared by q/k/v and by gate/up), the attention output and the down projection's input.
    """
    h, q, kv, f = _widths(spec)
    full = method == "full"
    n_norms = 1 if spec.parallel_block else 2
    total: float
    if spec.layer_norm:
        # native LayerNorm keeps its bf16 input; with trained weights each block's linear
        # layers keep the normed output too
        total = n_norms * ACT * h + (n_norms * ACT * h if full else 0)
        total += ACT * q  # rotary: the partially rotated q/k are rebuilt by cat
    else:
        # HF RMSNorm upcasts to fp32 and keeps it; the weight's multiply keeps the normed value
        total = n_norms * (FP32 * h + (ACT * h if full else 0)) + (ACT * h if full else 0)
    # SDPA keeps q, k, v and its output; eager attention expands GQA's K/V to every head first
    kv_kept = q if attn == "eager" and spec.model_type != "falcon" else kv
    total += ACT * (2 * q + 2 * kv_kept)
    total += ACT * q if full else 0  # o_proj input
    if spec.gated_mlp:
        total += 3 * ACT * f + (ACT * f if full else 0)  # gate, act(gate), up; down's input
    else:
        total += ACT * f + ACT * f * (1 if full else 0)  # pre-activation; fc2's input
        total += ACT_EXTRA(spec.activation) * f
    if spec.moe is not None:
        total += spec.moe.top_k * ACT * h  # the tokens gathered for each chosen expert
    if spec.residual_dropout:
        total += 2 * h  # one bool mask after attention, one after the MLP
    if not full:
        total += _adapter_inputs(spec, target)
    if keeps_4bit_inputs:
        total += ACT * (n_norms * h + q + f)
    if int8_base:
        total += int8_saved_inputs(spec)
    return total


def int8_saved_inputs(spec: ModelSpec) -> float:
    """LLM.int8 (bitsandbytes Linear8bitLt) as a frozen base: MatMul8bitLt.forward quantizes
    each linear's input to int8 and, whenever that input needs a gradient (every layer's, under
    LoRA), saves the transposed int8 copy (CAt) for backward, 1 byte per element, for every
    linear separately: q, k and v each quantize the same normed state (bitsandbytes
    autograd/_functions.py, ctx.tensors = (CAt, subA, A))."""
    h, q, _, f = _widths(spec)
    fused = any(t.name == "attn_qkv" for t in spec.tensors)
    attn = (h if fused else 3 * h) + q
    mlp = (2 * h if spec.gated_mlp else h) + f
    return float(attn + mlp)


def ACT_EXTRA(activation: str) -> float:
    return ACTIVATION_EXTRA.get(activation, 0)


def _adapter_inputs(spec: ModelSpec, target: str) -> float:
    """Each LoRA adapter keeps its dropout mask (1 byte) and its input cast to fp32."""
    h, q, _, f = _widths(spec)
    per = 1 + FP32
    if target == "qv":
        return 2 * h * per
    fused = any(t.name == "attn_qkv" for t in spec.tensors)
    attn = ((h if fused else 3 * h) + q) * per  # q, k, v read the normed state; o the attention
    if target == "attn":
        return attn
    mlp_in = h if not spec.gated_mlp else 2 * h  # gate and up each read it
    return attn + (mlp_in + f) * per


def eager_scores_bytes(spec: ModelSpec, batch: int, seq: int) -> float:
    """What eager attention keeps for every score of one layer (see SCORE_BYTES)."""
    return batch * spec.n_heads * seq * seq * SCORE_BYTES.get(spec.model_type, FP32 + ACT)


# Bytes per token per vocabulary entry at the loss's peak: bf16 logits, their fp32 upcast, the
# log-softmax and the bf16 gradient that flows back into the head (full: within 1% of the peak
# measured at Llama-3-8B's real vocabulary, tests/golden/activations_head.json); bf16 logits
# with one of 8 chunks upcast at a time (torchtune's CEWithChunkedOutputLoss); a fused
# linear-cross-entropy kernel works through small chunks.
LOGIT_BYTES = {"full": ACT + FP32 + FP32 + ACT, "chunked": ACT + (FP32 + FP32) / 8,
               "fused": (ACT + FP32 + FP32) / 16}


def head_bytes_per_token(spec: ModelSpec, loss: str = "full") -> float:
    """After the last layer: final norm, LM-head input, and what the loss keeps of the logits."""
    return FP32 * spec.hidden + 2 * ACT * spec.hidden + spec.vocab * LOGIT_BYTES[loss]


@dataclass(frozen=True)
class ActivationPeak:
    """Activation bytes at the step's peak: what autograd holds, and what the allocator keeps;
    with offloading, what waits in CPU RAM."""

    allocated: float
    reserved: float
    cpu_ram: float = 0.0


# Offloaded activations on the GPU: the layer being computed and the one being copied back (the
# offloaders prefetch one ahead: unsloth_zoo gradient_checkpointing.py, torchtune
# training/_activation_offloading.py).
OFFLOAD_RESIDENT_LAYERS = 2


def activation_bytes(spec: ModelSpec, *, batch: int, seq: int, attn: str, gc: bool,
                     method: str, target: str, loss: str = "full",
                     keeps_4bit_inputs: bool = False, int8_base: bool = False,
                     residual_bytes: float = ACT, offload: bool = False) -> ActivationPeak:
    """Without checkpointing every layer's saved tensors and the loss's logits peak together.

    With it, every layer's input stays while the live bytes peak twice: at the loss, and while
    backward recomputes the last layer after the logits are freed. The allocated peak is the
    larger of the two (scripts/golden_activations.py --real-vocab measures Llama-3-8B's loss
    peak with and without checkpointing: tests/golden/activations_head.json). PyTorch's caching
    allocator keeps the loss's freed blocks while the recomputed layer allocates its own, so
    reserved memory, which is what runs out, holds both (fsdp_qlora's reserved rows m212-m226).
    ``residual_bytes``: the residual stream's element size (4 when PEFT has upcast the
    embeddings to fp32, so every layer's input is fp32). ``offload``: what is saved for backward
    (the checkpoints, or everything without checkpointing) waits in CPU RAM but for the layers
    in flight.
    """
    tokens = batch * seq
    layer = layer_bytes_per_token(spec, method, target, attn, keeps_4bit_inputs,
                                  int8_base) * tokens
    if attn == "eager":
        layer += eager_scores_bytes(spec, batch, seq)
    head = head_bytes_per_token(spec, loss) * tokens
    resident = min(spec.n_layers, OFFLOAD_RESIDENT_LAYERS) if offload else spec.n_layers
    if not gc:
        together = resident * layer + head
        ram = (spec.n_layers - resident) * layer
        return ActivationPeak(together, together, ram)
    one_input = residual_bytes * spec.hidden * tokens
    inputs = resident * one_input
    ram = (spec.n_layers - resident) * one_input
    return ActivationPeak(inputs + max(head, layer), inputs + head + layer, ram)
