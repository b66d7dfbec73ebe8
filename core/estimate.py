"""One request in, one Report out: run the engine model, judge the fit, solve for limits and
suggest the smallest changes that make a "no" a "yes". Pure and synchronous."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from core.cpus import Host, cpu_only_selection, host_for, ram_check, ram_needed
from core.engines import exllamav2, llamacpp, training, transformers, vllm
from core.engines.base import EngineEstimate, Scenario
from core.engines.details import (
    EngineDetails,
    LlamaCppDetails,
    Placement,
    ReportDetails,
    TrainingDetails,
    VllmDetails,
)
from core.errors import UserError
from core.formats import WeightFormat, is_gguf, weight_bytes
from core.gpus import GpuSelection, gpu_words_without_count, is_no_gpu
from core.quant import QUALITY_ORDER, choose, choose_training, engine_family, format_from_name
from core.report import Breakdown, GpuInfo, ModelInfo, Report, Speed, Suggestion
from core.request import EstimateRequest
from core.resolve import ResolvedModel
from core.speed import (
    SpeedEstimate,
    llamacpp_report_speed,
    moe_layer_count,
    serving_speed,
    training_speed,
)
from core.vocabulary import GENERIC_QUANTS, LLAMA_CPP_ENGINES

ENGINES: dict[str, Callable[[Scenario], EngineEstimate]] = {
    "hf": transformers.estimate, "vllm": vllm.estimate, "sglang": vllm.estimate,
    "tgi": vllm.estimate, "llama.cpp": llamacpp.estimate, "ollama": llamacpp.estimate,
    "exllamav2": exllamav2.estimate,
}
TIGHT_FRACTION = 0.10  # under 10% of usable memory left: "tight"
MAX_CONTEXT_CAP = 10_485_760
MAX_BATCH_CAP = 4096
MAX_GPUS = 16


class TooSlow(UserError):
    """A report ran past its time budget (the service gives each one; the CLI none)."""

    def __init__(self) -> None:
        super().__init__("That question takes fits too long to work out.",
                         "Ask about a smaller model, or fewer options at once.")


@dataclass(frozen=True)
class Setup:
    """A request bound to its model, GPU, engine and concrete weight format."""

    request: EstimateRequest
    model: ResolvedModel
    gpu: GpuSelection
    engine: str
    fmt: WeightFormat
    host: Host | None = None  # the CPU side (RAM, its bandwidth) for llama.cpp and Ollama
    deadline: float | None = None  # time.monotonic() past which no further engine run starts

    def scenario(self, **changes: object) -> Scenario:
        req = self.request.model_copy(update=changes) if changes else self.request
        return Scenario(req, self.model.spec, self.fmt, self.gpu.count, self.gpu.memory_bytes,
                        self.gpu.usable_bytes, self.gpu.gpu.name)

    def run(self, **changes: object) -> EngineEstimate:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise TooSlow()
        sc = self.scenario(**changes)
        engine = training.estimate if sc.request.mode == "train" else ENGINES[self.engine]
        return engine(sc)

    def fits(self, est: EngineEstimate) -> bool:
        if est.fits_override is not None:
            return est.fits_override
        return est.total <= self.gpu.usable_bytes and self.ram_fits(est)

    def ram_fits(self, est: EngineEstimate) -> bool:
        """llama.cpp's RAM side (everything, on unified memory) must fit in RAM less the reserve."""
        details = est.details
        if self.host is None or not isinstance(details, LlamaCppDetails):
            return True
        placement = details.placement
        needed = ram_needed(details.system_ram_bytes, placement.vram_bytes.total, self.host,
                            placement.cpu_only)
        return needed <= self.host.usable_ram_bytes


def _largest(ok: Callable[[int], bool], low: int, high: int) -> int | None:
    """Largest n in [low, high] with ok(n), for a monotone ok; None if not even low. Works on
    whole numbers only and stops after 64 halvings (enough for any 64-bit range), whatever
    ``ok`` does."""
    low, high = int(low), int(high)
    if high < low or not ok(low):
        return None
    for _ in range(64):
        if low >= high:
            break
        mid = (low + high + 1) // 2
        if ok(mid):
            low = mid
        else:
            high = mid - 1
    return low


