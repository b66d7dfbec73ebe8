"""The accuracy harness (bench/accuracy.py) against published measurements."""

from __future__ import annotations

import pytest

from bench import accuracy
from bench.accuracy import Comparison, Excluded
from core.errors import UserError

# Median absolute percentage error allowed per engine/task group: the median when the harness
# landed, rounded up to the next 5%, so a change that makes a group worse fails here. The lead
# tightens these as calibration improves (and adds a group when its first record is mapped).
MEDIAN_BOUNDS = {
    "exllamav2/inference": 0.05,
    "hf/inference": 0.10,
    "hf/training": 0.15,
    "llama.cpp/inference": 0.05,
    "sglang/inference": 0.05,
    "tgi/inference": 0.10,
    "vllm/inference": 0.05,
}
# The 90th percentile over every comparison (each vLLM component apart: the headline, counted by
# record and held out, is bounded below). 12% before the 116 records of n001-n116 (LitGPT's
# training table, PEFT, torchtune's tutorials, Qwen's generate() benchmarks) widened the
# training tail to 16%; the bound guards against it growing, the records are not targets.
OVERALL_P90_BOUND = 0.18


@pytest.fixture(scope="module")
def harness() -> tuple[list[Comparison], list[Excluded]]:
    return accuracy.run_all()


def test_every_record_is_compared_or_excluded_with_a_reason(
        harness: tuple[list[Comparison], list[Excluded]]) -> None:
    comparisons, excluded = harness
    compared = {c.id for c in comparisons} | {v.id for v in accuracy.verdict_checks()}
    skipped = {e.id for e in excluded}
    assert not compared & skipped
    assert compared | skipped == set(accuracy.records())
    assert all(e.reason.strip() for e in excluded)
    assert len(excluded) == len(skipped)


def test_every_inference_record_has_a_case_in_id_order() -> None:
    records = accuracy.records()
    inference = [rid for rid, r in records.items() if r["task"] != "training"]
    assert [c["id"] for c in accuracy.cases()] == inference


def test_every_case_command_runs() -> None:
    for case in accuracy.cases():
        if "excluded" in case:
            continue
        report = accuracy.estimate(case["command"])
        assert report.total_bytes > 0, case["id"]


def test_a_failing_command_raises() -> None:
    record = accuracy.records()["m002"]
    case = {"id": "m002", "command": "no-such-model/at-all engine=vllm",
            "compare": {"model_weights": "weights"}, "why": "test"}
    with pytest.raises(UserError):  # an error, never a skip
        accuracy.compare_case(case, record)


def test_comparisons_are_finite_and_positive(
        harness: tuple[list[Comparison], list[Excluded]]) -> None:
    comparisons, _ = harness
    assert comparisons
    for c in comparisons:
        assert c.measured > 0 and c.estimated >= 0, c


def test_group_medians_stay_within_their_bounds(
        harness: tuple[list[Comparison], list[Excluded]]) -> None:
    groups = accuracy.summary(harness[0])["groups"]
    assert set(groups) <= set(MEDIAN_BOUNDS), f"new group(s): {set(groups) - set(MEDIAN_BOUNDS)}"
    for name, stats in groups.items():
        assert stats["median_ape"] <= MEDIAN_BOUNDS[name], (name, stats)


def test_overall_p90_stays_within_its_bound(
        harness: tuple[list[Comparison], list[Excluded]]) -> None:
    overall = accuracy.summary(harness[0])["overall"]
    assert overall["p90_ape"] <= OVERALL_P90_BOUND, overall


def test_the_target_holds_without_the_repeated_sweep_runs(
        harness: tuple[list[Comparison], list[Excluded]]) -> None:
    unique = accuracy.without_repeats(harness[0])
    assert len(unique) < len(harness[0])
    repeated = {c.id for c in harness[0]} & accuracy.REPEATED_RUNS
    assert repeated == accuracy.REPEATED_RUNS  # every named repeat is a compared record
    overall = accuracy.summary(unique)["overall"]
    assert overall["median_ape"] <= 0.05 and overall["p90_ape"] <= OVERALL_P90_BOUND, overall


