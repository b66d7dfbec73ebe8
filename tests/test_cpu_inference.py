"""llama.cpp and Ollama on the CPU side: placement in VRAM and RAM, RAM sufficiency, speed of a
CPU-only run and of a GPU/CPU split, and the suggestions that come with their speeds."""

from __future__ import annotations

import pytest

from core.cpus import GIB, resolve_cpu
from core.engines.details import LlamaCppDetails, Placement, RamCheck
from core.errors import UserError
from core.report import Report
from core.speed import (
    CPU_DECODE_EFFICIENCY,
    DECODE_EFFICIENCY,
    LLAMACPP_MOE_LAYER_US,
    METAL_DECODE_EFFICIENCY,
)
from tests.conftest import details_of, run_command

CPU_ONLY = "meta-llama/Meta-Llama-3-8B Q4_K_M engine=llama.cpp gpu=none cpu=7950x ram=64GB"
HYBRID = "Qwen/Qwen3-30B-A3B Q4_K_M engine=llama.cpp gpu=rtx-3060 ram=32GB ctx=8192"


def llama(report: Report) -> LlamaCppDetails:
    return details_of(report, LlamaCppDetails)


def placement(report: Report) -> Placement:
    return llama(report).placement


def ram_check(report: Report) -> RamCheck:
    check = llama(report).ram
    assert check is not None
    return check


def test_cpu_only_puts_everything_in_ram_and_judges_against_ram() -> None:
    report = run_command(CPU_ONLY)
    where = placement(report)
    assert where.cpu_only and where.layers_on_gpu == 0
    assert where.vram_bytes.total == 0
    ram = where.ram_bytes
    assert ram.token_embd > 0  # llama.cpp keeps token_embd in host memory
    assert ram.total == ram.weights + ram.token_embd + ram.kv_cache + ram.compute_buffer
    # The Report's device is RAM less the OS reserve; the total is what sits in RAM.
    assert report.gpu.memory_bytes == 64 * GIB and report.gpu.usable_bytes == 56 * GIB
    assert "CPU only" in report.gpu.name and "7950X" in report.gpu.name
    assert report.total_bytes == ram.total and report.breakdown.overhead == 0
    assert ram_check(report).ram_needed_bytes == ram.total
    assert ram_check(report).ram_fits is True and report.fits
    assert report.request["gpu"] == "none" and report.engine == "llama.cpp"


def test_cpu_only_too_little_ram_is_a_no_with_cheaper_quants_that_fit() -> None:
    report = run_command("meta-llama/Llama-3.1-70B Q8_0 gpu=none cpu=7950x ram=64GB")
    assert not report.fits and ram_check(report).ram_fits is False
    assert report.suggestions and all(s.fits for s in report.suggestions)
    quant = next(s for s in report.suggestions if "quantization" in s.why)
    assert "tokens/s" in quant.why
    assert not any(s.change.startswith("gpu=") for s in report.suggestions)  # no GPUs to add
    applied = run_command(f"meta-llama/Llama-3.1-70B {quant.change} gpu=none cpu=7950x ram=64GB")
    assert applied.fits and applied.total_bytes == quant.total_bytes


def test_cpu_only_decode_speed_is_ram_bandwidth_over_bytes_read() -> None:
    report = run_command(CPU_ONLY + " prompt=1 gen=128")
    read = placement(report).read_per_token_bytes
    assert read.gpu == 0
    bandwidth = resolve_cpu("7950x").memory_channels * 5200 * 8 / 1000  # type: ignore[operator]
    expected = bandwidth * 1e9 * CPU_DECODE_EFFICIENCY / read.ram
    assert report.speed.decode_tokens_per_s == pytest.approx(expected, abs=0.06)
    # Prompt processing is compute-bound on the CPU's FLOPS, and says so.
    assert report.speed.prefill_seconds is not None
    assert any("FLOPs/cycle" in a for a in report.assumptions)
    assert any("DDR5-5200" in a for a in report.assumptions)


def test_faster_ram_or_a_given_bandwidth_changes_the_speed() -> None:
    base = run_command(CPU_ONLY).speed.decode_tokens_per_s
    faster = run_command(CPU_ONLY.replace("ram=64GB", "ram=64GB@6400")).speed.decode_tokens_per_s
    given = run_command(CPU_ONLY + " membw=41.6").speed.decode_tokens_per_s
    assert base and faster and given
    assert faster / base == pytest.approx(6400 / 5200, rel=0.02)
    assert given / base == pytest.approx(0.5, rel=0.02)


def test_hybrid_places_layers_on_both_sides_and_the_times_add() -> None:
    report = run_command(HYBRID)
    details, check = llama(report), ram_check(report)
    where = details.placement
    ngl = where.layers_on_gpu
    assert 0 < ngl < 48 and details.n_gpu_layers == ngl and not where.output_on_gpu
    vram, ram = where.vram_bytes, where.ram_bytes
    assert vram.total <= report.gpu.usable_bytes
    assert ram.total == details.system_ram_bytes == check.ram_needed_bytes
    assert check.ram_available_bytes == 28 * GIB and check.ram_fits is True
    # A split answer's breakdown is the GPU's side; with RAM's it is the all-GPU estimate.
    assert report.verdict == "split" and report.fits
    assert (vram.weights, vram.kv_cache) == (report.breakdown.weights, report.breakdown.kv_cache)
    whole = run_command(HYBRID + " ngl=48")
    assert vram.weights + ram.weights == whole.breakdown.weights
    assert vram.kv_cache + ram.kv_cache == whole.breakdown.kv_cache
    read = where.read_per_token_bytes
    # Every layer of Qwen3-30B-A3B routes to experts: each one on the GPU adds its dispatch.
    gpu_time = (read.gpu / (360e9 * DECODE_EFFICIENCY["llama.cpp"])
                + ngl * LLAMACPP_MOE_LAYER_US / 1e6)
    ram_time = read.ram / (89.6e9 * CPU_DECODE_EFFICIENCY)
    assert report.speed.decode_tokens_per_s == pytest.approx(1 / (gpu_time + ram_time), abs=0.06)
    assert any("RAM read at" in a for a in report.assumptions)
    assert any("VRAM read at" in a for a in report.assumptions)


