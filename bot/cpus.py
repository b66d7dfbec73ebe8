"""How many CPUs this process may use: its affinity mask, lowered by a container's CPU quota
(cgroup v2 cpu.max, or v1 cpu.cfs_quota_us / cpu.cfs_period_us), since os.cpu_count() reports
the host's in a container. What `fits-bot serve` runs as many workers as, by default."""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")


def usable_cpus(cgroup: Path = CGROUP) -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    quota = _quota(cgroup)
    return max(1, min(cpus, math.ceil(quota))) if quota is not None else max(1, cpus)


def _quota(cgroup: Path) -> float | None:
    """CPUs' worth of time the cgroup may use per period, or None without a limit."""
    try:
        limit, period = (cgroup / "cpu.max").read_text().split()[:2]
        return None if limit == "max" else int(limit) / int(period)
    except (OSError, ValueError):
        pass
    try:
        limit_us = int((cgroup / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((cgroup / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return limit_us / period_us if limit_us > 0 and period_us > 0 else None
