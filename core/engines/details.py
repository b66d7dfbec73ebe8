"""What each engine reports beyond the memory breakdown, as typed values.

Every engine estimate carries one of these (``EngineDetails``); the Report wraps it in
``ReportDetails`` with the figures every answer has (the weights' total, the Hub's extras).
Field names are the keys of the Report's ``engine_details`` in `fits --json`, in order:
``as_json`` writes a value as that JSON object. A field marked ``OMIT_NONE`` is left out while it
is None (keys that only some answers have); one marked ``FLATTEN`` puts its own fields at this
level (the JSON object is flat where the types nest).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar, dataclass_transform

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

OMIT_NONE = {"json": "omit_none"}
FLATTEN = {"json": "flatten"}  # left out while None, too
T = TypeVar("T")
# Every class of this module by name (``frozen`` adds each): what ``from_tagged`` may build.
_KINDS: dict[str, type] = {}


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def frozen(cls: type[T]) -> type[T]:
    """A dataclass that is frozen to the type checker and a plain slots class at run time.

    The solvers run dozens of estimates per answer, each building its details; a frozen
    dataclass's __init__ pays an object.__setattr__ per field, which made an estimate about 20%
    slower (bench.latency). mypy (strict over core, adapters, bot and bench) rejects every
    assignment to a field, so nothing changes a value once built: dataclasses.replace makes
    changed copies. Hashable like a frozen dataclass."""
    built = dataclass(slots=True, unsafe_hash=True)(cls)
    _KINDS[built.__name__] = built
    return built



@frozen
class TransformersDetails:
    """transformers generate(): what nvidia-smi shows, the allocated peak plus the blocks the
    cache's growth leaves cached."""

    reserved_bytes: int


@frozen
class VllmDetails:
    """vLLM, SGLang, TGI: the budget and the KV pool the weights and profiling run leave."""

    budget_bytes: int
    gpu_memory_utilization: float
    kv_cache_tokens: int  # as vLLM logs it: per layer group
    kv_blocks: int
    max_concurrency: float | None  # requests of ctx tokens the pool holds
    one_sequence_fits: bool
    kv_bytes_per_token: float
    kv_groups: int
    max_num_batched_tokens: int
    max_num_seqs: int
    # The pool always fills the budget; what is left over is KV room beyond ctx x batch.
    headroom_bytes: int


@frozen
class ExllamaDetails:
    """ExLlamaV2: its cache type, prefill chunk and the embedding it keeps in RAM."""

    cache: str
    chunk_tokens: int
    embedding_in_ram_bytes: int


@frozen
class TrainingDetails:
    """A training step: allocated_bytes is torch.cuda.max_memory_allocated's view (no CUDA
    context); the breakdown is what is reserved."""

    allocated_bytes: int
    trainable_params: int
    precision: str
    gradient_checkpointing: bool
    zero_stage: int
    cpu_ram_bytes: int  # offloaded states, gradients and parameters, over all GPUs
    micro_batch: int
    flops_per_token: int
    activation_ram_bytes: int = 0  # offloaded activations in CPU RAM, over all GPUs


# --- llama.cpp and Ollama --------------------------------------------------------------------


@frozen
class VramBytes:
    """The GPU side of a llama.cpp split, over all GPUs."""

    weights: int
    kv_cache: int
    compute_buffer: int
    overhead: int
    total: int


@frozen
class RamBytes:
    """The system-RAM side of a llama.cpp split."""

    weights: int  # layers left on the CPU (and the output layer until all are offloaded)
    token_embd: int
    kv_cache: int
    compute_buffer: int
    total: int


@frozen
class ReadPerToken:
    """Bytes each side reads per decoded token (what decode speed follows)."""

    gpu: int
    ram: int


@frozen
class Placement:
    """Where every byte of a llama.cpp run sits."""

    layers_on_gpu: int
    output_on_gpu: bool
    cpu_only: bool
    vram_bytes: VramBytes
    ram_bytes: RamBytes
    read_per_token_bytes: ReadPerToken
    decode_context_tokens: int


@frozen
class HostInfo:
    """The CPU side llama.cpp and Ollama run on: the CPU, RAM bandwidth, FLOPS."""

    cpu: str | None
    ram_bandwidth_gbs: float
    cpu_tflops_fp32: float
    notes: tuple[str, ...]


