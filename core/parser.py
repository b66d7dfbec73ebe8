"""The /fits command language: text in, a typed Command out, or one UserError. Pure.

    [/fits] <model> [<quant>] [key=value ...]
    [/fits] help [topic] | gpus [query] | models <query>

The parser checks syntax and spelling only; models and GPUs are resolved later, so their text is
kept as typed. ``parse_command`` returns a Command or raises UserError, whatever the input.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from core.errors import UserError
from core.frameworks import FRAMEWORK_NAMES
from core.units import parse_tokens, quoted
from core.vocabulary import (
    GENERIC_QUANTS,
    GGUF_PRESETS,
    LLAMA_CPP_ENGINES,
    NO_GPU_WORDS,
    PLAIN_QUANTS,
)

if TYPE_CHECKING:
    from core.ollama import OllamaTag
    from core.request import EstimateRequest, FieldError


@dataclass(frozen=True)
class EstimateCommand:
    """`<model> [quant] [key=value ...]`: an estimate."""

    request: EstimateRequest
    notes: tuple[str, ...] = ()  # what the parser assumed, for the answer's "assumptions"


@dataclass(frozen=True)
class HelpCommand:
    """`help [topic]`."""

    topic: str | None = None


@dataclass(frozen=True)
class GpusCommand:
    """`gpus [query]`: the GPUs fits knows."""

    query: str = ""


@dataclass(frozen=True)
class ModelsCommand:
    """`models <query>`: bundled (and Hub) models by name."""

    query: str


@dataclass(frozen=True)
class BestCommand:
    """`best gpu=24GB [ctx=] [engine=] [use=] [speed=] [ram=] [train=]`: the models that fit."""

    template: EstimateRequest  # its model is a placeholder; each candidate replaces it
    use: str = "chat"
    min_speed: float | None = None
    limit: int = 10
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class CompareCommand:
    """`compare <model>[,<model>] [quant,quant] gpu=a,b [keys]`: a table of setups."""

    rows: tuple[str, ...]  # "model quant" as each row is labelled
    columns: tuple[str, ...]  # the GPUs
    cells: tuple[tuple[str, str, str], ...]  # (row, column, estimate command), row-major


Command: TypeAlias = (EstimateCommand | HelpCommand | GpusCommand | ModelsCommand | BestCommand
                      | CompareCommand)
ModelKind = Literal["repo", "size", "name"]
Quant: TypeAlias = tuple[str, float | None, str | None]  # canonical name, bits, note

MAX_INPUT_CHARS = 2000
USAGE = (
    "Usage: /fits <model> [quant] [key=value ...], for example /fits llama-2-7b q4 ctx=8k gpu=4090."
)

KEY_ALIASES: dict[str, tuple[str, ...]] = {
    "ctx": ("context", "n_ctx", "num_ctx", "max_model_len", "seq", "seqlen", "seq_len"),
    "batch": ("bs", "batch_size"),
    "gpu": ("gpus",),
    "engine": ("backend",),
    "kv": ("kv_cache", "kv_cache_dtype"),
    "util": ("gpu_memory_utilization",),
    "version": ("vllm_version", "engine_version", "release"),
    "tp": ("tensor_parallel_size",),
    "pp": ("pipeline_parallel_size",),
    "prompt": ("prompt_tokens",),
    "gen": ("gen_tokens", "max_new_tokens", "max_tokens"),
    "attn": ("attention", "attn_implementation"),
    "quant": ("quantization",),
    "bits": ("bpw",),
    "exl2": (),
    "mode": (),
    "train": ("method", "finetune"),
    "r": ("lora_r", "rank", "lora_rank"),
    "target": ("targets", "target_modules", "lora_target"),
    "optim": ("optimizer",),
    "gc": ("gradient_checkpointing", "checkpointing", "activation_checkpointing"),
    "precision": ("dtype",),
    "zero": ("zero_stage", "fsdp"),
    "offload": ("cpu_offload",),
    "loss": ("ce", "cross_entropy"),
    "bnb": ("bitsandbytes", "bnb_version"),
    "cpu": ("processor",),
    "ram": ("system_ram", "sysram", "system_memory", "sysmem"),
    "membw": ("mem_bw", "memory_bandwidth", "ram_bandwidth", "ram_bw"),
    "ngl": ("n_gpu_layers", "gpu_layers", "num_gpu"),
    "fa": ("flash_attn", "flash_attention"),
    "framework": ("fw", "recipe"),
    "act_offload": ("activation_offloading", "offload_activations", "enable_activation_offloading"),
    "opt_in_bwd": ("optimizer_in_bwd", "optimizer_in_backward"),
}
_KEYS = {alias: key for key, aliases in KEY_ALIASES.items() for alias in (key, *aliases)}
_ALL_KEYS = frozenset(_KEYS)
TRAIN_METHODS = {"full": "full", "ft": "full", "full-finetune": "full", "lora": "lora",
                 "qlora": "qlora"}
LORA_TARGETS = {"qv": "qv", "q,v": "qv", "q-v": "qv", "attn": "attn", "attention": "attn",
                "qkvo": "attn", "all": "all", "all-linear": "all", "linear": "all"}
OPTIMIZERS = {
    "adamw": "adamw", "adam": "adamw", "adamw-torch": "adamw", "adamw-torch-fused": "adamw",
    "adamw8bit": "adamw8bit", "adamw-8bit": "adamw8bit", "adamw-bnb-8bit": "adamw8bit",
    "8bit-adam": "adamw8bit", "paged-adamw8bit": "paged_adamw8bit",
    "paged-adamw-8bit": "paged_adamw8bit", "sgd": "sgd", "adafactor": "adafactor",
}  # fmt: skip
PRECISIONS = {"mixed": "mixed", "amp": "mixed", "fp16-mixed": "mixed", "bf16-mixed": "mixed",
              "bf16": "bf16", "bf16-true": "bf16", "pure-bf16": "bf16", "fp32": "fp32",
              "float32": "fp32"}
_ON = {"on": True, "true": True, "yes": True, "1": True, "off": False, "false": False,
       "no": False, "0": False}

ENGINES = {
    "hf": "hf", "transformers": "hf", "vllm": "vllm", "llama.cpp": "llama.cpp",
    "llamacpp": "llama.cpp", "llama-cpp": "llama.cpp", "ollama": "ollama",
    "exllamav2": "exllamav2", "exllama": "exllamav2", "exl2": "exllamav2", "sglang": "sglang",
    "tgi": "tgi", "text-generation-inference": "tgi",
}  # fmt: skip
KV_TYPES = {
    "fp16": "fp16", "f16": "fp16", "float16": "fp16", "bf16": "bf16", "bfloat16": "bf16",
    "fp8": "fp8", "fp8-e4m3": "fp8", "fp8-e5m2": "fp8", "q8": "q8", "q8-0": "q8", "q4": "q4",
    "q4-0": "q4",
}  # fmt: skip
ATTENTION = {
    "eager": "eager", "sdpa": "sdpa", "flash": "flash", "fa": "flash", "fa2": "flash",
    "flash-attn": "flash", "flash-attention-2": "flash",
}  # fmt: skip
_QUANT_ALIASES = {
    "float32": "fp32", "float16": "fp16", "half": "fp16", "bfloat16": "bf16", "float8": "fp8",
    "fp8-e4m3": "fp8", "bnb4": "nf4", "bnb-4bit": "nf4", "bnb8": "int8", "bnb-8bit": "int8",
    "16bit": "fp16", "32bit": "fp32",
}  # fmt: skip
_GGUF_ALIASES = {"Q3_K": "Q3_K_M", "Q4_K": "Q4_K_M", "Q5_K": "Q5_K_M"}  # llama-quantize's aliases
_BIT_CHOICES = {"gptq": (2, 3, 4, 8), "awq": (4,)}
_EXL2_BITS = (2.0, 8.0)
_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'"})
_PART = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?", re.ASCII)
_SIZE = re.compile(r"(\d+(?:\.\d+)?)([mbt])", re.ASCII | re.IGNORECASE)
_HF_URL = re.compile(
    r"(?:https?://)?(?:www\.)?(?:huggingface\.co|hf\.co)/([^?#]*)(?:[?#].*)?", re.IGNORECASE
)
_NBITS = re.compile(r"(\d+)[-_]?bits?", re.ASCII)
_GPTQ_AWQ = re.compile(r"(gptq|awq)[-_]?(?:int|w)?(\d+)(?:[-_]?bits?|b)?", re.ASCII)
_EXL2 = re.compile(r"exl2[-_]?(\d+(?:\.\d+)?)[-_]?(?:bpw|bits?|b)?", re.ASCII)
_BITS_VALUE = re.compile(r"(\d+(?:\.\d+)?|\.\d+)\s*(?:bpw|bits?|b)?", re.ASCII | re.IGNORECASE)
_UTIL = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(%?)", re.ASCII)
_VERSION = re.compile(r"\d{1,3}(?:\.\d{1,4}){0,2}", re.ASCII)
_GPU = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._+\-/(),:@]{0,63}", re.ASCII)
_CPU = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._+\-/()]{0,99}", re.ASCII)
# ram=64GB, 64 GiB, 64G, 64 (GB), 1.5TB, with an optional memory speed: 64GB@6000, @DDR5-6000.
_RAM = re.compile(r"(\d+(?:\.\d+)?)\s*(gb|gib|g|tb|tib|t)?\s*"
                  r"(?:@\s*(?:(?:lp)?ddr\d?x?[-_ ]?)?(\d{3,5})\s*(?:mt/?s|mhz)?)?",
                  re.ASCII | re.IGNORECASE)
_MEMBW = re.compile(r"(\d+(?:\.\d+)?|\.\d+)\s*(?:gb/?s|gbps|gb)?", re.ASCII | re.IGNORECASE)


def parse_command(text: str) -> Command:
    """Parse one command line. Returns a Command or raises UserError; nothing else escapes."""
    if len(text) > MAX_INPUT_CHARS:
        raise UserError(f"That command is too long ({len(text):,} characters, limit 2,000).", USAGE)
    words = _tokenize(_clean(text))
    if words and words[0].lower() in ("/fits", "fits"):
        words = words[1:]
    if not words:
        raise UserError("Tell me which model to check.", USAGE)
    head, rest = words[0].lower(), words[1:]
    if head in ("help", "?", "-h", "--help", "usage"):
        topic = _query(rest, "help topic", 40).lower()
        return HelpCommand(topic or None)
    if head in ("gpus", "gpu"):
        return GpusCommand(_query(rest, "GPU search", 100))
    if head in ("models", "model"):
        query = _query(rest, "model search", 100)
        if not query:
            raise UserError("Say which models to look for.", "For example: /fits models llama.")
        return ModelsCommand(query)
    if head in ("best", "top", "recommend"):
        return _best(rest)
    if head in ("compare", "vs"):
        return _compare(rest)
    return _estimate(words[0], rest)


MAX_COMPARE_CELLS = 24  # what a Discord embed (25 fields) and a Slack message can show
USES = ("chat", "code", "reasoning", "vision", "embed")


def _best(rest: list[str]) -> BestCommand:
    """best's own keys (use=, speed=, n=), the rest as an estimate's keys for every candidate."""
    own: dict[str, str] = {}
    keys: list[str] = []
    for word in rest:
        key, _, value = word.partition("=")
        if key.lower() in ("use", "for", "task", "speed", "min_speed", "n", "limit", "top"):
            own[key.lower()] = value.strip()
        else:
            keys.append(word)
    use = own.get("use") or own.get("for") or own.get("task") or "chat"
    if use.lower() not in USES:
        raise UserError(f"use= takes {', '.join(USES)}, not {quoted(use)}.",
                        "For example: best gpu=24GB use=code.")
    speed_text = own.get("speed") or own.get("min_speed")
    try:
        speed = float(speed_text.lower().removesuffix("tok/s").removesuffix("t/s"))             if speed_text else None
        limit = int(own.get("n") or own.get("limit") or own.get("top") or 10)
    except ValueError:
        raise UserError("speed= takes tokens per second and n= a count.",
                        "For example: best gpu=24GB speed=20 n=5.") from None
    if not 1 <= limit <= 25 or (speed is not None and not 0 < speed <= 100_000):
        raise UserError("n= takes 1 to 25, speed= a positive number of tokens/s.",
                        "For example: best gpu=24GB speed=20 n=5.")
    stray = [w for w in keys if "=" not in w and _quant(w) is None]
    if stray:
        raise UserError(f"best ranks every bundled model; {quoted(stray[0])} is not an option.",
                        "Give key=value options, for example: best gpu=24GB ctx=8k use=code.")
    template = _estimate("7b", keys)
    return BestCommand(template.request, use.lower(), speed, limit, template.notes)


def _compare(rest: list[str]) -> CompareCommand:
    """Models (comma-separated or several words), quantizations (comma-separated) and GPUs
    (gpu=a,b,c) make the rows and columns; every other key applies to every cell."""
    models: list[str] = []
    quants: list[str] = []
    gpus: list[str] = []
    keys: list[str] = []
    for word in rest:
        if "=" in word:
            key, _, value = word.partition("=")
            if _option_key(key) == "gpu":
                gpus += [g.strip() for g in value.split(",") if g.strip()]
            else:
                keys.append(word)
            continue
        parts = [p for p in word.split(",") if p]
        if parts and all(_quant(p) is not None for p in parts):
            quants += parts
        elif word.lower() not in ("vs", "and", "versus"):
            models += parts
    if not models:
        raise UserError("Say which model(s) to compare.",
                        "For example: compare llama-3-8b q4,q8 gpu=4090,3060.")
    rows = [f"{m} {q}" if q else m for m in models for q in (quants or [""])]
    columns = gpus or ["24GB"]
    if len(rows) * len(columns) > MAX_COMPARE_CELLS:
        raise UserError(f"That is {len(rows) * len(columns)} setups; compare takes up to "
                        f"{MAX_COMPARE_CELLS}.", "Compare fewer models, quantizations or GPUs.")
    if len(rows) * len(columns) < 2:
        raise UserError("compare needs two setups or more.",
                        "Give several quantizations (q4,q8) or GPUs (gpu=4090,3060).")
    cells = []
    for row in rows:
        for column in columns:
            text = " ".join([row, f'gpu="{column}"', *keys])
            command = parse_command(text)  # each cell checked as its own estimate now
            if not isinstance(command, EstimateCommand):
                raise UserError(f"{quoted(row)} is not a model to compare.", USAGE)
            cells.append((row, column, text))
    return CompareCommand(tuple(rows), tuple(columns), tuple(cells))


def _clean(text: str) -> str:
    """Fold compatibility forms (full-width letters), drop invisible format chars, straighten quotes."""
    text = unicodedata.normalize("NFKC", text)
    if len(text) > MAX_INPUT_CHARS:
        raise UserError("That command is too long (over 2,000 characters).", USAGE)
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf").translate(_QUOTES)


def _tokenize(text: str) -> list[str]:
    """Split on whitespace outside quotes, join `key = value`, read `key:value` as `key=value`."""
    words: list[str] = []
    word, quote, started = "", "", False
    for ch in text + " ":
        if quote:
            word, quote = (word, "") if ch == quote else (word + ch, quote)
        elif ch in "\"'`":
            quote, started = ch, True
        elif ch.isspace():
            if started:  # a comma or semicolon after a word is a separator, so it is dropped
                words.append(word.rstrip(",;"))
            word, started = "", False
        else:
            word, started = word + ch, True
    if quote:
        raise UserError("A quote is not closed.", "Close the quote, or leave the quotes out.")
    joined: list[str] = []
    for word in filter(None, (_colon_to_equals(w) for w in words)):
        if joined and (word.startswith("=") or (joined[-1].endswith("=") and "=" not in word)):
            joined[-1] += word
        else:
            joined.append(word)
    return joined


def _colon_to_equals(word: str) -> str:
    key, colon, value = word.partition(":")
    if colon and "=" not in word and _key_name(key) in _ALL_KEYS:
        return f"{key}={value}"
    return word


def _key_name(key: str) -> str:
    return key.strip().lower().removeprefix("--").replace("-", "_")


def _query(words: list[str], what: str, limit: int) -> str:
    query = " ".join(words).strip()
    if len(query) > limit or not query.isprintable():
        raise UserError(
            f"That {what} is too long or has odd characters.", f"Keep it under {limit} characters."
        )
    return query


def _estimate(model_word: str, rest: list[str]) -> EstimateCommand:
    notes: list[str] = []
    word = _model(model_word)
    notes += [word.note] if word.note else []
    options: dict[str, tuple[str, str]] = {}  # canonical key -> (key as typed, value)
    quants: list[tuple[str, Quant]] = [(model_word, word.quant)] if word.quant else []
    i = 0
    while i < len(rest):
        item, i = rest[i], i + 1
        if "=" not in item and item.lower() in PHRASES:  # "on 3060", "with vllm", "at 8k"
            key, value, i = _phrase(item, rest, i)
            _add_option(options, key, item, value)
            continue
        if "=" not in item:
            quant = _quant(item)
            if quant is None:
                raise UserError(f"{quoted(item)} is not a quantization I know.", _stray_hint(item))
            quants.append((item, quant))
            continue
        typed, _, value = item.partition("=")
        value = value.strip()
        if not value:
            raise UserError(f"The option {typed.strip()}= needs a value.", USAGE)
        _add_option(options, _option_key(typed), typed.strip(), value)

    fields: dict[str, Any] = {"model": word.text}
    for key, (_, value) in options.items():
        if key == "quant":
            quants.append((f"quant={value}", parse_quant(value)))
        elif key == "exl2":
            quants.append((f"exl2={value}", ("exl2", _bits_value(value), None)))
        elif key == "ram":
            fields["ram"], speed = _ram(value)
            if speed is not None:
                fields["ram_speed"] = speed
        elif key != "bits":
            fields[key] = _VALUE_PARSERS[key](value)
    if len(quants) > 1:
        first, second = (quoted(typed) for typed, _ in quants[:2])
        raise UserError(
            f"The quantization is given twice ({first} and {second}).", "Keep one of them."
        )
    if quants:
        fields["quant"], fields["bits"] = _with_bits(quants[0][1], options.get("bits"), notes)
    elif "bits" in options:
        raise UserError("The option bits= needs a quantization such as gptq, awq or exl2.", USAGE)
    # Loaded here, not at import: `fits help` and `fits gpus` never build a request.
    from core.request import DEFAULT_GPU, FieldError, checked_request

    if ("train" in fields or "framework" in fields) and "mode" not in fields:
        fields["mode"] = "train"  # train=lora (or a training framework) says what is wanted
    if fields.get("mode") != "train":
        stray = [k for k in ("train", "r", "target", "optim", "gc", "precision", "zero",
                             "offload", "loss", "bnb", "act_offload", "opt_in_bwd", "framework")
                 if k in fields]
        if stray:
            raise UserError(f"The option {stray[0]}= applies to training only.",
                            "Add mode=train (or train=full|lora|qlora).")
    if word.tag is not None:
        notes.append(_ollama_defaults(word.tag, fields))
    _check_cpu_side(fields)
    if "gpu" not in fields:
        fields["gpu_given"] = False
        notes.append(f"No gpu= given, so a {DEFAULT_GPU} GPU is assumed.")
    try:
        request = checked_request(fields)
    except FieldError as exc:
        raise _explain(exc) from None
    return EstimateCommand(request, tuple(notes))


def _add_option(options: dict[str, tuple[str, str]], key: str, typed: str, value: str) -> None:
    if key in options:
        raise UserError(f"The option {key}= is given twice.", "Keep one of them.")
    options[key] = (typed, value)


# Words people put before a value instead of key=: "llama-3-8b on 3060 with vllm at 8k".
PHRASES = {"on": "gpu", "with": "engine", "using": "engine", "at": "ctx"}
_FILLERS = frozenset({"a", "an", "the", "my", "one"})  # "on a 3060", "on my 4090"
_CTX_WORDS = frozenset({"ctx", "context", "tokens"})  # "at 8k context"
_CTX_LIKE = re.compile(r"\d+(?:\.\d+)?[km]", re.ASCII | re.IGNORECASE)
_PHRASE_EXAMPLES = {"gpu": "llama-3-8b on 3060", "engine": "llama-3-8b with vllm",
                    "ctx": "llama-3-8b at 8k"}


def _phrase(word: str, rest: list[str], i: int) -> tuple[str, str, int]:
    """The value after a phrase word: (key, value, index after it). A GPU may take several
    words ("on rtx 4090"), up to an option, another phrase word, a quantization or a size."""
    key = PHRASES[word.lower()]
    while i < len(rest) and rest[i].lower() in _FILLERS:
        i += 1
    taken: list[str] = []
    while i < len(rest) and "=" not in rest[i] and rest[i].lower() not in PHRASES:
        if taken and (key != "gpu" or _quant(rest[i]) is not None
                      or _CTX_LIKE.fullmatch(rest[i])):
            break
        taken.append(rest[i])
        i += 1
    if key == "ctx" and taken and i < len(rest) and rest[i].lower() in _CTX_WORDS:
        i += 1
    if not taken:
        what = {"gpu": "GPU", "engine": "engine", "ctx": "context length"}[key]
        raise UserError(f"Say which {what} after {quoted(word)}.",
                        f"For example: {_PHRASE_EXAMPLES[key]} (or {key}=...).")
    return key, " ".join(taken), i


def _ollama_defaults(tag: OllamaTag, fields: dict[str, Any]) -> str:
    """An Ollama tag means engine=ollama and, without a quant, Ollama's default file; the note
    says how the tag was read. Training runs on transformers, so there it names the model only."""
    if fields.get("mode") == "train":
        return tag.note(fields.get("quant"), None)
    fields.setdefault("engine", "ollama")
    if "quant" not in fields and fields["engine"] in LLAMA_CPP_ENGINES:
        fields["quant"] = tag.default_quant
    return tag.note(fields.get("quant"), fields["engine"])


def _check_cpu_side(fields: dict[str, Any]) -> None:
    """The CPU-side keys describe llama.cpp/Ollama inference; say so rather than ignore them."""
    cpu_side = [k for k in ("ngl", "cpu", "ram", "membw") if k in fields]
    no_gpu = str(fields.get("gpu", "")).strip().lower() in NO_GPU_WORDS
    if fields.get("mode") == "train" and (cpu_side or no_gpu):
        what = f"The option {cpu_side[0]}=" if cpu_side else "gpu=none"
        raise UserError(f"{what} applies to inference with llama.cpp or Ollama, not to training.",
                        "Drop it, or ask about inference.")
    engine = fields.get("engine")
    if engine is None or engine in LLAMA_CPP_ENGINES:
        return
    if "ngl" in fields:
        raise UserError(f"The option ngl= (layers on the GPU) applies to llama.cpp and Ollama, "
                        f"not {engine}.", "Use engine=llama.cpp or engine=ollama, or drop ngl=.")
    if no_gpu:
        raise UserError(f"gpu=none (CPU only) is answered for llama.cpp and Ollama, not {engine}.",
                        "Use engine=llama.cpp with a GGUF type such as Q4_K_M.")


def _ram(value: str) -> tuple[int, int | None]:
    """ram=64GB or 64GB@6000 -> (bytes, MT/s or None). RAM is sold in binary sizes: 64 GB is
    64 GiB, as GPU memory is."""
    match = _RAM.fullmatch(value.strip())
    hint = "For example ram=64GB, or ram=64GB@6000 to give the memory speed in MT/s."
    if match is None:
        raise UserError(f"Could not read {quoted(value)} as a RAM size.", hint)
    size = float(match[1]) * (1024 if (match[2] or "g").lower().startswith("t") else 1)
    if not 1 <= size <= 16384:
        raise UserError(f"RAM must be between 1 GB and 16 TB, not {quoted(value)}.", hint)
    speed = int(match[3]) if match[3] else None
    if speed is not None and not 400 <= speed <= 20_000:
        raise UserError(f"A memory speed of {speed} MT/s is out of range.",
                        "Memory runs at 400 to 20,000 MT/s, e.g. ram=64GB@6000 for DDR5-6000.")
    return int(size * (1 << 30)), speed


def _membw(value: str) -> float:
    match = _MEMBW.fullmatch(value.strip())
    hint = "Give the RAM bandwidth in GB/s, e.g. membw=90 (dual-channel DDR5-5600)."
    if match is None:
        raise UserError(f"Could not read {quoted(value)} as a memory bandwidth.", hint)
    number = float(match[1])
    if not 1 <= number <= 20_000:
        raise UserError(f"A memory bandwidth of {quoted(value)} GB/s is out of range.", hint)
    return number


def _cpu(value: str) -> str:
    if _CPU.fullmatch(value) is None:
        raise UserError(f"{quoted(value)} does not look like a CPU name.",
                        "For example cpu=7950x, cpu=i9-13900k, cpu=m2-max or cpu=epyc-9654.")
    return value


def _ngl(value: str) -> int:
    if value.lower() in ("all", "max"):
        return 1000  # every layer and the output, as -ngl 999 does
    if not value.isascii() or not value.isdigit() or int(value) > 1000:
        raise UserError(f"ngl= takes the number of layers on the GPU, not {quoted(value)}.",
                        "For example ngl=20, ngl=0 (CPU only) or ngl=all.")
    return int(value)


def _option_key(typed: str) -> str:
    name = _key_name(typed)
    if name in _KEYS:
        return _KEYS[name]
    if not name:
        raise UserError("An option is missing its name before '='.", USAGE)
    close = difflib.get_close_matches(name, list(_KEYS), n=1)
    guess = f"Did you mean '{close[0]}'? " if close else ""
    raise UserError(
        f"Unknown option {quoted(typed.strip())}.", f"{guess}Options: {', '.join(KEY_ALIASES)}."
    )


def _switch(key: str) -> Callable[[str], bool]:
    def parse(value: str) -> bool:
        if value.lower() in _ON:
            return _ON[value.lower()]
        raise UserError(f"{key}= takes on or off, not {quoted(value)}.", f"For example {key}=on.")

    return parse


def _flash(value: str) -> bool | None:
    """llama.cpp's -fa on|off|auto; auto (None) leaves it to the engine."""
    if value.lower() == "auto":
        return None
    return _switch("fa")(value)


