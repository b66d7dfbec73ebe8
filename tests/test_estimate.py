"""The estimator through its real path: command text -> parser -> snapshot -> GPU -> Report."""

from __future__ import annotations

import pytest

from core.architectures import build_spec
from core.engines.details import LlamaCppDetails, TransformersDetails, VllmDetails
from core.kv import kv_bytes_per_token
from core.report import Report
from core.resolve import resolve_offline
from tests.conftest import details_of, run_command


def vllm(report: Report) -> VllmDetails:
    return details_of(report, VllmDetails)

GIB = 1 << 30


def spec_of(model: str):
    return resolve_offline(model).spec


@pytest.mark.parametrize(
    ("model", "per_token"),
    [
        ("meta-llama/Llama-2-7b-hf", 32 * 2 * 32 * 128 * 2),  # MHA: 512 KiB per token
        ("meta-llama/Meta-Llama-3-8B", 32 * 2 * 8 * 128 * 2),  # GQA 8: 128 KiB, 4x less
        ("mistralai/Mistral-7B-Instruct-v0.2", 32 * 2 * 8 * 128 * 2),
        ("tiiuae/falcon-7b", 32 * 2 * 1 * 64 * 2),  # MQA
    ],
)
def test_kv_bytes_per_token_follow_kv_heads(model: str, per_token: int) -> None:
    assert kv_bytes_per_token(spec_of(model), "fp16", latent=False) == per_token


def test_mla_caches_the_latent_not_per_head_keys_and_values() -> None:
    spec = spec_of("deepseek-ai/DeepSeek-V3")
    # 61 layers x (kv_lora_rank 512 + rope 64) x 2 bytes, against 128 heads x (192 + 128)
    # that a per-head cache would hold: 71x less.
    assert kv_bytes_per_token(spec, "fp16", latent=True) == 61 * 576 * 2
    assert kv_bytes_per_token(spec, "fp16", latent=False) == 61 * 576 * 2


def test_sliding_window_layers_stop_growing_where_the_engine_honours_it() -> None:
    short = run_command("google/gemma-2-9b bf16 ctx=4096 gpu=80GB")
    long = run_command("google/gemma-2-9b bf16 ctx=8192 gpu=80GB")
    # Half of Gemma 2's layers slide over 4,096 tokens: doubling ctx grows the cache 1.5x.
    assert long.breakdown.kv_cache == pytest.approx(1.5 * short.breakdown.kv_cache, rel=0.01)


def test_mistral_v01_window_is_honoured_by_transformers_but_not_llama_cpp() -> None:
    hf = run_command("mistralai/Mistral-7B-v0.1 fp16 ctx=8192 gpu=80GB")
    cpp = run_command("mistralai/Mistral-7B-v0.1 Q8_0 ctx=8192 gpu=80GB")
    assert hf.breakdown.kv_cache == 4096 * 131072
    assert cpp.breakdown.kv_cache == 8192 * 131072


def test_moe_decodes_from_active_experts_only() -> None:
    report = run_command("mistralai/Mixtral-8x7B-v0.1 Q4_K_M gpu=a100-80g")
    assert report.model.params == 46_702_792_704
    assert report.model.active_params < report.model.params * 0.3
    dense = run_command("Qwen/Qwen2.5-32B Q4_K_M gpu=a100-80g")
    # A 47B MoE with 13B active decodes faster than a dense 32B model.
    assert report.speed.decode_tokens_per_s > dense.speed.decode_tokens_per_s


def test_tied_embeddings_are_counted_once() -> None:
    spec = spec_of("google/gemma-2-2b")
    assert spec.tied_embeddings
    assert not any(t.name == "output" and t.kind == "linear" for t in spec.tensors)


def test_bitsandbytes_keeps_head_and_embeddings_in_16_bit() -> None:
    fp16 = run_command("meta-llama/Llama-2-7b-hf fp16 gpu=80GB").breakdown.weights
    nf4 = run_command("meta-llama/Llama-2-7b-hf nf4 gpu=80GB").breakdown.weights
    embed_and_head = 2 * 32000 * 4096 * 2
    # 4-bit linears cost ~4.5 bits; embeddings and head stay 16-bit.
    linear_params = 6_738_415_616 - 2 * 32000 * 4096
    assert nf4 == pytest.approx(embed_and_head + linear_params * 4.5 / 8, rel=0.01)
    assert nf4 < fp16 / 3