def test_moe_reads_only_the_active_experts() -> None:
    report = run_command(HYBRID + " prompt=1 gen=2")
    read = placement(report).read_per_token_bytes
    weights = report.engine_details.weights_total_bytes
    # Qwen3-30B-A3B routes 8 of 128 experts: a token reads about a tenth of the weights.
    assert 0.05 * weights < read.gpu + read.ram < 0.2 * weights


def test_ngl_key_gives_that_split_and_its_verdict() -> None:
    auto = run_command(HYBRID)
    ngl = placement(auto).layers_on_gpu
    asked = run_command(HYBRID + f" ngl={ngl}")
    assert asked.fits  # the GPU side of the split fits, and RAM suffices
    assert asked.total_bytes == placement(auto).vram_bytes.total
    assert asked.speed.decode_tokens_per_s == auto.speed.decode_tokens_per_s
    fewer = run_command(HYBRID + " ngl=10")
    assert fewer.total_bytes < asked.total_bytes
    assert fewer.speed.decode_tokens_per_s < asked.speed.decode_tokens_per_s  # type: ignore[operator]
    too_many = run_command(HYBRID + " ngl=48")
    assert not too_many.fits


def test_hybrid_needs_enough_ram() -> None:
    report = run_command("meta-llama/Llama-3.1-70B Q4_K_M gpu=rtx-3060 ram=16GB ngl=20")
    assert ram_check(report).ram_fits is False and not report.fits


def test_a_split_answer_is_what_the_same_ngl_gives_and_its_suggestions_carry_speed() -> None:
    report = run_command(HYBRID)
    ngl = llama(report).n_gpu_layers
    same = run_command(f"{HYBRID} ngl={ngl}")
    assert report.total_bytes == same.total_bytes and same.fits
    assert report.speed.decode_tokens_per_s == same.speed.decode_tokens_per_s
    assert report.suggestions and all("tokens/s" in s.why for s in report.suggestions)
    assert not any(s.change.startswith("ngl=") for s in report.suggestions)  # it is the answer


def test_shorter_context_suggestion_comes_with_its_speed() -> None:
    report = run_command("meta-llama/Llama-3.1-8B Q8_0 engine=llama.cpp ctx=131072 gpu=4090")
    ctx = next(s for s in report.suggestions if s.change.startswith("ctx="))
    assert "tokens/s" in ctx.why


def test_apple_silicon_uses_metal_efficiency_and_one_memory_pool() -> None:
    report = run_command("meta-llama/Meta-Llama-3-8B Q4_K_M engine=llama.cpp gpu=m2-max-64gb "
                         "prompt=1 gen=128")
    check = ram_check(report)
    assert check.unified_memory is True
    read = placement(report).read_per_token_bytes
    assert report.speed.decode_tokens_per_s == pytest.approx(
        400e9 * METAL_DECODE_EFFICIENCY / read.gpu, abs=0.06)
    # On one pool, the RAM a run needs is the GPU side and the RAM side together.
    vram = placement(report).vram_bytes.total
    assert check.ram_needed_bytes == vram + llama(report).system_ram_bytes


def test_cpu_only_needs_a_gguf_and_llama_cpp() -> None:
    with pytest.raises(UserError) as err:
        run_command("meta-llama/Meta-Llama-3-8B fp16 gpu=none")
    assert "GGUF" in err.value.message and err.value.hint
    with pytest.raises(UserError) as err:
        run_command("meta-llama/Meta-Llama-3-8B awq engine=vllm gpu=none")
    assert "llama.cpp" in err.value.message
    report = run_command("meta-llama/Meta-Llama-3-8B q4 gpu=none")
    assert report.engine == "llama.cpp" and report.model.weight_format == "Q4_K_M"


def test_cpu_side_keys_are_noted_when_the_engine_does_not_use_them() -> None:
    report = run_command("meta-llama/Meta-Llama-3-8B bf16 gpu=4090 ram=64GB")
    assert report.engine == "hf" and not isinstance(report.engine_details.engine, LlamaCppDetails)
    assert any("only llama.cpp and Ollama use" in a for a in report.assumptions)


def test_unknown_cpu_is_a_user_error_with_suggestions() -> None:
    with pytest.raises(UserError) as err:
        run_command(CPU_ONLY.replace("7950x", "7950xx"))
    assert "Unknown CPU" in err.value.message and "Did you mean" in str(err.value.hint)


def test_full_gpu_run_keeps_only_the_embedding_in_ram() -> None:
    report = run_command("meta-llama/Meta-Llama-3-8B Q4_K_M gpu=4090")
    where = placement(report)
    assert where.output_on_gpu and where.layers_on_gpu == 32
    assert where.ram_bytes.total == where.ram_bytes.token_embd
    assert where.read_per_token_bytes.ram == 0
