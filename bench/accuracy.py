"""fits against every published measurement in bench/reference/measured-public.jsonl.

    python -m bench.accuracy          # per-comparison table, summary by engine/task, worst, excluded

Inference records are mapped in bench/reference/cases.jsonl: each case names the fits command
that describes the record's setup and which measured key is compared with which Report quantity
(`compare`), or says why the record cannot be compared (`excluded`). Training records are mapped
in bench/reference/training_cases.jsonl and compared by bench.training_reference; training
records it does not map are listed as excluded. Every case runs through the real path
(core.parser.parse_command + core.answer.estimate_command); a command that fails raises.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from bench import training_reference
from bench.reference_set import cases, records, training_cases
from core.answer import offline_job
from core.calibration import FITTED, Calibration
from core.engines.details import TrainingDetails, TransformersDetails, VllmDetails
from core.parser import EstimateCommand, parse_command
from core.report import Report

GB = 10**9
BYTE_UNITS = {"GiB": 1 << 30, "GB": 10**9, "MiB": 1 << 20, "MB": 10**6}


D = TypeVar("D")


def _of(report: Report, kind: type[D]) -> D:
    """The engine's own figures, which must be of ``kind`` for the quantity compared."""
    details = report.engine_details.engine
    if not isinstance(details, kind):
        raise KeyError(f"engine {report.engine} reports no {kind.__name__}")
    return details


def _max_concurrency(report: Report) -> float:
    value = _of(report, VllmDetails).max_concurrency
    if value is None:
        raise KeyError(f"engine {report.engine} reports no max_concurrency without a ctx")
    return value


# Report quantity -> (getter, is a byte count). Each reads real fields of the Report.
QUANTITIES: dict[str, tuple[Callable[[Report], float], bool]] = {
    "weights": (lambda r: r.breakdown.weights, True),
    "kv_cache": (lambda r: r.breakdown.kv_cache, True),
    "activations": (lambda r: r.breakdown.activations, True),
    "overhead": (lambda r: r.breakdown.overhead, True),
    "total": (lambda r: r.total_bytes, True),
    # allocator figures (torch.cuda.max_memory_allocated) leave out the CUDA context
    "total_without_context": (lambda r: r.total_bytes - r.breakdown.overhead, True),
    # summed over every GPU of gpu=Nx... (the breakdown is per GPU)
    "kv_cache_all_gpus": (lambda r: r.breakdown.kv_cache * r.gpu.count, True),
    "total_without_context_all_gpus": (
        lambda r: (r.total_bytes - r.breakdown.overhead) * r.gpu.count, True),
    "gguf_weights": (lambda r: r.engine_details.weights_total_bytes, True),
    # what stays allocated once generate() has finished: the weights and the whole cache, the
    # prefill's activations freed (the Qwen3 speed table, n083-n101: see their records)
    "weights_and_kv": (lambda r: r.breakdown.weights + r.breakdown.kv_cache, True),
    # what nvidia-smi shows of transformers' generate(): allocated + the allocator's cached
    # blocks while the cache grows (core/engines/transformers.py GROWTH_RESERVE)
    "reserved": (lambda r: _of(r, TransformersDetails).reserved_bytes, True),
    # training's torch.cuda.max_memory_allocated (the breakdown is the reserved peak)
    "allocated": (lambda r: _of(r, TrainingDetails).allocated_bytes, True),
    "budget": (lambda r: _of(r, VllmDetails).budget_bytes, True),
    "kv_cache_tokens": (lambda r: _of(r, VllmDetails).kv_cache_tokens, False),
    "kv_blocks": (lambda r: _of(r, VllmDetails).kv_blocks, False),
    "max_concurrency": (_max_concurrency, False),
}


@dataclass(frozen=True)
class Comparison:
    id: str
    engine: str  # the engine fits ran (hf, vllm, llama.cpp, ...)
    task: str  # inference | training
    measured_key: str
    quantity: str
    command: str
    measured: float  # bytes, or a count for token/block/concurrency quantities
    estimated: float
    is_bytes: bool
    why: str

    @property
    def error(self) -> float:
        """Signed relative error of fits: (fits - measured) / measured."""
        return (self.estimated - self.measured) / self.measured

    @property
    def abs_error_gb(self) -> float | None:
        return abs(self.estimated - self.measured) / GB if self.is_bytes else None

    @property
    def group(self) -> str:
        return f"{self.engine}/{self.task}"


