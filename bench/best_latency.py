"""How long `best` takes over the whole bundled snapshot, the figure chat deadlines care about.

    python -m bench.best_latency           print the table
    python -m bench.best_latency --write   also write docs/speed.md's block and the README line

- cold: a fresh process answering its first `best` (every bundled spec built, memos empty),
  measured as the process's wall time less that of a process that only imports fits
  (the baseline measured in the same run, so machine noise cancels);
- warm: the same process answering further `best` questions for other GPUs and contexts (specs
  and memos filled, no answer cached), median of several.
Target: warm under 100 ms.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.generated import replace_block

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ("best gpu=24GB ctx=8k", "best gpu=4090 use=code", "best gpu=16GB ctx=4k",
             "best gpu=3060", "best gpu=2x3090 ctx=16k", "best gpu=m3-max-36gb")
TARGET_S = 0.100
_RUN = ("import time; t=time.perf_counter(); from bot.dispatch import answer_here; "
        "from core.parser import parse_command; {body}; print(time.perf_counter()-t)")


def _process(body: str) -> float:
    out = subprocess.run([sys.executable, "-c", _RUN.format(body=body)], capture_output=True,
                         text=True, check=True, cwd=ROOT, env={"HF_HUB_OFFLINE": "1"})
    return float(out.stdout.strip().splitlines()[-1])


def measure() -> dict[str, float]:
    base = statistics.median(_process("pass") for _ in range(3))
    cold = statistics.median(
        _process(f"answer_here(parse_command({QUESTIONS[0]!r}))") for _ in range(3)) - base
    from bot.dispatch import answer_here
    from core.parser import parse_command

    answer_here(parse_command(QUESTIONS[0]))  # this process warm
    warm = []
    for question in QUESTIONS[1:] * 2:
        start = time.perf_counter()
        answer_here(parse_command(question))
        warm.append(time.perf_counter() - start)
    return {"cold_s": cold, "warm_s": statistics.median(warm), "warm_max_s": max(warm)}


def table(result: dict[str, float]) -> str:
    verdict = "within" if result["warm_s"] <= TARGET_S else "over"
    return "\n".join([
        "| `best` over the whole snapshot | seconds |", "| --- | --- |",
        f"| cold (first question in a fresh process, less an import-only process) | "
        f"{result['cold_s']:.2f} |",
        f"| warm (median of {2 * (len(QUESTIONS) - 1)} other questions) | {result['warm_s']:.3f} |",
        f"| warm, slowest | {result['warm_max_s']:.3f} |", "",
        f"Warm answers are {verdict} the 100 ms target (`python -m bench.best_latency`)."])


def readme_line(result: dict[str, float]) -> str:
    return (f"`best` ranks the whole snapshot in {result['warm_s'] * 1000:.0f} ms warm "
            f"({result['cold_s']:.1f} s for a process's first question): "
            "[docs/speed.md](docs/speed.md).")


def main() -> None:
    result = measure()
    print(table(result))
    if "--write" in sys.argv[1:]:
        replace_block(ROOT / "docs" / "speed.md", "best-latency", table(result))
        replace_block(ROOT / "README.md", "best-latency", readme_line(result))
        print("wrote docs/speed.md and README.md")


if __name__ == "__main__":
    main()
