"""CLI start-up: wall time of a fresh `python -m bot ...` process, median of 10.

    python -m bench.startup
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

CASES = {
    "fits help": ["help"],
    "fits <estimate>": ["meta-llama/Llama-2-7b q4 ctx=4096 gpu=24GB"],
    "python -c pass (the interpreter alone)": None,
}


def wall(args: list[str] | None, runs: int = 10) -> float:
    cmd = [sys.executable, "-m", "bot", *args] if args is not None else [sys.executable, "-c", "pass"]
    subprocess.run(cmd, check=True, capture_output=True)  # warm the bytecode cache
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    for name, args in CASES.items():
        print(f"{name:<42} {wall(args) * 1e3:>6.0f} ms")


if __name__ == "__main__":
    main()