def test_verdict_and_headroom_are_consistent() -> None:
    yes = run_command("meta-llama/Llama-2-7b q4 ctx=4096 gpu=24GB")
    assert yes.fits and yes.verdict == "fits"
    assert yes.headroom_bytes == yes.gpu.usable_bytes - yes.total_bytes
    no = run_command("meta-llama/Llama-2-13b-hf fp16 gpu=12GB")
    assert not no.fits and no.verdict == "no" and no.headroom_bytes < 0


@pytest.mark.parametrize(
    "command",
    [
        "meta-llama/Llama-2-13b-hf fp16 gpu=24GB",
        "meta-llama/Meta-Llama-3-8B Q8_0 ctx=131072 gpu=4090",
        "Qwen/Qwen2.5-7B-Instruct bf16 engine=vllm ctx=32k batch=16 gpu=4090",
        "meta-llama/Llama-3.1-70B q4 gpu=4090 ram=16GB",
    ],
)
def test_every_suggestion_really_fits_when_applied(command: str) -> None:
    report = run_command(command)
    assert not report.fits
    applicable = [s for s in report.suggestions if not s.change.startswith("-ngl")]
    assert applicable, "a 'no' should come with at least one change that fits"
    for suggestion in applicable:
        words = command.split()
        for change in suggestion.change.split():  # "engine=llama.cpp Q4_K_M" is two changes
            key = change.split("=", 1)[0]
            words = [w for w in words if not w.startswith(f"{key}=")]
            if "=" not in change or key == "exl2":  # a quantization
                words = [words[0], change, *words[2:]]
            else:
                words.append(change)
        applied = run_command(" ".join(words))
        assert applied.fits, f"{suggestion.change} did not fit: {applied.total_bytes}"


def test_max_context_is_the_boundary() -> None:
    report = run_command("meta-llama/Llama-3.1-8B Q8_0 ctx=8192 gpu=12GB")
    limit = report.max_context
    assert limit is not None and 8192 < limit < report.request["ctx"] * 64
    assert run_command(f"meta-llama/Llama-3.1-8B Q8_0 ctx={limit} gpu=12GB").fits
    assert not run_command(f"meta-llama/Llama-3.1-8B Q8_0 ctx={limit + 1} gpu=12GB").fits


def test_max_batch_is_the_boundary() -> None:
    report = run_command("meta-llama/Llama-2-7b-hf fp16 ctx=4096 gpu=24GB")
    limit = report.max_batch
    assert limit is not None and limit >= 1
    assert run_command(f"meta-llama/Llama-2-7b-hf fp16 ctx=4096 batch={limit} gpu=24GB").fits
    assert not run_command(f"meta-llama/Llama-2-7b-hf fp16 ctx=4096 batch={limit + 1} gpu=24GB").fits


def test_vllm_reports_kv_capacity_and_concurrency() -> None:
    report = run_command("meta-llama/Meta-Llama-3-8B bf16 engine=vllm ctx=8192 gpu=h100")
    details = vllm(report)
    tokens = details.kv_cache_tokens
    # The pool is what util x memory leaves after weights, activations and non-torch memory.
    assert tokens * 131072 <= report.breakdown.kv_cache < (tokens + 16) * 131072
    assert details.max_concurrency == pytest.approx(tokens / 8192, abs=0.01)
    assert details.one_sequence_fits is True


def test_vllm_batch_defaults_follow_the_card() -> None:
    # vllm serve: 1,024 sequences on cards of 70 GiB and more that are not A100s, else 256.
    h100 = run_command("meta-llama/Llama-3.1-8B-Instruct bf16 engine=vllm gpu=h100")
    a100 = run_command("meta-llama/Llama-3.1-8B-Instruct bf16 engine=vllm gpu=a100-80g")
    l40s = run_command("meta-llama/Llama-3.1-8B-Instruct bf16 engine=vllm gpu=l40s")
    assert vllm(h100).max_num_seqs == 1024
    assert vllm(h100).max_num_batched_tokens == 8192
    assert vllm(a100).max_num_seqs == vllm(l40s).max_num_seqs == 256
    # The sampler's logits scale with the sequences: a smaller profiling peak on the A100.
    assert a100.breakdown.activations < h100.breakdown.activations / 2


