"""Estimate latency and CLI start-up.

    python -m bench.latency            # prints a table; figures go in the README

- engine estimate: one memory estimate for a resolved model and GPU (Setup.run)
- parse+resolve+estimate: command text to an engine estimate on a bundled model
- full report: the above plus max context/batch, best quant and suggestions (what surfaces show)
(CLI start-up is bench/startup.py.)
"""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable

from core.answer import estimate_command
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
)


def per_call(fn: Callable[[], object], repeat: int) -> float:
    """Median seconds per call over 5 rounds of ``repeat`` calls, after a warm-up."""
    fn()
    rounds = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        rounds.append((time.perf_counter() - start) / repeat)
    return statistics.median(rounds)


def setup_for(text: str) -> Setup:
    command = parse_command(text)
    assert isinstance(command, EstimateCommand)
    model = resolve_offline(command.request.model)
    engine, fmt, _ = choose(command.request, model.spec, model.quantization)
    request = command.request.model_copy(update={"engine": engine})
    return Setup(request, model, resolve_gpu(command.request.gpu), engine, fmt)


def parse_resolve_estimate(text: str) -> object:
    return setup_for(text).run()


def full_report(text: str) -> object:
    command = parse_command(text)
    assert isinstance(command, EstimateCommand)
    return estimate_command(command)


def main() -> None:
    print(f"{'command':<66} {'estimate':>10} {'parse+res+est':>14} {'full report':>12}")
    for text in COMMANDS:
        setup = setup_for(text)
        est = per_call(setup.run, 2000)
        pre = per_call(functools.partial(parse_resolve_estimate, text), 500)
        full = per_call(functools.partial(full_report, text), 20)
        print(f"{text:<66} {est * 1e6:>8.1f}us {pre * 1e6:>12.1f}us {full * 1e3:>10.2f}ms")


if __name__ == "__main__":
    main()
