"""'...and how?': every answer that fits carries the command that runs it as answered, and its
flags agree with the report (context, layers on the GPU, tensor parallel, budget, KV cache)."""

from __future__ import annotations

import re

import pytest

from core.engines.details import LlamaCppDetails, VllmDetails
from tests.conftest import run_command


def flag(command: str, name: str) -> str:
    found = re.search(rf"{re.escape(name)}[ =]([^ \n]+)", command)
    assert found, f"{name} not in {command!r}"
    return found[1]


def test_llama_cpp_flags_are_the_reports() -> None:
    report = run_command("bartowski/Llama-3.2-3B-Instruct-GGUF Q4_K_M gpu=8GB ctx=8k kv=q8")
    assert report.run is not None and report.run.engine == "llama.cpp"
    cmd = report.run.command
    assert "-hf bartowski/Llama-3.2-3B-Instruct-GGUF:Q4_K_M" in cmd
    details = report.engine_details.engine
    assert isinstance(details, LlamaCppDetails)
    assert flag(cmd, "-c") == str(details.n_ctx) == "8192"
    assert flag(cmd, "-ctk") == "q8_0" and flag(cmd, "-fa") == "on" and flag(cmd, "-ngl") == "99"


def test_a_split_runs_with_its_layers_on_the_gpu() -> None:
    report = run_command("meta-llama/Llama-3.1-70B Q4_K_M gpu=4090 ram=96GB")
    assert report.verdict == "split" and report.run is not None
    details = report.engine_details.engine
    assert isinstance(details, LlamaCppDetails)
    assert flag(report.run.command, "-ngl") == str(details.n_gpu_layers)
    assert any("ships no GGUF" in n for n in report.run.notes)


def test_vllm_flags_are_the_reports() -> None:
    report = run_command("Qwen/Qwen2.5-7B-Instruct engine=vllm gpu=2x4090 ctx=16k kv=fp8 "
                         "util=0.95")
    assert report.run is not None
    cmd = report.run.command
    details = report.engine_details.engine
    assert isinstance(details, VllmDetails) and report.engine_details.parallel is not None
    assert flag(cmd, "--tensor-parallel-size") == str(report.engine_details.parallel.tp) == "2"
    assert flag(cmd, "--max-model-len") == "16384"
    assert float(flag(cmd, "--gpu-memory-utilization")) == details.gpu_memory_utilization == 0.95
    assert flag(cmd, "--kv-cache-dtype") == "fp8"


def test_pipeline_stages_and_other_serving_engines() -> None:
    staged = run_command("meta-llama/Llama-3.1-8B-Instruct engine=vllm pp=2 gpu=2x4090")
    assert staged.run is not None and flag(staged.run.command, "--pipeline-parallel-size") == "2"
    sglang = run_command("Qwen/Qwen2.5-7B-Instruct engine=sglang gpu=2x4090 ctx=8k")
    assert sglang.run is not None and flag(sglang.run.command, "--tp") == "2"
    assert flag(sglang.run.command, "--context-length") == "8192"
    tgi = run_command("Qwen/Qwen2.5-7B-Instruct engine=tgi gpu=2x4090 ctx=8k")
    assert tgi.run is not None and flag(tgi.run.command, "--num-shard") == "2"


def test_ollama_uses_the_library_tag() -> None:
    report = run_command("llama3.1:8b ctx=8k gpu=24GB")
    assert report.run is not None and report.run.command.endswith("ollama run llama3.1:8b")
    assert "OLLAMA_CONTEXT_LENGTH=8192" in report.run.command


@pytest.mark.parametrize(("framework", "word"), [
    ("trl", "SFTConfig("), ("torchtune", "tune run lora_finetune_single_device"),
    ("litgpt", "litgpt finetune lora"), ("unsloth", "FastLanguageModel.from_pretrained"),
    ("axolotl", "adapter: qlora"), ("llama-factory", "quantization_bit: 4")])
def test_training_runs_in_its_framework(framework: str, word: str) -> None:
    report = run_command(f"meta-llama/Llama-3.1-8B train=qlora framework={framework} ctx=2048 "
                         "gc=on gpu=24GB")
    assert report.fits and report.run is not None and word in report.run.command
    assert "2048" in report.run.command


def test_no_command_for_a_no() -> None:
    assert run_command("meta-llama/Llama-3.1-70B gpu=4090 engine=vllm").run is None
