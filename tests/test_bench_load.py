"""bench.load against a real `python -m bot serve` process, briefly: the benchmark keeps working,
and with hostile configs mixed in nothing is a 5xx and the health probe never fails."""

from __future__ import annotations

from bench.load import main


def test_the_load_benchmark_runs_and_hostile_configs_get_no_5xx(capsys) -> None:
    assert main(["-n", "40", "-c", "8", "--hostile", "0.25"]) == 0
    out = capsys.readouterr().out
    assert "requests   40 of 40" in out and "500" not in out.split("statuses", 1)[1].split("\n")[0]
    assert "0 failed" in out
