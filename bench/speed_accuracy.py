"""fits' speeds against published measurements: llama.cpp on CPUs, Apple Silicon, GPUs and GPU/RAM
splits, and vLLM, SGLang and transformers on one or several GPUs, MoE included.

    python -m bench.speed_accuracy           # every comparison and the summary by group
    python -m bench.speed_accuracy --write   # also writes docs/speed-accuracy.md and its README line

Each record (bench/reference/speed_cases.jsonl for llama.cpp's CPU, Apple and split runs,
speed_cases_gpu.jsonl for GPU engines) is a published measurement with its source URL, a verbatim
quote and the fits command that describes its setup. Every command runs through the real path
(core.parser.parse_command + core.answer.estimate_command); one that fails raises.

What is compared is what the source timed. A figure for one request is compared with the Report's
speed.decode_tokens_per_s, one for all concurrent requests with speed.aggregate_decode_tokens_per_s.
Where the source's clock also ran through the prompts (``prompt_in_time``: generate()'s wall time,
a serving benchmark's duration), fits' figure is the same ratio: generated tokens over prompt time
plus generation time. A prompt-processing figure is compared with prompt tokens /
speed.prefill_seconds.

Records whose ids are in FITTED_ON set a constant in core/speed.py; the summary gives the error on
the others (held out) apart.
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.generated import replace_block
from bench.reference_set import HERE, load_jsonl
from core import speed
from core.answer import estimate_command
from core.parser import EstimateCommand, parse_command
from core.report import Report

ROOT = Path(__file__).resolve().parent.parent
CASES = HERE / "speed_cases.jsonl"
GPU_CASES = HERE / "speed_cases_gpu.jsonl"
DOC = ROOT / "docs" / "speed-accuracy.md"
README = ROOT / "README.md"
COMMAND = "python -m bench.speed_accuracy --write"


@dataclass(frozen=True)
class Fit:
    """A constant of core/speed.py set to the median of what its records imply. A "share" (an
    efficiency) scales the speed it applies to; a "cost" (a fixed time) adds to each token's
    time."""

    ids: tuple[str, ...]
    kind: str  # share | cost
    quantity: str  # decode | prompt


FITS: dict[str, Fit] = {
    "CPU_DECODE_EFFICIENCY": Fit(("s001", "s007", "s009", "s012"), "share", "decode"),
    "METAL_DECODE_EFFICIENCY": Fit(("s023", "s024", "s025"), "share", "decode"),
    "CPU_PREFILL_EFFICIENCY": Fit(("s012",), "share", "prompt"),
    "LLAMACPP_PREFILL_MFU": Fit(("g001", "g003", "g007"), "share", "prompt"),
    "LLAMACPP_MOE_LAYER_US": Fit(("g010", "g012", "g049"), "cost", "decode"),
    "HF_LAYER_MS": Fit(("g023",), "cost", "decode"),
    "VLLM_V0_LAYER_US": Fit(("g029",), "cost", "decode"),
    "VLLM_LAYER_US": Fit(("g039",), "cost", "decode"),
    "SGLANG_LAYER_US": Fit(("g041",), "cost", "decode"),
    "MOE_LAYER_US": Fit(("g043", "g052", "g054"), "cost", "decode"),
    "MLA_LAYER_US": Fit(("g038", "g046", "g048"), "cost", "decode"),
}
FITTED_ON: dict[str, tuple[str, ...]] = {name: fit.ids for name, fit in FITS.items()}
CALIBRATION_IDS = frozenset(i for ids in FITTED_ON.values() for i in ids)
# The group each record's category belongs to; MoE and multi-GPU records are also in those groups.
ENGINE_GROUPS = {"cpu": "llama.cpp CPU", "apple": "llama.cpp Apple", "gpu": "llama.cpp GPU",
                 "hybrid": "llama.cpp GPU+RAM", "gpu-llamacpp": "llama.cpp GPU",
                 "gpu-vllm": "vLLM", "gpu-sglang": "SGLang", "gpu-transformers": "transformers",
                 "gpu-exllamav2": "ExLlamaV2"}
GROUPS = ("llama.cpp CPU", "llama.cpp Apple", "llama.cpp GPU", "llama.cpp GPU+RAM", "vLLM",
          "SGLang", "transformers", "ExLlamaV2", "MoE", "multi-GPU")


@dataclass(frozen=True)
class Comparison:
    id: str
    groups: tuple[str, ...]  # its engine's group, then MoE and multi-GPU where they apply
    quantity: str  # decode | prompt
    what: str  # what the figure counts: one request, all of a batch, a prompt
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


@dataclass(frozen=True)
class Row:
    """One line of the summary: a group's comparisons of one quantity."""

    group: str
    quantity: str
    n: int
    median: float  # of |error|
    p90: float  # of |error|, nearest rank
    signed: float  # median signed error
    held_out_n: int
    held_out_median: float | None


