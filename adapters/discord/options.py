"""From a slash command's typed options to the command language, so the parser normalizes them
exactly as it does typed text (q4 per engine, ctx 32k, gpu "2x RTX 3090" ...).

The choices and option names here are the one definition both ways in use: commands.py declares
them to discord.py, and interactions.py reads raw payloads by the same names.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from core.answer import Caller
from core.errors import UserError
from core.units import quoted

FITS, HELP, GPUS = "fits", "fits-help", "fits-gpus"
COMMANDS = (FITS, HELP, GPUS)
# The /fits options in the order the command text is built: the model, then the quantization as
# its own word (as people type it), then key=value options, then the free-form rest.
FITS_KEYS = ("ctx", "gpu", "engine", "mode", "train", "batch")
CONFIG_OPTION = "config"
MORE_OPTION = "more"
USAGE = "For example: /fits model:meta-llama/Llama-2-7b-hf quant:q4 gpu:4090 ctx:8k."
_QUOTES = "\"'`“”‘’"  # the parser reads these as quoting; a value must not carry its own

# (name shown, value). Discord allows 25 choices per option.
QUANT_CHOICES: tuple[tuple[str, str], ...] = (
    ("fp16 (16-bit)", "fp16"), ("bf16 (16-bit)", "bf16"), ("fp8", "fp8"),
    ("int8 (bitsandbytes)", "int8"), ("nf4 (bitsandbytes 4-bit)", "nf4"),
    ("fp4 (bitsandbytes)", "fp4"), ("gptq (4-bit)", "gptq"), ("awq (4-bit)", "awq"),
    ("mxfp4", "mxfp4"), ("q8 (8-bit, per engine)", "q8"), ("q6 (6-bit, per engine)", "q6"),
    ("q5 (5-bit, per engine)", "q5"), ("q4 (4-bit, per engine)", "q4"),
    ("q3 (3-bit, per engine)", "q3"), ("q2 (2-bit, per engine)", "q2"),
    ("Q8_0 (GGUF)", "Q8_0"), ("Q6_K (GGUF)", "Q6_K"), ("Q5_K_M (GGUF)", "Q5_K_M"),
    ("Q4_K_M (GGUF)", "Q4_K_M"), ("Q4_0 (GGUF)", "Q4_0"), ("IQ4_XS (GGUF)", "IQ4_XS"),
    ("Q3_K_M (GGUF)", "Q3_K_M"), ("Q2_K (GGUF)", "Q2_K"), ("fp32 (32-bit)", "fp32"),
)  # fmt: skip
ENGINE_CHOICES: tuple[tuple[str, str], ...] = (
    ("transformers", "hf"), ("vLLM", "vllm"), ("llama.cpp", "llama.cpp"), ("Ollama", "ollama"),
    ("ExLlamaV2", "exllamav2"), ("SGLang", "sglang"), ("TGI", "tgi"),
)  # fmt: skip
MODE_CHOICES: tuple[tuple[str, str], ...] = (("inference", "infer"), ("training", "train"))
TRAIN_CHOICES: tuple[tuple[str, str], ...] = (
    ("full fine-tuning", "full"), ("LoRA", "lora"), ("QLoRA (4-bit base)", "qlora"))
HELP_TOPICS: tuple[tuple[str, str], ...] = (
    ("quantizations", "quant"), ("engines", "engines"), ("GPUs", "gpus"), ("every key", "keys"))
# Offered while ctx is typed; any other value the parser reads (100k, 8192) is accepted too.
CTX_SUGGESTIONS: tuple[tuple[str, str], ...] = tuple(
    (f"{label} ({tokens:,} tokens)", label)
    for label, tokens in (("2k", 2048), ("4k", 4096), ("8k", 8192), ("16k", 16384),
                          ("32k", 32768), ("64k", 65536), ("128k", 131072), ("256k", 262144),
                          ("1m", 1048576)))

MAX_CONFIG_BYTES = 2_000_000  # the CLI's and the Hub fetcher's limit on a config.json
CONFIG_HINT = "Attach the model's own config.json (the file next to its weights on the Hub)."


def command_text(command: str, options: Mapping[str, object]) -> str:
    """The command language for one slash command and its options (config left out)."""
    if command == HELP:
        return f"help {_plain('topic', options.get('topic'), spaces=False)}".strip()
    if command == GPUS:
        return f"gpus {_plain('query', options.get('query'), spaces=True)}".strip()
    if command != FITS:
        raise UserError(f"/{command[:32]} is not a command of fits.",
                        "Use /fits, /fits-help or /fits-gpus.")
    model = _plain("model", options.get("model"), spaces=False)
    if not model:
        raise UserError("Tell me which model to check.", USAGE)
    words = [model]
    quant = _plain("quant", options.get("quant"), spaces=False)
    if quant:
        words.append(quant)
    for key in FITS_KEYS:
        value = _plain(key, options.get(key), spaces=True)
        if value:
            words.append(f'{key}="{value}"' if any(ch.isspace() or ch == "=" for ch in value)
                         else f"{key}={value}")
    more = options.get(MORE_OPTION)
    if isinstance(more, str) and more.strip():
        words.append(more.strip())  # already the command language: the parser reads it as typed
    return " ".join(words)


def _plain(name: str, value: object, *, spaces: bool) -> str:
    """One option's value as text, refused when it would change how the command is split."""
    if value is None or isinstance(value, bool):
        return ""
    text = str(value).strip()
    if any(ch in _QUOTES for ch in text):
        raise UserError(f"The {name} option must be a plain value without quotes, not "
                        f"{quoted(text)}.", USAGE)
    if not spaces and any(ch.isspace() for ch in text):
        raise UserError(f"The {name} option must be one word, not {quoted(text)}.",
                        "Use a Hub id such as meta-llama/Llama-2-7b-hf, a name such as "
                        "llama-2-7b, or a size such as 7b." if name == "model" else USAGE)
    return text


def caller_for(user_id: object, guild_id: object) -> Caller:
    """Rate-limit keys for one interaction: the user, then the server when there is one (a DM
    or a user-installed command has none)."""
    keys = [f"discord:user:{user_id}"]
    if guild_id:
        keys.append(f"discord:guild:{guild_id}")
    return Caller(tuple(keys))


# --- an attached config.json ----------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigFile:
    """An attachment as both ways in see it: its name, the size Discord reports, and how to read
    it (each way downloads differently and turns its own failures into a UserError)."""

    filename: str
    size: int
    read: Callable[[], Awaitable[bytes]]


async def load_config(file: ConfigFile) -> dict[str, Any]:
    """The attachment's JSON object, or a UserError that says what is wrong with it."""
    if file.size > MAX_CONFIG_BYTES:
        raise UserError(f"The attachment {quoted(file.filename)} is larger than a config.json can "
                        "be (2 MB).", CONFIG_HINT)
    return parse_config(await file.read(), file.filename)


def parse_config(data: bytes, filename: str) -> dict[str, Any]:
    if len(data) > MAX_CONFIG_BYTES:
        raise UserError(f"The attachment {quoted(filename)} is larger than a config.json can be "
                        "(2 MB).", CONFIG_HINT)
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        raise UserError(f"The attachment {quoted(filename)} is not valid JSON.",
                        CONFIG_HINT) from None
    except RecursionError:
        raise UserError(f"The attachment {quoted(filename)} is nested too deeply to be a "
                        "config.json.", CONFIG_HINT) from None
    if not isinstance(value, dict):
        raise UserError(f"The attachment {quoted(filename)} is not a JSON object.", CONFIG_HINT)
    return value