@dataclass(frozen=True)
class VerdictCheck:
    """A published fit/no-fit bound ("runs on a 24 GB card", "out of memory in 8 GB"): fits'
    verdict must agree with it."""

    id: str
    task: str
    command: str
    expected_fits: bool
    got_fits: bool
    verdict: str
    why: str

    @property
    def agrees(self) -> bool:
        return self.expected_fits == self.got_fits


def verdict_checks() -> list[VerdictCheck]:
    """Every case that states a bound (``expect_fits``) rather than a measured amount."""
    refs = records()
    out = []
    for case in [*cases(), *training_cases()]:
        if "expect_fits" not in case:
            continue
        report = estimate(case["command"])
        out.append(VerdictCheck(case["id"], str(refs[case["id"]]["task"]), case["command"],
                                bool(case["expect_fits"]), report.fits, report.verdict,
                                case["why"]))
    return out


@dataclass(frozen=True)
class Excluded:
    id: str
    task: str
    reason: str


def estimate(command_text: str, calibration: Calibration = FITTED) -> Report:
    """One command through the real path; anything that does not estimate raises.
    ``calibration``: the fitted constants to answer with (bench.heldout re-fits them)."""
    command = parse_command(command_text)
    if not isinstance(command, EstimateCommand):
        raise ValueError(f"{command_text!r} is not an estimate command")
    return replace(offline_job(command), calibration=calibration).run()


def _bytes_per_unit(unit: str, case_id: str) -> int:
    if unit not in BYTE_UNITS:
        raise ValueError(f"{case_id}: unit {unit!r} is not one of {sorted(BYTE_UNITS)}; "
                         "set 'unit' in the case")
    return BYTE_UNITS[unit]


def compare_case(case: dict[str, Any], record: dict[str, Any],
                 calibration: Calibration = FITTED) -> list[Comparison]:
    report = estimate(case["command"], calibration)
    out = []
    for key, quantity in case["compare"].items():
        getter, is_bytes = QUANTITIES[quantity]
        value = float(record["measured"][key])
        if is_bytes:
            value *= _bytes_per_unit(case.get("unit") or record["unit"], case["id"])
        out.append(Comparison(case["id"], report.engine, str(record["task"]), key, quantity,
                              case["command"], value, float(getter(report)), is_bytes,
                              case["why"]))
    return out


def _training() -> list[Comparison]:
    mapped = {c["id"]: c for c in training_cases()}
    out = []
    for t in training_reference.compare_all():
        case = mapped[t.id]
        quantity = {"allocated": "allocated", "torch_reserved": "total_without_context"}.get(
            case["measures"], "total")
        is_bytes = case["measures"] != "max_context"  # else a token count
        out.append(Comparison(t.id, "hf", "training", case["quantity"], quantity, t.command,
                              t.measured_bytes, t.estimated_bytes, is_bytes, t.why))
    return out


def _check_cases(refs: dict[str, dict[str, Any]], rows: list[dict[str, Any]]) -> None:
    seen: set[str] = set()
    for case in rows:
        cid = case.get("id")
        if cid not in refs:
            raise ValueError(f"case {cid!r} names no record of measured-public.jsonl")
        if cid in seen:
            raise ValueError(f"case {cid} appears twice in cases.jsonl")
        seen.add(cid)
        if refs[cid]["task"] == "training":
            raise ValueError(f"{cid} is a training record; map it in training_cases.jsonl")
        if "excluded" in case:
            if not str(case["excluded"]).strip():
                raise ValueError(f"{cid}: an exclusion needs a reason")
            continue
        if "expect_fits" in case:  # a bound: verdict_checks() compares the verdict
            continue
        if not case.get("compare"):
            raise ValueError(f"{cid}: a case compares at least one quantity or is excluded")
        for key, quantity in case["compare"].items():
            if key not in refs[cid]["measured"]:
                raise ValueError(f"{cid}: {key!r} is not a measured key of the record")
            if quantity not in QUANTITIES:
                raise ValueError(f"{cid}: {quantity!r} is not a known quantity")


