"""bench.load against a real `python -m bot serve` process, briefly: the benchmark keeps working,
and with hostile configs mixed in nothing is a 5xx and the health probe never fails."""

from __future__ import annotations

import pytest

from bench.load import main
from bench.throughput import main as throughput


def test_the_load_benchmark_runs_and_hostile_configs_get_no_5xx(capsys) -> None:
    assert main(["-n", "40", "-c", "8", "--hostile", "0.25"]) == 0
    out = capsys.readouterr().out
    assert "requests   40 of 40" in out and "500" not in out.split("statuses", 1)[1].split("\n")[0]
    assert "0 failed" in out


@pytest.mark.parametrize("client", ["wrk", "python"])
def test_the_throughput_benchmark_measures_every_load(capsys, client) -> None:
    """bench.throughput briefly, with wrk (scripts/test.sh installs it) and with its own
    client: the ceiling, repeated, cold and warm distinct questions, the cold ones again one at
    a time, no errors."""
    assert throughput(["--seconds", "1", "--distinct", "6", "-c", "4",
                       "--client", client]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines()
            if line.startswith("| ") and "ms |" in line and not line.startswith("| load |")]
    assert [row.split(" | ")[0] for row in rows] == [
        "| hello-world aiohttp (the ceiling)", "| repeated: 4 questions in turn",
        "| distinct: 6 questions, each once (cold)", "| distinct: the 6 in rotation (warm)",
        "| distinct: the 6 cold, one at a time"]
    assert all(row.split(" | ")[6] == "0" for row in rows)  # errors
    # The service's own loop figures (not the hello-world app's): a count and a duration.
    assert all(row.split(" | ")[10].endswith(" ms |") for row in rows[1:])
    assert ("wrk (its own process)" in out) == (client == "wrk")
