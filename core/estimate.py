"""One request in, one Report out: bind it to an engine and a format, apply the engine's own
rules (core.rules), run the engine model, judge the fit, solve for limits and suggest the
smallest changes that make a "no" a "yes" (core.suggest). Pure and synchronous."""

from __future__ import annotations

from dataclasses import dataclass, replace

from core import frameworks, rules
from core.calibration import FITTED, Calibration
from core.cpus import Host, cpu_only_selection, host_for, ram_check
from core.engines import training
from core.engines.base import EngineEstimate
from core.engines.details import (
    EngineDetails,
    LlamaCppDetails,
    Parallel,
    ReportDetails,
    TrainingDetails,
    VllmDetails,
)
from core.errors import UserError
from core.formats import is_gguf, weight_bytes
from core.gpus import GpuSelection, is_no_gpu, runtime_of
from core.quant import choose, choose_training
from core.report import (
    Breakdown,
    GpuInfo,
    ModelInfo,
    Report,
    RuleFinding,
    RunInfo,
    Speed,
    Suggestion,
)
from core.request import EstimateRequest
from core.resolve import ResolvedModel
from core.rules import context as context_rules
from core.rules import hardware as hardware_rules
from core.rules.parallel import PP_ENGINES, TP_ENGINES
from core.run_command import run_command
from core.setup import (
    MAX_CONTEXT_CAP,
    TIGHT_FRACTION,
    Setup,
    TooSlow,
    best_quant,
    llamacpp_speed,
    max_batch,
    max_context,
)
from core.speed import SpeedEstimate, serving_speed, training_speed
from core.suggest import suggestions as suggest
from core.units import format_bytes, format_tokens
from core.vocabulary import GENERIC_QUANTS, LLAMA_CPP_ENGINES

__all__ = ["MAX_CONTEXT_CAP", "Setup", "TooSlow", "build_report"]


@dataclass(frozen=True)
class Bound:
    """A request bound to its engine and format, with what the engine's rules said."""

    setup: Setup
    case: rules.Case
    notes: tuple[str, ...]  # how the request was read (quant, engine, CPU-side keys)
    findings: tuple[rules.Finding, ...]
    adjusted: tuple[str, ...]  # what the engine changes silently (Ollama's num_ctx cap)


def bind(request: EstimateRequest, model: ResolvedModel, gpu: GpuSelection,
         host: Host | None, deadline: float | None, calibration: Calibration = FITTED) -> Bound:
    """Engine, format, host and the engine's rules for a request (also for a suggested one)."""
    spec = model.spec
    notes: list[str] = []
    request, preset_notes = frameworks.apply(request)
    notes += preset_notes
    if request.mode == "train":
        engine, fmt, quant_notes = choose_training(request)
    else:
        engine, fmt, quant_notes = choose(request, spec, model.quantization)
    notes += quant_notes
    _check_attention_keys(request, engine)
    explicit = request.quant in ("bf16", "fp16")
    request = request.updated(engine=engine)
    if engine not in LLAMA_CPP_ENGINES or request.mode != "infer":
        host = None
        ignored = [k for k in ("cpu", "ram", "membw") if getattr(request, k) is not None]
        if ignored and request.mode == "infer":
            notes.append(f"{', '.join(k + '=' for k in ignored)} describe the CPU side, which "
                         f"only llama.cpp and Ollama use; {engine} keeps everything on the GPU")
    case = rules.Case(request, spec, gpu, engine, fmt, explicit)
    adjusted: list[str] = []
    if (cap := context_rules.ollama_cap(case)) is not None:
        adjusted.append(f"Ollama caps num_ctx at the model's training context, "
                        f"{format_tokens(cap)}, not {format_tokens(request.ctx)} "
                        f"({context_rules.OLLAMA_SOURCE})")
        request = request.updated(ctx=cap, prompt=None)
        case = replace(case, request=request)
    if (engine == "ollama" and request.fa is False and request.kv in ("q8", "q4", "fp8")):
        adjusted.append(f"Ollama quantizes the KV cache only with flash attention on; with fa=off "
                        f"it keeps an f16 cache, not {request.kv} (docs/faq: "
                        "OLLAMA_KV_CACHE_TYPE)")
        request = request.updated(kv="fp16")
        case = replace(case, request=request)
    if (fallback := hardware_rules.transformers_fp8_fallback(case)) is not None:
        fmt, why = fallback
        adjusted.append(why)
        case = replace(case, fmt=fmt)
    findings = tuple(rules.check(case)) if request.mode == "infer" else ()
    limit = context_rules.engine_limit(case) if request.mode == "infer" else None
    setup = Setup(request, model, gpu, engine, fmt, host, deadline, ctx_limit=limit,
                  calibration=calibration)
    return Bound(setup, case, tuple(notes), findings, tuple(adjusted))


