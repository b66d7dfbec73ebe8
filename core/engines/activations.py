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
backward.
"""

from __future__ import annotations

from core.spec import ModelSpec

ACT = 2  # bf16 activations
FP32 = 4


def _widths(spec: ModelSpec) -> tuple[int, int, int]:
    """(hidden, q width, MLP width per token: the dense MLP or top_k experts + shared ones)."""
    q = spec.n_heads * spec.head_dim
    ffn = spec.intermediate
    if spec.moe is not None:
        experts = [t for t in spec.tensors if t.name == "ffn_up_exps"]
        shared = [t for t in spec.tensors if t.name == "ffn_up_shexp"]
        width = experts[0].rows * spec.moe.top_k if experts else ffn
        ffn = width + (shared[0].rows if shared else 0)
    return spec.hidden, q, ffn


def layer_bytes_per_token(spec: ModelSpec, method: str, target: str) -> float:
    """Saved bytes per token of one layer (SDPA attention, no checkpointing)."""
    h, q, f = _widths(spec)
    full = method == "full"
    norms = 2 * (FP32 * h + (ACT * h if full else 0))
    attention = 4 * ACT * q  # SDPA: q, k, v (expanded to all heads), output
    o_input = ACT * q if full else 0
    mlp = (4 if spec.gated_mlp else 2) * ACT * f
    if not full:
        mlp -= ACT * f  # the down projection's input is not kept when its weight is frozen
    total: float = norms + attention + o_input + mlp + (ACT * h if full else 0)
    if not full:
        total += _adapter_inputs(spec, target)
    return total


def _adapter_inputs(spec: ModelSpec, target: str) -> float:
    """Each LoRA adapter keeps its dropout mask (1 byte) and its input cast to fp32."""
    h, q, f = _widths(spec)
    per = 1 + FP32
    attn = (3 * h + q) * per  # q, k, v read the normed hidden state; o reads attention output
    if target == "attn":
        return attn
    return attn + (2 * h + f) * per  # gate and up read h, down reads the MLP product


def eager_scores_bytes(spec: ModelSpec, batch: int, seq: int) -> float:
    """Eager attention keeps the fp32 softmax and its bf16 copy for every score of every layer."""
    return batch * spec.n_heads * seq * seq * (FP32 + ACT)


# Bytes per token per vocabulary entry that the loss keeps: bf16 logits, their fp32 upcast and
# the log-softmax (full); bf16 logits with one of 8 chunks upcast at a time (torchtune's
# CEWithChunkedOutputLoss); a fused linear-cross-entropy kernel works through small chunks.
LOGIT_BYTES = {"full": ACT + FP32 + FP32, "chunked": ACT + (FP32 + FP32) / 8,
               "fused": (ACT + FP32 + FP32) / 16}


def head_bytes_per_token(spec: ModelSpec, loss: str = "full") -> float:
    """After the last layer: final norm, LM-head input, and what the loss keeps of the logits."""
    return FP32 * spec.hidden + 2 * ACT * spec.hidden + spec.vocab * LOGIT_BYTES[loss]


def activation_bytes(spec: ModelSpec, *, batch: int, seq: int, attn: str, gc: bool,
                     method: str, target: str, loss: str = "full") -> float:
    tokens = batch * seq
    layer = layer_bytes_per_token(spec, method, target) * tokens
    if attn == "eager":
        layer += eager_scores_bytes(spec, batch, seq)
    # With checkpointing: every layer's input, plus one layer recomputed during backward.
    stored = spec.n_layers * ACT * spec.hidden * tokens + layer if gc else spec.n_layers * layer
    return stored + head_bytes_per_token(spec, loss) * tokens