def records() -> list[dict[str, Any]]:
    return load_jsonl(CASES) + load_jsonl(GPU_CASES)


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


def _groups(record: dict[str, Any]) -> tuple[str, ...]:
    extra = [name for key, name in (("moe", "MoE"), ("multi_gpu", "multi-GPU")) if record.get(key)]
    return (ENGINE_GROUPS[record["category"]], *extra)


def _decode(record: dict[str, Any], report: Report, together: bool) -> float:
    """fits' figure for what the record timed: one request's tokens/s or all of the batch's,
    over the generation alone or over the prompts and the generation (``prompt_in_time``)."""
    speed = report.speed
    rate = speed.aggregate_decode_tokens_per_s if together else speed.decode_tokens_per_s
    if rate is None or speed.decode_tokens_per_s is None:
        raise ValueError(f"{record['id']}: fits gives no decode speed for {record['command']}")
    if not record.get("prompt_in_time"):
        return rate
    prompts = speed.batch_prefill_seconds if together else speed.prefill_seconds
    gen = int(str(report.request["gen"]))
    if prompts is None:
        raise ValueError(f"{record['id']}: fits gives no prompt time for {record['command']}")
    sequences = rate / speed.decode_tokens_per_s
    return sequences * gen / (prompts + gen / speed.decode_tokens_per_s)


def compare(record: dict[str, Any]) -> list[Comparison]:
    out: list[Comparison] = []
    groups = _groups(record)
    report: Report | None = None
    together = record["measured"].get("aggregate_decode_tokens_per_s")
    decode = float(together) if together is not None else _measured(record, "decode")
    if decode is not None:
        report = estimate(record["command"])
        batch = int(str(report.request["batch"]))
        what = f"all {batch} together" if together is not None else "one request"
        out.append(Comparison(record["id"], groups, "decode", what, record["command"], decode,
                              _decode(record, report, together is not None)))
    prompt = _measured(record, "prompt")
    if prompt is not None and "prompt_excluded" not in record:
        command = record.get("prompt_command", record["command"])
        if report is None or command != record["command"]:
            report = estimate(command)
        seconds = report.speed.prefill_seconds
        tokens = report.request.get("prompt")
        if seconds is None or not isinstance(tokens, int):
            raise ValueError(f"{record['id']}: fits gives no prompt time")
        out.append(Comparison(record["id"], groups, "prompt", "prompt", command, prompt,
                              tokens / seconds))
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


@contextmanager
def _constant(name: str, value: float) -> Iterator[None]:
    """core.speed's ``name`` set to ``value`` for a while (the speed functions read it per call)."""
    old = getattr(speed, name)
    setattr(speed, name, value)
    try:
        yield
    finally:
        setattr(speed, name, old)


def _compared(record: dict[str, Any], quantity: str) -> Comparison:
    return next(c for c in compare(record) if c.quantity == quantity)


def implied(name: str) -> dict[str, float]:
    """What each record ``name`` was fitted on says the constant should be: for a share, the
    value that makes fits' figure the measured one (figures scale with it); for a cost, the same
    from the time per token, which grows linearly with it."""
    fit = FITS[name]
    value = float(getattr(speed, name))
    by_id = {r["id"]: r for r in records()}
    out: dict[str, float] = {}
    for record_id in fit.ids:
        record = by_id[record_id]
        here = _compared(record, fit.quantity)
        if fit.kind == "share":
            out[record_id] = value * here.measured / here.estimated
            continue
        with _constant(name, value * 1.5):
            there = _compared(record, fit.quantity)
        slope = (1 / there.estimated - 1 / here.estimated) / (value * 0.5)
        out[record_id] = value + (1 / here.measured - 1 / here.estimated) / slope
    return out


def median_abs(comparisons: list[Comparison]) -> float:
    return statistics.median(abs(c.error) for c in comparisons) if comparisons else 0.0


def p90_abs(comparisons: list[Comparison]) -> float:
    errors = sorted(abs(c.error) for c in comparisons)
    return errors[math.ceil(0.9 * len(errors)) - 1] if errors else 0.0


