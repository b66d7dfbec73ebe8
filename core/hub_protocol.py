"""The Hugging Face Hub's protocol, without I/O: which ids are valid, what to ask for, and how to
read what came back (the model_info listing, quantize_config.json, safetensors parameter counts,
GGUF file names and sizes). adapters/hub moves the bytes; everything it decides is decided here.

One resolve costs one request when the model card lists safetensors parameters
(``model_info(expand=EXPAND)``) plus one streamed GET of config.json, capped in size. Without the
parameter listing, the safetensors headers are read; a GGUF repo costs one more request for its
file sizes and takes its architecture from its base model.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from core.errors import UserError
from core.hub_records import GgufFile
from core.vocabulary import GGUF_PRESETS

DEFAULT_ENDPOINT = "https://huggingface.co"
# One request for everything model_info can tell: parameters by dtype, the (partial) config, the
# gate, the commit, the file list, GGUF metadata and the card's base_model.
EXPAND = ["safetensors", "config", "gated", "sha", "siblings", "gguf", "cardData", "tags"]
MAX_CONFIG_BYTES = 2_000_000  # the same limit as an uploaded config.json

_ID_PART = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?", re.ASCII)
_ID_HINT = "A Hub model id looks like org/name, for example meta-llama/Llama-3.1-8B."
_PRESETS_LONGEST_FIRST = sorted(GGUF_PRESETS, key=len, reverse=True)


def validate_repo_id(repo_id: str) -> str:
    """The Hub's id grammar: org/name, each part 1-96 of letters, digits, '-', '_', '.', starting
    with a letter or digit, not ending in '-' or '.', no '--' or '..', name not ending in '.git'.
    Raises UserError before any request is made."""
    text = repo_id.strip()
    parts = text.split("/")
    if len(parts) != 2:
        raise UserError(f"'{text[:100]}' is not a Hub model id (org/name).", _ID_HINT)
    for part in parts:
        if not _ID_PART.fullmatch(part) or "--" in part or ".." in part:
            raise UserError(f"'{text[:100]}' is not a valid Hub model id.",
                            _ID_HINT + " Ids use letters, digits, '-', '_' and '.' (at most 96 "
                            "each).")
    if parts[1].lower().endswith(".git"):
        raise UserError(f"'{text[:100]}' is not a valid Hub model id.", _ID_HINT)
    return text


def is_repo_id(text: str) -> bool:
    try:
        validate_repo_id(text)
    except UserError:
        return False
    return True


def public_url(url: str) -> str:
    """A URL without any user:password part, fit for a message."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@dataclass(frozen=True)
class HubSite:
    """Where the records came from, as far as messages need it: the endpoint (for links to a
    repo's page) and whether a token was sent (which changes what 'not found' may mean)."""

    endpoint: str
    has_token: bool = False

    def page(self, repo_id: str) -> str:
        return f"{public_url(self.endpoint)}/{repo_id}"


# --- what model_info said ---------------------------------------------------------------------


@dataclass(frozen=True)
class RepoListing:
    """What the Hub's model_info said about a repo, as plain values, and what it implies about
    the requests still to make."""

    id: str
    sha: str | None = None
    files: tuple[str, ...] | None = None  # None: the Hub did not list them (ask anyway)
    params: dict[str, int] | None = None  # safetensors parameters by dtype, if listed
    gguf_total: int | None = None  # the GGUF metadata's parameter total, if listed
    base_model: str | None = None
    gated: bool = False

    def lists(self, name: str) -> bool:
        """Whether the repo may have file ``name`` (an unlisted repo may have anything)."""
        return self.files is None or name in self.files

    @property
    def gguf_files(self) -> list[str]:
        """The repo's GGUF weights, without vision projectors (mmproj), which are not the model."""
        return [f for f in self.files or () if f.lower().endswith(".gguf")
                and not f.rsplit("/", 1)[-1].lower().startswith("mmproj")]

    def wants_config(self) -> bool:
        return self.lists("config.json")

    def wants_quantize_config(self, config: Mapping[str, Any]) -> bool:
        """An older GPTQ repo keeps its settings in quantize_config.json, not in config.json."""
        return ("quantization_config" not in config
                and self.files is not None and "quantize_config.json" in self.files)

    def wants_safetensors_headers(self) -> bool:
        """Without listed counts, a safetensors checkpoint's headers give the exact count."""
        return self.params is None and not self.gguf_files and (
            self.lists("model.safetensors") or self.lists("model.safetensors.index.json"))


def params_by_dtype(listing: object) -> dict[str, int] | None:
    """The Hub's ``safetensors.parameters`` ({dtype: count}), or None when it is not one."""
    if not isinstance(listing, Mapping):
        return None
    return {str(k): int(v) for k, v in listing.items()
            if isinstance(v, int) and not isinstance(v, bool)}


def base_model_of(card_base: object, tags: Iterable[object] | None) -> str | None:
    """The base model a repo names: its card's ``base_model`` (a string or a list, first
    wins), else a ``base_model:...`` tag."""
    base = card_base[0] if isinstance(card_base, list) and card_base else card_base
    if isinstance(base, str) and "/" in base:
        return base
    for tag in tags or ():
        if isinstance(tag, str) and tag.startswith("base_model:"):
            value = tag.split(":")[-1]
            if "/" in value:
                return value
    return None


def with_quantize_config(config: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """config.json with an older GPTQ repo's quantize_config.json as its quantization_config."""
    return {**config, "quantization_config": {"quant_method": "gptq", **extra}}


# --- GGUF files --------------------------------------------------------------------------------


def gguf_quant(filename: str) -> str | None:
    """The llama-quantize preset in a GGUF file name ('llama-2-7b.Q4_K_M.gguf' -> 'Q4_K_M')."""
    stem = filename.rsplit("/", 1)[-1].upper()
    for preset in _PRESETS_LONGEST_FIRST:
        if re.search(rf"(?<![A-Z0-9]){preset}(?![A-Z0-9])", stem):
            return preset
    return None


def group_gguf(names: Iterable[str], sizes: Mapping[str, int]) -> tuple[GgufFile, ...]:
    """One GgufFile per quantization, in the repo's order, split files together; the bytes are
    their sum, or None when a part's size is unknown."""
    groups: dict[str, list[str]] = {}
    for name in names:
        quant = gguf_quant(name)
        if quant is not None:
            groups.setdefault(quant, []).append(name)
    return tuple(GgufFile(quant, tuple(files), _total(sizes.get(f) for f in files))
                 for quant, files in groups.items())


def _total(sizes: Iterable[int | None]) -> int | None:
    known = list(sizes)
    return None if any(s is None for s in known) else sum(s for s in known if s is not None)
