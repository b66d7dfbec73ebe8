"""fits' speeds against published measurements (bench/speed_accuracy.py over
bench/reference/speed_cases.jsonl and speed_cases_gpu.jsonl): every group's decode median within
25%, every fitted constant the median of what its records imply, and docs/speed-accuracy.md and
the README's line what the script writes now."""

from __future__ import annotations

import re
import statistics

import pytest

from bench import speed_accuracy
from bench.generated import read_block
from bench.speed_accuracy import Comparison
from core import speed
from core.errors import UserError

# The bound: decode speed within 25% on median, in every group.
DECODE_MEDIAN_BOUND = 0.25
# Prompt processing is rougher (kernels change between releases): each group's median when the
# harness landed, rounded up to the next 5%, so a change that makes it worse fails here.
PROMPT_MEDIAN_BOUNDS = {"llama.cpp CPU": 0.10, "llama.cpp GPU": 0.30}
GPU_CATEGORIES = ("gpu-llamacpp", "gpu-vllm", "gpu-sglang", "gpu-transformers")


@pytest.fixture(scope="module")
def comparisons() -> list[Comparison]:
    found, _ = speed_accuracy.run_all()
    return found


def test_every_record_has_a_source_a_quote_and_a_command_or_a_reason() -> None:
    records = speed_accuracy.records()
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids))
    for r in records:
        assert re.match(r"https://", r["source"]), r["id"]
        assert len(r["quote"]) > 20 and r["model"] and r["quant"] and r["hardware"]
        assert r["category"] in speed_accuracy.ENGINE_GROUPS, r["id"]
        assert "command" in r or "excluded" in r, r["id"]
        assert "excluded" not in r or r["excluded"].strip()
    gpu = [r for r in records if r["category"] in GPU_CATEGORIES and "excluded" not in r]
    # The issue asks for at least 30 GPU measurements, MoE and multi-GPU among them.
    assert len(gpu) >= 30
    assert {r["category"] for r in gpu} == set(GPU_CATEGORIES)
    assert sum(bool(r.get("moe")) for r in gpu) >= 10
    assert sum(bool(r.get("multi_gpu")) for r in gpu) >= 10
    assert all(isinstance(r.get("prompt_in_time"), bool) for r in gpu)


def test_every_group_is_compared_and_has_records_held_out(comparisons: list[Comparison]) -> None:
    decode = [c for c in comparisons if c.quantity == "decode"]
    for group in speed_accuracy.GROUPS:
        if group == "ExLlamaV2":  # no published ExLlamaV2 record in the set yet
            continue
        these = [c for c in decode if group in c.groups]
        assert these and any(c.held_out for c in these), group
    assert {c.id for c in comparisons} >= speed_accuracy.CALIBRATION_IDS


def test_every_groups_decode_median_is_within_the_bound(comparisons: list[Comparison]) -> None:
    rows = [r for r in speed_accuracy.summary(comparisons) if r.quantity == "decode"]
    assert {r.group for r in rows} >= set(speed_accuracy.GROUPS) - {"ExLlamaV2"} | {"all"}
    for row in rows:
        assert row.median <= DECODE_MEDIAN_BOUND, (row.group, row.median)
    overall = next(r for r in rows if r.group == "all")
    assert overall.held_out_median is not None and overall.held_out_median <= DECODE_MEDIAN_BOUND


def test_prompt_medians_are_within_their_recorded_bounds(comparisons: list[Comparison]) -> None:
    rows = {r.group: r for r in speed_accuracy.summary(comparisons) if r.quantity == "prompt"}
    for group, bound in PROMPT_MEDIAN_BOUNDS.items():
        assert rows[group].median <= bound, (group, rows[group].median)


@pytest.mark.parametrize("name", sorted(speed_accuracy.FITS))
def test_a_fitted_constant_is_the_median_of_what_its_records_imply(name: str) -> None:
    implied = speed_accuracy.implied(name)
    assert set(implied) == set(speed_accuracy.FITS[name].ids)
    value = getattr(speed, name)
    assert value == pytest.approx(statistics.median(implied.values()), rel=0.03), implied


def test_a_record_runs_the_real_path() -> None:
    record = next(r for r in speed_accuracy.records() if r["id"] == "s012")
    [decode, prompt] = speed_accuracy.compare(record)
    report = speed_accuracy.estimate(record["command"])
    assert decode.estimated == report.speed.decode_tokens_per_s
    assert decode.measured == 7.22 and prompt.measured == 26.46
    broken = {**record, "command": "no-such-model/at-all gpu=none"}
    with pytest.raises(UserError):  # an error, never a skip
        speed_accuracy.compare(broken)


def test_a_timed_prompt_counts_in_what_fits_compares() -> None:
    """generate()'s wall time ran through the prompt too: fits' figure is generated tokens over
    prompt time plus generation time, lower than its decode speed alone."""
    record = next(r for r in speed_accuracy.records() if r["id"] == "g025")
    assert record["prompt_in_time"]
    [decode] = speed_accuracy.compare(record)
    report = speed_accuracy.estimate(record["command"])
    assert report.speed.decode_tokens_per_s and report.speed.prefill_seconds
    gen = 2048
    expected = gen / (report.speed.prefill_seconds + gen / report.speed.decode_tokens_per_s)
    assert decode.estimated == pytest.approx(expected)
    assert decode.estimated < report.speed.decode_tokens_per_s


def test_the_docs_page_and_the_readme_line_are_what_the_script_writes(
        comparisons: list[Comparison]) -> None:
    _, excluded = speed_accuracy.run_all()
    written = speed_accuracy.DOC.read_text(encoding="utf-8")
    assert written == speed_accuracy.render_doc(comparisons, excluded), (
        f"docs/speed-accuracy.md is stale: run {speed_accuracy.COMMAND}")
    line = speed_accuracy.readme_line(speed_accuracy.summary(comparisons))
    assert read_block(speed_accuracy.README, "speed-accuracy") == line, (
        f"the README's speed line is stale: run {speed_accuracy.COMMAND}")
