"""From what the user typed to a model spec: the snapshot, an uploaded config, or a bare size."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Literal

from core import snapshot
from core.architectures import build_spec
from core.errors import ModelNotFound, UserError
from core.spec import ModelSpec
from core.units import size_in_name

ModelSource = Literal["snapshot", "hub", "config", "size"]
# How a spec was made, so another process can make it again instead of receiving thousands of
# tensors: ("snapshot", id), ("config", config.json) or ("size", billions).
SpecRecipe = tuple[str, Any]

# Llama-style shapes for the size-only path: (billions, hidden, layers, heads, kv heads, ffn),
# taken from Llama 3.2 1B/3B, Llama 3.1 8B/70B/405B, Qwen2.5 0.5B/1.5B/14B/32B.
_SHAPES = (
    (0.5, 896, 24, 14, 2, 4864), (1.0, 2048, 16, 32, 8, 8192), (1.5, 1536, 28, 12, 2, 8960),
    (3.0, 3072, 28, 24, 8, 8192), (8.0, 4096, 32, 32, 8, 14336), (14.0, 5120, 48, 40, 8, 13824),
    (32.0, 5120, 64, 40, 8, 27648), (70.0, 8192, 80, 64, 8, 28672),
    (405.0, 16384, 126, 128, 8, 53248),
)
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([bm])$", re.IGNORECASE)


@dataclass(frozen=True)
class ResolvedModel:
    """A model as found (snapshot, Hub, upload or size) and its architecture spec."""

    id: str
    source: ModelSource
    spec: ModelSpec
    notes: tuple[str, ...] = ()
    exact_params: bool = True
    quantization: dict[str, Any] | None = None  # the config's quantization_config, if any
    hub_params: int | None = None  # the exact count the Hub's safetensors metadata lists
    recipe: SpecRecipe | None = None

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickled (for the service's estimate workers) as its recipe, not its tensors: a
        512-layer spec pickles in ~13 ms but builds from its config in ~6, and a worker keeps
        the specs it built."""
        if self.recipe is None:
            return (_plain, (self.id, self.source, self.spec, self.notes, self.exact_params,
                             self.quantization, self.hub_params))
        return (_rebuilt, (self.id, self.source, self.recipe, self.notes, self.exact_params,
                           self.quantization, self.hub_params))


def _plain(*fields: Any) -> ResolvedModel:
    return ResolvedModel(*fields)


def _rebuilt(model_id: str, source: ModelSource, recipe: SpecRecipe, notes: tuple[str, ...],
             exact: bool, quantization: dict[str, Any] | None,
             hub_params: int | None) -> ResolvedModel:
    return ResolvedModel(model_id, source, spec_from_recipe(recipe), notes, exact, quantization,
                         hub_params, recipe)


def spec_from_recipe(recipe: SpecRecipe) -> ModelSpec:
    kind, value = recipe
    if kind == "snapshot":
        return _snapshot_model(str(value)).spec
    if kind == "size":
        return spec_for_size(float(value))
    return _spec_from_json(json.dumps(value, sort_keys=True))


@lru_cache(maxsize=64)
def _spec_from_json(text: str) -> ModelSpec:
    """Specs of checked configs, kept per process by their JSON text."""
    return build_spec(json.loads(text))


def parse_size(text: str) -> float | None:
    """Billions of parameters for '7b', '1.5B', '125m'; None if the text is not a size."""
    m = _SIZE.match(text.strip())
    if not m:
        return None
    value = float(m.group(1))
    return value if m.group(2).lower() == "b" else value / 1000


def spec_for_size(billions: float) -> ModelSpec:
    """A Llama-style decoder with about ``billions`` parameters: the nearest real shape, with
    its layer count scaled so the total matches."""
    if not 0.01 <= billions <= 2000:
        raise UserError(f"{billions:g}B parameters is outside what fits can size (0.01B to 2000B).",
                        "Give a size such as 7b or 70b.")
    shape = min(_SHAPES, key=lambda s: abs(s[0] - billions) / s[0])
    _, hidden, layers, heads, kv, ffn = shape
    vocab = 128256 if billions >= 1 else 151936
    base = build_spec(_llama_config(hidden, layers, heads, kv, ffn, vocab))
    per_layer = (base.params - 2 * vocab * hidden) / layers
    target = billions * 1e9
    n_layers = max(1, round((target - 2 * vocab * hidden) / per_layer))
    spec = build_spec(_llama_config(hidden, n_layers, heads, kv, ffn, vocab))
    note = (f"only a size was given: estimated as a Llama-style model with {n_layers} layers, "
            f"hidden {hidden}, {kv} KV heads, vocab {vocab:,}")
    return replace(spec, approximate=True, notes=(note,))


