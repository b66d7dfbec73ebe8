"""CLI start-up: wall time of a fresh `python -m bot ...` process, median of 10, and its ratio to
`python -c pass` measured in the same run (the machines are shared and noisy).

    python -m bench.startup            print the table
    python -m bench.startup --write    also write docs/speed.md's block
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


def table() -> str:
    measured = {name: wall(args) for name, args in CASES.items()}
    base = measured["python -c pass (the interpreter alone)"]
    rows = ["| command | median | x `python -c pass` |", "| --- | ---: | ---: |"]
    for name, seconds in measured.items():
        rows.append(f"| `{name}` | {seconds * 1e3:.0f} ms | {seconds / base:.1f}x |")
    return "\n".join(rows)


def main() -> None:
    from pathlib import Path

    from bench.generated import replace_block

    text = table()
    print(text)
    if "--write" in sys.argv[1:]:
        replace_block(Path(__file__).resolve().parent.parent / "docs" / "speed.md", "startup",
                      text)
        print("wrote docs/speed.md")


if __name__ == "__main__":
    main()
