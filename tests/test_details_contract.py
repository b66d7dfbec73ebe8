"""The Report's engine_details: typed values inside, and in `fits --json` the same keys, in the
same order and nesting, for every engine as before they were typed (the JSON contract)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from core.answer import estimate_command, hub_job, with_hub_details
from core.engines.details import (
    ExllamaDetails,
    LlamaCppDetails,
    TrainingDetails,
    TransformersDetails,
    VllmDetails,
)
from core.errors import UserError
from core.hub_protocol import HubSite
from core.hub_records import GgufFile, HubOk
from core.hub_resolve import resolve_record
from core.parser import EstimateCommand, parse_command
from core.report import (
    Report,
    report_as_dict,
    report_from_json,
    report_json_text,
    report_to_json,
)
from core.snapshot import entries
from tests.conftest import run_command

VLLM_KEYS = ["weights_total_bytes", "budget_bytes", "gpu_memory_utilization", "kv_cache_tokens",
             "kv_blocks", "max_concurrency", "one_sequence_fits", "kv_bytes_per_token",
             "kv_groups", "max_num_batched_tokens", "max_num_seqs", "headroom_bytes",
             "parallel"]
LLAMA_HEAD = ["weights_total_bytes", "n_layers", "n_gpu_layers", "n_ctx", "n_ubatch",
              "flash_attn", "kv_type", "system_ram_bytes", "token_embd_in_ram_bytes", "placement"]
LLAMA_TAIL = ["ram_needed_bytes", "ram_available_bytes", "ram_total_bytes", "ram_reserve_bytes",
              "ram_fits", "unified_memory", "host", "speed_assumptions"]
TRAINING_KEYS = ["weights_total_bytes", "allocated_bytes", "trainable_params", "precision",
                 "gradient_checkpointing", "zero_stage", "cpu_ram_bytes", "micro_batch",
                 "flops_per_token", "activation_ram_bytes"]

GOLDEN: list[tuple[str, type, list[str]]] = [
    ("meta-llama/Llama-2-7b-hf gpu=4090", TransformersDetails,
     ["weights_total_bytes", "reserved_bytes"]),
    ("meta-llama/Llama-2-7b-hf awq engine=vllm gpu=2x3090 ctx=32k", VllmDetails, VLLM_KEYS),
    ("meta-llama/Llama-2-7b-hf fp8 engine=sglang gpu=h100", VllmDetails, VLLM_KEYS),
    ("meta-llama/Llama-2-7b-hf engine=tgi gpu=l40s", VllmDetails, VLLM_KEYS),
    ("meta-llama/Llama-2-7b-hf exl2=4.5 gpu=24GB", ExllamaDetails,
     ["weights_total_bytes", "cache", "chunk_tokens", "embedding_in_ram_bytes"]),
    ("meta-llama/Llama-2-7b-hf train=qlora gpu=24GB", TrainingDetails, TRAINING_KEYS),
    ("meta-llama/Llama-2-7b-hf train=full gpu=4xa100-80g zero=3 offload=cpu", TrainingDetails,
     TRAINING_KEYS),
    ("meta-llama/Llama-2-7b-hf Q4_K_M gpu=4090", LlamaCppDetails, LLAMA_HEAD + LLAMA_TAIL),
    ("meta-llama/Llama-2-7b-hf Q8_0 gpu=none ram=16GB", LlamaCppDetails, LLAMA_HEAD + LLAMA_TAIL),
    ("meta-llama/Llama-3.1-70B Q4_K_M gpu=rtx-3060 ram=32GB", LlamaCppDetails,
     [*LLAMA_HEAD, "partial_offload", *LLAMA_TAIL]),
    ("meta-llama/Llama-3.1-70B Q8_0 engine=ollama gpu=m2-max-64gb", LlamaCppDetails,
     [*LLAMA_HEAD, "partial_offload", *LLAMA_TAIL]),
]
PLACEMENT_KEYS = {
    "placement": ["layers_on_gpu", "output_on_gpu", "cpu_only", "vram_bytes", "ram_bytes",
                  "read_per_token_bytes", "decode_context_tokens"],
    "vram_bytes": ["weights", "kv_cache", "compute_buffer", "overhead", "total"],
    "ram_bytes": ["weights", "token_embd", "kv_cache", "compute_buffer", "total"],
    "read_per_token_bytes": ["gpu", "ram"],
}
HOST_KEYS = ["cpu", "ram_bandwidth_gbs", "cpu_tflops_fp32", "notes"]


def details_json(report: Report) -> dict[str, Any]:
    out: dict[str, Any] = report_as_dict(report)["engine_details"]
    return out


@pytest.mark.parametrize(("command", "kind", "keys"), GOLDEN)
def test_engine_details_keep_their_json_keys(command: str, kind: type, keys: list[str]) -> None:
    report = run_command(command)
    assert isinstance(report.engine_details.engine, kind)
    details = details_json(report)
    assert list(details) == keys
    if "placement" in details:
        placement = details["placement"]
        assert list(placement) == PLACEMENT_KEYS["placement"]
        for side in ("vram_bytes", "ram_bytes", "read_per_token_bytes"):
            assert list(placement[side]) == PLACEMENT_KEYS[side]
        assert list(details["host"]) == HOST_KEYS
        assert all(isinstance(note, str) for note in details["host"]["notes"])
        assert all(isinstance(note, str) for note in details["speed_assumptions"])
    # The printed JSON, read back, gives the same values: lists, not tuples.
    assert json.loads(report_json_text(report))["engine_details"] == details


def test_json_values_keep_their_types() -> None:
    vllm = details_json(run_command("meta-llama/Llama-2-7b-hf engine=vllm gpu=h100"))
    assert isinstance(vllm["gpu_memory_utilization"], float)
    assert isinstance(vllm["max_concurrency"], float)
    assert isinstance(vllm["kv_bytes_per_token"], float)
    assert vllm["one_sequence_fits"] is True and isinstance(vllm["kv_blocks"], int)
    llama = details_json(run_command("meta-llama/Llama-2-7b-hf Q4_K_M gpu=4090"))
    assert llama["kv_type"] == "f16" and llama["flash_attn"] is True
    assert isinstance(llama["placement"]["read_per_token_bytes"]["gpu"], int)


def test_hub_extras_come_last_and_only_when_the_hub_told_them() -> None:
    llama2 = entries()["meta-llama/llama-2-7b-hf"]
    gguf = (GgufFile("Q4_K_M", ("llama-2-7b.Q4_K_M.gguf",), 4_081_004_224),)
    site = HubSite("https://hub.example")
    both = resolve_record("org/L-GGUF", HubOk(
        "org/L-GGUF", sha="s", config=llama2.config, config_repo=llama2.id,
        params={"GGUF": 6_738_415_616}, params_from="GGUF metadata", gguf=gguf), site)
    only_params = resolve_record("org/L", HubOk(
        "org/L", sha="s", config=llama2.config, config_repo=llama2.id,
        params={"BF16": 6_738_415_616}, params_from="safetensors"), site)
    nothing = resolve_record("org/N", HubOk("org/N", sha="s", config=llama2.config,
                                            config_repo=llama2.id), site)

    def answer(repo: str, found: Any) -> dict[str, Any]:
        command = parse_command(f"{repo} gpu=8GB")
        assert isinstance(command, EstimateCommand)
        return details_json(with_hub_details(hub_job(command, found).run(), found))

    gguf_keys = list(answer("org/L-GGUF", both))
    assert gguf_keys == [*LLAMA_HEAD, *LLAMA_TAIL, "hub_params", "gguf_files", "gguf_file_bytes"]
    assert list(answer("org/L", only_params))[-2:] == ["reserved_bytes", "hub_params"]
    assert list(answer("org/N", nothing)) == ["weights_total_bytes", "reserved_bytes"]


def test_details_are_frozen_for_mypy(tmp_path: Path) -> None:
    api = pytest.importorskip("mypy.api")
    code = textwrap.dedent("""\
        from core.report import Report

        def change(report: Report) -> None:
            report.engine_details.weights_total_bytes = 1
        """)
    (tmp_path / "snippet.py").write_text(code)
    out, _, _ = api.run(["--strict", "--cache-dir", str(tmp_path / "cache"),
                         str(tmp_path / "snippet.py")])
    assert 'Property "weights_total_bytes" defined in "ReportDetails" is read-only' in out


@pytest.mark.parametrize("tail", ["q4 gpu=24GB", "q4_k_m gpu=8GB ram=32GB",
                                  "awq engine=vllm gpu=2xa100-80g", "exl2=4.0 gpu=3090",
                                  "mode=train train=qlora gpu=24GB"])
def test_every_report_reads_back_equal_from_its_stored_json(tail: str) -> None:
    """What the shared report cache stores (core.report.report_to_json) gives back the same
    typed report, engine details included, for every bundled model."""
    compared = 0
    for repo_id in sorted(entries()):
        command = parse_command(f"{repo_id} {tail}")
        assert isinstance(command, EstimateCommand)
        try:
            report = estimate_command(command)
        except UserError:
            continue
        assert report_from_json(report_to_json(report)) == report
        compared += 1
    assert compared > 100


def test_a_stored_report_builds_only_the_details_classes() -> None:
    text = report_to_json(estimate_command(parse_command("llama-2-7b q4 gpu=4090")))
    for forged in (text.replace('"$":"ReportDetails"', '"$":"Popen"'),
                   text.replace('"$":"ReportDetails"', '"$":"os.system"'),
                   text.replace('"weights_total_bytes"', '"__class__"'), "[]", "{}", '"x"'):
        with pytest.raises(ValueError):
            report_from_json(forged)


def test_a_stored_report_is_checked_field_by_field() -> None:
    text = report_to_json(estimate_command(parse_command("llama-2-7b q4 gpu=4090")))
    good = json.loads(text)
    forgeries = [
        ("total_bytes", "123"),  # a string for a number
        ("fits", 1),  # a number for a bool
        ("suggestions", [{"change": "ctx=1024"}]),  # an item without its fields
        ("suggestions", "ctx=1024"),  # not a list
        ("model", {**good["report"]["model"], "extra": 1}),  # a key the class does not have
        ("gpu", None),  # not optional
        ("speed", {**good["report"]["speed"], "bound": 7}),
    ]
    for key, value in forgeries:
        body = {**good, "report": {**good["report"], key: value}}
        with pytest.raises(ValueError):
            report_from_json(json.dumps(body))
    body = {**good, "report": {k: v for k, v in good["report"].items() if k != "verdict"}}
    with pytest.raises(ValueError):
        report_from_json(json.dumps(body))