def run_all() -> tuple[list[Comparison], list[Excluded]]:
    refs = records()
    rows = cases()
    _check_cases(refs, rows)
    comparisons: list[Comparison] = []
    excluded: list[Excluded] = []
    for case in rows:
        if "excluded" in case:
            excluded.append(Excluded(case["id"], "inference", str(case["excluded"])))
        elif "compare" in case:
            comparisons += compare_case(case, refs[case["id"]])
    comparisons += _training()
    training_rows = training_cases()
    for row in training_rows:
        if "excluded" in row:
            if not str(row["excluded"]).strip():
                raise ValueError(f"{row['id']}: an exclusion needs a reason")
            excluded.append(Excluded(row["id"], "training", str(row["excluded"])))
    # Every record is compared or excluded with its reason: none is skipped silently.
    handled = {c["id"] for c in rows} | {c["id"] for c in training_rows}
    missing = [rid for rid in refs if rid not in handled]
    if missing:
        raise ValueError(f"records neither mapped nor excluded: {', '.join(missing)} (add a "
                         "case to bench/reference/cases.jsonl or training_cases.jsonl)")
    order = list(refs)
    comparisons.sort(key=lambda c: order.index(c.id))
    excluded.sort(key=lambda e: order.index(e.id))
    return comparisons, excluded


def run() -> list[Comparison]:
    return run_all()[0]


def excluded() -> list[Excluded]:
    return run_all()[1]


def _percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def _stats(items: Iterable[Comparison]) -> dict[str, float | int | None]:
    items = list(items)
    errors = [abs(c.error) for c in items]
    gb = [e for c in items if (e := c.abs_error_gb) is not None]
    return {
        "n": len(items),
        "median_ape": statistics.median(errors),
        "p90_ape": _percentile(errors, 90),
        "median_abs_gb": statistics.median(gb) if gb else None,
    }


def summary(comparisons: list[Comparison]) -> dict[str, Any]:
    """{'overall': stats, 'groups': {'engine/task': stats}}; ape = absolute percentage error
    as a fraction (0.05 = 5%), abs_gb = absolute error in decimal GB (byte quantities only)."""
    groups: dict[str, list[Comparison]] = {}
    for c in comparisons:
        groups.setdefault(c.group, []).append(c)
    return {"overall": _stats(comparisons),
            "groups": {g: _stats(items) for g, items in sorted(groups.items())}}


# Records a constant in core/ was fitted on (each constant names them next to its value):
# vLLM's budget and non-torch memory, TGI's fraction, the training loss peak. The rest of the
# reference set never informed a constant, so its error is the held-out error.
# Records some constant was fitted on (the constants name them): the vLLM profiling constants
# (bench/calibrate_vllm.py: every vLLM 0.19 record with an activation peak, and m106/m107/m111
# for version=0.11), vLLM's non-torch memory (m113, m118, m119), TGI's token budget (m197), the
# training's reserved peak (logits and the recomputed layer both held, chosen on fsdp_qlora's
# reserved rows m212-m226; the loss's bytes per logit are measured, not fitted). Every other
# record is held out.
VLLM_019_FIT = frozenset({
    "f001", "f002", "f003", "f004", "f005", "f006", "f007", "f008", "f009", "f010", "f011",
    "f012", "f015", "f018", "f019", "f020", "f022", "f023", "f024", "f027", "f028", "f029",
    "f030", "f031", "f032", "f033", "f035", "f040", "f041", "f042", "f043", "f045", "f046",
    "f047", "f048", "f049", "f052", "f053", "f054", "f055", "f058", "f059"})
CALIBRATION_IDS = VLLM_019_FIT | frozenset({
    "m088", "m106", "m107", "m111", "m113", "m117", "m118", "m119", "m197", "m212", "m213",
    "m214", "m215", "m217", "m218", "m219", "m220", "m221", "m225", "m226"})


