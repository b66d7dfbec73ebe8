"""Peers side by side: fits and the registry's memory calculators on the same measurements.

    python -m bench.peer_accuracy [--jobs N] [--peers a,b] [--records m084,m085] [--write]
                                  [--refresh]

Every reference comparison of bench.accuracy is a candidate. A peer is scored only on a
quantity it models (bench/peers.py runs each peer offline and says which kind of figure it
gave):

* its WEIGHTS figure against records measuring the weights (fits quantity weights or
  gguf_weights);
* its INFERENCE total against inference records measuring the whole footprint (total,
  total_without_context, total_without_context_all_gpus);
* its TRAINING total against training records measuring the whole footprint.

The CUDA context is handled as fits is compared: where fits' quantity leaves the context out
(an allocator figure, ``total_without_context``), the part a peer itself itemizes as CUDA
context / runtime (CONTEXT_PARTS) is taken off its total, as fits takes off its own overhead.
A peer whose margin is a multiplier folded into its total (weights x 1.2) keeps it: it does
not say which share is the context.

Everything else is "not comparable", listed with the reason: component figures (vLLM's KV pool
and activation peak, llama.cpp's KV buffer, token counts, budgets), per-GPU shares of a sharded
or split model (the peers model one GPU holding the whole model), max-context boundaries.

Each peer runs on a case built from the record's fits command (model config from
core/data/models.jsonl, the weight format fits resolved, context, batch, training method,
LoRA rank, gradient checkpointing, precision), several at a time, with results cached under
build/peer-cache/ (git-ignored; FITS_PEER_CACHE moves it; --refresh ignores it). fits is
always recomputed live. ``--write`` stores the peers' results in
bench/reference/peers_results.json, which tests/test_peers.py checks fits against without
running any peer.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import os
import statistics
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from bench import accuracy, peers, reference_set
from bench.accuracy import Comparison
from core.answer import estimate_command
from core.parser import EstimateCommand, parse_command
from core.request import EstimateRequest

ROOT = Path(__file__).resolve().parent.parent
RESULTS_PATH = Path(__file__).parent / "reference" / "peers_results.json"
CACHE_DIR = Path(os.environ.get("FITS_PEER_CACHE", str(ROOT / "build" / "peer-cache")))
GIB = 1 << 30
COMMAND = "python -m bench.peer_accuracy --write"

# fits quantities a peer's WEIGHTS figure is compared with, and the whole-footprint ones a
# peer's INFERENCE or TRAINING total is compared with (see peer_quantity()), each with whether
# the measurement includes the CUDA context.
WEIGHT_QUANTITIES = frozenset({"weights", "gguf_weights"})
TOTAL_QUANTITIES: dict[str, bool] = {
    "total": True,
    # transformers generate() as the process shows it (allocated + the allocator's cache)
    "reserved": True,
    "total_without_context": False,
    # training's torch.cuda.max_memory_allocated (fits' allocated peak, no CUDA context)
    "allocated": False,
    # summed over the GPUs of a split model: the whole footprint, as one GPU would hold it
    "total_without_context_all_gpus": False,
}

# The part of a peer's total that the peer itself names as CUDA context / runtime overhead.
CONTEXT_PARTS: dict[str, str] = {
    "vramcalc": "overhead",        # its 0.75 GB (10^9) "CUDA overhead"
    "modelinfo-cli": "overhead",   # its 600 MiB CUDA context
    "vramscout": "cuda_runtime",   # its "CUDA/runtime" line
}

# Why a fits quantity is not a figure any peer gives (bench/peers.py: each peer's headline is
# its weights, or its whole inference or training footprint).
NOT_MODELLED: dict[str, str] = {
    "kv_cache": "a KV-cache figure alone (vLLM's pool is what is left of the budget; "
                "llama.cpp's is its KV buffer): no peer reports the KV cache as its answer, "
                "and none models vLLM's pool",
    "kv_cache_all_gpus": "llama.cpp's KV buffers summed over GPUs: a component, not a "
                         "footprint any peer answers with",
    "activations": "the engine's profiled activation / compute peak: no peer models vLLM's "
                   "profiling run or llama.cpp's compute buffer",
    "overhead": "the engine's non-torch memory (CUDA context, NCCL, graphs) on its own: no "
                "peer answers with it",
    "budget": "vLLM's util x GPU memory budget: a property of the GPU and the setting, not "
              "of the model",
    "kv_cache_tokens": "tokens in the engine's KV pool: no peer sizes a pool",
    "kv_blocks": "KV blocks in vLLM's pool: no peer sizes a pool",
    "max_concurrency": "vLLM's concurrency from its KV pool: no peer sizes a pool",
}


# --------------------------------------------------------------------------- targets

@dataclass(frozen=True)
class Target:
    """One fits comparison and what a peer may be scored on there."""

    comparison: Comparison
    peer_quantity: str | None  # peers.WEIGHTS / INFERENCE / TRAINING; None: not comparable
    case: dict[str, Any] | None
    reason: str = ""           # why not comparable

    @property
    def key(self) -> tuple[str, str]:
        return (self.comparison.id, self.comparison.measured_key)


def peer_quantity(c: Comparison) -> str | None:
    """The kind of peer figure a comparison can be scored against, None when none."""
    if c.quantity in WEIGHT_QUANTITIES:
        return peers.WEIGHTS
    if c.quantity in TOTAL_QUANTITIES:
        return peers.TRAINING if c.task == "training" else peers.INFERENCE
    return None


def _quantity_reason(c: Comparison) -> str:
    return NOT_MODELLED.get(c.quantity, f"fits quantity {c.quantity!r} is a component, not "
                                        "weights or a whole footprint that a peer answers with")


@lru_cache(maxsize=1)
def _training_measures() -> dict[str, str]:
    return {str(r["id"]): str(r.get("measures", "")) for r in reference_set.training_cases()}


def _bits(weight_format: str) -> float | None:
    """4.0 from 'gptq 4-bit' or 'exl2 4 bpw'."""
    words = weight_format.replace("-", " ").split()
    for number, unit in itertools.pairwise(words):
        if unit in ("bit", "bits", "bpw"):
            try:
                return float(number)
            except ValueError:
                return None
    return None


def _inference_dtype(weight_format: str) -> str:
    """The weight format fits resolved, as the peers' dtype vocabulary reads it
    (bench.peers.quant_family): packed GPTQ/AWQ/EXL2 formats at exactly 4 or 8 bits per
    weight become int4/int8; other bit widths are named so that no peer guesses a type."""
    bits = _bits(weight_format)
    if bits is None:
        return weight_format
    if bits in (4.0, 8.0):
        return f"int{int(bits)}"
    return f"{bits:g} bits per weight"


def _training_setup(request: EstimateRequest) -> dict[str, Any]:
    """The training setup fits estimated for this request, in the peers' case vocabulary.
    Unset gc and precision take fits' per-method defaults (core/engines/training.py): the
    peers are run on the setup fits answered for, not on their own defaults."""
    method = request.train
    precision = request.precision or ("mixed" if method == "full" else "bf16")
    if method == "qlora":
        dtype = "nf4"
    elif method == "lora" and request.quant in ("int8", "nf4", "fp4"):
        dtype = str(request.quant)
    else:
        dtype = "fp32" if precision == "fp32" else "bf16"
    gc = request.gc if request.gc is not None else method == "qlora"
    return {"task": "training", "method": method, "dtype_or_quant": dtype,
            "lora_rank": request.r, "gradient_checkpointing": gc,
            "precision": "amp" if precision == "mixed" else "pure"}


def _setup_reason(c: Comparison, request: EstimateRequest, gpus: int) -> str:
    """Why the record's setup is one no peer models (sharded or split over GPUs), or ''."""
    if c.task == "training":
        sharded = request.zero > 0 and gpus > 1
        if not sharded and request.offload != "cpu":
            return ""  # one GPU, or data parallel: every GPU holds the whole model
        how = " with ".join(x for x in (
            f"ZeRO-{request.zero}/FSDP sharding over {gpus} GPUs" if sharded else "",
            "CPU offload" if request.offload == "cpu" else "") if x)
        return f"per-GPU peak under {how}: the peers model one GPU holding the whole model"
    if gpus > 1 and not c.quantity.endswith("_all_gpus"):
        how = f"tensor parallelism (tp={request.tp})" if request.tp > 1 else f"a split over {gpus} GPUs"
        return f"the per-GPU share under {how}: the peers model the whole model on one GPU"
    return ""


