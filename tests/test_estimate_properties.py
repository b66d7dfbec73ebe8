"""Property tests over the whole offline path: any well-formed request on any bundled model gives
a consistent Report or a UserError — never a crash, never an inconsistent answer."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import UserError
from core.estimate import MAX_CONTEXT_CAP
from core.resolve import resolve_offline
from core.snapshot import entries
from tests.conftest import run_command

MODELS = sorted(e.id for e in entries().values())
QUANTS = ["", "fp16", "bf16", "int8", "nf4", "awq", "gptq", "fp8", "q4", "q8", "Q4_K_M",
          "Q2_K", "IQ4_XS", "Q8_0", "exl2=4.5"]
ENGINES = ["", "engine=hf", "engine=vllm", "engine=llama.cpp", "engine=ollama",
           "engine=exllamav2", "engine=sglang"]
GPUS = ["gpu=8GB", "gpu=24GB", "gpu=4090", "gpu=2x3090", "gpu=h100", "gpu=m2-max-64gb",
        "gpu=rtx-3060"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    model=st.sampled_from(MODELS),
    quant=st.sampled_from(QUANTS),
    engine=st.sampled_from(ENGINES),
    gpu=st.sampled_from(GPUS),
    ctx=st.integers(min_value=1, max_value=262_144),
    batch=st.integers(min_value=1, max_value=64),
    kv=st.sampled_from(["", "kv=q8", "kv=fp8"]),
)
def test_any_request_gives_a_consistent_report_or_a_user_error(
    model: str, quant: str, engine: str, gpu: str, ctx: int, batch: int, kv: str
) -> None:
    command = " ".join(w for w in (model, quant, engine, gpu, f"ctx={ctx}", f"batch={batch}", kv)
                       if w)
    try:
        report = run_command(command)
    except UserError as err:
        assert err.message and "Traceback" not in err.message
        return
    b = report.breakdown
    assert min(b.weights, b.kv_cache, b.activations, b.overhead) >= 0
    assert report.total_bytes == b.weights + b.kv_cache + b.activations + b.gradients + \
        b.optimizer + b.overhead
    assert report.verdict in ("fits", "tight", "split", "no")
    assert report.fits == (report.verdict != "no")
    assert report.verdict != "split" or report.engine in ("llama.cpp", "ollama")
    if report.fits and report.verdict != "split":  # a split's limits are the GPU-only ones
        # What fits at ctx and batch bounds the solvers from below (the context up to what the
        # model takes: longer is never searched).
        limit = resolve_offline(model).spec.max_position or MAX_CONTEXT_CAP
        assert report.max_context is not None and report.max_context >= min(ctx, limit)
        assert report.max_batch is not None and report.max_batch >= batch
    for suggestion in report.suggestions:
        assert suggestion.fits
    if report.speed.decode_tokens_per_s is not None:
        assert report.speed.decode_tokens_per_s > 0