def max_context(setup: Setup) -> int | None:
    limit = setup.model.spec.max_position
    cap = min(int(limit), MAX_CONTEXT_CAP) if isinstance(limit, int) and limit > 0 \
        else MAX_CONTEXT_CAP
    return _largest(lambda n: setup.fits(setup.run(ctx=n, prompt=None)), 1, cap)


def max_batch(setup: Setup) -> int | None:
    return _largest(lambda n: setup.fits(setup.run(batch=n)), 1, MAX_BATCH_CAP)


def best_quant(setup: Setup) -> str | None:
    """The highest-quality format of this engine family that fits, as the user would type it."""
    for name in QUALITY_ORDER.get(engine_family(setup.engine), ()):
        fmt = format_from_name(name)
        if fmt.name == "bf16" and setup.model.spec.dtype == "fp16":
            fmt = WeightFormat("fp16")
        trial = replace(setup, fmt=fmt)
        if trial.fits(trial.run()):
            return name.replace("exl2:", "exl2=")
    return None


def _training_suggestions(setup: Setup, add: Callable[..., None]) -> None:
    req = setup.request
    if not training.gc_of(setup.scenario()):
        add("gc=on", setup, "gradient checkpointing: keep layer inputs, recompute the rest",
            gc=True)
    if req.optim == "adamw":
        add("optim=adamw8bit", setup, "8-bit AdamW states (bitsandbytes)", optim="adamw8bit")
    if req.train == "full":
        add("train=lora", setup, "train LoRA adapters on a frozen bf16 base", train="lora")
    if req.train != "qlora":
        add("train=qlora", setup, "LoRA over a 4-bit (nf4) base", train="qlora")
    if setup.gpu.count > 1 and req.zero < 3:
        add("zero=3", setup, "shard parameters, gradients and optimizer states (FSDP)", zero=3)
    if req.loss == "full":
        add("loss=fused", setup, "a fused cross-entropy kernel that never holds all logits",
            loss="fused")
    if req.offload == "none" and (setup.gpu.count > 1 or req.zero):
        add("offload=cpu", setup, "optimizer states in CPU RAM", offload="cpu")


def _suggestions(setup: Setup, base: EngineEstimate, ctx_max: int | None,
                 batch_max: int | None, quant: str | None) -> list[Suggestion]:
    req = setup.request
    out: list[Suggestion] = []

    def add(change: str, trial: Setup, why: str, **changes: object) -> None:
        est = trial.run(**changes)
        fits = trial.fits(est)
        if fits and isinstance(est.details, LlamaCppDetails):  # llama.cpp or Ollama inference
            why += _speed_words(llamacpp_speed(replace(trial, request=trial.scenario(
                **changes).request), est.details.placement))
        out.append(Suggestion(change=change, total_bytes=est.total, fits=fits, why=why))

    if req.mode == "train":
        _training_suggestions(setup, add)

    if quant and quant.replace("exl2=", "exl2:") not in (setup.fmt.name, f"exl2:{setup.fmt.bits}"):
        fmt = format_from_name(quant.replace("exl2=", "exl2:"))
        add(quant, replace(setup, fmt=fmt), "the best-quality quantization that fits")
    if ctx_max and ctx_max < req.ctx:
        add(f"ctx={ctx_max}", setup, "the longest context that fits", ctx=ctx_max, prompt=None)
    if batch_max and batch_max < req.batch:
        add(f"batch={batch_max}", setup, "the largest batch that fits", batch=batch_max)
    cheaper_kv = {"llama.cpp": "q8", "vllm": "fp8", "exllamav2": "q4", "hf": None}
    kv = cheaper_kv.get(engine_family(setup.engine)) if req.mode == "infer" else None
    if kv and req.kv in ("fp16", "bf16"):
        add(f"kv={kv}", setup, "a quantized KV cache", kv=kv)
    llama = base.details
    if (isinstance(llama, LlamaCppDetails) and 0 < llama.n_gpu_layers < setup.model.spec.n_layers
            and req.ngl is None):
        ngl, ram = llama.n_gpu_layers, llama.system_ram_bytes
        add(f"ngl={ngl}", setup, f"llama.cpp -ngl {ngl}: {ngl} of {setup.model.spec.n_layers} "
            f"layers on the GPU, {ram / (1 << 30):.1f} GiB in system RAM", ngl=ngl)
    gpu = setup.gpu
    name = gpu_words_without_count(req.gpu)
    most = MAX_GPUS if gpu.gpu.vendor != "cpu" else 0  # gpu=none: no GPUs to add
    for count in range(setup.gpu.count + 1, most + 1):
        more = replace(setup, gpu=replace(setup.gpu, count=count))
        changes: dict[str, object] = {"tp": count}
        if req.mode == "train" and req.train == "full":
            changes = {"zero": 3}  # full fine-tuning on several GPUs: shard with FSDP
        if more.fits(more.run(**changes)):
            why = "one more GPU" if count == setup.gpu.count + 1 else "the fewest GPUs that fit"
            extra = " zero=3" if "zero" in changes and req.zero != 3 else ""
            word = f"gpu={count}x{name}" if " " not in name else f'gpu="{count}x{name}"'
            add(f"{word}{extra}", more, why, **changes)
            break
    return [s for s in out if s.fits]