def _check_attention_keys(request: EstimateRequest, engine: str) -> None:
    """fa= is llama.cpp's and Ollama's flag, attn= the others' setting: refuse the one that the
    engine does not have rather than ignore it."""
    llama = engine in LLAMA_CPP_ENGINES and request.mode == "infer"
    if request.fa is not None and not llama:
        raise UserError(f"fa= is the flash-attention flag of llama.cpp and Ollama, not of "
                        f"{rules.engine_name(engine)}.",
                        "Use attn=sdpa|eager|flash for transformers, or engine=llama.cpp.")
    if llama and request.attn != "sdpa":
        raise UserError(f"{rules.engine_name(engine)} has no attn= setting; its flash attention "
                        "is fa=on|off.", f"Use fa={'off' if request.attn == 'eager' else 'on'}.")


def build_report(request: EstimateRequest, model: ResolvedModel, gpu: GpuSelection,
                 notes: tuple[str, ...] = (), deadline: float | None = None,
                 calibration: Calibration = FITTED) -> Report:
    """The whole answer. ``deadline`` (a time.monotonic() value) bounds the work: past it the
    next engine run raises TooSlow. ``calibration``: the fitted constants (bench/heldout.py
    answers with constants re-fitted without the record's source)."""
    spec = model.spec
    host: Host | None = None
    if request.mode == "infer":
        host = host_for(request, gpu)
        if is_no_gpu(request.gpu):
            request, notes = _cpu_only_request(request, notes)
            gpu = cpu_only_selection(host)
    bound = bind(request, model, gpu, host, deadline, calibration)
    setup = bound.setup
    request, engine, fmt, host = setup.request, setup.engine, setup.fmt, setup.host
    refusal = next((f for f in bound.findings if f.severity == "refuse"), None)
    est = setup.run()
    fits = setup.fits(est) and refusal is None
    usable = gpu.usable_bytes
    split = False
    if not fits and refusal is None:
        split_est = _auto_split(setup, est)
        if split_est is not None:
            est, fits, split = split_est, True, True
    # vLLM's pool always fills its budget: its headroom is the KV room beyond ctx x batch.
    headroom = (est.details.headroom_bytes if isinstance(est.details, VllmDetails)
                else usable - est.total)
    tight = fits and not split and headroom < TIGHT_FRACTION * usable
    ctx_max = max_context(setup)
    batch_max = max_batch(setup)
    quant = best_quant(setup) if request.mode == "infer" else None
    if refusal is not None:
        advice = _fixes(bound, refusal, model, gpu, host, deadline)
    elif fits and not tight and not split:
        advice = []
    else:
        advice = suggest(setup, est, fits, ctx_max, batch_max, quant,
                         lambda eng, q: _other_engine(setup, model, gpu, deadline, eng, q))

    sc = setup.scenario()
    # llama.cpp's speed follows its placement and training's its FLOPs: both are set below.
    speed = SpeedEstimate(None, None, "memory", ()) if engine in LLAMA_CPP_ENGINES or \
        request.mode == "train" else serving_speed(
        engine=engine, spec=spec, fmt=fmt, gpu=gpu.gpu, gpu_count=gpu.count, tp=sc.tp,
        pp=sc.pp, batch=request.batch, prompt_tokens=request.prompt or request.ctx,
        gen_tokens=request.gen, kv_type=request.kv, version=request.version)

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
    assumptions = [*notes, *model.notes, *bound.notes, *est.assumptions,
                   gpu.usable_note, *host_notes, *speed_notes]
    if split:
        assumptions.insert(0, _split_note(setup, est))
    parallel = None
    if engine in TP_ENGINES and request.mode == "infer":
        tp, pp = rules.parallel.layout(bound.case)
        parallel = Parallel(tp=tp, pp=pp if engine in PP_ENGINES else 1)
    verdict = ("no" if not fits else "split" if split else "tight" if tight else "fits")
    run = None
    if fits:
        sc = setup.scenario()
        tp, pp = (rules.parallel.layout(bound.case) if engine in TP_ENGINES else (sc.tp, 1))
        found = run_command(request, model.id, fmt, details, tp, pp)
        run = RunInfo(engine=found.engine, command=found.command, notes=list(found.notes))
    return Report(
        request=request.as_dict(),
        model=ModelInfo(id=model.id, source=model.source, params=spec.params,
                        active_params=spec.active_params, architecture=spec.model_type,
                        exact_params=model.exact_params, weight_format=fmt.label),
        gpu=GpuInfo(name=gpu.gpu.name, count=gpu.count, memory_bytes=gpu.memory_bytes,
                    usable_bytes=usable, usable_note=gpu.usable_note,
                    runtime=runtime_of(gpu.gpu)),
        engine=engine,
        total_bytes=est.total,
        breakdown=Breakdown(weights=est.weights, kv_cache=est.kv_cache,
                            activations=est.activations, gradients=est.gradients,
                            optimizer=est.optimizer, overhead=est.overhead),
        fits=fits,
        verdict=verdict,
        headroom_bytes=headroom,
        max_context=ctx_max,
        max_batch=batch_max,
        best_quant=quant,
        suggestions=advice,
        speed=speed_model,
        engine_details=ReportDetails(weight_bytes(spec, fmt), details, parallel=parallel),
        assumptions=[a for a in assumptions if a],
        warnings=[*bound.adjusted, *(f.message for f in bound.findings if f.severity == "warn"),
                  *(est.warnings if refusal is None else ())],
        reason=refusal.message if refusal is not None else _reason(setup, est, fits, split),
        rules=[RuleFinding(rule=f.rule, severity=f.severity, message=f.message, source=f.source)
               for f in bound.findings],
        run=run,
    )