def target_for(c: Comparison, records: Mapping[str, Mapping[str, Any]]) -> Target:
    """Whether (and on which case) the peers can be scored on this comparison; ``records``
    is bench.accuracy.records()."""
    wanted = peer_quantity(c)
    if wanted is None:
        return Target(c, None, None, _quantity_reason(c))
    record = records.get(c.id, {})
    if (_training_measures().get(c.id) == "max_context"
            or str(record.get("unit", "")).startswith("tokens")):
        return Target(c, None, None, "the longest context that fits a memory budget (a token "
                                     "count): no peer searches for a boundary")
    command = parse_command(c.command)
    if not isinstance(command, EstimateCommand):
        return Target(c, None, None, f"{c.command!r} is not an estimate command")
    request = command.request
    report = estimate_command(command)
    reason = _setup_reason(c, request, report.gpu.count)
    if reason:
        return Target(c, None, None, reason)
    if report.model.source != "snapshot":
        return Target(c, None, None, f"{report.model.id} has no bundled config in "
                                     "core/data/models.jsonl")
    fields: dict[str, Any] = {"context_tokens": request.ctx, "batch": request.batch}
    if c.task == "training":
        fields.update(_training_setup(request))
    else:
        fields.update(task="inference", method=None,
                      dtype_or_quant=_inference_dtype(report.model.weight_format),
                      engine=report.engine)
    try:
        case = peers.case_from_models_jsonl(report.model.id, **fields)
    except KeyError as exc:
        return Target(c, None, None, str(exc.args[0]))
    return Target(c, wanted, case)


