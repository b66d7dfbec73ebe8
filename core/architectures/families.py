"""Imports every family module so that each registers its builders."""

from core.architectures import gpt, hybrid, llama, moe, multimodal, t5  # noqa: F401
