"""Model specs from config.json, one small builder per family, registered by ``model_type``
(core/architectures/registry.py). Importing the package imports every family, so that
``build_spec`` knows them all."""

from core.architectures import families  # noqa: F401  (each family registers its builders)
from core.architectures.registry import build_spec, register

__all__ = ["build_spec", "register"]
