"""'Which models fit my GPU?': every bundled model, each at the best format of the engine that
fits wholly on the GPU, ranked by quality, recency and room to spare, one reason per pick.

Ranking, in order (each pick's reason says which applied):
1. A published score (core/data/quality.json: one benchmark for every model that has one, with
   its source), less what the format costs in quality: nothing at 8 bits and above, 0.3 points
   at 6, 0.6 at 5, 1.5 at 4 and 4 under 4 bits (llama.cpp's own perplexity tables put 4-bit
   K-quants within a few percent of 16 bit and 3-bit well beyond; a benchmark point is the
   unit, so the penalty only decides between close scores).
2. Models without a score come after those with one, newest first, then largest.
3. An answer with under 10% of the memory left loses a point: headroom is worth more than a
   tight fit.
Variants of the same weights (base, instruct, FP8) count once: the instruct one for chat.

The work is bounded for chat deadlines: a model whose weights cannot fit at the smallest format
is skipped without an engine run, the format ladder is searched by halving (memory falls as
quality does), and only the picks get their speed worked out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from core import quality, snapshot
from core.cpus import host_for
from core.errors import UserError
from core.estimate import bind
from core.formats import weight_bytes
from core.gpus import GpuSelection
from core.quant import QUALITY_ORDER, engine_family
from core.ranking import BestAnswer, BestEntry
from core.resolve import resolve_offline
from core.setup import llamacpp_speed
from core.speed import serving_speed
from core.units import format_bytes, format_tokens

if TYPE_CHECKING:
    from core.engines.base import EngineEstimate
    from core.request import EstimateRequest
    from core.setup import Setup

USES = ("chat", "code", "reasoning", "vision", "embed")
TIGHT_FRACTION = 0.10
# The formats each engine is searched over, best first; nothing under 3 bits is recommended.
LADDERS = {
    "llama.cpp": ("Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "IQ4_XS", "Q3_K_M", "IQ3_M"),
    "vllm": ("bf16", "fp8", "awq"),
    "hf": ("bf16", "int8", "nf4"),
    "exllamav2": tuple(q.replace(":", "=") for q in QUALITY_ORDER["exllamav2"][:6]),
}
QUANT_PENALTY = ((7.5, 0.0), (5.8, 0.3), (4.8, 0.6), (3.8, 1.5), (0.0, 4.0))  # (bits, points)
MIN_BITS = 3.0
_VARIANT_WORDS = (("embed", "embed"), ("bge-", "embed"), ("-e5", "embed"), ("coder", "coder"),
                  ("thinking", "reasoning"), ("-r1", "reasoning"), ("qwq", "reasoning"),
                  ("-vl", "vision"), ("vision", "vision"), ("llava", "vision"),
                  ("instruct", "instruct"), ("-it", "instruct"), ("chat", "instruct"))
_USE_VARIANTS = {"chat": ("instruct", "reasoning", "coder", "vision"),
                 "code": ("coder", "instruct", "reasoning"),
                 "reasoning": ("reasoning", "instruct"),
                 "vision": ("vision",), "embed": ("embed",)}


@dataclass(frozen=True)
class _Pick:
    id: str
    quant: str
    bits: float
    setup: Setup
    est: EngineEstimate
    family: str
    variant: str
    rank: tuple[float, ...]


def variant_of(model_id: str) -> str:
    facts = quality.facts(model_id)
    if facts.variant:
        return facts.variant
    name = model_id.lower().split("/")[-1]
    return next((v for word, v in _VARIANT_WORDS if word in name), "base")


def family_of(model_id: str) -> str:
    facts = quality.facts(model_id)
    if facts.family:
        return facts.family
    name = model_id.lower().split("/")[-1]
    name = re.sub(r"-(fp8|awq|gptq|instruct|it|chat|hf|base)(?=-|$)", "", name)
    return re.sub(r"-\d{4}$", "", name)  # a date suffix (-2507) is a new release, kept below


def _uses(model_id: str, variant: str) -> tuple[str, ...]:
    facts = quality.facts(model_id)
    return facts.uses or tuple(u for u, vs in _USE_VARIANTS.items() if variant in vs)


def best(template: EstimateRequest, gpu: GpuSelection, use: str = "chat",
         min_speed: float | None = None, limit: int = 10) -> BestAnswer:
    """The ranked models for ``template`` (its model and quant are set per candidate)."""
    engine = template.engine or ("hf" if template.mode == "train" else "llama.cpp")
    ladder = LADDERS.get(engine_family(engine), LADDERS["llama.cpp"])
    if template.mode == "train" or template.quant is not None:
        ladder = (template.quant or "bf16",)
    picks: list[_Pick] = []
    considered = 0
    for bundled in snapshot.entries().values():
        variant = variant_of(bundled.id)
        if variant == "base" or use not in _uses(bundled.id, variant):
            continue  # base models are not what people chat or code with
        considered += 1
        pick = _fit(template, bundled.id, engine, ladder, gpu, variant)
        if pick is not None:
            picks.append(pick)
    fitting = len(picks)
    chosen = _dedupe(picks, use)
    entries: list[BestEntry] = []
    for pick in sorted(chosen, key=lambda p: p.rank, reverse=True):
        entry = _entry(pick, template, gpu)
        if min_speed is not None and (entry.decode_tokens_per_s or 0) < min_speed:
            continue
        entries.append(entry)
        if len(entries) >= limit:
            break
    notes = _notes(template, engine, gpu, use, min_speed)
    return BestAnswer(gpu.label, use, tuple(entries), considered, fitting, notes)


def _fit(template: EstimateRequest, model_id: str, engine: str, ladder: tuple[str, ...],
         gpu: GpuSelection, variant: str) -> _Pick | None:
    model = resolve_offline(model_id)
    spec = model.spec
    if spec.params * MIN_BITS / 8 > gpu.usable_bytes * gpu.count:
        return None  # even 3-bit weights would not fit: no engine run needed
    low, high, found = 0, len(ladder) - 1, None
    while low <= high:  # memory falls along the ladder, so halve it
        mid = (low + high) // 2
        trial = _try(template, model_id, engine, ladder[mid], gpu)
        if trial is not None:
            found, high = (mid, trial), mid - 1
        else:
            low = mid + 1
    if found is None:
        return None
    index, (setup, est) = found
    bits = weight_bytes(spec, setup.fmt) * 8 / max(1, spec.params) if template.mode == \
        "infer" else 16.0
    if template.mode == "infer" and bits < MIN_BITS:
        return None
    return _Pick(model_id, ladder[index], bits, setup, est, family_of(model_id), variant,
                 _rank(model_id, bits, est, gpu, setup))


def _try(template: EstimateRequest, model_id: str, engine: str, quant: str,
         gpu: GpuSelection) -> tuple[Setup, EngineEstimate] | None:
    chosen: dict[str, object] = {"quant": quant}
    if quant.startswith("exl2="):
        chosen = {"quant": "exl2", "bits": float(quant.split("=", 1)[1])}
    request = template.updated(model=model_id, engine=engine, **chosen)
    try:
        bound = bind(request, resolve_offline(model_id), gpu, host_for(request, gpu), None)
    except UserError:
        return None
    if any(f.severity == "refuse" for f in bound.findings):
        return None
    est = bound.setup.run()
    return (bound.setup, est) if bound.setup.fits(est) else None


def _penalty(bits: float) -> float:
    return next(points for floor, points in QUANT_PENALTY if bits >= floor)


def _headroom(est: EngineEstimate, gpu: GpuSelection) -> int:
    from core.engines.details import VllmDetails

    details = est.details
    return details.headroom_bytes if isinstance(details, VllmDetails) else \
        gpu.usable_bytes - est.total


def _rank(model_id: str, bits: float, est: EngineEstimate, gpu: GpuSelection,
          setup: Setup) -> tuple[float, ...]:
    facts = quality.facts(model_id)
    tight = _headroom(est, gpu) < TIGHT_FRACTION * gpu.usable_bytes
    released = float((facts.released or "0000-00-00").replace("-", ""))
    params = float(setup.model.spec.params)
    if facts.score is not None:
        return (1.0, facts.score.value - _penalty(bits) - (1.0 if tight else 0.0), released,
                params)
    return (0.0, -(1.0 if tight else 0.0), released, params)


def _dedupe(picks: list[_Pick], use: str) -> list[_Pick]:
    """One pick per family: the best-ranked, and for chat an instruct variant over a base one."""
    preferred = _USE_VARIANTS.get(use, ())
    best_of: dict[str, _Pick] = {}
    for pick in picks:
        held = best_of.get(pick.family)
        better = held is None or (pick.variant in preferred, pick.rank) > (
            held.variant in preferred, held.rank)
        if better:
            best_of[pick.family] = pick
    return list(best_of.values())


def _entry(pick: _Pick, template: EstimateRequest, gpu: GpuSelection) -> BestEntry:
    from core.engines.details import LlamaCppDetails

    setup, est = pick.setup, pick.est
    details = est.details
    if isinstance(details, LlamaCppDetails) and setup.host is not None:
        speed = llamacpp_speed(setup, details.placement).decode_tokens_per_s
    elif template.mode == "train":
        speed = None
    else:
        sc = setup.scenario()
        speed = serving_speed(engine=setup.engine, spec=setup.model.spec, fmt=setup.fmt,
                              gpu=gpu.gpu, gpu_count=gpu.count, tp=sc.tp, pp=sc.pp,
                              batch=template.batch, prompt_tokens=template.prompt or template.ctx,
                              gen_tokens=template.gen, kv_type=template.kv,
                              version=template.version).decode_tokens_per_s
    headroom = _headroom(est, gpu)
    tight = headroom < TIGHT_FRACTION * gpu.usable_bytes
    facts = quality.facts(pick.id)
    said = []
    if facts.score is not None:
        host = re.sub(r"^https?://(www\.)?", "", facts.score.source).split("/")[0]
        of = f" of {facts.score.measured_on}" if facts.score.measured_on else ""
        said.append(f"{facts.score.benchmark} {facts.score.value:g}{of} ({host})")
    else:
        said.append("no benchmark score in fits' data")
    if facts.released:
        said.append(f"released {facts.released[:7]}")
    said.append(f"{pick.quant} {'fits, tight' if tight else 'fits'} with "
                f"{format_bytes(headroom)} to spare")
    if speed:
        said.append(f"about {speed:.3g} tokens/s")
    return BestEntry(pick.id, pick.quant, setup.engine, est.total, headroom,
                     "tight" if tight else "fits", speed, "; ".join(said),
                     command_for(pick.id, pick.quant, setup.engine, template),
                     facts.released, facts.score.value if facts.score else None)


def command_for(model_id: str, quant: str, engine: str, template: EstimateRequest) -> str:
    """The estimate command that gives a pick's own answer."""
    words = [model_id, quant, f"engine={engine}", f"gpu={template.gpu}", f"ctx={template.ctx}"]
    if template.batch != 1:
        words.append(f"batch={template.batch}")
    if template.kv != "fp16":
        words.append(f"kv={template.kv}")
    if template.ram is not None:
        words.append(f"ram={template.ram >> 30}GB")
    if template.mode == "train":
        words.append(f"train={template.train}")
    return " ".join(f'"{w}"' if " " in w else w for w in words)


def _notes(template: EstimateRequest, engine: str, gpu: GpuSelection, use: str,
           min_speed: float | None) -> tuple[str, ...]:
    bench = quality.benchmark()
    notes = [f"each model at the best format of {engine} that fits wholly on {gpu.label} at "
             f"ctx={format_tokens(template.ctx)}",
             f"ranked by {bench or 'a published benchmark score'} less a small cost for formats "
             "under 8 bits, then by release date; variants of the same weights count once"]
    if min_speed is not None:
        notes.append(f"only models at {min_speed:g} tokens/s or more")
    if use != "chat":
        notes.append(f"models for {use}")
    return tuple(notes)


def with_limit(answer: BestAnswer, limit: int) -> BestAnswer:
    return replace(answer, entries=answer.entries[:limit])
