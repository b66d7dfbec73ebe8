"""vLLM's KV-cache block layout: how a pool of bytes becomes blocks, logged tokens and requests.

Since 0.10 vLLM's hybrid allocator sorts attention layers by kind (full attention, each sliding
window or attention chunk) and cuts every kind into groups of one size: the smallest kind's
layer count, or the largest's when they differ by less than 25%. A kind whose count does not
divide gets padding layers (Gemma-3-27B: 52 sliding + 10 full layers make 7 groups of 10, 70
layer slots for 62 layers). The pool is ``group_size`` tensors, each shared by one layer of
every group, so one block id costs a page in every tensor whatever group it serves, and vLLM
logs ``blocks // groups x block_size`` tokens (f010: 36,560).

A request of ``ctx`` tokens takes blocks from every group: a full-attention group ctx / 16,
a sliding one only its window plus one scheduled batch (``window - 1 + max_num_batched_tokens``,
capped at ctx) and a block for the unaligned start. That, not the logged tokens, decides how
many requests fit, and it is why long contexts fit on sliding-window models.

Before 0.10, SGLang and TGI: one group of every layer, each token costing all of them.
With tensor parallelism each GPU keeps its share of the KV heads (at least one head: vLLM
replicates heads when there are fewer than GPUs), but the whole MLA latent, which has no heads to
split.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from core.kv import KV_ELEMENT_BYTES, token_width
from core.memo import per_spec
from core.spec import KvLayer, ModelSpec

BLOCK_TOKENS = 16
HYBRID_RELEASE = (0, 10)  # the release that turned the hybrid allocator on by default
# vLLM uses the largest kind's count as the group size when the kinds differ by less than this
# factor, to avoid padding most of a group (a heuristic in vLLM's kv_cache_utils).
NEAR_EQUAL_KINDS = 1.25


@dataclass(frozen=True)
class KvGroup:
    """Layers sharing one attention kind in vLLM's hybrid KV pool."""

    window: int | None  # tokens a sliding layer keeps; None: full attention
    block_tokens: int  # tokens one page holds for this group's layers


@dataclass(frozen=True)
class BlockLayout:
    """How vLLM pages the KV cache: groups, page and block sizes."""

    groups: tuple[KvGroup, ...]
    group_size: int  # layers per group, and so KV tensors in the pool
    page_bytes: float  # one layer's share of a block, equal in every group
    token_bytes: float  # one token's cache in every layer, padding aside

    @property
    def block_bytes(self) -> float:
        """What one block id costs across the pool's tensors."""
        return self.page_bytes * self.group_size

    def blocks(self, pool_bytes: int) -> int:
        return int(pool_bytes // self.block_bytes) if self.block_bytes else 0

    def logged_tokens(self, blocks: int) -> int:
        """vLLM's "GPU KV cache size: N tokens" for a pool of ``blocks``."""
        return blocks // len(self.groups) * min(g.block_tokens for g in self.groups)

    def blocks_per_request(self, ctx: int, batched_tokens: int) -> int:
        total = 0
        for group in self.groups:
            if group.window is None:
                total += -(-ctx // group.block_tokens)
            else:
                kept = min(group.window - 1 + batched_tokens, ctx)
                total += -(-kept // group.block_tokens) + 1
        return total


def _layer_bytes(layer: KvLayer, spec: ModelSpec, kv_type: str, tp: int) -> float:
    """One layer's cache per token on one GPU."""
    shares = 1 if layer.kind == "latent" else max(1, min(tp, spec.n_kv_heads or tp))
    return token_width(layer, latent=True) * KV_ELEMENT_BYTES[kv_type] / shares


@per_spec()  # the context and batch solvers run the estimate many times
def block_layout(spec: ModelSpec, kv_type: str, tp: int, hybrid: bool,
                 pp: int = 1) -> BlockLayout:
    """The pool layout of ``spec``'s attention layers (recurrent state layers are not in it),
    grouped by kind when ``hybrid`` (vLLM's hybrid allocator). With ``pp`` stages a GPU caches
    the layers of its stage: the largest stage's share, taken from the front."""
    layers = [layer for layer in spec.kv_layers if layer.kind in ("full", "sliding", "latent")]
    if pp > 1:
        layers = layers[: -(-len(layers) // pp)]
    sizes = [_layer_bytes(layer, spec, kv_type, tp) for layer in layers]
    kinds = Counter((layer.window if layer.kind == "sliding" else None, size)
                    for layer, size in zip(layers, sizes, strict=True))
    if not hybrid or len(kinds) < 2:
        # One group of every layer: a token costs every layer's cache.
        return BlockLayout((KvGroup(None, BLOCK_TOKENS),), 1, BLOCK_TOKENS * sum(sizes),
                           sum(sizes))
    smallest, largest = min(kinds.values()), max(kinds.values())
    group_size = largest if largest < smallest * NEAR_EQUAL_KINDS else smallest
    # Pages are made equal by giving layers with a smaller cache per token longer blocks.
    page = BLOCK_TOKENS * max(size for _, size in kinds)
    groups: list[KvGroup] = []
    for (window, size), count in kinds.items():
        block_tokens = int(page // size)
        groups += [KvGroup(window, block_tokens)] * -(-count // group_size)
    return BlockLayout(tuple(groups), group_size, page, sum(sizes))
