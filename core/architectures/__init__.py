"""Model specs from config.json, one small builder per family, registered by ``model_type``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from core.spec import ModelSpec

Builder = Callable[[Mapping[str, Any]], ModelSpec]
BUILDERS: dict[str, Builder] = {}


def register(*model_types: str) -> Callable[[Builder], Builder]:
    def add(builder: Builder) -> Builder:
        for model_type in model_types:
            BUILDERS[model_type] = builder
        return builder

    return add


def build_spec(config: Mapping[str, Any]) -> ModelSpec:
    """The spec of a config.json. Unknown families get the generic, approximate estimate."""
    from core.architectures import families  # noqa: F401  (fills BUILDERS)
    from core.architectures.generic import build_generic

    model_type = str(config.get("model_type") or "")
    builder = BUILDERS.get(model_type)
    if builder is None:
        return build_generic(config)
    return builder(config)
