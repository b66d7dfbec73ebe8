"""What each engine itself enforces or warns about, beyond memory: the parallel layout, the
context limit, the hardware and the weight format. A rule the engine enforces (it refuses to
start) makes the verdict NO with the engine's own reason; one it only warns about becomes a
warning. Every rule cites where the engine does it (most via /work/shared/docs/engines.md, whose
facts were read in each engine's source at a stated version).

``check`` takes the request as resolved (engine, format, GPUs) and returns the findings;
``adjust`` applies what an engine silently changes (Ollama caps num_ctx at the training context,
transformers dequantizes FP8 on older GPUs) before any memory is computed."""

from __future__ import annotations

from core.rules import cache, context, hardware, parallel
from core.rules.base import Case, Finding, Fix, engine_name

__all__ = ["Case", "Finding", "Fix", "check", "engine_name"]


def check(case: Case) -> list[Finding]:
    """Every finding for ``case``: refusals first, then warnings."""
    found = [*hardware.check(case), *parallel.check(case), *context.check(case),
             *cache.check(case)]
    return sorted(found, key=lambda f: f.severity != "refuse")
