"""A request bound to its model, GPU, engine and format (``Setup``), and the solvers that run
its engine model many times: the longest context, the largest batch, the best format that fits.
Pure and synchronous."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from core.boundary import largest_fitting
from core.calibration import FITTED, Calibration
from core.cpus import Host, ram_needed
from core.engines import exllamav2, llamacpp, training, transformers, vllm
from core.engines.base import EngineEstimate, Scenario
from core.engines.details import LlamaCppDetails, Placement
from core.errors import UserError
from core.formats import WeightFormat
from core.gpus import GpuSelection
from core.quant import QUALITY_ORDER, engine_family, format_from_name
from core.request import EstimateRequest
from core.resolve import ResolvedModel
from core.speed import SpeedEstimate, llamacpp_report_speed, moe_layer_count

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
    ctx_limit: int | None = None  # the longest context the engine takes (core.rules.context)
    calibration: Calibration = FITTED  # the fitted constants (bench/heldout.py re-fits them)

    def scenario(self, **changes: Any) -> Scenario:
        # The framework's defaults are already applied: a trial's changes need not count as given.
        req = replace(self.request, **changes) if changes else self.request
        return Scenario(req, self.model.spec, self.fmt, self.gpu.count, self.gpu.memory_bytes,
                        self.gpu.usable_bytes, self.gpu.gpu.name, self.calibration)

    def run(self, **changes: Any) -> EngineEstimate:
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
        return self._ram_left(details) >= 0

    def _ram_left(self, details: LlamaCppDetails) -> int:
        assert self.host is not None
        placement = details.placement
        needed = ram_needed(details.system_ram_bytes, placement.vram_bytes.total, self.host,
                            placement.cpu_only)
        return self.host.usable_ram_bytes - needed

    def margin(self, est: EngineEstimate) -> float | None:
        """Bytes left under the binding limit (negative: over it), the guide the solvers
        interpolate on; None where the engine decides fit by more than bytes."""
        if est.fits_override is not None:
            return est.fit_margin
        left = self.gpu.usable_bytes - est.total
        if self.host is not None and isinstance(est.details, LlamaCppDetails):
            left = min(left, self._ram_left(est.details))
        return left


def _probe(setup: Setup, **changes: object) -> tuple[bool, float | None]:
    est = setup.run(**changes)
    return setup.fits(est), setup.margin(est)


def context_cap(setup: Setup) -> int:
    """The longest context worth trying: the engine's limit, else the model's."""
    limit = setup.ctx_limit or setup.model.spec.max_position
    return min(int(limit), MAX_CONTEXT_CAP) if isinstance(limit, int) and limit > 0 \
        else MAX_CONTEXT_CAP


def max_context(setup: Setup) -> int | None:
    return largest_fitting(lambda n: _probe(setup, ctx=n, prompt=None), 1, context_cap(setup))


def max_batch(setup: Setup) -> int | None:
    return largest_fitting(lambda n: _probe(setup, batch=n), 1, MAX_BATCH_CAP)


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
