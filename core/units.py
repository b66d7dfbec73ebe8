"""Token counts and byte sizes as people type them, and back again. Pure functions.

Token counts use binary suffixes: ``8k`` = 8,192 and ``1m`` = 1,048,576, because "8k context"
means 8,192 tokens. Byte sizes follow the unit: ``GB``/``MB``/``TB`` are decimal (10^9 ...),
``GiB``/``MiB``/``TiB`` are binary, and a bare ``G``/``M``/``T`` (as in ``24G``, ``a100-80g``,
``free -g`` or Docker) is binary too.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

from core.errors import UserError

MAX_TOKENS = 10 * 1024 * 1024  # "10m" tokens: the largest ctx an EstimateRequest accepts
MAX_BYTES = 1024**5  # 1 PiB: anything larger is a typo

_NUMBER = r"(?P<num>\d{1,3}(?:[_,]\d{3})+|\d+(?:\.\d*)?|\.\d+)"
_TOKENS = re.compile(_NUMBER + r"\s*(?P<suffix>[km]?)", re.ASCII | re.IGNORECASE)
_BYTES = re.compile(
    _NUMBER + r"\s*(?P<prefix>[kmgtp]?)(?P<binary>i?)(?P<b>b?)", re.ASCII | re.IGNORECASE
)
_PREFIX_POWER = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5}
_BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def quoted(text: str, limit: int = 40) -> str:
    """User text made safe to put in a message: single-quoted, one line, at most ``limit`` chars."""
    shown = "".join(ch if ch.isprintable() else "\ufffd" for ch in text)
    if len(shown) > limit:
        shown = shown[: limit - 1] + "…"
    return f"'{shown}'"


def _number(match: re.Match[str]) -> Decimal:
    return Decimal(match["num"].replace("_", "").replace(",", ""))


def parse_tokens(text: str, *, name: str = "token count", limit: int = MAX_TOKENS) -> int:
    """``4096``, ``8k``, ``128K``, ``1.5k``, ``1m``, ``8_192`` or ``8,192`` -> a positive int.

    ``name`` says what the number is, for error messages ("context length", "batch size").
    """
    value = text.strip()
    hint = "Write a whole number such as 4096, 8k (8,192) or 1m (1,048,576)."
    if not value:
        raise UserError(f"The {name} is missing.", hint)
    if value.startswith("-"):
        raise UserError(f"The {name} must be at least 1, not {quoted(value)}.", hint)
    match = _TOKENS.fullmatch(value)
    if match is None:
        raise UserError(f"Could not read {quoted(value)} as a {name}.", hint)
    number = _number(match) * 1024 ** {"": 0, "k": 1, "m": 2}[match["suffix"].lower()]
    if not match["suffix"] and number != number.to_integral_value():
        raise UserError(f"The {name} must be a whole number, not {quoted(value)}.", hint)
    if number > limit:
        raise UserError(f"The {name} can be at most {limit:,}, not {quoted(value)}.", hint)
    count = int(number.to_integral_value(rounding=ROUND_HALF_UP))
    if count < 1:
        raise UserError(f"The {name} must be at least 1, not {quoted(value)}.", hint)
    return count


def parse_bytes(text: str) -> int:
    """``24GB`` (decimal), ``24GiB`` / ``24G`` (binary), ``512MB``, ``1.5TB``, ``80 GiB`` -> bytes."""
    value = text.strip()
    hint = "Write a size with a unit such as 24GB, 24GiB or 512MB (GB = 10^9 bytes, G = GiB)."
    match = _BYTES.fullmatch(value)
    if match is None:
        raise UserError(f"Could not read {quoted(value)} as a memory size.", hint)
    prefix = match["prefix"].lower()
    if not prefix and not match["b"]:
        raise UserError(f"The memory size {quoted(value)} needs a unit.", hint)
    binary = bool(match["binary"]) or not match["b"]
    size = _number(match) * (1024 if binary else 1000) ** _PREFIX_POWER[prefix]
    if size > MAX_BYTES:
        raise UserError(f"The memory size {quoted(value)} is larger than 1 PiB.", hint)
    count = int(size.to_integral_value(rounding=ROUND_HALF_UP))
    if count < 1:
        raise UserError(f"The memory size must be more than zero, not {quoted(value)}.", hint)
    return count


def _trim(number: float, decimals: int) -> str:
    text = f"{number:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_bytes(n: int) -> str:
    """Bytes for people: ``13.5 GiB``, ``812 MiB``, ``1.25 GiB``, ``24 GiB``; negatives keep the sign."""
    sign, size = ("-" if n < 0 else ""), float(abs(n))
    power = 0
    while size >= 1024 and power < len(_BYTE_UNITS) - 1:
        size /= 1024
        power += 1
    decimals = 0 if size >= 100 or power == 0 else 1 if size >= 10 else 2
    if round(size, decimals) >= 1024 and power < len(_BYTE_UNITS) - 1:  # 1023.96 MiB -> 1 GiB
        size, power, decimals = size / 1024, power + 1, 2
    return f"{sign}{_trim(size, decimals)} {_BYTE_UNITS[power]}"


def format_tokens(n: int) -> str:
    """A token count with thousands separators: ``131,072``."""
    return f"{n:,}"


_SIZE_IN_NAME = re.compile(r"(?<![A-Za-z0-9.])(\d+(?:\.\d+)?)[bB](?![A-Za-z0-9])")


def size_in_name(repo_id: str) -> float | None:
    """Billions of parameters a repo's name states ('org/Cirrus-8B-Instruct' -> 8.0)."""
    match = _SIZE_IN_NAME.search(repo_id.split("/", 1)[-1])
    if match is None:
        return None
    billions = float(match[1])
    return billions if 0.01 <= billions <= 2000 else None
