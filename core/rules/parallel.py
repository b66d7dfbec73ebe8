"""How a serving engine lays a model out over several GPUs, and the layouts it refuses.

vLLM and SGLang (engines.md 1.1-1.6, 2.1-2.3): the query heads must divide by the tensor-parallel
size; the KV heads divide when tp is at most their count and are replicated when it is larger
(then tp must be a multiple of them); pipeline parallel (``pp=``) splits the layers into stages,
unevenly if need be; tp x pp GPUs are needed. TGI (3.6) shards over every visible GPU and needs
both the query heads and the KV heads to divide by the shard count (no replication) and has no
pipeline parallel. transformers (device_map), llama.cpp and ExLlamaV2 split by layers: any
count works."""

from __future__ import annotations

from core.rules.base import Case, Finding, Fix, engine_name

TP_ENGINES = ("vllm", "sglang", "tgi")
PP_ENGINES = ("vllm", "sglang")
VLLM_SOURCE = ("vllm@0.34.0 config/model.py (verify_with_parallel_config); "
               "model_executor/layers/linear.py (QKVParallelLinear)")
SGLANG_SOURCE = "sglang@0.5.23 srt/models/llama.py (LlamaAttention); srt/layers/linear.py"
TGI_SOURCE = ("text-generation-inference@v3.3.7 flash_llama_modeling.py (FlashLlamaAttention); "
              "launcher/src/main.rs (find_num_shards)")


def layout(case: Case) -> tuple[int, int]:
    """(tp, pp) as the engine would be started for this request: tp= and pp= as given; without
    them, tensor parallel over every GPU (vLLM and SGLang take --tensor-parallel-size N for N
    GPUs; TGI shards over all of them)."""
    req = case.request
    pp = max(1, req.pp)
    tp = req.tp if req.tp > 1 else max(1, case.gpu.count // pp)
    return tp, pp


def heads_problem(engine: str, heads: int, kv_heads: int, tp: int) -> str | None:
    """Why ``engine`` refuses ``tp`` for this attention (None when it accepts it)."""
    if tp <= 1:
        return None
    if heads % tp:
        return f"its {heads} attention heads do not divide by tensor_parallel_size {tp}"
    if engine == "tgi":
        if kv_heads % tp:
            return (f"TGI needs the {kv_heads} KV heads to divide by the {tp} shards too "
                    "(it does not replicate them)")
        return None
    if kv_heads and tp < kv_heads and kv_heads % tp:
        return f"its {kv_heads} KV heads do not divide by tensor_parallel_size {tp}"
    if kv_heads and tp > kv_heads and tp % kv_heads:
        return (f"tensor_parallel_size {tp} is not a multiple of its {kv_heads} KV heads, which "
                "are replicated when tp exceeds them")
    return None


def valid_layouts(case: Case) -> list[tuple[int, int]]:
    """(tp, pp) pairs the engine accepts on at most the given GPUs, those using the most GPUs
    first, then the most tensor parallel (faster per token than pipeline stages)."""
    spec, count = case.spec, case.gpu.count
    out = []
    for tp in range(1, count + 1):
        if heads_problem(case.engine, spec.n_heads, spec.n_kv_heads, tp):
            continue
        pps = range(1, count // tp + 1) if case.engine in PP_ENGINES else (1,)
        out += [(tp, pp) for pp in pps if pp <= spec.n_layers]
    return sorted(out, key=lambda p: (-(p[0] * p[1]), -p[0]))


def _fix(case: Case, tp: int, pp: int) -> Fix:
    used = tp * pp
    words = f"tp={tp}" + (f" pp={pp}" if pp > 1 else "")
    on = "" if used == case.gpu.count else f" on {used} of the {case.gpu.count} GPUs"
    how = ("tensor parallel" if pp == 1 else
           "pipeline stages" if tp == 1 else "tensor parallel within pipeline stages")
    return Fix(words, f"a layout {engine_name(case.engine)} accepts: {how}{on}",
               {"tp": tp, "pp": pp}, gpus=used if used != case.gpu.count else None)


def check(case: Case) -> list[Finding]:
    req, engine = case.request, case.engine
    found: list[Finding] = []
    if req.pp > 1 and engine not in PP_ENGINES:
        found.append(Finding(
            "parallel", "refuse",
            f"{engine_name(engine)} has no pipeline parallel (pp=); "
            + ("it shards every layer over all the GPUs." if engine == "tgi" else
               "it already splits the layers over the GPUs, which run one after another."),
            "engines.md 3.6, 7.1", ()))
        return found
    if req.tp > 1 and engine not in TP_ENGINES and req.mode == "infer":
        name = engine_name(engine)
        found.append(Finding(
            "parallel", "warn",
            f"{name} splits the model by layers over the GPUs, not by tensor parallel: tp= is "
            "taken as the GPU count", "engines.md 4.10, 6.1, 7.1-7.3"))
        return found
    if engine not in TP_ENGINES or req.mode != "infer":
        return found
    tp, pp = layout(case)
    source = {"vllm": VLLM_SOURCE, "sglang": SGLANG_SOURCE, "tgi": TGI_SOURCE}[engine]
    fixes = tuple(_fix(case, t, p) for t, p in valid_layouts(case)[:3] if (t, p) != (tp, pp))
    if tp * pp > case.gpu.count:
        found.append(Finding(
            "parallel", "refuse",
            f"{engine_name(engine)} needs tp x pp = {tp * pp} GPUs for tp={tp}"
            + (f" pp={pp}" if pp > 1 else "") + f", and gpu= gives {case.gpu.count}.",
            source, fixes))
        return found
    problem = heads_problem(engine, case.spec.n_heads, case.spec.n_kv_heads, tp)
    if problem:
        default = "" if req.tp > 1 else " (one shard per GPU, as gpu= gives)"
        found.append(Finding("parallel", "refuse",
                             f"{engine_name(engine)} refuses tensor_parallel_size {tp}{default}: "
                             f"{problem}.", source, fixes))
    elif tp * pp < case.gpu.count:
        found.append(Finding(
            "parallel", "warn",
            f"tp={tp}" + (f" pp={pp}" if pp > 1 else "")
            + f" uses {tp * pp} of the {case.gpu.count} GPUs; the others stay idle", source))
    return found
