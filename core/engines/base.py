"""What every engine estimate takes and gives back."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.calibration import FITTED, Calibration
from core.engines.details import EngineDetails
from core.formats import WeightFormat
from core.request import EstimateRequest
from core.spec import ModelSpec

GIB = 1 << 30
MIB = 1 << 20

# CUDA context, cuBLAS/cuDNN handles and workspaces of a PyTorch process. The context alone is
# about 300 MB with lazy module loading (reference m239); cuBLAS adds its workspace on first use.
TORCH_CUDA_OVERHEAD = 450 * MIB
def release_numbers(version: str | None) -> tuple[int, ...] | None:
    """A release as typed (version=0.11, bnb=0.43.1: the parser normalises it) as numbers to
    compare; None stays None, meaning the current release."""
    return tuple(int(part) for part in version.split(".")) if version else None


# A ggml CUDA process: the context plus cuBLAS, without PyTorch's allocator.
GGML_CUDA_OVERHEAD = 350 * MIB


@dataclass(frozen=True)
class Scenario:
    """One request, with the model, format and hardware it resolved to."""

    request: EstimateRequest
    spec: ModelSpec
    fmt: WeightFormat
    gpu_count: int
    gpu_memory_bytes: int  # per GPU, physical
    gpu_usable_bytes: int  # per GPU, what CUDA can allocate
    gpu_name: str = ""  # engines whose defaults depend on the card (vLLM's batch sizes)
    calibration: Calibration = FITTED  # the fitted constants (bench/heldout.py varies them)

    @property
    def pp(self) -> int:
        """Pipeline stages (vLLM, SGLang): each GPU holds the layers of one stage."""
        return max(1, min(self.request.pp, self.gpu_count, self.spec.n_layers))

    @property
    def tp(self) -> int:
        """Tensor-parallel ranks: tp= as given, else the GPUs each stage has. Never more than
        the GPUs there are (the rules refuse such a request; the memory stays finite)."""
        wanted = self.request.tp if self.request.tp > 1 else self.gpu_count // self.pp
        return max(1, min(wanted, self.gpu_count // self.pp))

    def stage_share(self) -> float:
        """The share of the layers the largest pipeline stage holds (1 without stages):
        vLLM gives each stage L // pp layers and the remainder to the stages before the last
        (vllm@0.34.0 distributed/utils.py get_pp_indices)."""
        if self.pp <= 1:
            return 1.0
        layers = self.spec.n_layers
        return -(-layers // self.pp) / layers


@dataclass
class EngineEstimate:
    """Peak memory per GPU, by component, plus what the engine reports on top (``details``)."""

    weights: int
    kv_cache: int
    activations: int
    overhead: int
    gradients: int = 0
    optimizer: int = 0
    assumptions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Engines that fill a fixed budget (vLLM) decide fit by more than the total.
    fits_override: bool | None = None
    fit_margin: int | None = None  # with an override: its bytes left (negative: short)
    details: EngineDetails = field(kw_only=True)

    @property
    def total(self) -> int:
        return (self.weights + self.kv_cache + self.activations + self.gradients + self.optimizer
                + self.overhead)
