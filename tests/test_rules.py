"""Each engine's own rules (issue 17): a YES the engine would refuse is a NO with the engine's
reason and the layouts or settings it accepts; what it only warns about is a warning; what it
changes silently is applied. Every case here was answered wrongly before the rules existed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from core.engines.details import LlamaCppDetails
from core.errors import UserError
from tests.conftest import run_command

GIB = 1 << 30


def changes(report) -> list[str]:
    return [s.change for s in report.suggestions]


def test_tensor_parallel_must_divide_the_heads() -> None:
    report = run_command("meta-llama/Llama-3.1-70B-Instruct awq engine=vllm gpu=3x4090")
    assert not report.fits and report.verdict == "no"
    assert "64 attention heads do not divide by tensor_parallel_size 3" in (report.reason or "")
    assert report.rules[0].severity == "refuse" and "vllm" in report.rules[0].source
    assert "tp=1 pp=3" in changes(report)  # the layout vLLM takes on all three GPUs
    assert report.engine_details.parallel is not None
    assert (report.engine_details.parallel.tp, report.engine_details.parallel.pp) == (3, 1)


def test_more_tensor_parallel_ranks_than_gpus_is_refused() -> None:
    report = run_command("meta-llama/Llama-3.1-8B-Instruct tp=64 engine=vllm gpu=2x4090")
    assert not report.fits and "needs tp x pp = 64 GPUs" in (report.reason or "")
    assert changes(report)[0] == "tp=2"


def test_kv_heads_replicate_in_vllm_but_not_in_tgi() -> None:
    vllm = run_command("meta-llama/Llama-3.1-8B-Instruct engine=vllm gpu=16x4090")
    assert vllm.fits  # 8 KV heads, each replicated on two of the 16 ranks
    tgi = run_command("meta-llama/Llama-3.1-8B-Instruct engine=tgi gpu=16x4090")
    assert not tgi.fits and "does not replicate them" in (tgi.reason or "")
    assert "tp=8" in changes(tgi)


def test_pipeline_parallel_where_the_engine_has_it() -> None:
    staged = run_command("meta-llama/Llama-3.1-8B-Instruct engine=vllm pp=2 gpu=2x4090")
    flat = run_command("meta-llama/Llama-3.1-8B-Instruct engine=vllm gpu=2x4090")
    assert staged.engine_details.parallel is not None
    assert (staged.engine_details.parallel.tp, staged.engine_details.parallel.pp) == (1, 2)
    # A stage holds half the layers (plus its end's embedding or head): about tp=2's weights.
    assert abs(staged.breakdown.weights - flat.breakdown.weights) < 0.1 * flat.breakdown.weights
    with pytest.raises(AssertionError):
        assert staged.breakdown.weights == run_command(
            "meta-llama/Llama-3.1-8B-Instruct engine=vllm gpu=4090").breakdown.weights
    hf = run_command("meta-llama/Llama-3.1-8B-Instruct pp=2 gpu=2x4090")
    assert not hf.fits and "no pipeline parallel" in (hf.reason or "")


def test_parallel_layout_is_in_the_json() -> None:
    out = subprocess.run([sys.executable, "-m", "bot", "--json",
                          "Qwen/Qwen3-30B-A3B awq engine=sglang gpu=2x3090 ctx=32k"],
                         capture_output=True, text=True, check=True,
                         env={"HF_HUB_OFFLINE": "1", "PATH": ""})
    assert json.loads(out.stdout)["engine_details"]["parallel"] == {"tp": 2, "pp": 1}


@pytest.mark.parametrize("engine", ["vllm", "sglang"])
def test_a_context_beyond_the_model_is_refused_by_vllm_and_sglang(engine: str) -> None:
    report = run_command(f"meta-llama/Llama-2-7b-hf ctx=8k gpu=24GB engine={engine}")
    assert not report.fits and "refuses" in (report.reason or "")
    assert "8,192" in (report.reason or "") and "4096" in (report.reason or "").replace(",", "")
    assert changes(report) == ["ctx=4096"]


@pytest.mark.parametrize("engine", ["hf", "llama.cpp", "exllamav2"])
def test_a_context_beyond_the_model_is_a_warning_elsewhere(engine: str) -> None:
    quant = {"exllamav2": "exl2=4.0"}.get(engine, "q4")
    report = run_command(f"meta-llama/Llama-2-7b-hf {quant} ctx=8k gpu=24GB engine={engine}")
    assert report.fits and report.request["ctx"] == 8192
    assert any("beyond the 4,096 tokens the model was trained for" in w for w in report.warnings)


def test_ollama_caps_the_context_at_the_training_context() -> None:
    report = run_command("meta-llama/Llama-2-7b-hf q4 ctx=8k gpu=24GB engine=ollama")
    assert report.request["ctx"] == 4096
    assert any("Ollama caps num_ctx" in w for w in report.warnings)


@pytest.mark.parametrize("engine", ["vllm", "sglang", "tgi", "exllamav2"])
def test_gpu_serving_engines_do_not_run_on_apple_silicon(engine: str) -> None:
    quant = {"exllamav2": "exl2=4.0"}.get(engine, "awq")
    report = run_command(f"meta-llama/Llama-3.1-8B-Instruct {quant} engine={engine} "
                         "gpu=m2-max-32gb")
    assert not report.fits and report.rules[0].rule == "hardware"
    assert "Apple M2 Max" in (report.reason or "")
    assert changes(report)[:2] == ["engine=llama.cpp q4", "engine=ollama q4"]


def test_fp8_needs_the_gpu_generation_that_runs_it() -> None:
    v100 = run_command("meta-llama/Llama-3.1-8B-Instruct fp8 engine=vllm gpu=v100-sxm2-32gb")
    assert not v100.fits and "compute capability 7.5" in (v100.reason or "")
    ampere = run_command("meta-llama/Llama-3.1-8B-Instruct fp8 gpu=3090")
    ada = run_command("meta-llama/Llama-3.1-8B-Instruct fp8 gpu=4090")
    # transformers dequantizes FP8 to bf16 below compute capability 8.9: twice the weights.
    assert ampere.breakdown.weights > 1.7 * ada.breakdown.weights  # embeddings were 16-bit
    assert any("dequantized to bf16" in w for w in ampere.warnings)


def test_mxfp4_on_a_dense_model_is_refused() -> None:
    with pytest.raises(UserError, match="dense"):
        run_command("meta-llama/Llama-3.1-8B mxfp4 gpu=24GB")
    assert run_command("openai/gpt-oss-20b mxfp4 gpu=24GB").fits


@pytest.mark.parametrize(("gpu", "runtime"), [("4090", "CUDA"), ("7900xtx", "ROCm"),
                                              ("m2-max-32gb", "Metal")])
def test_the_overhead_names_the_platforms_runtime(gpu: str, runtime: str) -> None:
    report = run_command(f"meta-llama/Llama-3.1-8B q4 gpu={gpu}")
    assert report.gpu.runtime == runtime
    from adapters.text import render_text

    assert f"{runtime} context" in render_text(report)


def test_llama_cpp_split_is_a_yes() -> None:
    report = run_command("llama3:70b gpu=4090")
    assert report.fits and report.verdict == "split"
    details = report.engine_details.engine
    assert isinstance(details, LlamaCppDetails) and 0 < details.n_gpu_layers < 80
    from adapters.text import verdict_sentence

    assert verdict_sentence(report).startswith(
        f"YES, split: {details.n_gpu_layers} of 80 layers on the GPU, about ")
    # Without the RAM for the rest it is a NO.
    assert run_command("llama3:70b gpu=4090 ram=16GB").verdict == "no"


def test_vllm_no_names_the_kv_pool_and_suggests_util_first() -> None:
    report = run_command("meta-llama/Llama-3.1-8B-Instruct engine=vllm gpu=4090 ctx=48k")
    assert not report.fits
    assert (report.reason or "").startswith("no room for one request's KV cache")
    assert changes(report)[0] == "util=0.95"
    assert all("KV pool" in s.why for s in report.suggestions if s.change.startswith(
        ("kv=", "gpu=")))


@pytest.mark.parametrize("command", [
    "meta-llama/Llama-3.1-8B-Instruct gpu=3060",
    "meta-llama/Llama-2-13b-hf fp16 gpu=24GB",
    "Qwen/Qwen2.5-14B-Instruct fp16 gpu=4090 ctx=16k",
    "llama-3-8b q4 gpu='NVIDIA GeForce RTX 3050 Laptop GPU'",
    "openai/gpt-oss-20b gpu=16GB",
])
def test_suggestions_change_something_and_never_repeat_the_setup(command: str) -> None:
    report = run_command(command)
    seen = set()
    for s in report.suggestions:
        assert s.fits and s.change not in seen
        seen.add(s.change)
        assert s.change.split()[0] != report.model.weight_format
        if report.fits:  # tight or split: a change must free memory or run wholly on the GPU
            assert s.total_bytes < 0.97 * report.total_bytes or report.verdict == "split"
    if "Laptop" in report.gpu.name:
        assert not any(s.change.startswith("gpu=2x") for s in report.suggestions)


def test_another_engine_is_suggested_when_transformers_does_not_fit() -> None:
    report = run_command("meta-llama/Llama-3.1-8B-Instruct gpu=3060")
    assert "engine=llama.cpp Q4_K_M" in changes(report)


def test_llama_cpp_without_flash_attention_materializes_the_scores() -> None:
    on = run_command("meta-llama/Llama-3.1-8B Q4_K_M ctx=32k gpu=4090")
    off = run_command("meta-llama/Llama-3.1-8B Q4_K_M fa=off ctx=32k gpu=4090")
    # f32 K*Q for all 32 heads: n_ctx x n_ubatch x heads x 4 bytes (2 GiB at 32k), not f16 mask
    assert off.breakdown.activations - on.breakdown.activations > 1.8 * GIB
    assert off.breakdown.weights == on.breakdown.weights
    assert any("flash attention off" in a for a in off.assumptions)


def test_keys_that_the_engine_does_not_have_are_refused() -> None:
    with pytest.raises(UserError, match="no attn= setting"):
        run_command("meta-llama/Llama-3.1-8B Q4_K_M attn=eager gpu=4090")
    with pytest.raises(UserError, match=r"fa= is the flash-attention flag of llama\.cpp"):
        run_command("meta-llama/Llama-3.1-8B fa=on gpu=4090")


def test_a_quantized_cache_needs_flash_attention_in_llama_cpp() -> None:
    report = run_command("meta-llama/Llama-3.1-8B Q4_K_M fa=off kv=q8 gpu=4090")
    assert not report.fits and "quantized V cache" in (report.reason or "")
    assert changes(report) == ["fa=on", "kv=fp16"]
    ollama = run_command("meta-llama/Llama-3.1-8B Q4_K_M fa=off kv=q8 engine=ollama gpu=4090")
    assert ollama.fits and ollama.request["kv"] == "fp16"


def test_position_schemes_decide_whether_a_context_limit_exists() -> None:
    learned = run_command("openai-community/gpt2 ctx=2048 gpu=8GB")
    assert not learned.fits and "learned positions for 1,024 tokens" in (learned.reason or "")
    assert changes(learned) == ["ctx=1024"]
    relative = run_command("google-t5/t5-base ctx=2048 gpu=8GB")  # relative buckets: no limit
    assert relative.fits and not relative.warnings and relative.max_context > 2048


def test_ollama_does_not_cap_a_model_without_a_trained_length() -> None:
    """T5's relative positions have no trained length: Ollama's cap does not apply (found by the
    property test in CI)."""
    report = run_command("google-t5/t5-base engine=ollama gpu=8GB ctx=14599 batch=14")
    assert report.request["ctx"] == 14599
