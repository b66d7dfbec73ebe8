"""The largest whole number that still fits, found with few engine runs.

Memory grows with the context and the batch smoothly between small steps (KV per token,
activations per sequence; eager attention's scores with the context squared), so the memory
left, the margin, is close to a line or a parabola in n. ``largest_fitting`` fits the curve
through its latest probes, probes where it crosses zero and then the neighbour, and so usually
ends in three to five engine runs where halving takes twelve to twenty-five (tests/test_boundary.py
counts both over every bundled model). Each decision is an exact ``fits`` of a probe, so the
answer is the boundary halving finds for any monotone ``fits``. A prediction that does not halve
the bracket is followed by a halving, which bounds the runs at about twice halving's.
"""

from __future__ import annotations

import math
from collections.abc import Callable

# What one probe says: does n fit, and by how much (bytes left, negative over) if known.
Probe = Callable[[int], tuple[bool, float | None]]
MAX_PROBES = 192  # two per halving of a 64-bit range, and some; a guard, never reached


def largest_by_halving(fits: Callable[[int], bool], low: int, high: int) -> int | None:
    """Largest n in [low, high] with fits(n), for a monotone fits; None if not even low. The
    reference the guided search is checked against (tests/test_boundary.py)."""
    low, high = int(low), int(high)
    if high < low or not fits(low):
        return None
    for _ in range(64):
        if low >= high:
            break
        mid = (low + high + 1) // 2
        if fits(mid):
            low = mid
        else:
            high = mid - 1
    return low


def largest_fitting(probe: Probe, low: int, high: int) -> int | None:
    """Largest n in [low, high] whose probe fits, for a monotone fit; None if not even low."""
    low, high = int(low), int(high)
    if high < low:
        return None
    ok, margin_low = probe(low)
    if not ok:
        return None
    if low == high:
        return low
    ok, margin_high = probe(high)
    if ok:
        return high
    # Invariant: low fits, high does not; the answer is in [low, high - 1].
    halve_next = False
    # How far past an edge to step when the prediction is the edge itself: doubled while the
    # steps land on the same side, as on a margin that is flat for a while (vLLM's KV blocks
    # of 16 tokens, llama.cpp's context padded to 256) and then drops at once.
    reach_up = reach_down = 1
    # The latest probes: a parabola through three follows a curved margin (eager attention's
    # scores grow with ctx squared) where the chord across the bracket keeps falling short.
    recent: list[tuple[int, float | None]] = [(low, margin_low), (high, margin_high)]
    for _ in range(MAX_PROBES):
        width = high - low
        if width <= 1:
            return low
        n = mid = (low + high) // 2
        predicted = False
        crossing = None if halve_next else _crossing(recent, low, high)
        if crossing is None and not halve_next:
            crossing = _crossing([(low, margin_low), (high, margin_high)], low, high)
        if crossing is not None:
            if crossing <= low:
                n = min(low + reach_up, mid)
            elif crossing >= high - 1:
                n = max(high - reach_down, mid)
            else:
                n, predicted = crossing, True
        ok, margin = probe(n)
        if ok:
            reach_up = reach_up * 2 if n == low + reach_up else 1
            low, margin_low = n, margin
        else:
            reach_down = reach_down * 2 if n == high - reach_down else 1
            high, margin_high = n, margin
        recent = [*recent[-2:], (n, margin)]
        # A prediction that left more than half the bracket is not to be trusted again at once.
        halve_next = predicted and (high - low) * 2 > width
    raise RuntimeError("largest_fitting did not converge")  # unreachable: the bracket halves


def _crossing(points: list[tuple[int, float | None]], low: int, high: int) -> int | None:
    """Where the curve through the (n, margin) points (a line through two, a parabola through
    three) first falls through zero inside [low, high], rounded down; None if it does not."""
    known = [(float(n), float(m)) for n, m in points if m is not None]
    if len(known) < 2 or len({n for n, _ in known}) < len(known):
        return None
    (n0, m0), (n1, m1) = known[0], known[1]
    slope = (m1 - m0) / (n1 - n0)
    curve = 0.0
    if len(known) == 3:
        n2, m2 = known[2]
        curve = ((m2 - m1) / (n2 - n1) - slope) / (n2 - n0)
    # m(n) = m0 + slope (n - n0) + curve (n - n0)(n - n1) = a n^2 + b n + c
    a = curve
    b = slope - curve * (n0 + n1)
    c = m0 - slope * n0 + curve * n0 * n1
    if a == 0 or abs(a) * (high - low) < 1e-9 * abs(b):
        roots = [-c / b] if b else []
    else:
        disc = b * b - 4 * a * c
        if disc < 0:
            return None
        q = -0.5 * (b + math.copysign(math.sqrt(disc), b))
        roots = [q / a] + ([c / q] if q else [])
    falling = sorted(r for r in roots if low <= r <= high and 2 * a * r + b < 0)
    return int(falling[0]) if falling else None
