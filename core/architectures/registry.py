"""The builders of model specs, registered by ``model_type`` (transformers' AutoConfig idea):
each family module registers its own, and adding a family touches no other file."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from core.architectures.generic import build_generic
from core.positions import context_limits
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
    """The spec of a config.json. Unknown families get the generic, approximate estimate.
    (The package's __init__ imports every family first, so the registry is full.)"""
    builder = BUILDERS.get(str(config.get("model_type") or ""))
    spec = build_generic(config) if builder is None else builder(config)
    return replace(spec, context=context_limits(config))
