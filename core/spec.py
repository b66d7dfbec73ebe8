"""What fits knows about a model's architecture: its tensors, its attention and cache layout."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from core.memo import Memo
from core.positions import ContextLimits
from core.tensors import Tensor

# full: caches K and V for every token; sliding: caches at most `window` tokens where the engine
# supports it; latent: MLA, caches one compressed vector per token (kv_lora_rank + rope dim:
# vLLM, SGLang, llama.cpp, and transformers since v5, which stores them as K and V); state: a fixed-size recurrent state (linear attention, Mamba) that does not grow.
KvLayerKind = Literal["full", "sliding", "latent", "state"]


@dataclass(frozen=True, slots=True)
class KvLayer:
    """The cache of one attention layer, in elements per token (per sequence)."""

    kind: KvLayerKind
    k_width: int  # K elements per token as transformers stores them (heads x head_dim)
    v_width: int
    window: int | None = None  # sliding layers: tokens kept
    latent_width: int = 0  # MLA: kv_lora_rank + rope dim, what latent-cache engines store
    state_elements: int = 0  # 'state' layers: fixed elements per sequence
    extra_width: int = 0  # other per-token cache, e.g. DeepSeek-V3.2's indexer keys
    cross_width: int = 0  # encoder-decoder: cross-attention K/V per encoder token
    # transformers' Falcon (new decoder architecture) expands K/V to every query head before it
    # caches them; other engines keep only the KV heads.
    hf_expand: int = 1


@dataclass(frozen=True, slots=True)
class MoeSpec:
    """A mixture of experts: how many, how many per token, shared, on how many layers."""

    n_experts: int
    top_k: int
    n_shared: int = 0  # shared experts, always active
    moe_layers: int = 0  # how many layers carry experts


@dataclass(frozen=True, eq=False)
class ModelSpec:
    """An architecture, reduced to what memory and speed depend on.

    ``tensors`` is the complete weight inventory; parameter counts are sums over it, so they are as
    exact as the inventory. ``approximate`` marks specs built from a guess (an unknown architecture
    or a bare size), and ``notes`` says what was guessed.
    """

    model_type: str
    tensors: tuple[Tensor, ...]
    n_layers: int
    hidden: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    vocab: int
    intermediate: int
    kv_layers: tuple[KvLayer, ...]
    max_position: int | None = None
    dtype: str = "bf16"
    tied_embeddings: bool = False
    moe: MoeSpec | None = None
    encoder_decoder: bool = False
    encoder_layers: int = 0
    gated_mlp: bool = True
    layer_norm: bool = False  # LayerNorm (saves its bf16 input) rather than HF's fp32 RMSNorm
    parallel_block: bool = False  # one norm feeds attention and MLP side by side
    activation: str = "silu"
    residual_dropout: bool = False  # dropout after attention and MLP keeps a mask in training
    approximate: bool = False
    notes: tuple[str, ...] = ()
    quantization: dict[str, object] | None = field(default=None, compare=False)
    # Each engine's context limit from config.json (core.positions); None for a bare size.
    context: ContextLimits | None = field(default=None, compare=False)
    # Derived figures (weight bytes per format ...), cached per spec by core.memo.per_spec. Not
    # an __init__ argument, so a spec made by dataclasses.replace starts with its own, empty.
    memo: Memo = field(default_factory=Memo, init=False, compare=False, repr=False)

    @cached_property
    def params(self) -> int:
        return sum(t.numel for t in self.tensors)

    @cached_property
    def active_params(self) -> int:
        """Parameters touched per token: only top_k of the routed experts (plus shared ones)."""
        if self.moe is None:
            return self.params
        routed = sum(t.numel for t in self.tensors if t.name.endswith("_exps"))
        return self.params - routed + routed * self.moe.top_k // self.moe.n_experts

    @cached_property
    def expert_width(self) -> int:
        """MLP width of one routed expert (0 without experts)."""
        return next((t.rows for t in self.tensors if t.name == "ffn_up_exps"), 0)

    @cached_property
    def shared_expert_width(self) -> int:
        return next((t.rows for t in self.tensors if t.name == "ffn_up_shexp"), 0)

    @cached_property
    def text_params(self) -> int:
        return sum(t.numel for t in self.tensors if t.part in ("text", "encoder"))

    def params_of(self, part: str) -> int:
        return sum(t.numel for t in self.tensors if t.part == part)

    @cached_property
    def layer_tensors(self) -> dict[int | None, tuple[Tensor, ...]]:
        out: dict[int | None, list[Tensor]] = {}
        for t in self.tensors:
            out.setdefault(t.layer if t.part == "text" else None, []).append(t)
        return {k: tuple(v) for k, v in out.items()}
