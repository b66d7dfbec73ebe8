"""CLI start-up: wall time of a fresh `python -m bot ...` process over 15 runs, and its ratio to
`python -c pass` measured in the same run. The machines are shared and noisy, so the commands
take turns (each round runs every case once, and a burst of load falls on all of them alike),
and both the median and the best run are shown: noise only ever adds time, so the best is the
steadiest figure of what start-up costs (as `timeit` advises), the median what a user sees.

    python -m bench.startup            print the table
    python -m bench.startup --write    also write docs/speed.md's block and the README line
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

CASES = {
    "fits help": ["help"],
    "fits <estimate>": ["meta-llama/Llama-2-7b q4 ctx=4096 gpu=24GB"],
    "python -c pass (the interpreter alone)": None,
}


def command(args: list[str] | None) -> list[str]:
    return [sys.executable, "-m", "bot", *args] if args is not None else [sys.executable, "-c",
                                                                          "pass"]


def measure(rounds: int = 15) -> dict[str, list[float]]:
    """Wall seconds of each run per case, the cases taking turns round by round."""
    # A user's second run finds the bytecode the first one wrote; an environment that forbids
    # writing it (PYTHONDONTWRITEBYTECODE, set on some CI images) would time the compiler.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for args in CASES.values():
        subprocess.run(command(args), check=True, capture_output=True, env=env)
    for _ in range(rounds):
        for name, args in CASES.items():
            start = time.perf_counter()
            subprocess.run(command(args), check=True, capture_output=True, env=env)
            times[name].append(time.perf_counter() - start)
    return times


BASE = "python -c pass (the interpreter alone)"


def table(measured: dict[str, list[float]]) -> str:
    median = {name: statistics.median(t) for name, t in measured.items()}
    best = {name: min(t) for name, t in measured.items()}
    rows = ["| command | median | x `python -c pass` | best | x `python -c pass` |",
            "| --- | ---: | ---: | ---: | ---: |"]
    for name in measured:
        rows.append(f"| `{name}` | {median[name] * 1e3:.0f} ms | {median[name] / median[BASE]:.1f}x "
                    f"| {best[name] * 1e3:.0f} ms | {best[name] / best[BASE]:.1f}x |")
    return "\n".join(rows)


def readme_line(measured: dict[str, list[float]]) -> str:
    def ratio(name: str, pick: Callable[[list[float]], float]) -> str:
        return f"{pick(measured[name]) / pick(measured[BASE]):.1f}x"

    return (f"The CLI answers an estimate in {ratio('fits <estimate>', statistics.median)} "
            f"(best run {ratio('fits <estimate>', min)}) and `fits help` in "
            f"{ratio('fits help', statistics.median)} the time of `python -c pass`, medians of "
            f"15 runs taking turns (`python -m bench.startup`): [docs/speed.md](docs/speed.md).")


def main() -> None:
    from pathlib import Path

    from bench.generated import replace_block

    measured = measure()
    text = table(measured)
    print(text)
    if "--write" in sys.argv[1:]:
        root = Path(__file__).resolve().parent.parent
        replace_block(root / "docs" / "speed.md", "startup", text)
        replace_block(root / "README.md", "startup", readme_line(measured))
        print("wrote docs/speed.md and README.md")


if __name__ == "__main__":
    main()
