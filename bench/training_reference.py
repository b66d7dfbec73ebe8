"""Training totals against published measurements (bench/reference/training_cases.jsonl).

    python -m bench.training_reference          # prints a Markdown table

Each case maps a record of bench/reference/measured-public.jsonl to the fits command that
describes its setup. Allocator figures (max_memory_allocated, torchtune's peak) are compared
with fits' allocated peak (TrainingDetails.allocated_bytes, no CUDA context);
torch.cuda.max_memory_reserved figures (measures "torch_reserved") with the reserved peak, the
total without the CUDA context; whole-process figures (nvidia-smi, "process") with the total.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.reference_set import records, training_cases
from core.answer import estimate_command
from core.engines.details import TrainingDetails
from core.parser import EstimateCommand, parse_command

UNITS = {"GiB": 1 << 30, "GB": 10**9, "MiB": 1 << 20, "MB": 10**6, "tokens": 1}


@dataclass(frozen=True)
class Comparison:
    id: str
    command: str
    measured_bytes: float
    estimated_bytes: float
    why: str

    @property
    def error(self) -> float:
        return (self.estimated_bytes - self.measured_bytes) / self.measured_bytes


def compare_all() -> list[Comparison]:
    refs = records()
    out = []
    for case in training_cases():
        if "excluded" in case or "expect_fits" in case:  # bench.accuracy lists or checks it
            continue
        record = refs[case["id"]]
        measured = float(record["measured"][case["quantity"]]) * UNITS[case["unit"]]
        command = parse_command(case["command"])
        assert isinstance(command, EstimateCommand)
        report = estimate_command(command)
        if case["measures"] == "max_context":
            measured = float(record["measured"][case["quantity"]])
            estimated = float(report.max_context or 0)
        else:
            estimated = report.total_bytes
            if case["measures"] == "allocated":
                details = report.engine_details.engine
                assert isinstance(details, TrainingDetails), report.engine
                estimated = float(details.allocated_bytes)
            elif case["measures"] == "torch_reserved":
                estimated -= report.breakdown.overhead  # the allocator's pool, no CUDA context
        out.append(Comparison(case["id"], case["command"], measured, estimated, case["why"]))
    return out


def main() -> None:
    print("| record | fits command | measured | fits | error |")
    print("| --- | --- | --- | --- | --- |")
    for c in compare_all():
        if c.measured_bytes < 2**20:  # a token count (max context), not bytes
            print(f"| {c.id} | `{c.command}` | {c.measured_bytes:,.0f} tokens | "
                  f"{c.estimated_bytes:,.0f} tokens | {c.error:+.1%} |")
            continue
        print(f"| {c.id} | `{c.command}` | {c.measured_bytes / 2**30:.2f} GiB | "
              f"{c.estimated_bytes / 2**30:.2f} GiB | {c.error:+.1%} |")


if __name__ == "__main__":
    main()
