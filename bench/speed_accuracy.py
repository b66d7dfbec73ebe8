"""fits' llama.cpp/Ollama speed against published CPU, Apple Silicon and GPU/CPU-split measurements.

    python -m bench.speed_accuracy     # per-record table, summary by category, fitted vs held out

Each record of bench/reference/speed_cases.jsonl is a published measurement (tokens/s or ms per
token, with the CPU, memory, model and quant stated), its source URL and a verbatim quote, and the
fits command that describes its setup. Decode speed is compared with the Report's
speed.decode_tokens_per_s; where a prompt-processing figure was published, prompt_command's
prompt_tokens / speed.prefill_seconds is compared with it. Every command runs through the real
path (core.parser.parse_command + core.answer.estimate_command); one that fails raises.

Records whose ids are in FITTED_ON set an efficiency factor in core/speed.py; the summary gives
the error on the held-out ones apart.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from bench.reference_set import HERE, load_jsonl
from core.answer import estimate_command
from core.parser import EstimateCommand, parse_command
from core.report import Report

CASES = HERE / "speed_cases.jsonl"
# The records each efficiency factor in core/speed.py was fitted on (their median ratio).
FITTED_ON = {
    "CPU_DECODE_EFFICIENCY": ("s001", "s007", "s009", "s012"),
    "METAL_DECODE_EFFICIENCY": ("s023", "s024", "s025"),
    "CPU_PREFILL_EFFICIENCY": ("s012",),
}
CALIBRATION_IDS = frozenset(i for ids in FITTED_ON.values() for i in ids)


@dataclass(frozen=True)
class Comparison:
    id: str
    category: str  # cpu | apple | gpu | hybrid
    quantity: str  # decode | prompt
    command: str
    measured: float  # tokens/s
    estimated: float

    @property
    def error(self) -> float:
        """Signed relative error of fits: (fits - measured) / measured."""
        return (self.estimated - self.measured) / self.measured

    @property
    def held_out(self) -> bool:
        return self.id not in CALIBRATION_IDS


def records() -> list[dict[str, Any]]:
    return load_jsonl(CASES)


def estimate(text: str) -> Report:
    command = parse_command(text)
    if not isinstance(command, EstimateCommand):
        raise ValueError(f"{text!r} is not an estimate command")
    return estimate_command(command)


def _measured(record: dict[str, Any], prefix: str) -> float | None:
    measured = record["measured"]
    if f"{prefix}_tokens_per_s" in measured:
        return float(measured[f"{prefix}_tokens_per_s"])
    if f"{prefix}_ms_per_token" in measured:
        return 1000 / float(measured[f"{prefix}_ms_per_token"])
    return None


def compare(record: dict[str, Any]) -> list[Comparison]:
    out: list[Comparison] = []
    decode = _measured(record, "decode")
    if decode is not None:
        report = estimate(record["command"])
        value = report.speed.decode_tokens_per_s
        if value is None:
            raise ValueError(f"{record['id']}: fits gives no decode speed for {record['command']}")
        out.append(Comparison(record["id"], record["category"], "decode", record["command"],
                              decode, value))
    prompt = _measured(record, "prompt")
    if prompt is not None and "prompt_command" in record and "prompt_excluded" not in record:
        report = estimate(record["prompt_command"])
        seconds = report.speed.prefill_seconds
        tokens = report.request.get("prompt")
        if seconds is None or not isinstance(tokens, int):
            raise ValueError(f"{record['id']}: fits gives no prompt time")
        out.append(Comparison(record["id"], record["category"], "prompt",
                              record["prompt_command"], prompt, tokens / seconds))
    return out


def run_all() -> tuple[list[Comparison], list[dict[str, Any]]]:
    comparisons: list[Comparison] = []
    excluded: list[dict[str, Any]] = []
    for record in records():
        if "excluded" in record:
            excluded.append(record)
        else:
            comparisons += compare(record)
    return comparisons, excluded


def median_abs(comparisons: list[Comparison]) -> float:
    return statistics.median(abs(c.error) for c in comparisons) if comparisons else 0.0


def summary(comparisons: list[Comparison]) -> list[tuple[str, int, float, float]]:
    """(group, n, median |error|, median signed error) per quantity/category, held-out, all."""
    groups: dict[str, list[Comparison]] = {}
    for c in comparisons:
        groups.setdefault(f"{c.quantity} / {c.category}", []).append(c)
    for quantity in ("decode", "prompt"):
        these = [c for c in comparisons if c.quantity == quantity]
        groups[f"{quantity} / all"] = these
        groups[f"{quantity} / held out"] = [c for c in these if c.held_out]
    return [(name, len(cs), median_abs(cs), statistics.median(c.error for c in cs))
            for name, cs in groups.items() if cs]


def main() -> None:
    comparisons, excluded = run_all()
    print("| record | category | quantity | fits command | measured | fits | error | |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for c in comparisons:
        role = "fitted" if not c.held_out else "held out"
        print(f"| {c.id} | {c.category} | {c.quantity} | `{c.command}` | {c.measured:.2f} | "
              f"{c.estimated:.2f} | {c.error:+.1%} | {role} |")
    print("\n| group | comparisons | median abs. error | median signed error |")
    print("| --- | --- | --- | --- |")
    for name, n, med, signed in summary(comparisons):
        print(f"| {name} | {n} | {med:.1%} | {signed:+.1%} |")
    print("\nFitted constants and their records:")
    for name, ids in FITTED_ON.items():
        print(f"  {name}: {', '.join(ids)}")
    for record in excluded:
        print(f"excluded {record['id']}: {record['excluded']}")
    for record in records():
        if "prompt_excluded" in record:
            print(f"prompt figure of {record['id']} not compared: {record['prompt_excluded']}")


if __name__ == "__main__":
    main()
