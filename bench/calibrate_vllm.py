"""Fit vLLM's profiling-peak constants (core/engines/vllm.py) on the reference records and show
the error on records each fit did not see (leave-one-out).

    python -m bench.calibrate_vllm

It also reports the non-torch memory constants (per GPU, by release and tensor parallelism)
against the medians of the logs they stand for.

The model, per GPU: peak = base + max(max_num_seqs x vocab x sampler_bytes,
max_num_batched_tokens x MLP width x ffn_bytes) + the fused-MoE workspace (derived, not fitted).
The batch defaults come from the card (vllm serve's rule), vocab and MLP width from the model,
so three numbers are fitted per sampler era:
the releases that sort logits in the profiling run (version=0.11 and older) and the current
ones. The loss is the mean absolute log error, so one odd record pulls the fit less than a
squared error would; the fit is a coarse-to-fine grid search (no SciPy needed). Records of the
same model (a context sweep, a TP sweep) are one group: the held-out error leaves the whole
model out, so its twins cannot leak into the fit. vLLM's V0 engine (before 0.8) profiled
differently and is not fitted.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from bench.accuracy import run
from core.calibration import FITTED, ProfileConstants
from core.engines import vllm
from core.engines.base import MIB, Scenario
from core.estimate import Setup
from core.gpus import resolve_gpu
from core.parser import EstimateCommand, parse_command
from core.quant import choose
from core.resolve import resolve_offline

V1_DEFAULT = (0, 8)  # the V1 engine became the default in vLLM 0.8
GRID = 16
LEVELS = 4
RANGES = {"sampler_bytes": (2.0, 60.0), "ffn_bytes": (1.0, 20.0), "base_mib": (0.0, 600.0)}


@dataclass(frozen=True)
class Point:
    id: str
    command: str
    model: str
    sampler_units: float  # max_num_seqs x vocab
    ffn_units: float  # max_num_batched_tokens x dense MLP width on one GPU
    fixed: float  # the MoE workspace, bytes
    measured: float  # bytes


def scenario(command_text: str) -> Scenario:
    command = parse_command(command_text)
    assert isinstance(command, EstimateCommand)
    request = command.request
    model = resolve_offline(request.model)
    engine, fmt, _ = choose(request, model.spec, model.quantization)
    request = request.updated(engine=engine)
    return Setup(request, model, resolve_gpu(request.gpu), engine, fmt).scenario()


def points() -> dict[bool, list[Point]]:
    """The vLLM activation-peak records, keyed by era (True: the sorting sampler)."""
    out: dict[bool, list[Point]] = {True: [], False: []}
    for c in run():
        if c.engine != "vllm" or c.quantity != "activations":
            continue
        sc = scenario(c.command)
        asked = vllm.release(sc)
        if asked is not None and asked[:2] < V1_DEFAULT:
            continue
        tokens, seqs = vllm.batch_defaults(sc)
        out[vllm.sorting_sampler(sc)].append(
            Point(c.id, c.command, sc.request.model, seqs * sc.spec.vocab,
                  tokens * vllm.dense_width(sc), vllm.moe_workspace_bytes(sc), c.measured))
    return out


def predict(p: Point, c: ProfileConstants) -> float:
    return (c.base_bytes + max(p.sampler_units * c.sampler_bytes, p.ffn_units * c.ffn_bytes)
            + p.fixed)


def loss(data: Sequence[Point], c: ProfileConstants) -> float:
    return sum(abs(math.log(predict(p, c) / p.measured)) for p in data) / len(data)


def _constants(a: float, b: float, base_mib: float) -> ProfileConstants:
    return ProfileConstants(sampler_bytes=round(a, 2), ffn_bytes=round(b, 2),
                                 base_bytes=int(round(base_mib) * MIB))


def fit(data: Sequence[Point]) -> ProfileConstants:
    """Coarse-to-fine grid search over the three constants."""
    spans = dict(RANGES)
    best = _constants(*(lo for lo, _ in spans.values()))
    for _ in range(LEVELS):
        axes = [[lo + (hi - lo) * i / (GRID - 1) for i in range(GRID)]
                for lo, hi in spans.values()]
        best = min((_constants(a, b, m) for a in axes[0] for b in axes[1] for m in axes[2]),
                   key=lambda c: loss(data, c))
        centre = {"sampler_bytes": best.sampler_bytes, "ffn_bytes": best.ffn_bytes,
                  "base_mib": best.base_bytes / MIB}
        spans = {k: (max(RANGES[k][0], centre[k] - (hi - lo) / GRID * 2),
                     centre[k] + (hi - lo) / GRID * 2) for k, (lo, hi) in spans.items()}
    return best


def _pct(x: float) -> str:
    return f"{100 * x:+.1f}%"


def report(era: str, data: list[Point]) -> None:
    if len(data) < 3:
        print(f"\n{era}: {len(data)} records, too few to fit\n")
        return
    constants = fit(data)
    print(f"\n## {era}: {len(data)} records")
    print(f"fitted on all: sampler_bytes={constants.sampler_bytes}, "
          f"ffn_bytes={constants.ffn_bytes}, base={constants.base_bytes // MIB} MiB")
    print(f"ids: {', '.join(sorted({p.id for p in data}))}\n")
    print("| record | model | measured GiB | fitted on all | model left out |")
    print("| --- | --- | --- | --- | --- |")
    in_sample, out_sample = [], []
    held: dict[str, ProfileConstants] = {}
    for p in data:
        if p.model not in held:
            held[p.model] = fit([q for q in data if q.model != p.model])
        loo = held[p.model]
        e_in = predict(p, constants) / p.measured - 1
        e_out = predict(p, loo) / p.measured - 1
        in_sample.append(abs(e_in))
        out_sample.append(abs(e_out))
        print(f"| {p.id} | {p.model} | {p.measured / 2**30:.2f} | {_pct(e_in)} | "
              f"{_pct(e_out)} |")
    print(f"\nmedian |error|: fitted {statistics.median(in_sample):.1%}, "
          f"model left out {statistics.median(out_sample):.1%}; "
          f"max model left out {max(out_sample):.1%}")


def non_torch_groups() -> dict[str, list[tuple[str, float]]]:
    """Logged non-torch memory per GPU by release and tensor parallelism: (record id, bytes)."""
    groups: dict[str, list[tuple[str, float]]] = {}
    for c in run():
        if c.engine != "vllm" or c.quantity != "overhead":
            continue
        sc = scenario(c.command)
        asked = vllm.release(sc)
        if asked is not None and asked[:2] < V1_DEFAULT:
            continue  # V0 reported its non-torch memory differently (m002)
        era = "tensor parallel" if sc.tp > 1 else (
            "one GPU, 0.11 and older" if vllm.sorting_sampler(sc) else "one GPU, current")
        groups.setdefault(era, []).append((c.id, c.measured))
    return groups


NON_TORCH_CONSTANTS = {"one GPU, current": FITTED.non_torch_single,
                       "one GPU, 0.11 and older": FITTED.non_torch_single_up_to_0_11,
                       "tensor parallel": FITTED.non_torch_tp}


def report_non_torch() -> None:
    """The non-torch constants stand for the medians of what the logs show (within 10 MiB);
    the error column predicts each record by the median of the others."""
    print("\n## Non-torch memory per GPU (CUDA context, NCCL, cuBLAS) after start-up\n")
    print("| group | records | median MiB | constant MiB | leave-one-out median abs error |")
    print("| --- | --- | --- | --- | --- |")
    for era, rows in sorted(non_torch_groups().items()):
        values = [b for _, b in rows]
        median = statistics.median(values)
        errors = [abs(statistics.median(values[:i] + values[i + 1:]) / v - 1)
                  for i, v in enumerate(values)] if len(values) > 1 else [0.0]
        print(f"| {era} | {len(rows)} ({', '.join(i for i, _ in rows[:6])}"
              f"{' ...' if len(rows) > 6 else ''}) | {median / MIB:.0f} | "
              f"{NON_TORCH_CONSTANTS[era] // MIB} | {statistics.median(errors):.1%} |")


def main() -> None:
    by_era = points()
    report("vLLM 0.19 (current constants)", by_era[False])
    report("vLLM 0.11 and older (version=0.11)", by_era[True])
    report_non_torch()


if __name__ == "__main__":
    main()