def _zero(value: str) -> int:
    if value.lower() in ("fsdp", "full-shard", "full_shard", "on", "true"):
        return 3  # FSDP's full shard is ZeRO-3
    if value in ("0", "1", "2", "3"):
        return int(value)
    raise UserError(f"zero= takes a ZeRO stage 0 to 3, not {quoted(value)}.",
                    "For example zero=3 (FSDP full shard).")


def _rank(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 4096:
        raise UserError(f"The LoRA rank r= must be a whole number from 1 to 4096, not "
                        f"{quoted(value)}.", "For example r=16.")
    return int(value)


def _choice(key: str, table: dict[str, str]) -> Callable[[str], str]:
    def parse(value: str) -> str:
        name = value.lower().replace("_", "-")
        if name in table:
            return table[name]
        close = difflib.get_close_matches(name, list(table), n=1)
        guess = f"Did you mean '{close[0]}'? " if close else ""
        choices = ", ".join(dict.fromkeys(table.values()))
        raise UserError(
            f"Unknown {key}= value {quoted(value)}.", f"{guess}Choose one of: {choices}."
        )

    return parse


def _util(value: str) -> float:
    match = _UTIL.fullmatch(value)
    hint = "Write a fraction such as util=0.9, or a percentage such as util=90%."
    if match is None:
        raise UserError(f"Could not read {quoted(value)} as a GPU memory fraction.", hint)
    number = float(match[1]) / (100 if match[2] else 1)
    if number > 1:
        raise UserError(f"util= must be at most 1 (100%), not {quoted(value)}.", hint)
    return number


def _release(key: str, what: str, example: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        text = value.lower().removeprefix("v")
        if _VERSION.fullmatch(text) is None:
            raise UserError(f"Could not read {quoted(value)} as {what}.",
                            f"Write it like {key}={example}.")
        return ".".join(str(int(part)) for part in text.split("."))
    return parse


def _gpu(value: str) -> str:
    if _GPU.fullmatch(value) is None:
        raise UserError(
            f"{quoted(value)} does not look like a GPU or a memory size.",
            "For example gpu=24GB, gpu=4090, gpu=2x3090 or gpu=a100-80g.",
        )
    return value


def _tokens(name: str) -> Callable[[str], int]:
    return lambda value: parse_tokens(value, name=name)


_VALUE_PARSERS: dict[str, Callable[[str], object]] = {
    "ctx": _tokens("context length (ctx=)"),
    "batch": _tokens("batch size (batch=)"),
    "tp": _tokens("tensor-parallel size (tp=)"),
    "pp": _tokens("pipeline-parallel size (pp=)"),
    "prompt": _tokens("prompt length (prompt=)"),
    "gen": _tokens("generation length (gen=)"),
    "gpu": _gpu,
    "cpu": _cpu,
    "membw": _membw,
    "ngl": _ngl,
    "engine": _choice("engine", ENGINES),
    "kv": _choice("kv", KV_TYPES),
    "attn": _choice("attn", ATTENTION),
    "util": _util,
    "version": _release("version", "an engine release", "0.11 or version=0.19.1"),
    "bnb": _release("bnb", "a bitsandbytes release", "0.41 or bnb=0.43.1"),
    "mode": _choice("mode", {"infer": "infer", "inference": "infer", "train": "train",
                             "training": "train", "finetune": "train"}),
    "train": _choice("train", TRAIN_METHODS),
    "r": _rank,
    "target": _choice("target", LORA_TARGETS),
    "optim": _choice("optim", OPTIMIZERS),
    "gc": _switch("gc"),
    "act_offload": _switch("act_offload"),
    "opt_in_bwd": _switch("opt_in_bwd"),
    "framework": _choice("framework", FRAMEWORK_NAMES),
    "fa": _flash,
    "precision": _choice("precision", PRECISIONS),
    "zero": _zero,
    "offload": _choice("offload", {"none": "none", "off": "none", "no": "none", "cpu": "cpu"}),
    "loss": _choice("loss", {"full": "full", "chunked": "chunked", "fused": "fused",
                             "liger": "fused", "cce": "fused", "cut": "fused"}),
}


# --- the model ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ModelWord:
    """The model word as read: the name, and what it implied."""

    text: str  # the model for the request
    note: str | None = None
    quant: Quant | None = None  # a GGUF file the word names (hf.co/org/repo:Q4_K_M)
    tag: OllamaTag | None = None  # an Ollama tag (llama3.1:8b)


def _model(word: str) -> _ModelWord:
    """The model text as typed (an hf.co link reduced to its repo id, an Ollama tag to the repo
    it names), syntax-checked."""
    text = word
    if text.startswith("<") and text.endswith(">"):  # Slack wraps links: <https://...|label>
        text = text[1:-1].split("|", 1)[0]
    match = _HF_URL.fullmatch(text)
    if match:
        return _link(text, match[1])
    if "://" in text:
        raise UserError(f"Only huggingface.co links are understood, not {quoted(text)}.", USAGE)
    if "=" in text:
        raise UserError("Name the model first, then the options.", USAGE)
    if ":" in text:  # Ollama's name:tag; the table loads only here
        from core.ollama import read_tag

        tag = read_tag(text)
        classify_model(tag.model)
        quant = (tag.quant, None, None) if tag.quant else None
        return _ModelWord(tag.model, None, quant, tag)
    if "/" not in text and _quant(text) is not None:
        raise UserError(f"{quoted(text)} is a quantization; name the model first.", USAGE)
    classify_model(text)
    return _ModelWord(text)


def _link(text: str, path: str) -> _ModelWord:
    """A Hub link: its repo id, and the GGUF file a ':QUANT' names, as Ollama and llama.cpp
    write it (hf.co/bartowski/Llama-3.2-3B-Instruct-GGUF:Q4_K_M)."""
    parts = [part for part in path.split("/") if part]
    if not parts or parts[0] in ("datasets", "spaces", "models", "docs", "collections"):
        raise UserError(
            f"The link {quoted(text)} is not a model page.",
            "Link a model, like https://huggingface.co/org/name.",
        )
    repo_parts = parts[:1] if len(parts) < 2 or parts[1] in ("tree", "blob", "resolve") else (
        parts[:2])
    repo, _, file_quant = "/".join(repo_parts).partition(":")
    quant: Quant | None = None
    if file_quant:
        gguf = file_quant.upper().replace("-", "_")
        gguf = _GGUF_ALIASES.get(gguf, gguf)
        if gguf not in GGUF_PRESETS:
            raise UserError(f"{quoted(file_quant)} after ':' is not a GGUF type.",
                            "Name the file's quantization, like hf.co/org/name-GGUF:Q4_K_M.")
        quant = (gguf, None, None)
    classify_model(repo)
    file = f", its {quant[0]} GGUF file" if quant else ""
    return _ModelWord(repo, f"Read the link as {repo}{file}.", quant)


MAX_ID_PART = 96  # the Hub's limit on an org and on a name
MAX_MODEL_CHARS = 2 * MAX_ID_PART + 1  # org/name at their longest


def classify_model(text: str) -> ModelKind:
    """'repo' (org/name), 'size' (7b, 1.5B, 125m) or 'name' (llama-2-7b); UserError if malformed."""
    hint = "Use a Hub id like meta-llama/Llama-2-7b-hf, a name like llama-2-7b, or a size like 7b."
    if ":" in text:
        raise UserError(
            f"Model ids have no ':' ({quoted(text)}).",
            "Give the quantization as its own word: llama3-8b q4.",
        )
    parts = text.split("/")
    if len(parts) > 2:
        raise UserError(f"A Hub model id has one '/', like org/name, not {quoted(text)}.", hint)
    for part in parts:
        if len(part) > MAX_ID_PART:
            raise UserError(
                f"Each part of a model id can be at most {MAX_ID_PART} characters "
                f"({quoted(part)}).", hint
            )
        if _PART.fullmatch(part) is None:
            raise UserError(
                f"{quoted(text)} is not a valid model id.",
                hint + " Ids use letters, digits, '-', '_' and '.'.",
            )
        if "--" in part or ".." in part:
            raise UserError(f"Model ids cannot contain '--' or '..' ({quoted(text)}).", hint)
    if len(parts) == 2:
        return "repo"
    size = _SIZE.fullmatch(text)
    if size is None:
        return "name"
    params = float(size[1]) * {"m": 1e6, "b": 1e9, "t": 1e12}[size[2].lower()]
    if not 1e6 <= params <= 1e14:
        raise UserError(
            f"A model size of {quoted(text)} is out of range.",
            "Sizes go from 1m to 100t, like 125m, 7b or 1.5t.",
        )
    return "size"


# --- quantization ------------------------------------------------------------------------------


def parse_quant(text: str) -> Quant:
    """A quantization word in any case -> (canonical name, bits or None, note or None)."""
    quant = _quant(text)
    if quant is None:
        close = difflib.get_close_matches(text.lower(), _QUANT_WORDS, n=1)
        guess = f"Did you mean '{_CANONICAL[close[0]]}'? " if close else ""
        raise UserError(f"{quoted(text)} is not a quantization I know.", f"{guess}{_QUANT_LIST}")
    return quant


def _quant(text: str) -> Quant | None:
    word = text.strip().lower()
    dashed = word.replace("_", "-")
    gguf = word.upper().replace("-", "_")
    if word in PLAIN_QUANTS:
        return word, None, None
    if dashed in _QUANT_ALIASES:
        return _QUANT_ALIASES[dashed], None, f"{quoted(text)} read as {_QUANT_ALIASES[dashed]}."
    if gguf in GGUF_PRESETS:
        return gguf, None, None
    if gguf in _GGUF_ALIASES:
        return (
            _GGUF_ALIASES[gguf],
            None,
            f"{quoted(text)} is llama.cpp's alias for {_GGUF_ALIASES[gguf]}.",
        )
    if word in GENERIC_QUANTS:
        # What q4 means is the engine's choice; the answer says what it was taken as.
        return word, None, None
    if (match := _NBITS.fullmatch(word)) and f"q{match[1]}" in GENERIC_QUANTS:
        return f"q{match[1]}", None, f"{quoted(text)} read as q{match[1]}."
    if match := _GPTQ_AWQ.fullmatch(word):
        return match[1], float(match[2]), None
    if match := _EXL2.fullmatch(word):
        return "exl2", float(match[1]), None
    return None


_QUANT_WORDS = [*PLAIN_QUANTS, *GENERIC_QUANTS, *(p.lower() for p in GGUF_PRESETS), *_QUANT_ALIASES]
_CANONICAL = {word: quant[0] for word in _QUANT_WORDS if (quant := _quant(word))}
_QUANT_LIST = "Quantizations: fp16, bf16, fp8, int8, nf4, q8, q4, gptq, awq, exl2=<bpw>, or a GGUF type like Q4_K_M."


def _bits_value(value: str) -> float:
    match = _BITS_VALUE.fullmatch(value)
    if match is None:
        raise UserError(
            f"Could not read {quoted(value)} as bits per weight.",
            "For example bits=4 or exl2=4.65.",
        )
    return float(match[1])


def _with_bits(
    quant: Quant, bits_text: tuple[str, str] | None, notes: list[str]
) -> tuple[str, float | None]:
    name, bits, note = quant
    notes += [note] if note else []
    if bits_text is not None:
        if name not in ("gptq", "awq", "exl2"):
            raise UserError(
                f"bits= applies only to gptq, awq and exl2, not to {name}.", "Drop bits=."
            )
        if bits is not None:
            raise UserError("The bits per weight are given twice.", "Keep one of them.")
        bits = _bits_value(bits_text[1])
    if name == "exl2":
        if bits is None:
            bits = 4.0
            notes.append("exl2 taken as 4.0 bits per weight; write exl2=<bpw> to change it.")
        low, high = _EXL2_BITS
        if not low <= bits <= high:
            raise UserError(
                f"exl2 needs {low:g} to {high:g} bits per weight, not {bits:g}.",
                "For example exl2=4.65.",
            )
    elif name in _BIT_CHOICES:
        if bits is None:
            bits = 4.0
            notes.append(f"{name} taken as 4-bit; add bits= to change it.")
        if bits not in _BIT_CHOICES[name]:
            allowed = ", ".join(map(str, _BIT_CHOICES[name]))
            raise UserError(
                f"{name} comes in {allowed} bits, not {bits:g}.", "For example gptq-4bit or awq."
            )
    return name, bits


def _explain(exc: FieldError) -> UserError:
    """A refused field as one sentence about the option the user typed."""
    words = {"ge": "at least", "le": "at most", "gt": "more than"}
    if exc.bound in words and exc.limit is not None:
        limit = exc.limit
        shown = f"{limit:,}" if isinstance(limit, int) else f"{limit:g}"
        return UserError(f"{exc.name}= must be {words[exc.bound]} {shown}.", USAGE)
    return UserError(f"The value given for {exc.name}= is not valid.", USAGE)


def _stray_hint(word: str) -> str:
    """What an extra word after the model probably meant."""
    low = word.lower()
    if _SIZE.fullmatch(low):
        return f"Write the model as one word, like llama-{low}, or give only the size {low}."
    if low.replace("_", "-") in ENGINES:
        return f"Did you mean engine={low}? Options are written key=value."
    if re.fullmatch(r"\d+(\.\d+)?\s*(gb|gib|g)", low):
        return f"Did you mean gpu={word}? Options are written key=value."
    if re.fullmatch(r"\d+(\.\d+)?[km]", low):
        return f"Did you mean ctx={word}? Options are written key=value."
    if low.isascii() and low.isdigit():
        return f"Did you mean gpu={word} or ctx={word}? Options are written key=value."
    close = difflib.get_close_matches(low, _QUANT_WORDS, n=1)
    if close:
        return f"Did you mean '{_CANONICAL[close[0]]}'? Options are written key=value."
    return f"{_QUANT_LIST} Options are written key=value."


def with_change(text: str, change: str) -> str:
    """The command ``text`` with a suggestion's ``change`` applied ("ctx=4096", "Q4_K_M",
    "engine=llama.cpp Q4_K_M"): each key replaces the same key, a quantization the quantization,
    so that the result parses without "given twice"."""
    words = _tokenize(_clean(text))
    for part in _tokenize(_clean(change)):
        if "=" in part:
            key = _option_key(part.partition("=")[0])
            words = [w for w in words if "=" not in w or _option_key(w.partition("=")[0]) != key]
            words.append(part)
        elif _quant(part) is not None:
            kept = [w for i, w in enumerate(words) if i == 0 or "=" in w or _quant(w) is None]
            words = [kept[0], part, *kept[1:]]
    return " ".join(f'"{w}"' if " " in w else w for w in words)