def targets(comparisons: Iterable[Comparison]) -> list[Target]:
    records = reference_set.records()
    return [target_for(c, records) for c in comparisons]


# --------------------------------------------------------------------------- peer results

def case_key(case: Mapping[str, Any]) -> dict[str, Any]:
    """The case as stored: every field but the (large) config, which is named by its hash."""
    config = json.dumps(case.get("config") or {}, sort_keys=True).encode()
    out = {k: v for k, v in case.items() if k != "config"}
    out["config_sha256"] = hashlib.sha256(config).hexdigest()[:16]
    return out


@dataclass(frozen=True)
class PeerResult:
    """One peer on one record, as run (or as stored in peers_results.json)."""

    record: str
    measured_key: str
    peer: str
    version: str
    case: dict[str, Any]           # case_key() of the case it ran on
    quantity: str = ""             # peers.WEIGHTS / INFERENCE / TRAINING ("" when none)
    bytes: int | None = None       # the peer's headline figure
    context_bytes: int = 0         # the part of it the peer itemizes as CUDA context
    label: str = ""
    reason: str = ""
    parts: dict[str, int] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def from_estimate(cls, target: Target, estimate: peers.PeerEstimate,
                      version: str) -> PeerResult:
        part = CONTEXT_PARTS.get(estimate.peer)
        return cls(record=target.comparison.id, measured_key=target.comparison.measured_key,
                   peer=estimate.peer, version=version, case=case_key(target.case or {}),
                   quantity=estimate.quantity, bytes=estimate.bytes,
                   context_bytes=int(estimate.parts.get(part, 0)) if part else 0,
                   label=estimate.label, reason=_one_line(estimate.reason),
                   parts=dict(estimate.parts), inputs=dict(estimate.inputs),
                   notes=list(estimate.notes))