def build_report(request: EstimateRequest, model: ResolvedModel, gpu: GpuSelection,
                 notes: tuple[str, ...] = (), deadline: float | None = None) -> Report:
    """The whole answer. ``deadline`` (a time.monotonic() value) bounds the work: past it the
    next engine run raises TooSlow."""
    spec = model.spec
    host: Host | None = None
    if request.mode == "infer":
        host = host_for(request, gpu)
        if is_no_gpu(request.gpu):
            request, notes = _cpu_only_request(request, notes)
            gpu = cpu_only_selection(host)
    if request.mode == "train":
        engine, fmt, quant_notes = choose_training(request)
    else:
        engine, fmt, quant_notes = choose(request, spec, model.quantization)
    request = request.model_copy(update={"engine": engine})
    llama = engine in LLAMA_CPP_ENGINES and request.mode == "infer"
    if not llama:
        host = None
        ignored = [k for k in ("cpu", "ram", "membw") if getattr(request, k) is not None]
        if ignored and request.mode == "infer":
            notes = (*notes, f"{', '.join(k + '=' for k in ignored)} describe the CPU side, which "
                     f"only llama.cpp and Ollama use; {engine} keeps everything on the GPU")
    setup = Setup(request, model, gpu, engine, fmt, host, deadline)
    est = setup.run()
    fits = setup.fits(est)
    usable = gpu.usable_bytes
    # vLLM's pool always fills its budget: its headroom is the KV room beyond ctx x batch.
    headroom = (est.details.headroom_bytes if isinstance(est.details, VllmDetails)
                else usable - est.total)
    tight = fits and headroom < TIGHT_FRACTION * usable
    ctx_max = max_context(setup)
    batch_max = max_batch(setup)
    quant = best_quant(setup) if request.mode == "infer" else None
    suggestions = [] if fits and not tight else _suggestions(setup, est, ctx_max, batch_max, quant)

    speed = serving_speed(
        engine=engine, spec=spec, fmt=fmt, gpu=gpu.gpu, gpu_count=gpu.count,
        tp=setup.scenario().tp, pp=request.pp, batch=request.batch,
        prompt_tokens=request.prompt or request.ctx, gen_tokens=request.gen, kv_type=request.kv,
        version=request.version)

    details: EngineDetails = est.details
    if isinstance(details, LlamaCppDetails) and host is not None:
        speed = llamacpp_speed(setup, details.placement)
        details = replace(details, ram=ram_check(details, host),
                          speed_assumptions=tuple(speed.notes))
    speed_notes = list(speed.notes)
    speed_model = Speed(decode_tokens_per_s=speed.decode_tokens_per_s,
                        prefill_seconds=speed.prefill_seconds, bound=speed.bound,
                        aggregate_decode_tokens_per_s=speed.aggregate_decode_tokens_per_s,
                        batch_prefill_seconds=speed.batch_prefill_seconds,
                        parallelism=speed.parallelism)
    if isinstance(details, TrainingDetails):  # train mode
        tokens = request.batch * request.ctx * gpu.count
        step, rate, note = training_speed(
            flops_per_token=details.flops_per_token, tokens_per_step=tokens,
            tflops=gpu.gpu.tflops_fp16, gpu_count=gpu.count, mfu=training.MFU)
        speed_model = Speed(decode_tokens_per_s=None, prefill_seconds=None, bound="compute",
                            step_seconds=step, train_tokens_per_s=rate)
        speed_notes = [note]
    host_notes = [host.ram_note] if host is not None and not is_no_gpu(request.gpu) else []
    assumptions = [*notes, *model.notes, *quant_notes, *est.assumptions, gpu.usable_note,
                   *host_notes, *speed_notes]
    return Report(
        request=request.model_dump(),
        model=ModelInfo(id=model.id, source=model.source, params=spec.params,
                        active_params=spec.active_params, architecture=spec.model_type,
                        exact_params=model.exact_params, weight_format=fmt.label),
        gpu=GpuInfo(name=gpu.gpu.name, count=gpu.count, memory_bytes=gpu.memory_bytes,
                    usable_bytes=usable, usable_note=gpu.usable_note),
        engine=engine,
        total_bytes=est.total,
        breakdown=Breakdown(weights=est.weights, kv_cache=est.kv_cache,
                            activations=est.activations, gradients=est.gradients,
                            optimizer=est.optimizer, overhead=est.overhead),
        fits=fits,
        verdict="no" if not fits else ("tight" if tight else "fits"),
        headroom_bytes=headroom,
        max_context=ctx_max,
        max_batch=batch_max,
        best_quant=quant,
        suggestions=suggestions,
        speed=speed_model,
        engine_details=ReportDetails(weight_bytes(spec, fmt), details),
        assumptions=[a for a in assumptions if a],
        warnings=est.warnings,
    )


