"""The `fits` console script as a user runs it: a subprocess, offline, with exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


def fits(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True,
                          env=ENV, timeout=60, check=False)


def test_readme_example_answers_offline() -> None:
    out = fits("meta-llama/Llama-2-7b q4 ctx=4096 gpu=24GB")
    assert out.returncode == 0, out.stderr
    first = out.stdout.splitlines()[0]
    assert first.startswith("YES: meta-llama/Llama-2-7b-hf (Q4_K_M)")
    assert "weights" in out.stdout and "kv cache" in out.stdout
    assert "Assumptions:" in out.stdout


def test_json_report_has_the_design_keys() -> None:
    out = fits("--json", "meta-llama/Llama-2-7b q4 ctx=4096 gpu=24GB")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    for key in ("request", "model", "gpu", "total_bytes", "breakdown", "fits", "headroom_bytes",
                "max_context", "max_batch", "suggestions", "speed", "engine_details",
                "assumptions", "warnings"):
        assert key in report
    assert report["model"]["source"] == "snapshot"
    assert report["model"]["params"] == 6_738_415_616
    assert set(report["breakdown"]) == {"weights", "kv_cache", "activations", "gradients",
                                        "optimizer", "overhead"}
    assert report["total_bytes"] == sum(report["breakdown"].values())


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("lama-2-7b q4", "does not know the model"),
        ("llama-2-7b q4 ctx=lots", "ctx"),
        ("llama-2-7b q4 frobnicate=3", "Unknown option"),
        ("llama-2-7b q4 gpu=banana", "banana"),
    ],
)
def test_bad_input_is_one_sentence_exit_2_no_traceback(command: str, message: str) -> None:
    out = fits(command)
    assert out.returncode == 2
    assert out.stdout == ""
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert lines[0].startswith("error: ") and message in lines[0]
    assert len(lines) <= 2


def test_help_gpus_and_models_commands() -> None:
    assert "/fits <model>" in fits("help").stdout
    assert "4090" in fits("gpus", "4090").stdout
    assert "Qwen/Qwen3-8B" in fits("models", "qwen3-8b").stdout


def test_uploaded_config_file(tmp_path) -> None:
    config = {"model_type": "llama", "hidden_size": 2048, "num_hidden_layers": 16,
              "num_attention_heads": 32, "num_key_value_heads": 8, "intermediate_size": 8192,
              "vocab_size": 128256, "tie_word_embeddings": True}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    out = fits("--json", "--config", str(path), "my-model bf16 gpu=8GB")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["model"]["source"] == "config"
    assert report["model"]["params"] == 1_235_814_400  # Llama-3.2-1B's exact count


CPU_ONLY = "meta-llama/Meta-Llama-3-8B Q4_K_M engine=llama.cpp gpu=none cpu=7950x ram=64GB"
HYBRID = "Qwen/Qwen3-30B-A3B Q4_K_M engine=llama.cpp gpu=rtx-3060 ram=32GB ctx=8192"


@pytest.mark.parametrize("command", [CPU_ONLY, HYBRID])
def test_cpu_and_hybrid_answers_show_placement_ram_and_speed(command: str) -> None:
    from adapters.text import placement_lines
    from core.engines.details import LlamaCppDetails
    from core.engines.details import as_json as to_json
    from core.units import format_bytes
    from tests.conftest import details_of, run_command

    out = fits(command)
    assert out.returncode == 0, out.stderr
    report = run_command(command)
    text = out.stdout
    for line in placement_lines(report):  # the same placement the Report holds
        assert line in text
    details = details_of(report, LlamaCppDetails)
    assert details.ram is not None
    need = format_bytes(details.ram.ram_needed_bytes)
    have = format_bytes(details.ram.ram_available_bytes)
    assert f"RAM: needs {need} of {have} usable" in text
    assert f"about {report.speed.decode_tokens_per_s:g} tokens/s decoding" in text
    assert "RAM read at" in text and "left for the OS" in text
    as_json = json.loads(fits("--json", command).stdout)
    assert as_json["engine_details"]["placement"] == to_json(details.placement)
    assert as_json["speed"]["decode_tokens_per_s"] == report.speed.decode_tokens_per_s


def test_cpu_only_answer_is_about_ram() -> None:
    out = fits(CPU_ONLY)
    first = out.stdout.splitlines()[0]
    assert first.startswith("YES: meta-llama/Meta-Llama-3-8B (Q4_K_M) on AMD Ryzen 9 7950X "
                            "(CPU only, 64 GB RAM) with llama.cpp")
    assert "Placement: everything in system RAM (CPU only)" in out.stdout
    assert "VRAM" not in out.stdout


def test_hybrid_answer_shows_both_sides() -> None:
    out = fits(HYBRID)
    assert "layers on the GPU (-ngl" in out.stdout
    assert "  VRAM " in out.stdout and "  RAM " in out.stdout and "token embedding" in out.stdout
    assert out.stdout.startswith("YES, split: ")  # llama.cpp's -ngl auto runs it split
    assert "To run it wholly on the GPU:" in out.stdout


def test_bad_cpu_keys_are_one_sentence() -> None:
    out = fits("llama3-8b q4 cpu=7950xx gpu=none")
    assert out.returncode == 2 and out.stderr.startswith('error: Unknown CPU "7950xx".')
    out = fits("llama3-8b q4 ram=lots")
    assert out.returncode == 2 and "RAM size" in out.stderr


def test_vllm_answer_explains_a_sliding_window_pool() -> None:
    hybrid = fits("google/gemma-3-27b-it bf16 engine=vllm gpu=h100 ctx=128k")
    assert hybrid.returncode == 0, hybrid.stderr
    assert "tokens per layer group; sliding-window layers keep only their window" in hybrid.stdout
    # It fits, so its suggestions are offered for more room, not "to make it fit".
    assert "For more room:" in hybrid.stdout and "To make it fit" not in hybrid.stdout
    dense = fits("meta-llama/Meta-Llama-3-8B bf16 engine=vllm gpu=h100")
    assert "KV cache holds" in dense.stdout and "(max concurrency at this ctx:" in dense.stdout


# --- the Hub's settings: the CLI and the service read one environment the same way ------------

HUB_ENVIRONMENTS: list[dict[str, str]] = [
    {},
    {"HF_ENDPOINT": "", "HF_TOKEN": "", "HUGGING_FACE_HUB_TOKEN": "", "HF_HUB_OFFLINE": "",
     "FITS_CACHE_DIR": "", "FITS_HUB_DEADLINE_S": ""},
    {"HF_ENDPOINT": " http://hub.local:8080/ ", "HF_TOKEN": " hf_first ", "HF_HUB_OFFLINE": "1",
     "FITS_CACHE_DIR": " /tmp/fits-cache ", "FITS_HUB_DEADLINE_S": " 2.5 "},
    {"HUGGING_FACE_HUB_TOKEN": "hf_alias"},
    {"HF_TOKEN": "", "HUGGING_FACE_HUB_TOKEN": "hf_alias"},
    {"HF_TOKEN": "   ", "HUGGING_FACE_HUB_TOKEN": "hf_alias"},
    {"HF_TOKEN": "hf_first", "HUGGING_FACE_HUB_TOKEN": "hf_alias"},
    {"HF_TOKEN": "   ", "HUGGING_FACE_HUB_TOKEN": "  "},
    *({"HF_HUB_OFFLINE": value} for value in ("0", "1", "true", "false", "TRUE", "No", " on ",
                                              "off", "y", "f")),
    {"FITS_HUB_DEADLINE_S": "60"},
    {"FITS_HUB_DEADLINE_S": "0.1"},
    {"FITS_HUB_DEADLINE_S": "1e1"},
]
BAD_HUB_ENVIRONMENTS: list[tuple[dict[str, str], str]] = [
    *(({"FITS_HUB_DEADLINE_S": value},
       f"FITS_HUB_DEADLINE_S={value!r} is not a number of seconds from 0.1 to 60.")
      for value in ("abc", "0", "0.05", "61", "nan", "inf", "-1")),
    ({"HF_HUB_OFFLINE": "maybe"}, "HF_HUB_OFFLINE='maybe' is neither on nor off."),
    ({"HF_ENDPOINT": "ftp://hub.local"}, "The Hub endpoint 'ftp://hub.local' is not an http(s) URL."),
]


def _only(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    from adapters.hub.settings import ENV_NAMES

    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("env", HUB_ENVIRONMENTS)
def test_the_cli_and_the_service_read_the_hub_settings_alike(
        monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    from bot.cli import hub_settings
    from bot.settings import Settings

    _only(monkeypatch, env)
    cli = hub_settings()
    assert Settings(_env_file=None).hub() == cli
    assert cli.token == ((env.get("HF_TOKEN") or "").strip()
                         or (env.get("HUGGING_FACE_HUB_TOKEN") or "").strip() or None)


@pytest.mark.parametrize(("env", "message"), BAD_HUB_ENVIRONMENTS)
def test_a_bad_hub_setting_is_the_same_sentence_on_both(
        monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str) -> None:
    from bot.cli import hub_settings
    from bot.settings import Settings
    from core.errors import UserError

    _only(monkeypatch, env)
    with pytest.raises(UserError) as cli:
        hub_settings()
    settings = Settings(_env_file=None)
    with pytest.raises(UserError) as service:
        settings.hub()
    assert cli.value.message == service.value.message == message
    assert cli.value.hint == service.value.hint


def test_the_spellings_the_settings_take() -> None:
    from adapters.hub.settings import HubSettings

    read = HubSettings.from_env
    assert [read({"HF_HUB_OFFLINE": v}).offline for v in ("1", "On", "yes", "0", "OFF", "")] == \
        [True, True, True, False, False, False]
    assert read({"FITS_HUB_DEADLINE_S": ""}).deadline_s == 5.0
    assert read({"HF_ENDPOINT": ""}).endpoint == "https://huggingface.co"


def test_the_cli_says_which_hub_setting_is_wrong() -> None:
    env = {**ENV, "HF_HUB_OFFLINE": "0", "FITS_HUB_DEADLINE_S": "soon"}
    out = subprocess.run([sys.executable, "-m", "bot", "fits-test/Unknown-1B q4"],
                         capture_output=True, text=True, env=env, timeout=60, check=False)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.splitlines() == [
        "error: FITS_HUB_DEADLINE_S='soon' is not a number of seconds from 0.1 to 60.",
        "hint: Set FITS_HUB_DEADLINE_S to seconds, such as 5, or unset it for the default (5 s)."]
