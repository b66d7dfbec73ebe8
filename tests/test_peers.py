"""fits against the peer calculators, on the reference records they share.

The peers cannot run here (their environment, .venv-peers, exists only where someone installed
bench/peers_requirements.txt): their estimates come from bench/reference/peers_results.json,
written by `python -m bench.peer_accuracy --write`. fits is recomputed live through
bench.accuracy on exactly the same records, so a change to the estimator moves these numbers.
"""

from __future__ import annotations

import pytest

from bench import accuracy, peer_accuracy, peers
from bench.peer_accuracy import PeerResult, PeerSummary, Row

RESULTS, VERSIONS = peer_accuracy.load_results()

# Peers fits is not ahead of on their shared records: each assertion is marked xfail(strict)
# with the reason, so the lead sees it and the mark must go once the estimator is fixed.
BEHIND: dict[str, str] = {}


def _peers_with_figures(results: list[PeerResult]) -> list[str]:
    names = [r.peer for r in results if r.bytes is not None]
    return list(dict.fromkeys(names))


def _params() -> list[object]:
    return [pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=BEHIND[name]))
            if name in BEHIND else name for name in _peers_with_figures(RESULTS)]


@pytest.fixture(scope="module")
def rows() -> list[Row]:
    return peer_accuracy.score(peer_accuracy.targets(accuracy.run()), RESULTS)


def test_the_stored_results_cover_the_peers_that_give_figures() -> None:
    assert set(VERSIONS) == set(peers.PEERS)
    assert len(_peers_with_figures(RESULTS)) >= 5, "too few peers gave a figure: rerun --write"


def test_every_stored_result_names_a_record_that_still_exists() -> None:
    records = accuracy.records()
    gone = [f"{r.record} ({r.peer})" for r in RESULTS if r.record not in records]
    assert not gone, f"stored peer results name records that no longer exist: {gone}"
    lost = sorted({f"{r.record}.{r.measured_key}" for r in RESULTS
                   if r.measured_key not in records[r.record]["measured"]})
    assert not lost, f"stored peer results name measured keys the records no longer have: {lost}"


def test_no_stored_result_is_stale(rows: list[Row]) -> None:
    """A stored figure was run on the setup the record's fits command describes now."""
    stale = sorted({f"{row.comparison.id} ({peer})" for row in rows
                    for peer, out in row.outcomes.items() if out.reason.startswith("stale")})
    assert not stale, (f"records whose command changed since the peers ran: {stale}; "
                       f"regenerate with `{peer_accuracy.COMMAND}`")


@pytest.mark.parametrize("peer", _params())
def test_fits_median_error_is_below_the_peers(rows: list[Row], peer: str) -> None:
    summary = PeerSummary(peer, [r for r in rows if r.peer_error(peer) is not None])
    assert summary.n, f"{peer}: no stored figure is comparable with a live record"
    table = (peer_accuracy.record_table(summary.shared, [peer]) + "\n\n"
             + peer_accuracy.summary_table([summary], VERSIONS))
    assert summary.fits_median < summary.peer_median, (
        f"fits' median APE {summary.fits_median:.1%} is not below {peer}'s "
        f"{summary.peer_median:.1%} on the {summary.n} records they share:\n{table}")