# --- llama.cpp and Ollama on the CPU side -----------------------------------------------------------


def _cpu_only_request(request: EstimateRequest,
                      notes: tuple[str, ...]) -> tuple[EstimateRequest, tuple[str, ...]]:
    """gpu=none: llama.cpp (or Ollama) with a GGUF, everything in system RAM."""
    quant = request.quant
    if quant is not None and not is_gguf(quant) and quant not in GENERIC_QUANTS:
        raise UserError(f"CPU-only answers are for llama.cpp and Ollama, which load GGUF files, "
                        f"not {quant}.", "Use a GGUF type such as Q4_K_M, Q8_0 or F16.")
    if request.engine is None:
        request = request.model_copy(update={"engine": "llama.cpp"})
        notes = (*notes, "gpu=none: answered for llama.cpp on the CPU")
    return request, notes


def llamacpp_speed(setup: Setup, placement: Placement) -> SpeedEstimate:
    """Tokens/s of a llama.cpp/Ollama placement: VRAM and RAM read per token, each at its
    bandwidth; prompt processing on the GPU (or the CPU without one)."""
    assert setup.host is not None
    req = setup.request
    return llamacpp_report_speed(placement, setup.gpu.gpu, setup.host,
                                 active_params=setup.model.spec.active_params,
                                 prompt_tokens=req.prompt or req.ctx, batch=req.batch,
                                 gpu_count=setup.gpu.count,
                                 moe_layers=moe_layer_count(setup.model.spec))


def _speed_words(speed: SpeedEstimate) -> str:
    return (f"; about {speed.decode_tokens_per_s:g} tokens/s"
            if speed.decode_tokens_per_s is not None else "")