def _auto_split(setup: Setup, est: EngineEstimate) -> EngineEstimate | None:
    """llama.cpp/Ollama with -ngl left to them (auto, with --fit): a model too large for VRAM
    runs with as many layers on the GPU as fit and the rest in RAM (engines.md 4.2-4.3, 5.4).
    That run, when RAM holds the rest; None otherwise."""
    details = est.details
    if (not isinstance(details, LlamaCppDetails) or setup.request.ngl is not None
            or details.placement.cpu_only or not 0 < details.n_gpu_layers < details.n_layers):
        return None
    run = setup.run(ngl=details.n_gpu_layers)
    return run if setup.fits(run) else None


def _split_note(setup: Setup, est: EngineEstimate) -> str:
    details = est.details
    assert isinstance(details, LlamaCppDetails)
    off = details.n_layers - details.n_gpu_layers
    return (f"{setup.engine} leaves -ngl to itself (auto, with --fit), so the {off} layers that "
            "do not fit in VRAM run from system RAM: the memory shown is the GPU's side")


def _reason(setup: Setup, est: EngineEstimate, fits: bool, split: bool) -> str | None:
    """Why the answer is NO (or split), in the engine's terms, where the totals do not say it."""
    details = est.details
    if split and isinstance(details, LlamaCppDetails):
        return (f"{details.n_gpu_layers} of {details.n_layers} layers on the GPU, "
                f"{format_bytes(details.placement.ram_bytes.total)} in RAM")
    if fits or not isinstance(details, VllmDetails):
        return None
    req = setup.request
    fixed = est.weights + est.activations + est.overhead
    budget = format_bytes(details.budget_bytes)
    if fixed >= details.budget_bytes:
        return (f"the weights ({format_bytes(est.weights)}) and the profiling peak leave nothing "
                f"of the {details.gpu_memory_utilization:g} x GPU budget ({budget}) for the KV "
                "cache")
    if not details.one_sequence_fits:
        return (f"no room for one request's KV cache: {format_bytes(est.kv_cache)} left in the "
                f"{details.gpu_memory_utilization:g} x GPU budget ({budget}) holds "
                f"{format_tokens(details.kv_cache_tokens)} tokens, fewer than ctx="
                f"{format_tokens(req.ctx)}; {setup.engine} refuses to start")
    return (f"the KV pool holds {details.max_concurrency:g} requests of "
            f"{format_tokens(req.ctx)} tokens, fewer than batch={req.batch}")


def _fixes(bound: Bound, refusal: rules.Finding, model: ResolvedModel, gpu: GpuSelection,
           host: Host | None, deadline: float | None) -> list[Suggestion]:
    """The fixes of a rule the engine enforces, each run as its own request: kept when the
    engine accepts it and it fits."""
    out = []
    for fix in refusal.fixes:
        request = bound.setup.request.updated(**fix.fields)
        if "engine" in fix.fields and "quant" not in fix.fields:
            request = request.updated(quant=None)
        trial_gpu = replace(gpu, count=fix.gpus) if fix.gpus else gpu
        try:
            trial = bind(request, model, trial_gpu, host if fix.fields.get("engine") in
                         LLAMA_CPP_ENGINES or bound.setup.host else None, deadline,
                         bound.setup.calibration)
        except UserError:
            continue
        if any(f.severity == "refuse" for f in trial.findings):
            continue
        est = trial.setup.run()
        ok = trial.setup.fits(est)
        if not ok and (split := _auto_split(trial.setup, est)) is not None:
            est, ok = split, True
        if ok:
            out.append(Suggestion(change=fix.change, total_bytes=est.total, fits=True,
                                  why=fix.why))
    return out


def _other_engine(setup: Setup, model: ResolvedModel, gpu: GpuSelection,
                  deadline: float | None, engine: str, quant: str) -> Setup | None:
    request = setup.request.updated(engine=engine, quant=quant)
    try:
        trial = bind(request, model, gpu, host_for(request, gpu), deadline, setup.calibration)
    except UserError:
        return None
    if any(f.severity == "refuse" for f in trial.findings):
        return None
    return trial.setup


# --- llama.cpp and Ollama on the CPU side -----------------------------------------------------------


def _cpu_only_request(request: EstimateRequest,
                      notes: tuple[str, ...]) -> tuple[EstimateRequest, tuple[str, ...]]:
    """gpu=none: llama.cpp (or Ollama) with a GGUF, everything in system RAM."""
    quant = request.quant
    if quant is not None and not is_gguf(quant) and quant not in GENERIC_QUANTS:
        raise UserError(f"CPU-only answers are for llama.cpp and Ollama, which load GGUF files, "
                        f"not {quant}.", "Use a GGUF type such as Q4_K_M, Q8_0 or F16.")
    if request.engine is None:
        request = request.updated(engine="llama.cpp")
        notes = (*notes, "gpu=none: answered for llama.cpp on the CPU")
    return request, notes
