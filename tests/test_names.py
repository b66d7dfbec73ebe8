"""The words people type for models, quantizations and GPUs (issue 17, "Words people use"): each
was refused or misread before, and each runs here through the parser and the estimator as the
CLI and the chat surfaces run them."""

from __future__ import annotations

import pytest

from bot.dispatch import LIST_LIMIT, answer_here
from core.answers import GpuListAnswer
from core.errors import UserError
from core.parser import GpusCommand, parse_command
from tests.conftest import run_command

OLLAMA_TAGS = [
    ("llama3.1:8b", "meta-llama/Llama-3.1-8B-Instruct", "Q4_K_M"),
    ("qwen2.5:7b-instruct-q4_K_M", "Qwen/Qwen2.5-7B-Instruct", "Q4_K_M"),
    ("qwen2.5:7b-instruct-q8_0", "Qwen/Qwen2.5-7B-Instruct", "Q8_0"),
    ("gemma3:27b-it-qat", "google/gemma-3-27b-it", "Q4_0"),
]


@pytest.mark.parametrize(("tag", "repo", "quant"), OLLAMA_TAGS)
def test_ollama_tags_name_the_repo_the_quant_and_the_engine(tag: str, repo: str,
                                                            quant: str) -> None:
    report = run_command(f"{tag} gpu=24GB")
    assert (report.model.id, report.model.weight_format, report.engine) == (repo, quant, "ollama")
    assert any(f"'{tag}' read as Ollama's" in a for a in report.assumptions)


def test_an_ollama_tag_keeps_an_explicit_engine_and_quant() -> None:
    report = run_command("llama3.1:8b Q6_K engine=llama.cpp gpu=24GB")
    assert (report.model.weight_format, report.engine) == ("Q6_K", "llama.cpp")


def test_hf_co_link_with_a_gguf_quant() -> None:
    report = run_command("hf.co/bartowski/Llama-3.2-3B-Instruct-GGUF:Q4_K_M gpu=8GB")
    assert report.model.id == "bartowski/Llama-3.2-3B-Instruct-GGUF" and report.model.weight_format == "Q4_K_M"
    with pytest.raises(UserError, match="not a GGUF type"):
        parse_command("hf.co/bartowski/Llama-3.2-3B-Instruct-GGUF:Q9_Z gpu=8GB")


@pytest.mark.parametrize(("short", "repo"), [
    ("llama-3.3-70b", "meta-llama/Llama-3.3-70B-Instruct"),
    ("mistral-7b", "mistralai/Mistral-7B-Instruct-v0.3"),
    ("mixtral", "mistralai/Mixtral-8x7B-Instruct-v0.1"),
    ("gemma3-27b", "google/gemma-3-27b-it"),
    ("phi3-mini", "microsoft/Phi-3-mini-4k-instruct"),
    ("gpt-oss", "openai/gpt-oss-20b"),
    ("llama-3-8b", "meta-llama/Meta-Llama-3-8B"),
])
def test_common_short_names(short: str, repo: str) -> None:
    report = run_command(f"{short} q4 gpu=24GB")
    assert report.model.id == repo
    assert any(f"'{short}' read as {repo}" in a for a in report.assumptions)


def test_did_you_mean_keeps_the_size() -> None:
    with pytest.raises(UserError) as caught:
        run_command("qwen2.5-32b-instrukt q4 gpu=24GB")
    assert caught.value.hint and "Qwen/Qwen2.5-32B" in caught.value.hint.split(",")[0]
    assert "3B" not in caught.value.hint.split(",")[0]


def test_offline_uses_the_size_in_an_unknown_repo_name() -> None:
    report = run_command("Qwen/Qwen2.5-32B-Instruct-abliterated q4 gpu=24GB")
    assert report.model.id == "Qwen/Qwen2.5-32B-Instruct-abliterated"
    assert "size in its name, 32B" in report.assumptions[0]
    assert 15 * 2**30 < report.breakdown.weights < 20 * 2**30


@pytest.mark.parametrize("words", ["llama-3-8b q4 on 3060", "llama-3-8b q4 on a 3060",
                                   "llama-3-8b q4 on rtx 3060 12gb", "llama-3-8b on 3060 q4"])
def test_on_gpu_phrasing(words: str) -> None:
    report = run_command(words)
    assert report.gpu.name == "NVIDIA GeForce RTX 3060 12GB" and report.model.weight_format == "Q4_K_M"


def test_with_engine_and_at_context_phrasing() -> None:
    report = run_command("llama-3-8b q4 on 4090 with vllm at 8k")
    assert (report.engine, report.request["ctx"]) == ("vllm", 8192)
    with pytest.raises(UserError, match="Say which GPU after 'on'"):
        parse_command("llama-3-8b q4 on")


def test_fp16_means_the_f16_gguf_on_llama_cpp_and_unquantized_on_exllamav2() -> None:
    gguf = run_command("meta-llama/Llama-3.1-8B fp16 engine=llama.cpp gpu=24GB")
    assert gguf.model.weight_format == "F16" and gguf.fits
    exl = run_command("meta-llama/Llama-3.1-8B fp16 engine=exllamav2 gpu=24GB")
    assert exl.model.weight_format == "fp16" and 13 * 2**30 < exl.breakdown.weights < 15 * 2**30


@pytest.mark.parametrize("quant", ["nf4", "fp4"])
def test_qlora_phrasing_with_its_4_bit_word(quant: str) -> None:
    said = run_command(f"meta-llama/Llama-3.1-8B {quant} train=qlora gpu=24GB")
    plain = run_command("meta-llama/Llama-3.1-8B train=qlora gpu=24GB")
    assert said.total_bytes == plain.total_bytes


@pytest.mark.parametrize(("printed", "name"), [
    ("NVIDIA GeForce RTX 3050 Laptop GPU", "NVIDIA GeForce RTX 3050 Laptop GPU"),  # nvidia-smi
    ("NVIDIA GeForce RTX 4060 Laptop GPU", "NVIDIA GeForce RTX 4060 Laptop GPU"),
    ("Card Series: Radeon RX 7900 XTX", "AMD Radeon RX 7900 XTX"),  # rocm-smi
    ("AMD Radeon RX 9070 XT", "AMD Radeon RX 9070 XT"),
    ("Chipset Model: Apple M2 Max 32GB", "Apple M2 Max 32GB"),  # system_profiler, with memory
])
def test_gpu_names_as_the_tools_print_them(printed: str, name: str) -> None:
    assert run_command(f"7b q4 gpu='{printed}'").gpu.name == name


@pytest.mark.parametrize("family", ["jetson-orin", "jetson orin", "m3 max"])
def test_ambiguous_gpu_names_ask(family: str) -> None:
    with pytest.raises(UserError) as caught:
        run_command(f"7b q4 gpu='{family}'")
    assert "which one do you mean" in caught.value.message or "several GPUs" in \
        caught.value.message


def test_gpu_search_finds_the_rdna4_cards() -> None:
    listed = answer_here(parse_command("gpus rx 9070"))
    assert isinstance(listed, GpuListAnswer)
    assert [g.name for g in listed.gpus] == ["AMD Radeon RX 9070", "AMD Radeon RX 9070 XT"]


def test_lists_say_how_many_more() -> None:
    command = parse_command("gpus")
    assert isinstance(command, GpusCommand)
    listed = answer_here(command)
    assert isinstance(listed, GpuListAnswer) and len(listed.gpus) == LIST_LIMIT
    assert listed.more > 100 and listed.more_line and f"{listed.more} more" in listed.more_line
