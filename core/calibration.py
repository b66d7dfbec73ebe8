"""The constants fitted on measurements, in one value (``Calibration``) that every estimate
carries (``Scenario.calibration``): the published figures use ``FITTED``; bench/heldout.py
re-fits them with each source left out and scores that source with what the others gave.

Everything else in the engine models is derived (sizes, shapes, the engines' own defaults);
only these numbers were chosen to match logs. Each names the records it was fitted on.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1 << 20


@dataclass(frozen=True)
class ProfileConstants:
    """The profiling run's torch peak on one GPU =
    base + max(sampler, dense forward) + MoE workspace.

    sampler: max_num_seqs x vocab x ``sampler_bytes`` (one token's logits per sequence in bf16,
    their fp32 copy and the sampler's fp32 working buffers); dense forward:
    max_num_batched_tokens x the MLP intermediate on this GPU x ``ffn_bytes`` (gate/up outputs
    and the activation, freed before the sampler runs); the MoE workspace (fused-MoE kernels keep
    it allocated) is derived from the kernel's buffer shapes, not fitted. Fitted by
    bench/calibrate_vllm.py on the vLLM 0.19 logs (f001-f059, m117-m119); docs/accuracy.md has
    the ids and the leave-one-model-out errors.
    """

    sampler_bytes: float
    ffn_bytes: float
    base_bytes: int


_PROFILE = ProfileConstants(sampler_bytes=14.23, ffn_bytes=7.19, base_bytes=153 * MIB)
# vLLM 0.11 and earlier V1 releases profiled the sampler with top-k and top-p set, which sorts
# the fp32 logits (values plus int64 indices) next to several fp32 copies: about 2.7x the
# working set of 0.19. version=0.11 (or lower) selects these; releases between 0.11 and 0.19
# are not measured here and get the current constants. Fitted on m106, m107, m111 (m113, a
# multimodal Mistral 3, peaks far lower and stays an outlier); those records are all sampler-
# bound, so the dense-forward constant is the current one.
_PROFILE_UP_TO_0_11 = ProfileConstants(sampler_bytes=37.19, ffn_bytes=7.19, base_bytes=254 * MIB)
# Non-torch memory after start-up on one GPU: 0.24-0.25 GiB in vLLM 0.19 (m117 and the
# llm-d 0.19 logs), 0.13-0.14 GiB in 0.11 (m106, m107, m111, m113); with tensor parallelism
# NCCL buffers make it about 2.1 GiB (m118, m119).
_NON_TORCH_SINGLE = 250 * MIB
_NON_TORCH_SINGLE_UP_TO_0_11 = 140 * MIB
_NON_TORCH_TP = 2150 * MIB


# generate() grows the cache by concatenation, one token a step: every step frees each layer's
# old K/V and allocates one a token longer, and PyTorch's caching allocator keeps the freed
# blocks, which the next, larger allocation cannot reuse. nvidia-smi (reserved memory) then
# shows about this many bytes per byte of cache grown during generation on top of what is
# allocated. Fitted on m088 (Llama-2-13B GPTQ, batch 16, 512 -> 1,024 tokens: 1.75); held out:
# m084, m085, m089, m095 (docs/accuracy.md). Allocated memory, which decides an out-of-memory
# error (the allocator releases whole free blocks before it gives up), stays the verdict.
_GROWTH_RESERVE = 1.75


@dataclass(frozen=True)
class Calibration:
    """Every fitted constant, as one value (bench/heldout.py re-fits it per source)."""

    profile: ProfileConstants  # vLLM's profiling peak, current releases
    profile_up_to_0_11: ProfileConstants  # the same, vLLM 0.11 and older (sorting sampler)
    non_torch_single: int  # vLLM's non-torch memory on one GPU, current releases
    non_torch_single_up_to_0_11: int
    non_torch_tp: int  # with tensor parallelism (NCCL buffers)
    growth_reserve: float  # transformers: reserved bytes per byte of cache grown in generate()


FITTED = Calibration(profile=_PROFILE, profile_up_to_0_11=_PROFILE_UP_TO_0_11,
                     non_torch_single=_NON_TORCH_SINGLE,
                     non_torch_single_up_to_0_11=_NON_TORCH_SINGLE_UP_TO_0_11,
                     non_torch_tp=_NON_TORCH_TP, growth_reserve=_GROWTH_RESERVE)
