"""Fit transformers' reserved-memory growth factor (FITTED.growth_reserve in
core/engines/transformers.py) and show it on the records it was not fitted on.

    python -m bench.calibrate_reserve

generate() grows each layer's cache by concatenation, and PyTorch's caching allocator keeps the
freed blocks, so nvidia-smi shows the allocated peak plus about G bytes per byte of cache grown
between the prompt and ctx. G is fitted on m088 (Llama-2-13B GPTQ, batch 16, 512 -> 1,024
tokens), the record where growth is largest next to the rest; every other record that measured
process memory while generating is held out.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from bench.accuracy import estimate, run
from core.calibration import FITTED

FIT_IDS = ("m088",)


@dataclass(frozen=True)
class Point:
    id: str
    allocated: float  # fits' total: the allocated peak plus the CUDA context, bytes
    grown: float  # KV bytes the cache grows by after the prompt
    measured: float  # bytes as nvidia-smi showed them


def points() -> list[Point]:
    out = []
    for c in run():
        if c.engine != "hf" or c.quantity != "reserved":
            continue
        report = estimate(c.command)
        ctx = int(str(report.request["ctx"]))
        prompt = int(str(report.request.get("prompt") or ctx))
        grown = report.breakdown.kv_cache * max(0, ctx - prompt) / ctx
        out.append(Point(c.id, float(report.total_bytes), grown, c.measured))
    return out


def factor(data: list[Point]) -> float:
    """The G that makes the fitted records exact on average."""
    return statistics.mean((p.measured - p.allocated) / p.grown for p in data if p.grown)


def main() -> None:
    data = points()
    fitted = [p for p in data if p.id in FIT_IDS]
    g = factor(fitted)
    print(f"G fitted on {', '.join(FIT_IDS)}: {g:.2f} (core uses {FITTED.growth_reserve})\n")
    print("| record | measured GiB | allocated + context | + G x grown | error | held out |")
    print("| --- | --- | --- | --- | --- | --- |")
    held = []
    for p in data:
        predicted = p.allocated + FITTED.growth_reserve * p.grown
        error = predicted / p.measured - 1
        out = p.id not in FIT_IDS
        if out:
            held.append(abs(error))
        print(f"| {p.id} | {p.measured / 2**30:.2f} | {p.allocated / 2**30:.2f} | "
              f"{predicted / 2**30:.2f} | {100 * error:+.1f}% | {'yes' if out else 'no'} |")
    if held:
        print(f"\nheld out: {len(held)} records, median |error| {statistics.median(held):.1%}, "
              f"max {max(held):.1%}")


if __name__ == "__main__":
    main()
