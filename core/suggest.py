"""What to change when an answer is NO, tight or split: each change is run through the engine
model, kept only when it changes the answer materially (it fits where the request did not, or
frees memory, or for vLLM grows the KV pool), never the setup as asked, and ranked by what the
user gives up: a rule's fix first, then vLLM's budget, the KV cache, context, batch, a 4-bit or
better format, a GPU/RAM split, another engine, a format under 4 bits, more GPUs, another card.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from core.engines import training
from core.engines.base import EngineEstimate
from core.engines.details import LlamaCppDetails, VllmDetails
from core.formats import weight_bytes
from core.gpus import GpuSelection, gpu_words_without_count, resolve_gpu
from core.quant import engine_family, format_from_name
from core.report import Suggestion
from core.rules.parallel import TP_ENGINES, heads_problem
from core.setup import MAX_GPUS, Setup, _speed_words, llamacpp_speed
from core.units import format_bytes, format_tokens

# Ranks: lower is shown first (what the user gives up least).
RULE, UTIL, KV, CTX, BATCH, QUANT, SPLIT, TRAIN, ENGINE, LOW_QUANT, GPUS, CARD = range(12)
MATERIAL = 0.97  # a change that keeps 97% or more of the memory and the verdict is not worth it
KV_GAIN = 1.10  # vLLM: the pool must grow by 10% or more
UTILS = (0.95, 0.98)
# Cards to name when no count of the user's GPU does it, smallest first (catalogue names).
CARDS = ("4060-ti-16gb", "4090", "5090", "rtx-a6000", "a100-80g", "h200")
# Where one more GPU is not something to buy: laptops and Macs.
_NO_SECOND_GPU = ("Laptop", "Apple", "Jetson")


@dataclass(frozen=True)
class Candidate:
    """A suggestion with its place in the ranking."""

    rank: int
    suggestion: Suggestion
    kv_tokens: int | None = None


class Suggester:
    """Collects the candidates for one answer."""

    def __init__(self, setup: Setup, base: EngineEstimate, fits: bool) -> None:
        self.setup, self.base, self.fits = setup, base, fits
        self.found: list[Candidate] = []

    def add(self, rank: int, change: str, trial: Setup, why: str, **changes: object) -> None:
        est = trial.run(**changes)
        fits = trial.fits(est)
        if not fits:
            return
        vllm = est.details if isinstance(est.details, VllmDetails) else None
        base_vllm = self.base.details if isinstance(self.base.details, VllmDetails) else None
        if vllm is not None:
            req = trial.scenario(**changes).request
            many = vllm.max_concurrency or 0
            why += (f"; KV pool {format_tokens(vllm.kv_cache_tokens)} tokens, {many:g} "
                    f"request{'' if many == 1 else 's'} of {format_tokens(req.ctx)}")
        if isinstance(est.details, LlamaCppDetails):
            why += _speed_words(llamacpp_speed(replace(trial, request=trial.scenario(
                **changes).request), est.details.placement))
        if self.fits and not self._material(est, vllm, base_vllm):
            return
        self.found.append(Candidate(rank, Suggestion(change=change, total_bytes=est.total,
                                                     fits=True, why=why)))

    def _material(self, est: EngineEstimate, vllm: VllmDetails | None,
                  base_vllm: VllmDetails | None) -> bool:
        """For an answer that already fits (tight or split): the change must free memory, or
        grow vLLM's pool, or put a split model wholly on the GPU."""
        if vllm is not None and base_vllm is not None:
            return vllm.kv_cache_tokens >= KV_GAIN * max(1, base_vllm.kv_cache_tokens)
        base = self.base.details
        if (isinstance(base, LlamaCppDetails) and isinstance(est.details, LlamaCppDetails)
                and est.details.n_gpu_layers > base.n_gpu_layers):
            return True
        return est.total <= MATERIAL * self.base.total

    def ranked(self) -> list[Suggestion]:
        seen: set[str] = set()
        out = []
        for cand in sorted(self.found, key=lambda c: c.rank):
            if cand.suggestion.change not in seen:
                seen.add(cand.suggestion.change)
                out.append(cand.suggestion)
        return out


def suggestions(setup: Setup, base: EngineEstimate, fits: bool, ctx_max: int | None,
                batch_max: int | None, quant: str | None,
                other_engine: Callable[[str, str], Setup | None] | None = None) -> list[Suggestion]:
    """The ranked changes for an answer that is NO (``fits`` False), tight or split."""
    s = Suggester(setup, base, fits)
    req = setup.request
    if req.mode == "train":
        _training(s)
    _vllm_budget(s)
    family = engine_family(setup.engine)
    kv = {"llama.cpp": "q8", "vllm": "fp8", "exllamav2": "q4"}.get(family)
    if kv and req.mode == "infer" and req.kv in ("fp16", "bf16"):
        s.add(KV, f"kv={kv}", setup, "a quantized KV cache", kv=kv)
    if ctx_max and ctx_max < req.ctx:
        s.add(CTX, f"ctx={ctx_max}", setup, "the longest context that fits", ctx=ctx_max,
              prompt=None)
    if batch_max and batch_max < req.batch:
        s.add(BATCH, f"batch={batch_max}", setup, "the largest batch that fits", batch=batch_max)
    _format(s, quant)
    _split(s)
    if other_engine is not None and req.mode == "infer" and family != "llama.cpp":
        trial = other_engine("llama.cpp", "Q4_K_M")
        if trial is not None:
            s.add(ENGINE, "engine=llama.cpp Q4_K_M", trial,
                  "llama.cpp with a 4-bit GGUF, split over GPU and RAM if need be")
    _more_gpus(s)
    _other_card(s)
    return s.ranked()