def _row(group: str, quantity: str, these: list[Comparison]) -> Row:
    held = [c for c in these if c.held_out]
    return Row(group, quantity, len(these), median_abs(these), p90_abs(these),
               statistics.median(c.error for c in these), len(held),
               median_abs(held) if held else None)


def summary(comparisons: list[Comparison]) -> list[Row]:
    """Per quantity: each group, then all comparisons and the held-out ones."""
    rows: list[Row] = []
    for quantity in ("decode", "prompt"):
        these = [c for c in comparisons if c.quantity == quantity]
        for group in GROUPS:
            members = [c for c in these if group in c.groups]
            if members:
                rows.append(_row(group, quantity, members))
        if these:
            rows.append(_row("all", quantity, these))
    return rows


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.1%}"


def summary_table(rows: list[Row]) -> list[str]:
    lines = ["| group | quantity | comparisons | median abs. error | 90th percentile | "
             "median signed | held out: comparisons | held out: median |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    lines += [f"| {r.group} | {r.quantity} | {r.n} | {r.median:.1%} | {r.p90:.1%} | "
              f"{r.signed:+.1%} | {r.held_out_n} | {_pct(r.held_out_median)} |" for r in rows]
    return lines


def comparison_table(comparisons: list[Comparison]) -> list[str]:
    lines = ["| record | group | measures | fits command | measured | fits | error | |",
             "| --- | --- | --- | --- | ---: | ---: | ---: | --- |"]
    for c in comparisons:
        role = "held out" if c.held_out else "fitted"
        lines.append(f"| {c.id} | {', '.join(c.groups)} | {c.quantity}, {c.what} | "
                     f"`{c.command}` | {c.measured:,.2f} | {c.estimated:,.2f} | {c.error:+.1%} | "
                     f"{role} |")
    return lines


def _decode_rows(rows: list[Row]) -> list[Row]:
    return [r for r in rows if r.quantity == "decode" and r.group != "all"]


def readme_line(rows: list[Row]) -> str:
    decode = next(r for r in rows if r.quantity == "decode" and r.group == "all")
    worst = max(_decode_rows(rows), key=lambda r: r.median)
    return (f"Speed: decode tokens/s within {decode.median:.0%} of {decode.n} published "
            f"measurements on median (every group within {worst.median:.0%}: llama.cpp on CPUs, "
            f"Apple Silicon and GPUs, vLLM, SGLang, transformers, MoE, multi-GPU); the table is "
            f"in [docs/speed-accuracy.md](docs/speed-accuracy.md).")


def _unscored(record: dict[str, Any]) -> str:
    """What an excluded record measured and what fits says for its command, for the record."""
    if "command" not in record:
        return "no fits command"
    return "; ".join(f"measured {c.measured:,.2f}, fits {c.estimated:,.2f}" for c in compare(record)
                     if c.quantity == "decode")


def _hardware(record: dict[str, Any]) -> str:
    hardware = record["hardware"]
    gpu = str(hardware.get("gpu", ""))
    return gpu if gpu and not gpu.startswith("none") else str(hardware.get("cpu", ""))