@frozen
class RamCheck:
    """Whether a llama.cpp run's RAM side fits the host (core.cpus.ram_check)."""

    ram_needed_bytes: int
    ram_available_bytes: int
    ram_total_bytes: int
    ram_reserve_bytes: int
    ram_fits: bool
    unified_memory: bool
    host: HostInfo


@frozen
class LlamaCppDetails:
    """llama.cpp and Ollama: the run's settings, its placement and, once the report knows the
    host, the RAM check and the speed model's assumptions."""

    n_layers: int
    n_gpu_layers: int
    n_ctx: int
    n_ubatch: int
    flash_attn: bool
    kv_type: str
    system_ram_bytes: int
    token_embd_in_ram_bytes: int
    placement: Placement
    partial_offload: str | None = field(default=None, metadata=OMIT_NONE)
    ram: RamCheck | None = field(default=None, metadata=FLATTEN)
    speed_assumptions: tuple[str, ...] | None = field(default=None, metadata=OMIT_NONE)


EngineDetails: TypeAlias = (TransformersDetails | VllmDetails | ExllamaDetails | TrainingDetails
                            | LlamaCppDetails)


# --- the Report's engine_details -----------------------------------------------------------


@frozen
class HubExtras:
    """What the Hub told beyond the model (core.answer.with_hub_details)."""

    hub_params: int | None = field(default=None, metadata=OMIT_NONE)
    gguf_files: tuple[str, ...] | None = field(default=None, metadata=OMIT_NONE)
    gguf_file_bytes: int | None = field(default=None, metadata=OMIT_NONE)


@frozen
class Parallel:
    """How a serving engine lays the model over its GPUs: tensor-parallel ranks per stage and
    pipeline stages (vLLM's --tensor-parallel-size and --pipeline-parallel-size)."""

    tp: int
    pp: int


@frozen
class ReportDetails:
    """The Report's engine_details: the weights' total, the engine's own figures, the parallel
    layout of the serving engines, and the Hub's extras for models it resolved."""

    weights_total_bytes: int
    engine: EngineDetails = field(metadata=FLATTEN)
    hub: HubExtras | None = field(default=None, metadata=FLATTEN)
    parallel: Parallel | None = field(default=None, metadata=OMIT_NONE)


def as_json(value: DataclassInstance) -> dict[str, Any]:
    """``value`` as the JSON object `fits --json` prints: fields in order, nested dataclasses as
    objects, tuples and lists as arrays."""
    out: dict[str, Any] = {}
    for f in fields(value):
        item = getattr(value, f.name)
        how = f.metadata.get("json")
        if item is None and how is not None:
            continue
        if how == "flatten":
            out.update(as_json(item))
        else:
            out[f.name] = _json_value(item)
    return out


def _json_value(item: object) -> object:
    if is_dataclass(item) and not isinstance(item, type):
        return as_json(item)
    if isinstance(item, tuple | list):
        return [_json_value(x) for x in item]
    return item


def to_tagged(value: object) -> object:
    """``value`` as plain JSON that keeps its types: each dataclass an object with its class
    name under "$", each tuple an object holding its items under "$tuple". What a report cache
    shared between processes stores (``as_json`` is flat and loses the types)."""
    if is_dataclass(value) and not isinstance(value, type):
        return {"$": type(value).__name__,
                **{f.name: to_tagged(getattr(value, f.name)) for f in fields(value)}}
    if isinstance(value, tuple):
        return {"$tuple": [to_tagged(x) for x in value]}
    if isinstance(value, list):
        return [to_tagged(x) for x in value]
    return value


def from_tagged(data: object) -> object:
    """The value ``to_tagged`` wrote. Builds only the classes of this module; anything else
    (a name it does not know, a field a class does not have) raises ValueError."""
    if isinstance(data, list):
        return [from_tagged(x) for x in data]
    if not isinstance(data, dict):
        return data
    if "$tuple" in data:
        items = data["$tuple"]
        if not isinstance(items, list):
            raise ValueError("a tagged tuple holds a list")
        return tuple(from_tagged(x) for x in items)
    kind = _KINDS.get(str(data.get("$")))
    if kind is None:
        raise ValueError(f"not a details class: {data.get('$')!r}")
    try:
        return kind(**{k: from_tagged(v) for k, v in data.items() if k != "$"})
    except TypeError as exc:
        raise ValueError(str(exc)) from exc