def _one_line(text: str, limit: int = 300) -> str:
    """A peer's failure as one short line (its tracebacks and prompts span many)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _source_digest() -> str:
    """Changes whenever an adapter changes, so cached results of an older adapter are not
    reused."""
    return hashlib.sha256(Path(peers.__file__).read_bytes()).hexdigest()[:16]


def _cache_path(peer: str, version: str, case: Mapping[str, Any]) -> Path:
    blob = json.dumps({"peer": peer, "version": version, "adapters": _source_digest(),
                       "case": case}, sort_keys=True).encode()
    return CACHE_DIR / peer / (hashlib.sha256(blob).hexdigest()[:32] + ".json")


def _cacheable(estimate: peers.PeerEstimate) -> bool:
    # A timeout or a missing environment says nothing about the peer: run it again next time.
    return "timed out" not in estimate.reason and "unavailable" not in estimate.reason


def _load_cached(path: Path) -> peers.PeerEstimate | None:
    try:
        data = json.loads(path.read_text())
        data["notes"] = tuple(data.get("notes") or ())
        return peers.PeerEstimate(**data)
    except (OSError, ValueError, TypeError):
        return None


def _store_cached(path: Path, estimate: peers.PeerEstimate) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(asdict(estimate), sort_keys=True))
    tmp.replace(path)


def run_peers(todo: Sequence[Target], names: Sequence[str], jobs: int = 2,
              refresh: bool = False, progress: bool = True) -> list[PeerResult]:
    """Every named peer on every comparable target: each distinct (peer, case) runs once,
    ``jobs`` subprocesses at a time, through the on-disk cache."""
    versions = peers.available_peers()
    runs: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
    for t in todo:
        if t.case is not None:
            for name in names:
                key = (name, json.dumps(t.case, sort_keys=True))
                runs.setdefault(key, (name, t.case))
    done: dict[tuple[str, str], peers.PeerEstimate] = {}
    pending: list[tuple[tuple[str, str], Path | None]] = []
    for key, (name, case) in runs.items():
        version = versions.get(name, "")
        path = _cache_path(name, version, case) if version else None
        cached = None if refresh or path is None else _load_cached(path)
        if cached is not None:
            done[key] = cached
        else:
            pending.append((key, path))
    if progress:
        print(f"{len(runs)} peer runs: {len(done)} cached, {len(pending)} to run "
              f"({jobs} at a time)", file=sys.stderr)

    def one(key: tuple[str, str], path: Path | None) -> peers.PeerEstimate:
        name, case = runs[key]
        estimate = peers.estimate_with(name, case)
        if path is not None and _cacheable(estimate):
            _store_cached(path, estimate)
        return estimate

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(one, key, path): key for key, path in pending}
        for count, future in enumerate(as_completed(futures), 1):
            key = futures[future]
            done[key] = future.result()
            if progress:
                est = done[key]
                what = f"{est.bytes / GIB:.2f} GiB" if est.bytes is not None else est.reason[:70]
                print(f"  [{count}/{len(pending)}] {est.peer} {case_key(runs[key][1])['model_id']}"
                      f" ({est.seconds:.0f} s): {what}", file=sys.stderr, flush=True)
    out = []
    for t in todo:
        if t.case is None:
            continue
        for name in names:
            estimate = done[(name, json.dumps(t.case, sort_keys=True))]
            out.append(PeerResult.from_estimate(t, estimate, versions.get(name, "")))
    return out


# --------------------------------------------------------------------------- scoring

@dataclass(frozen=True)
class Outcome:
    """A peer on one comparison: the bytes it is scored with, or why it has none."""

    compared: float | None
    reason: str = ""
    result: PeerResult | None = None


def compared_bytes(result: PeerResult, target: Target) -> Outcome:
    """The peer's figure in fits' terms for this comparison, or why there is none."""
    if target.peer_quantity is None:
        return Outcome(None, "not comparable", result)
    if result.case != case_key(target.case or {}):
        return Outcome(None, "stale: stored for another setup (rerun `" + COMMAND + "`)", result)
    if result.bytes is None:
        return Outcome(None, result.reason or "no figure", result)
    if result.quantity != target.peer_quantity:
        return Outcome(None, f"gives its {result.quantity} only; the record measures the "
                             f"{target.peer_quantity}", result)
    value = float(result.bytes)
    if not TOTAL_QUANTITIES.get(target.comparison.quantity, True):
        value -= result.context_bytes
    return Outcome(value, "", result)


@dataclass(frozen=True)
class Row:
    target: Target
    outcomes: dict[str, Outcome]  # peer -> outcome (only for comparable targets)

    @property
    def comparison(self) -> Comparison:
        return self.target.comparison

    def peer_error(self, peer: str) -> float | None:
        out = self.outcomes.get(peer)
        if out is None or out.compared is None:
            return None
        return (out.compared - self.comparison.measured) / self.comparison.measured


def score(todo: Sequence[Target], results: Iterable[PeerResult]) -> list[Row]:
    by_key: dict[tuple[str, str], dict[str, PeerResult]] = {}
    for r in results:
        by_key.setdefault((r.record, r.measured_key), {})[r.peer] = r
    rows = []
    for t in todo:
        stored = by_key.get(t.key, {})
        outcomes = {} if t.peer_quantity is None else {
            peer: compared_bytes(result, t) for peer, result in stored.items()}
        rows.append(Row(t, outcomes))
    return rows


# Errors closer than this (0.05 percentage points) are a tie, not "the peer is closer": the
# same weights counted by two tools differ by a few hundred bytes of rounding.
TIE = 0.0005


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


@dataclass(frozen=True)
class PeerSummary:
    peer: str
    shared: list[Row]  # comparisons where the peer has a figure (fits always has one)

    @property
    def n(self) -> int:
        return len(self.shared)

    def _apes(self, of_fits: bool) -> list[float]:
        return [abs(r.comparison.error if of_fits else r.peer_error(self.peer) or 0.0)
                for r in self.shared]

    @property
    def fits_median(self) -> float:
        return statistics.median(self._apes(True))

    @property
    def peer_median(self) -> float:
        return statistics.median(self._apes(False))

    @property
    def fits_p90(self) -> float:
        return percentile(self._apes(True), 90)

    @property
    def peer_p90(self) -> float:
        return percentile(self._apes(False), 90)

    @property
    def peer_closer(self) -> list[Row]:
        """Records where the peer's error is smaller than fits' by more than TIE."""
        return [r for r in self.shared
                if abs(r.peer_error(self.peer) or 0.0) < abs(r.comparison.error) - TIE]

    @property
    def fits_ahead(self) -> bool:
        return self.fits_median < self.peer_median


def summarize(rows: Sequence[Row], names: Sequence[str]) -> list[PeerSummary]:
    return [PeerSummary(name, [r for r in rows if r.peer_error(name) is not None])
            for name in names]


# --------------------------------------------------------------------------- report

def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:+.1%}"


def _gib(value: float) -> str:
    return f"{value / GIB:.2f}"


def summary_table(summaries: Sequence[PeerSummary], versions: Mapping[str, str]) -> str:
    lines = ["| peer | version | shared records | fits median APE | peer median APE | "
             "fits p90 APE | peer p90 APE | peer closer than fits | fits ahead (median) |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for s in summaries:
        version = versions.get(s.peer, "?")
        if not s.n:
            lines.append(f"| {s.peer} | {version} | 0 | — | — | — | — | — | no shared record |")
            continue
        lines.append(f"| {s.peer} | {version} | {s.n} | {s.fits_median:.1%} | "
                     f"{s.peer_median:.1%} | {s.fits_p90:.1%} | {s.peer_p90:.1%} | "
                     f"{len(s.peer_closer)}/{s.n} | {'yes' if s.fits_ahead else 'NO'} |")
    return "\n".join(lines)


def record_table(rows: Sequence[Row], names: Sequence[str]) -> str:
    """Comparable records: measured, fits' error, each peer's error ('—': see the reasons)."""
    head = "| record | measured key → quantity | measured GiB | fits | " + " | ".join(names) + " |"
    lines = [head, "| --- | --- | ---: | ---: | " + " | ".join("---:" for _ in names) + " |"]
    for r in rows:
        if r.target.peer_quantity is None:
            continue
        c = r.comparison
        cells = " | ".join(_pct(r.peer_error(n)) for n in names)
        lines.append(f"| {c.id} | {c.measured_key} → {c.quantity} | {_gib(c.measured)} | "
                     f"{_pct(c.error)} | {cells} |")
    return "\n".join(lines)


def why_none(rows: Sequence[Row], names: Sequence[str]) -> list[str]:
    """Per peer, each reason it has no figure and the records it applies to."""
    out = []
    for name in names:
        reasons: dict[str, list[str]] = {}
        for r in rows:
            outcome = r.outcomes.get(name)
            if r.target.peer_quantity is None or (outcome and outcome.compared is not None):
                continue
            reason = outcome.reason if outcome else "not run (no result stored)"
            reasons.setdefault(reason, []).append(r.comparison.id)
        for reason, ids in reasons.items():
            out.append(f"  {name}: {reason} [{', '.join(ids)}]")
    return out


def worst(summaries: Sequence[PeerSummary], count: int = 3) -> list[str]:
    out = []
    for s in summaries:
        ranked = sorted(s.shared, key=lambda r: -abs(r.peer_error(s.peer) or 0.0))[:count]
        for r in ranked:
            out.append(f"  {s.peer} on {r.comparison.id}: {_pct(r.peer_error(s.peer))} "
                       f"(fits {_pct(r.comparison.error)})  `{r.comparison.command}`")
    return out


def closer_than_fits(summaries: Sequence[PeerSummary]) -> list[str]:
    out = []
    for s in summaries:
        for r in s.peer_closer:
            out.append(f"  {s.peer} on {r.comparison.id} ({r.comparison.measured_key}): "
                       f"{_pct(r.peer_error(s.peer))} vs fits {_pct(r.comparison.error)}")
    return out


def not_comparable(rows: Sequence[Row]) -> list[str]:
    """Each reason no peer runs on a comparison, with the comparisons (record.measured_key)."""
    reasons: dict[str, list[str]] = {}
    for r in rows:
        if r.target.peer_quantity is None:
            c = r.comparison
            reasons.setdefault(f"{c.quantity}: {r.target.reason}", []).append(
                f"{c.id}.{c.measured_key}")
    return [f"  {reason} [{', '.join(ids)}]" for reason, ids in reasons.items()]


def render(rows: Sequence[Row], names: Sequence[str], versions: Mapping[str, str]) -> str:
    summaries = summarize(rows, names)
    parts = [
        "Peers next to fits on the reference records they can be compared on. Error = "
        "(estimate - measured) / measured; '—' = no figure (reasons below). Where fits is "
        "compared without the CUDA context, so is each peer (the part it itemizes as context "
        "is taken off).",
        "", record_table(rows, names),
        "", "Per peer, on the records it shares with fits (APE = absolute percentage error):",
        "", summary_table(summaries, versions),
        "", "Worst records per peer:", *worst(summaries),
        "", "Where a peer is closer than fits:", *(closer_than_fits(summaries) or ["  none"]),
        "", "Why a peer has no figure on a comparable record:", *why_none(rows, names),
        "", "Not comparable (no peer run):", *not_comparable(rows),
    ]
    return "\n".join(parts)


# --------------------------------------------------------------------------- stored results

_SHARED = ("record", "measured_key", "case", "version")  # stored once, not per result


def _case_id(record: str, measured_key: str) -> str:
    return f"{record}/{measured_key}"


def write_results(results: Sequence[PeerResult], versions: Mapping[str, str],
                  path: Path = RESULTS_PATH) -> None:
    """peers_results.json: the peers' versions, each comparison's case once, then one line per
    peer result (empty fields left out) grouped under its comparison, so a regeneration diffs
    line by line."""
    cases: dict[str, dict[str, Any]] = {}
    grouped: dict[str, list[dict[str, Any]]] = {}
    blank = asdict(PeerResult("", "", "", "", {}))
    for r in results:
        cid = _case_id(r.record, r.measured_key)
        cases[cid] = r.case
        row = {k: v for k, v in asdict(r).items() if k not in _SHARED and v != blank[k]}
        grouped.setdefault(cid, []).append(row)
    doc = {
        "generated_by": f"`{COMMAND}` (bench/peer_accuracy.py); regenerate it, never edit it "
                        "by hand",
        "note": "Peer estimates only: fits is recomputed live (tests/test_peers.py). Under "
                "'comparisons', each record/measured key holds the case every peer ran on "
                "(its config is the core/data/models.jsonl entry of model_id, named by hash) "
                "and one result per peer: 'bytes' is the peer's headline figure of kind "
                "'quantity', 'context_bytes' the part of it the peer itemizes as CUDA context "
                "(taken off where fits is compared without the context), 'reason' why there is "
                "no figure.",
        "peers": {name: {"version": versions.get(name, ""), "models": peers.PEERS[name].models}
                  for name in peers.PEERS},
    }
    out = [json.dumps(doc, indent=1, ensure_ascii=False)[:-2] + ',\n "comparisons": {']
    for n, (cid, rows) in enumerate(grouped.items()):
        out.append(f'  {json.dumps(cid)}: {{\n   "case": {json.dumps(cases[cid], ensure_ascii=False)},')
        out.append('   "results": [\n    ' + ",\n    ".join(
            json.dumps(row, ensure_ascii=False) for row in rows) + "\n   ]")
        out.append("  }" + ("," if n < len(grouped) - 1 else ""))
    out.append(" }\n}\n")
    path.write_text("\n".join(out))


def load_results(path: Path = RESULTS_PATH) -> tuple[list[PeerResult], dict[str, str]]:
    """(results, versions) from peers_results.json."""
    doc = json.loads(path.read_text())
    versions = {name: str(info.get("version", "")) for name, info in doc["peers"].items()}
    results = []
    for cid, entry in doc["comparisons"].items():
        record, measured_key = cid.split("/", 1)
        for row in entry["results"]:
            results.append(PeerResult(record=record, measured_key=measured_key,
                                      version=versions.get(row["peer"], ""),
                                      case=entry["case"], **row))
    return results, versions


# --------------------------------------------------------------------------- __main__

def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.peer_accuracy",
                                     description="fits and the peer calculators side by side")
    parser.add_argument("--jobs", type=int, default=2, help="peer subprocesses at a time")
    parser.add_argument("--peers", default="", help="comma-separated peer names (default: all)")
    parser.add_argument("--records", default="", help="comma-separated record ids (default: all)")
    parser.add_argument("--write", action="store_true", help=f"store the results in {RESULTS_PATH.name}")
    parser.add_argument("--refresh", action="store_true", help="ignore the cache")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    names = [n.strip() for n in args.peers.split(",") if n.strip()] or list(peers.PEERS)
    unknown = [n for n in names if n not in peers.PEERS]
    if unknown:
        print(f"unknown peer(s): {', '.join(unknown)}; known: {', '.join(peers.PEERS)}",
              file=sys.stderr)
        return 2
    if args.write and (args.peers or args.records):
        print("--write stores a full run: drop --peers and --records", file=sys.stderr)
        return 2
    versions = peers.available_peers()
    if not versions:
        print(f"no peer installed: {peers.peers_problem() or 'see bench/peers_requirements.txt'}",
              file=sys.stderr)
        return 1
    wanted = {r.strip() for r in args.records.split(",") if r.strip()}
    comparisons = [c for c in accuracy.run() if not wanted or c.id in wanted]
    todo = targets(comparisons)
    results = run_peers(todo, names, jobs=args.jobs, refresh=args.refresh)
    print(render(score(todo, results), names, versions))
    if args.write:
        write_results(results, versions)
        print(f"\nwrote {RESULTS_PATH.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