def per_record_ape(comparisons: list[Comparison]) -> list[float]:
    """Each record's mean absolute percentage error over the components it measured."""
    by_record: dict[str, list[float]] = {}
    for c in comparisons:
        by_record.setdefault(c.id, []).append(abs(c.error))
    return [sum(v) / len(v) for v in by_record.values()]


# llm-d's vLLM 0.19 sweep runs that repeat their base run's start-up (another max_model_len or
# an explicit dtype; the same logged numbers). They are real runs, but the headline is also
# given without them so that no setup counts twice.
REPEATED_RUNS = frozenset({"f018", "f020", "f022", "f023", "f029", "f030", "f045", "f046", "f047",
                           "f048"})


def without_repeats(comparisons: list[Comparison]) -> list[Comparison]:
    return [c for c in comparisons if c.id not in REPEATED_RUNS]


def held_out(comparisons: list[Comparison]) -> list[Comparison]:
    return [c for c in comparisons if c.id not in CALIBRATION_IDS]


def _fmt(c: Comparison, value: float) -> str:
    return f"{value / 2**30:.2f} GiB" if c.is_bytes else f"{value:,.2f}"


def main() -> None:
    comparisons, skipped = run_all()
    print("| record | engine/task | measured key | fits quantity | measured | fits | error |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for c in comparisons:
        print(f"| {c.id} | {c.group} | {c.measured_key} | {c.quantity} | "
              f"{_fmt(c, c.measured)} | {_fmt(c, c.estimated)} | {c.error:+.1%} |")
    result = summary(comparisons)
    print("\n| engine/task | n | median APE | p90 APE | median abs error |")
    print("| --- | --- | --- | --- | --- |")
    for name, s in [*result["groups"].items(), ("overall", result["overall"])]:
        gb = "-" if s["median_abs_gb"] is None else f"{s['median_abs_gb']:.2f} GB"
        print(f"| {name} | {s['n']} | {s['median_ape']:.1%} | {s['p90_ape']:.1%} | {gb} |")
    unique = _stats(without_repeats(comparisons))
    print(f"\nWithout the repeated sweep runs ({', '.join(sorted(REPEATED_RUNS))}): "
          f"n={unique['n']}, median {unique['median_ape']:.1%}, p90 {unique['p90_ape']:.1%}")
    records_ape = per_record_ape(comparisons)
    print(f"\nBy record (each record's components averaged, so a record with five measured "
          f"components counts once): n={len(records_ape)}, median "
          f"{statistics.median(records_ape):.1%}, p90 {_percentile(records_ape, 90):.1%}")
    unseen = _stats(held_out(comparisons))
    print(f"\nHeld out (records no constant was fitted on): n={unseen['n']}, median "
          f"{unseen['median_ape']:.1%}, p90 {unseen['p90_ape']:.1%}")
    print("\nWorst 10:")
    for c in sorted(comparisons, key=lambda c: -abs(c.error))[:10]:
        print(f"  {c.id} {c.measured_key} -> {c.quantity}: measured {_fmt(c, c.measured)}, "
              f"fits {_fmt(c, c.estimated)} ({c.error:+.1%})  `{c.command}`")
    checks = verdict_checks()
    print(f"\nFit/no-fit bounds ({sum(c.agrees for c in checks)} of {len(checks)} agree):")
    for v in checks:
        said = "fits" if v.expected_fits else "does not fit"
        print(f"  {v.id} [{v.task}] {'agrees' if v.agrees else 'DISAGREES'}: published: "
              f"{said}; fits: {v.verdict}  `{v.command}`")
    print(f"\nExcluded ({len(skipped)}):")
    for e in skipped:
        print(f"  {e.id} [{e.task}]: {e.reason}")
    # Speed: every engine's tokens/s (bench.speed_accuracy has the per-record table).
    from bench import speed_accuracy

    speeds, _ = speed_accuracy.run_all()
    print("\nSpeed (python -m bench.speed_accuracy for every record):")
    print("\n".join(speed_accuracy.summary_table(speed_accuracy.summary(speeds))))


if __name__ == "__main__":
    main()