def _training(s: Suggester) -> None:
    setup = s.setup
    req = setup.request
    if not training.gc_of(setup.scenario()):
        s.add(TRAIN, "gc=on", setup, "gradient checkpointing: keep layer inputs, recompute the "
              "rest", gc=True)
    if req.optim == "adamw":
        s.add(TRAIN, "optim=adamw8bit", setup, "8-bit AdamW states (bitsandbytes)",
              optim="adamw8bit")
    if req.train == "full":
        s.add(TRAIN, "train=lora", setup, "train LoRA adapters on a frozen bf16 base",
              train="lora")
    if req.train != "qlora":
        s.add(TRAIN, "train=qlora", setup, "LoRA over a 4-bit (nf4) base", train="qlora")
    if setup.gpu.count > 1 and req.zero < 3:
        s.add(TRAIN, "zero=3", setup, "shard parameters, gradients and optimizer states (FSDP)",
              zero=3)
    if req.loss == "full":
        s.add(TRAIN, "loss=fused", setup, "a fused cross-entropy kernel that never holds all "
              "logits", loss="fused")
    if req.offload == "none" and (setup.gpu.count > 1 or req.zero):
        s.add(TRAIN, "offload=cpu", setup, "optimizer states in CPU RAM", offload="cpu")


def _vllm_budget(s: Suggester) -> None:
    """vLLM/SGLang/TGI: a larger gpu_memory_utilization before anything costlier."""
    details = s.base.details
    if not isinstance(details, VllmDetails):
        return
    for util in UTILS:
        if util > details.gpu_memory_utilization:
            s.add(UTIL, f"util={util:g}", s.setup,
                  f"let the engine take {util:.0%} of the GPU (gpu_memory_utilization); safe "
                  "when nothing else uses the GPU", util=util)
            if s.found and s.found[-1].suggestion.change == f"util={util:g}":
                return


def _format(s: Suggester, quant: str | None) -> None:
    setup = s.setup
    if not quant or setup.request.mode != "infer":
        return
    fmt = format_from_name(quant.replace("exl2=", "exl2:"))
    if fmt.name == setup.fmt.name and fmt.bits == setup.fmt.bits:
        return
    spec = setup.model.spec
    size = weight_bytes(spec, fmt)
    if size >= weight_bytes(spec, setup.fmt) * MATERIAL:
        return  # bf16 for fp16, int8 for fp8, awq for mxfp4: the same memory
    low = size * 8 / max(1, spec.params) < 3.5
    s.add(LOW_QUANT if low else QUANT, quant, replace(setup, fmt=fmt),
          "the best-quality quantization that fits")


def _split(s: Suggester) -> None:
    base = s.base.details
    n_layers = s.setup.model.spec.n_layers
    if (isinstance(base, LlamaCppDetails) and 0 < base.n_gpu_layers < n_layers
            and s.setup.request.ngl is None and not s.fits):
        ngl, ram = base.n_gpu_layers, base.system_ram_bytes
        s.add(SPLIT, f"ngl={ngl}", s.setup, f"llama.cpp -ngl {ngl}: {ngl} of {n_layers} layers "
              f"on the GPU, {format_bytes(ram)} in system RAM", ngl=ngl)


def _more_gpus(s: Suggester) -> None:
    setup, req = s.setup, s.setup.request
    gpu = setup.gpu
    if gpu.gpu.vendor == "cpu" or any(word in gpu.gpu.name for word in _NO_SECOND_GPU):
        return
    name = gpu_words_without_count(req.gpu)
    spec = setup.model.spec
    for count in range(gpu.count + 1, MAX_GPUS + 1):
        tp = count if req.tp > 1 else count // max(1, req.pp)
        if (setup.engine in TP_ENGINES and req.mode == "infer"
                and heads_problem(setup.engine, spec.n_heads, spec.n_kv_heads, tp)):
            continue  # the engine would refuse this many shards
        more = replace(setup, gpu=replace(gpu, count=count))
        changes: dict[str, object] = {"tp": count} if req.tp > 1 else {}
        if req.mode == "train" and req.train == "full":
            changes = {"zero": 3}  # full fine-tuning on several GPUs: shard with FSDP
        if more.fits(more.run(**changes)):
            why = "one more GPU" if count == gpu.count + 1 else "the fewest GPUs that fit"
            extra = " zero=3" if "zero" in changes and req.zero != 3 else ""
            word = f"gpu={count}x{name}" if " " not in name else f'gpu="{count}x{name}"'
            s.add(GPUS, f"{word}{extra}", more, why, **changes)
            return


def _other_card(s: Suggester) -> None:
    """The smallest well-known card with more memory than the user's that fits as asked."""
    setup = s.setup
    gpu = setup.gpu
    if gpu.gpu.vendor == "cpu":
        return
    for word in CARDS:
        card = resolve_gpu(word)
        if card.usable_bytes <= gpu.usable_bytes or card.gpu.name == gpu.gpu.name:
            continue
        trial = replace(setup, gpu=GpuSelection(card.gpu, gpu.count, card.memory_bytes,
                                                card.usable_bytes, card.usable_note, False))
        if trial.fits(trial.run()):
            count = f"{gpu.count}x" if gpu.count > 1 else ""
            s.add(CARD, f"gpu={count}{word}", trial,
                  f"a card with {format_bytes(card.memory_bytes)}: {card.gpu.name}")
            return
