"""What the Hub said about one repo, as typed records, and their JSON for the caches.

A fetch ends in exactly one record: ``HubOk`` (what fits read: config, parameter count, GGUF
files, and what it could not read), or the reason there is no model to answer for
(``HubNotFound``, ``HubGated``, ``HubBadToken``, ``HubTooLarge``, ``HubBadConfig``).
core.hub_resolve says what each record means for the answer.

The caches (memory, disk, Redis) hold JSON, possibly written by another release of fits: every
record is stored with ``FORMAT`` and its kind, and ``record_from_json`` reads back only what it
fully understands. Anything else (an older shape, a foreign value, a cut-short write) is None,
which the caller treats as a miss.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, get_args

# Bumped whenever a record's JSON changes, so that values written by another release are misses.
FORMAT = 2

# The parts of an answer a fetch may fail to read without failing the whole answer.
UnreadPart = Literal["quantize_config", "safetensors_headers", "gguf_sizes", "base_config"]
_PARTS: tuple[UnreadPart, ...] = get_args(UnreadPart)


@dataclass(frozen=True)
class GgufFile:
    """One quantization of a GGUF repo: its files (split files together) and their bytes."""

    quant: str
    files: tuple[str, ...]
    size_bytes: int | None


@dataclass(frozen=True)
class Unread:
    """A part of a repo fits asked for and could not read, and why (a clause such as "the Hub
    kept failing (HTTP 500, retried)"). The answer still comes, with a note saying so."""

    part: UnreadPart
    reason: str


@dataclass(frozen=True)
class HubOk:
    """A repo fits could read. ``config`` is None for a GGUF repo whose base gave none."""

    id: str
    sha: str | None = None
    config: dict[str, Any] | None = None
    config_repo: str | None = None  # the repo the config came from (a GGUF repo's base)
    params: dict[str, int] | None = None  # exact parameter counts by dtype
    params_from: str | None = None  # where the counts came from, for the note
    gguf: tuple[GgufFile, ...] = ()
    base_model: str | None = None
    gated: bool = False
    unread: tuple[Unread, ...] = ()

    @property
    def params_total(self) -> int | None:
        return sum(self.params.values()) if self.params else None

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "kind": "ok", "id": self.id, "sha": self.sha,
                "config": self.config, "config_repo": self.config_repo, "params": self.params,
                "params_from": self.params_from,
                "gguf": [[g.quant, list(g.files), g.size_bytes] for g in self.gguf],
                "base_model": self.base_model, "gated": self.gated,
                "unread": [[u.part, u.reason] for u in self.unread]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HubOk:
        return cls(id=_text(data.get("id")), sha=_opt_str(data.get("sha")),
                   config=_config(data.get("config")),
                   config_repo=_opt_str(data.get("config_repo")),
                   params=_params(data.get("params")),
                   params_from=_opt_str(data.get("params_from")),
                   gguf=tuple(_gguf_file(g) for g in _list(data.get("gguf"))),
                   base_model=_opt_str(data.get("base_model")), gated=_flag(data.get("gated")),
                   unread=tuple(_unread(u) for u in _list(data.get("unread"))))


@dataclass(frozen=True)
class HubNotFound:
    """No such repo, or a private one (the Hub does not say which)."""

    suggestions: tuple[str, ...] = ()  # the Hub's ids near the missing one

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "kind": "not_found", "suggestions": list(self.suggestions)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HubNotFound:
        return cls(_strings(data.get("suggestions")))


@dataclass(frozen=True)
class HubGated:
    """The repo is gated and the request had no token with access."""

    with_token: bool

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "kind": "gated", "with_token": self.with_token}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HubGated:
        return cls(_flag(data.get("with_token")))


@dataclass(frozen=True)
class HubBadToken:
    """The Hub does not know the token given (401 "Invalid credentials")."""

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "kind": "bad_token"}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HubBadToken:
        return cls()


@dataclass(frozen=True)
class HubTooLarge:
    """A JSON file past the size limit; fits stopped reading it."""

    file: str
    limit: int

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "kind": "too_large", "file": self.file, "limit": self.limit}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HubTooLarge:
        return cls(_text(data.get("file")), _count(data.get("limit")))


@dataclass(frozen=True)
class HubBadConfig:
    """config.json could not be read as a config (``why``: not JSON, not an object, ...)."""

    why: str

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "kind": "bad_config", "why": self.why}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HubBadConfig:
        return cls(_text(data.get("why")))


HubRecord = HubOk | HubNotFound | HubGated | HubBadToken | HubTooLarge | HubBadConfig


def record_to_json(record: HubRecord) -> dict[str, Any]:
    return record.to_json()


def record_from_json(data: object) -> HubRecord | None:
    """The record ``data`` holds, or None when it is not one this release wrote."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None
    reader = _READERS.get(str(data.get("kind")))
    if reader is None:
        return None
    try:
        return reader(data)
    except _Unreadable:
        return None


# --- reading each kind back; every field is checked, since the JSON may come from anywhere ------


class _Unreadable(Exception):
    """A value that is not what this release writes."""


def _opt_str(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise _Unreadable


def _count(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise _Unreadable


def _flag(value: object) -> bool:
    if isinstance(value, bool):
        return value
    raise _Unreadable


def _strings(value: object) -> tuple[str, ...]:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise _Unreadable


def _list(value: object) -> list[Any]:
    if isinstance(value, list):
        return value
    raise _Unreadable


def _params(value: object) -> dict[str, int] | None:
    if value is None:
        return None
    if isinstance(value, dict):
        return {str(k): _count(v) for k, v in value.items()}
    raise _Unreadable


def _config(value: object) -> dict[str, Any] | None:
    if value is None or isinstance(value, dict):
        return value
    raise _Unreadable


def _gguf_file(item: object) -> GgufFile:
    quant, files, size = _triple(item)
    return GgufFile(_text(quant), _strings(files), None if size is None else _count(size))


def _unread(item: object) -> Unread:
    name, reason = _pair(item)
    part = next((p for p in _PARTS if p == name), None)
    if part is None:
        raise _Unreadable
    return Unread(part, _text(reason))


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    raise _Unreadable


def _pair(value: object) -> tuple[object, object]:
    items = _list(value)
    if len(items) != 2:
        raise _Unreadable
    return items[0], items[1]


def _triple(value: object) -> tuple[object, object, object]:
    items = _list(value)
    if len(items) != 3:
        raise _Unreadable
    return items[0], items[1], items[2]


_READERS: dict[str, Callable[[dict[str, Any]], HubRecord]] = {
    "ok": HubOk.from_json, "not_found": HubNotFound.from_json, "gated": HubGated.from_json,
    "bad_token": HubBadToken.from_json, "too_large": HubTooLarge.from_json,
    "bad_config": HubBadConfig.from_json,
}
