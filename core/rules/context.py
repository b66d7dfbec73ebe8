"""The longest context each engine accepts for a model, and what it does beyond it.

vLLM refuses a max_model_len above the one it derives from config.json (engines.md 1.7-1.9) and
SGLang a context_length above its own (2.5-2.6), unless an environment variable allows it;
Ollama caps num_ctx at the training context (5.2); llama.cpp (4.4), transformers and ExLlamaV2
run past it with a warning, and the model degrades there (RoPE positions it never saw)."""

from __future__ import annotations

from core.engines.base import release_numbers
from core.positions import ContextLimits
from core.rules.base import Case, Finding, Fix, engine_name
from core.units import format_tokens

VLLM_SOURCE = ("vllm@0.34.0 config/model.py (_get_and_verify_max_len): 'User-specified "
               "max_model_len ... is greater than the derived max_model_len'")
SGLANG_SOURCE = "sglang@0.5.23 srt/configs/model_config.py (_derive_context_length)"
OLLAMA_SOURCE = "ollama@v0.33.0 llm/server.go: 'requested context size too large for model'"
LLAMA_SOURCE = "llama.cpp src/llama-context.cpp: 'n_ctx_seq > n_ctx_train'"


def limits(case: Case) -> ContextLimits:
    spec = case.spec
    if spec.context is not None:
        return spec.context
    return ContextLimits(trained=spec.max_position, vllm=spec.max_position,
                         vllm_0_11=spec.max_position,
                         vllm_key=f"max_position_embeddings={spec.max_position}",
                         sglang=spec.max_position)


def engine_limit(case: Case) -> int | None:
    """The context the engine accepts (or, for the engines that only warn, was trained for);
    None where the position scheme has no such length."""
    if case.spec.model_type in UNBOUNDED_TYPES:
        return None
    found = limits(case)
    if case.engine == "vllm":
        release = release_numbers(case.request.version)
        return found.vllm_0_11 if release is not None and release <= (0, 11) else found.vllm
    if case.engine == "sglang":
        return found.sglang
    return found.trained


# Position schemes with no trained length to exceed: relative buckets (T5) and ALiBi (BLOOM,
# MPT) extrapolate; learned absolute positions (GPT-2, StarCoder 1, OPT) have a table of
# exactly that many rows, so a longer input fails in every engine (an index past the table).
UNBOUNDED_TYPES = frozenset({"t5", "mt5", "umt5", "longt5", "bloom", "mpt"})
LEARNED_TYPES = frozenset({"gpt2", "gpt_bigcode", "opt"})


def check(case: Case) -> list[Finding]:
    req, engine = case.request, case.engine
    limit = engine_limit(case)
    if limit is None or req.ctx <= limit or case.spec.model_type in UNBOUNDED_TYPES:
        return []
    ctx, most = format_tokens(req.ctx), format_tokens(limit)
    fix = (Fix(f"ctx={limit}", "the longest context the model allows", {"ctx": limit,
                                                                         "prompt": None}),)
    if case.spec.model_type in LEARNED_TYPES:
        return [Finding("context", "refuse",
                        f"{case.spec.model_type} has learned positions for {most} tokens only: "
                        f"ctx={ctx} indexes past its position table.", "the model's config.json "
                        "(n_positions / max_position_embeddings)", fix)]
    if engine == "vllm":
        key = limits(case).vllm_key or f"max_position_embeddings={limit}"
        return [Finding("context", "refuse",
                        f"vLLM refuses max_model_len {ctx}: it is greater than the derived "
                        f"max_model_len ({key}).", VLLM_SOURCE, fix)]
    if engine == "sglang":
        return [Finding("context", "refuse",
                        f"SGLang refuses context_length {ctx}: it is greater than the derived "
                        f"context_length ({most}).", SGLANG_SOURCE, fix)]
    if engine == "ollama":
        return []  # adjust() has capped it already
    where = {"llama.cpp": LLAMA_SOURCE}.get(engine, "the model's config.json")
    return [Finding("context", "warn",
                    f"ctx={ctx} is beyond the {most} tokens the model was trained for: "
                    f"{engine_name(engine)} runs it, but quality drops past {most} (positions "
                    "it was not trained on) unless you add RoPE scaling", where)]


def ollama_cap(case: Case) -> int | None:
    """The num_ctx Ollama would use instead of the request's, when it caps it."""
    limit = engine_limit(case)  # None for position schemes without a trained length (T5)
    if case.engine == "ollama" and limit is not None and case.request.ctx > limit:
        return limit
    return None