def render_doc(comparisons: list[Comparison], excluded: list[dict[str, Any]]) -> str:
    rows = summary(comparisons)
    decode = next(r for r in rows if r.quantity == "decode" and r.group == "all")
    fitted = []
    for name, fit in FITS.items():
        values = implied(name)
        each = ", ".join(f"{i} {v:.3g}" for i, v in values.items())
        fitted.append(f"| `{name}` | {getattr(speed, name):g} | {fit.quantity} | {each} | "
                      f"{statistics.median(values.values()):.3g} |")
    skipped = [f"- {r['id']} ({r['model']}, {_hardware(r)}; {_unscored(r)}): {r['excluded']}"
               for r in excluded]
    skipped += [f"- the prompt figure of {r['id']}: {r['prompt_excluded']}" for r in records()
                if "prompt_excluded" in r]
    n_records = len({c.id for c in comparisons})
    parts = [
        "# How accurate are fits' speeds?",
        "",
        f"<!-- Written by `{COMMAND}`; edits are overwritten. The model is described in "
        "core/speed.py and docs/how-it-works.md. -->",
        "",
        "fits answers \"how fast\" for every engine: tokens/s while decoding (per request and, "
        "with a batch, for all requests together) and the time to process the prompt. This page "
        f"compares those answers with {n_records} published measurements "
        f"(`bench/reference/speed_cases.jsonl`, `bench/reference/speed_cases_gpu.jsonl`: each "
        "with its source, a verbatim quote and the fits command for its setup).",
        "",
        "```",
        "python -m bench.speed_accuracy     # every comparison and the summary by group",
        "```",
        "",
        "## The model (core/speed.py)",
        "",
        "- **llama.cpp and Ollama**: each token reads its VRAM bytes at 70% of the GPU's "
        "bandwidth (Apple's Metal at `METAL_DECODE_EFFICIENCY`), then its RAM bytes at "
        "`CPU_DECODE_EFFICIENCY` of the RAM's; several GPUs take turns (layer split). Each MoE "
        "layer on the GPU adds `LLAMACPP_MOE_LAYER_US` of expert dispatch.",
        "- **vLLM, SGLang, TGI, ExLlamaV2**: a decode step gives each sequence one token. It reads "
        "the weights it touches (an MoE only the experts its batch routes to, n x (1 - (1 - k/n)"
        "^batch) of n) and every sequence's KV cache at 85% of the rated bandwidth, or computes "
        "2 x active params x batch at 45% of dense FP16 TFLOPS when that takes longer; it adds a "
        "fixed cost per layer, which also carries the engine's own work between steps "
        "(`VLLM_V0_LAYER_US`, `VLLM_LAYER_US`, `SGLANG_LAYER_US`; TGI and ExLlamaV2, which no "
        "record checks, take vLLM V1's), `MOE_LAYER_US` and `MLA_LAYER_US` more for MoE and MLA "
        "layers, and tensor parallel's two all-reduces per layer over NVLink or PCIe.",
        "- **transformers**: reads at 72% of the bandwidth, but Python dispatches every op, so a "
        "step lasts at least `HF_LAYER_MS` per layer; device_map's GPUs run one after another, so "
        "more GPUs add memory, not speed.",
        "- **Prompt processing**: 2 x active params per token plus causal attention at 45% of "
        "dense FP16 TFLOPS (tensor-parallel GPUs together; llama.cpp on CUDA and ROCm at "
        "`LLAMACPP_PREFILL_MFU`), for one prompt and for the whole batch.",
        "- **What is compared** is what the source timed: one request's tokens/s or all "
        "concurrent requests' together, over the generation alone or, where the source's clock "
        "ran through the prompts too (generate()'s wall time, a serving benchmark's duration), "
        "generated tokens over prompt time plus generation time.",
        "",
        "## Constants fitted on records",
        "",
        "Each was set to the median of what its records imply (rounded); the other records are "
        "held out. A share (an efficiency) is implied by the ratio of the measured figure to fits'; "
        "a cost (microseconds or milliseconds per layer) by the time per token it would take to "
        "match.",
        "",
        "| constant | value | from | fitted on: what each record implies | median |",
        "| --- | ---: | --- | --- | ---: |",
        *fitted,
        "",
        "## Results",
        "",
        f"Decode: median error {decode.median:.1%} over {decode.n} comparisons (90th percentile "
        f"{decode.p90:.1%}), {_pct(decode.held_out_median)} over the {decode.held_out_n} held "
        "out. `tests/test_speed_accuracy.py` fails if any group's decode median rises above 25%, "
        "or if this page is not what the script writes.",
        "",
        *summary_table(rows),
        "",
        "Weak spots: MoE prompt processing with short prompts (llama.cpp's expert kernels at "
        "128-512 tokens run far below the FLOPs fits counts), transformers with a batch or a long "
        "prompt (g020, g025: its cache and attention cost more than their reads), SGLang's "
        "DeepSeek on early Blackwell builds (g044, g045), small models and AMD cards under "
        "llama.cpp (g017, g013), and vLLM before 0.8 at large batches (the CPU work it did for "
        "every sequence between steps, most of a step at batch 256 in the vLLM v0.6.0 post, is "
        "not modelled).",
        "",
        "Not compared (what each measured and what fits says for its command, in tokens/s):",
        "",
        *skipped,
        "",
        "## Every comparison",
        "",
        *comparison_table(comparisons),
    ]
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--write", action="store_true",
                        help="write docs/speed-accuracy.md and the README's line")
    args = parser.parse_args(argv)
    comparisons, excluded = run_all()
    print("\n".join(comparison_table(comparisons)))
    print()
    print("\n".join(summary_table(summary(comparisons))))
    for record in excluded:
        print(f"excluded {record['id']}: {record['excluded']}")
    if args.write:
        DOC.write_text(render_doc(comparisons, excluded), encoding="utf-8")
        replace_block(README, "speed-accuracy", readme_line(summary(comparisons)))


if __name__ == "__main__":
    main()