def _llama_config(hidden: int, layers: int, heads: int, kv: int, ffn: int,
                  vocab: int) -> dict[str, Any]:
    return {"model_type": "llama", "hidden_size": hidden, "num_hidden_layers": layers,
            "num_attention_heads": heads, "num_key_value_heads": kv, "intermediate_size": ffn,
            "vocab_size": vocab, "max_position_embeddings": 131072, "torch_dtype": "bfloat16"}


def from_config(model_id: str, config: dict[str, Any], source: ModelSource,
                notes: tuple[str, ...] = ()) -> ResolvedModel:
    if not isinstance(config, dict):
        raise UserError("That config.json is not a JSON object.", "Upload the model's config.json.")
    if source != "snapshot":  # the bundled configs are checked once, by the tests
        from core.config_check import check_config  # pydantic's validators: uploads only

        check_config(config)
    try:
        spec = build_spec(config)
    except UserError:
        raise
    except (KeyError, TypeError, ValueError, ArithmeticError, IndexError,
            AttributeError) as exc:
        raise UserError(f"That config.json could not be read as a model ({exc.__class__.__name__}"
                        f" on {str(exc)[:60]}).", "Check it is the model's own config.json.") from None
    quant = config.get("quantization_config")
    return ResolvedModel(model_id, source, spec, notes + spec.notes,
                         exact_params=not spec.approximate,
                         quantization=quant if isinstance(quant, dict) else None,
                         recipe=("config", config))


@lru_cache(maxsize=512)
def _snapshot_model(repo_id: str) -> ResolvedModel:
    """Specs are built once per process: a snapshot entry never changes."""
    entry = snapshot.entries()[repo_id.lower()]
    model = replace(from_config(entry.id, entry.config, "snapshot"), recipe=("snapshot", entry.id))
    if entry.params_unchecked is None:
        return model
    note = (f"parameter count from the architecture, not checked against the checkpoint "
            f"({entry.params_unchecked})")
    return replace(model, exact_params=False, notes=(*model.notes, note))


def resolve_offline(text: str) -> ResolvedModel:
    """The snapshot, the size-only path, else for an org/name id the size in its name (as the
    online path falls back to when the Hub cannot answer); raises ModelNotFound with
    suggestions otherwise."""
    try:
        return resolve_known(text)
    except ModelNotFound:
        billions = size_in_name(text) if "/" in text else None
        if billions is None:
            raise
    spec = spec_for_size(billions)
    note = (f"{text} is not in the bundled snapshot and the Hub was not asked: estimated as a "
            f"Llama-style model of the size in its name, {billions:g}B")
    return ResolvedModel(text, "size", spec, (note, *spec.notes), exact_params=False,
                         recipe=("size", billions))


def resolve_known(text: str) -> ResolvedModel:
    """The snapshot or the size-only path; raises ModelNotFound with suggestions otherwise."""
    billions = parse_size(text)
    if billions is not None:
        spec = spec_for_size(billions)
        return ResolvedModel(text.lower(), "size", spec, spec.notes, exact_params=False,
                             recipe=("size", billions))
    entry, note = snapshot.lookup(text)
    if entry is not None:
        model = _snapshot_model(entry.id)
        return replace(model, notes=(note, *model.notes)) if note else model
    suggestions = snapshot.suggest(text)
    hint = (f"Did you mean {', '.join(suggestions)}?" if suggestions
            else "Give a Hugging Face repo id (org/name) or a size such as 7b.")
    raise ModelNotFound(f"fits does not know the model '{text[:80]}'.", hint, suggestions)