def test_vllm_version_selects_the_older_sampler_profile() -> None:
    current = run_command("Qwen/Qwen3-32B bf16 engine=vllm gpu=h100 ctx=16000")
    old = run_command("Qwen/Qwen3-32B bf16 engine=vllm version=0.11 gpu=h100 ctx=16000")
    assert old.request["version"] == "0.11"
    # 0.11 sorted the fp32 logits while profiling: ~2.6x the peak, less room for KV blocks.
    assert old.breakdown.activations > 2.3 * current.breakdown.activations
    assert old.breakdown.kv_cache < current.breakdown.kv_cache
    assert any("0.11" in a for a in old.assumptions)
    assert any("version=0.11" in a for a in current.assumptions)


def test_vllm_keeps_an_fp32_cache_for_fp32_weights() -> None:
    bf16 = run_command("meta-llama/Llama-3.1-8B-Instruct bf16 engine=vllm gpu=h100")
    fp32 = run_command("meta-llama/Llama-3.1-8B-Instruct fp32 engine=vllm gpu=h100")
    assert vllm(fp32).kv_bytes_per_token == 2 * vllm(bf16).kv_bytes_per_token


def test_vllm_pads_mxfp4_experts() -> None:
    # gpt-oss's expert intermediate 2,880 is padded to 3,072 by vLLM's MXFP4 MoE kernels.
    vllm_run = run_command("openai/gpt-oss-20b engine=vllm gpu=h100")
    hf_run = run_command("openai/gpt-oss-20b engine=hf gpu=h100")
    ratio = vllm_run.breakdown.weights / hf_run.breakdown.weights
    assert 1.03 < ratio < 1.07


def test_vllm_groups_sliding_window_layers_with_padding() -> None:
    # Gemma-3-27B: 52 sliding + 10 full layers -> groups of 10, six sliding (8 padding layers)
    # and one full; vLLM logs blocks // 7 x 16 tokens (f010: 36,560).
    report = run_command("google/gemma-3-27b-it bf16 engine=vllm ctx=8192 gpu=h100")
    details = vllm(report)
    blocks = details.kv_blocks
    assert details.kv_groups == 7
    assert details.kv_cache_tokens == blocks // 7 * 16
    # One block id costs a page in each of the 10 shared tensors: 16 tokens x 8 KiB x 10.
    assert blocks == report.breakdown.kv_cache // (16 * 8192 * 10)
    # Before 0.10 every layer held every token in one group.
    old = run_command("google/gemma-3-27b-it bf16 engine=vllm version=0.9 ctx=8192 gpu=h100")
    assert vllm(old).kv_groups == 1
    old_tokens = vllm(old).kv_cache_tokens
    assert old_tokens == old.breakdown.kv_cache // (16 * 8192 * 62) * 16


def test_vllm_sliding_layers_keep_only_their_window_for_long_requests() -> None:
    long = run_command("google/gemma-3-27b-it bf16 engine=vllm ctx=131072 gpu=h100")
    old = run_command("google/gemma-3-27b-it bf16 engine=vllm version=0.9 ctx=131072 gpu=h100")
    # A 128k request takes 8k blocks from the full group but only window + one batch of
    # 8,192 tokens from each sliding group, so it fits where all-full layers do not.
    assert long.fits and vllm(long).one_sequence_fits is True
    assert not old.fits
    concurrency = vllm(long).max_concurrency
    assert concurrency is not None
    # (8,192 + 6 x 577 blocks per request, against 7 x 8,192 at the logged token count)
    assert concurrency > 4.5 * vllm(long).kv_cache_tokens / 131072


