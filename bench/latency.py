"""Estimate latency: one engine run, command to estimate, and the full report warm and cold,
with the full report's time under the solvers it replaced (halving) measured in the same run.

    python -m bench.latency            print the table
    python -m bench.latency --write    also write docs/speed.md's block

- engine estimate: one memory estimate for a resolved model and GPU (Setup.run)
- parse+resolve+estimate: command text to an engine estimate on a bundled model
- full report: the above plus max context/batch, best quant and suggestions (what surfaces show)
- cold: the model's first report (its per-model figures, such as a GGUF's tensor types per
  preset, cleared before each round)
- halving: the full report with the context and batch found by halving, the baseline the
  guided solvers (core/boundary.py) are measured against
(CLI start-up is bench/startup.py.)
"""

from __future__ import annotations

import functools
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import core.setup
from bench.generated import replace_block
from core.answer import estimate_command
from core.boundary import Probe, largest_by_halving
from core.estimate import Setup
from core.gpus import resolve_gpu
from core.parser import EstimateCommand, parse_command
from core.quant import choose
from core.resolve import resolve_offline

COMMANDS = (
    "meta-llama/Llama-2-7b q4 ctx=4096 gpu=24GB",
    "meta-llama/Llama-3.1-70B awq engine=vllm gpu=2xa100-80g ctx=32k",
    "Qwen/Qwen3-30B-A3B Q4_K_M gpu=rtx-3060 ctx=8192",
    "deepseek-ai/DeepSeek-V3 fp8 engine=vllm gpu=8xh200",
    "moonshotai/Kimi-K2-Instruct Q2_K gpu=4090 ram=512GB",
    "meta-llama/Llama-3.1-8B mode=train train=qlora gpu=24GB",
)
SPEED_MD = Path(__file__).resolve().parent.parent / "docs" / "speed.md"


def per_call(fn: Callable[[], object], repeat: int, before: Callable[[], object] | None = None
             ) -> float:
    """Median seconds per call over 5 rounds of ``repeat`` calls, after a warm-up; ``before``
    runs ahead of each call, outside the clock."""
    fn()
    rounds = []
    for _ in range(5):
        spent = 0.0
        for _ in range(repeat):
            if before is not None:
                before()
            start = time.perf_counter()
            fn()
            spent += time.perf_counter() - start
        rounds.append(spent / repeat)
    return statistics.median(rounds)


def setup_for(text: str) -> Setup:
    command = parse_command(text)
    assert isinstance(command, EstimateCommand)
    model = resolve_offline(command.request.model)
    engine, fmt, _ = choose(command.request, model.spec, model.quantization)
    request = command.request.updated(engine=engine)
    return Setup(request, model, resolve_gpu(command.request.gpu), engine, fmt)


def parse_resolve_estimate(text: str) -> object:
    return setup_for(text).run()


def full_report(text: str) -> object:
    command = parse_command(text)
    assert isinstance(command, EstimateCommand)
    return estimate_command(command)


def forget_model(text: str) -> None:
    """Clear the model's per-model figures, as a process that has not seen it yet has none."""
    command = parse_command(text)
    assert isinstance(command, EstimateCommand)
    resolve_offline(command.request.model).spec.memo.clear()


def _halving(probe: Probe, low: int, high: int) -> int | None:
    return largest_by_halving(lambda n: probe(n)[0], low, high)


@contextmanager
def halving_solvers() -> Iterator[None]:
    """The context and batch solvers as they were: halving, one engine run per step."""
    guided = getattr(core.setup, "largest_fitting")  # noqa: B009 (not exported by core.setup)
    setattr(core.setup, "largest_fitting", _halving)  # noqa: B010
    try:
        yield
    finally:
        setattr(core.setup, "largest_fitting", guided)  # noqa: B010


def table() -> str:
    rows = ["| command | engine estimate | parse+resolve+estimate | full report | cold | "
            "halving | halving / full |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    ratios = []
    for text in COMMANDS:
        setup = setup_for(text)
        est = per_call(setup.run, 2000)
        pre = per_call(functools.partial(parse_resolve_estimate, text), 500)
        report = functools.partial(full_report, text)
        full = per_call(report, 20)
        cold = per_call(report, 3, functools.partial(forget_model, text))
        with halving_solvers():
            halving = per_call(report, 20)
        ratios.append(halving / full)
        rows.append(f"| `{text}` | {est * 1e6:.0f} µs | {pre * 1e6:.0f} µs | "
                    f"{full * 1e3:.2f} ms | {cold * 1e3:.1f} ms | {halving * 1e3:.2f} ms | "
                    f"{halving / full:.1f}x |")
    return "\n".join([
        f"Measured by `python -m bench.latency --write` on {_machine()}: medians of 5 rounds. "
        f"The guided solvers answer {statistics.median(ratios):.1f}x faster than halving "
        "(median over these commands), with the same answers (tests/test_boundary.py).", "",
        *rows])


def _machine() -> str:
    import os
    import platform
    return f"{os.cpu_count()} cores, Python {platform.python_version()}"


def main() -> None:
    text = table()
    print(text)
    if "--write" in sys.argv[1:]:
        replace_block(SPEED_MD, "latency", text)
        print(f"wrote {SPEED_MD.relative_to(Path.cwd()) if SPEED_MD.is_relative_to(Path.cwd()) else SPEED_MD}")


if __name__ == "__main__":
    main()