def test_summary_shape() -> None:
    c = Comparison("x", "hf", "inference", "k", "total", "cmd", 100.0, 110.0, True, "")
    d = Comparison("y", "hf", "inference", "k", "kv_cache_tokens", "cmd", 10.0, 5.0, False, "")
    result = accuracy.summary([c, d])
    assert result["overall"]["n"] == 2
    group = result["groups"]["hf/inference"]
    assert group["median_ape"] == pytest.approx(0.30)
    assert group["p90_ape"] == pytest.approx(0.5)
    assert group["median_abs_gb"] == pytest.approx(10 / 1e9)


def test_held_out_records_are_reported_apart_from_calibration_ones() -> None:
    from bench.accuracy import CALIBRATION_IDS, held_out, run

    comparisons = run()
    unseen = held_out(comparisons)
    assert unseen and all(c.id not in CALIBRATION_IDS for c in unseen)
    assert len(unseen) < len(comparisons)


# Bounds fits does not meet yet, each with why (xfail strict: fixing one fails here until the
# mark is removed).
KNOWN_DISAGREEMENTS = {
    # LitGPT's config-hub table marks these OOM without saying in which phase (training,
    # validation, generating samples, saving a checkpoint): fits' FSDP training peak fits.
    "n012": "LitGPT full fine-tuning of Llama-2-7B with FSDP on 4 x A10G: OOM in an unstated "
            "phase; fits' training peak fits",
    "n015": "the same for Llama-3-8B",
}


@pytest.mark.parametrize("check", [
    pytest.param(v, id=v.id, marks=pytest.mark.xfail(strict=True, reason=KNOWN_DISAGREEMENTS[v.id]))
    if v.id in KNOWN_DISAGREEMENTS else pytest.param(v, id=v.id)
    for v in accuracy.verdict_checks()])
def test_every_published_fit_or_no_fit_bound_agrees(check: accuracy.VerdictCheck) -> None:
    assert check.agrees, f"{check.id}: published {check.expected_fits}, fits {check.verdict}"


@pytest.fixture(scope="module")
def held() -> list:
    from bench import heldout

    return heldout.score()


def test_the_headline_is_held_out_and_within_its_bound(held: list) -> None:
    from bench import heldout

    n, median, p90 = heldout.headline(held)
    assert n == len({s.id for s in held}) >= 130  # each record once
    assert median <= heldout.HEADLINE_MEDIAN_BOUND and p90 <= heldout.HEADLINE_P90_BOUND
    # The re-fit really changes what a left-out source is answered with: vLLM 0.11's constants
    # come from one document, so with it left out its records are answered with 0.19's.
    by_id = {s.id: s for s in held}
    assert by_id["m107"].refitted and by_id["m107"].held_out > 3 * by_id["m107"].in_sample
    assert not by_id["m060"].refitted  # a training record informs no constant


def test_the_readme_and_docs_figures_are_what_the_harness_prints(held: list) -> None:
    from bench import heldout
    from bench.generated import read_block

    assert read_block(heldout.ROOT / "README.md", "accuracy") == heldout.readme_paragraph(held)
    assert read_block(heldout.ROOT / "docs" / "accuracy.md", "accuracy-heldout") == \
        heldout.doc_block(held)


def test_a_source_is_a_document_and_a_sweep_one_per_model() -> None:
    from bench.heldout import source_of

    log = {"id": "f1", "source": "org/repo results/logs/a-b--h100.log (commit 1)"}
    assert source_of(log, "a/b") == "org/repo results/logs: a/b"
    issue = {"id": "m1", "source": "ggml-org/llama.cpp#123 (comment by x)"}
    assert source_of(issue, "m") == "ggml-org/llama.cpp#123"  # one thread, one source
    page = {"id": "m2", "source": "https://x.org/blog#results"}
    assert source_of(page, "m") == "https://x.org/blog"