def test_vllm_tensor_parallel_kv_shares() -> None:
    one = run_command("meta-llama/Meta-Llama-3-8B bf16 engine=vllm gpu=h100")
    two = run_command("meta-llama/Meta-Llama-3-8B bf16 engine=vllm tp=2 gpu=2xh100")
    assert vllm(two).kv_bytes_per_token == vllm(one).kv_bytes_per_token / 2
    # MLA's latent has no heads to split: every GPU keeps all of it.
    mla = [run_command(f"deepseek-ai/DeepSeek-V2-Lite-Chat bf16 engine=vllm tp={n} "
                       f"gpu={n}xh100") for n in (1, 2)]
    assert vllm(mla[0]).kv_bytes_per_token == vllm(mla[1]).kv_bytes_per_token == 27 * 576 * 2
    # Falcon-7B's single KV head is replicated on both GPUs.
    mqa = [run_command(f"tiiuae/falcon-7b bf16 engine=vllm tp={n} gpu={n}xa100-80g")
           for n in (1, 2)]
    assert vllm(mqa[0]).kv_bytes_per_token == vllm(mqa[1]).kv_bytes_per_token


def test_vllm_counts_the_rope_table_of_long_position_models() -> None:
    # Llama 4 Scout allows 10M positions: vLLM's bf16 cos/sin table is 2.5 GiB on every GPU.
    vllm_run = run_command("meta-llama/Llama-4-Scout-17B-16E-Instruct bf16 engine=vllm tp=4 "
                           "gpu=4xh100")
    hf_run = run_command("meta-llama/Llama-4-Scout-17B-16E-Instruct bf16 engine=hf tp=4 "
                         "gpu=4xh100")
    extra = vllm_run.breakdown.weights - hf_run.breakdown.weights
    assert extra == pytest.approx(10_485_760 * 128 * 2, rel=0.01)


def test_transformers_generation_reports_reserved_memory() -> None:
    # generate() grows the cache from the prompt to ctx: the allocator keeps the freed blocks.
    grows = run_command("meta-llama/Llama-2-13b-hf gptq engine=hf ctx=1024 prompt=512 batch=16 "
                        "gpu=a100-80g")
    reserved = details_of(grows, TransformersDetails).reserved_bytes
    grown = grows.breakdown.kv_cache // 2
    assert reserved == pytest.approx(grows.total_bytes + 1.75 * grown, rel=1e-6)
    assert any("nvidia-smi may show" in a for a in grows.assumptions)
    # the verdict stays on the allocated peak
    assert grows.total_bytes < reserved
    prefill = run_command("meta-llama/Llama-2-13b-hf gptq engine=hf ctx=1024 prompt=1024 batch=16 "
                          "gpu=a100-80g")
    assert details_of(prefill, TransformersDetails).reserved_bytes == prefill.total_bytes
    assert not any("nvidia-smi" in a for a in prefill.assumptions)


def test_llama_cpp_partial_offload_plan() -> None:
    report = run_command("meta-llama/Llama-3.1-70B Q4_K_M gpu=rtx-3060 ctx=4096")
    details = details_of(report, LlamaCppDetails)
    assert not report.fits
    assert 0 < details.n_gpu_layers < 80
    assert details.system_ram_bytes > 20 * GIB


def test_size_only_models_are_llama_shaped_and_marked_approximate() -> None:
    report = run_command("7b q4 gpu=8GB")
    assert report.model.source == "size"
    assert not report.model.exact_params
    assert report.model.params == pytest.approx(7e9, rel=0.05)
    assert any("only a size was given" in a for a in report.assumptions)


def test_unknown_architecture_gets_a_marked_generic_estimate() -> None:
    spec = build_spec({"model_type": "brand_new", "hidden_size": 2048, "num_hidden_layers": 24,
                       "num_attention_heads": 16, "vocab_size": 32000})
    assert spec.approximate
    assert any("brand_new" in note for note in spec.notes)


def test_pre_quantized_checkpoints_default_to_their_own_format() -> None:
    report = run_command("Qwen/Qwen3-30B-A3B-FP8 engine=vllm gpu=h100")
    assert report.model.weight_format == "fp8"
    report = run_command("openai/gpt-oss-20b engine=vllm gpu=h100")
    assert report.model.weight_format == "mxfp4"
