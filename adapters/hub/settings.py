"""Where the Hub is and how patient to be: ``HubSettings``, and the one reading of its
environment variables, shared by the CLI (``HubSettings.from_env()``) and the service (bot/settings
hands it the values pydantic-settings read from the environment and `.env`), so that both accept
exactly the same values:

| variable | value |
| --- | --- |
| HF_ENDPOINT | an http(s) URL; empty: https://huggingface.co |
| HF_TOKEN, else HUGGING_FACE_HUB_TOKEN | the first that is not blank; none: no token |
| HF_HUB_OFFLINE | 1/true/t/yes/y/on or 0/false/f/no/n/off (any case); empty: off |
| FITS_CACHE_DIR | a directory; empty: the cache stays in the process |
| FITS_HUB_DEADLINE_S | seconds from 0.1 to 60; empty: 5 |

Values are stripped of surrounding blanks; anything else is one UserError naming the variable.
Plain dataclasses only: the CLI starts without pydantic-settings.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import urlsplit

from core.errors import UserError
from core.hub_protocol import DEFAULT_ENDPOINT, MAX_CONFIG_BYTES, HubSite, public_url

_ON = ("1", "true", "t", "yes", "y", "on")
_OFF = ("0", "false", "f", "no", "n", "off")
DEADLINE_DEFAULT_S = 5.0
DEADLINE_BOUNDS_S = (0.1, 60.0)
ENV_NAMES = ("HF_ENDPOINT", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE",
             "FITS_CACHE_DIR", "FITS_HUB_DEADLINE_S")


@dataclass(frozen=True)
class HubSettings:
    """Where the Hub is and how patient to be. The token never appears in repr or messages."""

    endpoint: str = DEFAULT_ENDPOINT
    token: str | None = field(default=None, repr=False)
    offline: bool = False
    cache_dir: str | None = None
    deadline_s: float = DEADLINE_DEFAULT_S  # one whole resolve (every request, retries included)
    search_deadline_s: float = 2.0  # autocomplete answers within Discord's 3 s
    ttl_s: float = 6 * 3600.0  # a model read in full
    negative_ttl_s: float = 300.0  # not found, gated, unreadable, partly read: may change soon
    search_ttl_s: float = 3600.0
    max_config_bytes: int = MAX_CONFIG_BYTES
    attempts: int = 3  # tries per request on 429/5xx
    backoff_s: float = 0.2

    def __post_init__(self) -> None:
        object.__setattr__(self, "endpoint", self.endpoint.strip().rstrip("/"))
        if urlsplit(self.endpoint).scheme not in ("http", "https"):
            raise UserError(f"The Hub endpoint '{public_url(self.endpoint)[:80]}' is not an "
                            "http(s) URL.", "Set HF_ENDPOINT to a URL such as https://huggingface.co.")

    @cached_property
    def site(self) -> HubSite:
        """What the answer's sentences need to know of these settings (made once: a cached
        resolve takes microseconds)."""
        return HubSite(self.endpoint, has_token=bool(self.token))

    @classmethod
    def from_env(cls, environ: Mapping[str, str | None] | None = None) -> HubSettings:
        """The settings the variables in ``environ`` (default: the process's environment) give;
        a missing variable reads as an empty one. Raises UserError for a value it cannot take."""
        env: Mapping[str, str | None] = os.environ if environ is None else environ

        def text(name: str) -> str | None:
            return (env.get(name) or "").strip() or None

        return cls(endpoint=text("HF_ENDPOINT") or DEFAULT_ENDPOINT,
                   token=text("HF_TOKEN") or text("HUGGING_FACE_HUB_TOKEN"),
                   offline=_flag("HF_HUB_OFFLINE", text("HF_HUB_OFFLINE")),
                   cache_dir=text("FITS_CACHE_DIR"),
                   deadline_s=_seconds("FITS_HUB_DEADLINE_S", text("FITS_HUB_DEADLINE_S")))


def _flag(name: str, value: str | None) -> bool:
    if value is None or value.lower() in _OFF:
        return False
    if value.lower() in _ON:
        return True
    raise UserError(f"{name}={value[:20]!r} is neither on nor off.",
                    f"Set {name} to 1 (or true, yes, on) or 0 (or false, no, off), or unset it.")


def _seconds(name: str, value: str | None) -> float:
    if value is None:
        return DEADLINE_DEFAULT_S
    low, high = DEADLINE_BOUNDS_S
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not low <= seconds <= high:  # NaN and infinities fail too
        raise UserError(f"{name}={value[:20]!r} is not a number of seconds from {low:g} to "
                        f"{high:g}.", f"Set {name} to seconds, such as 5, or unset it for the "
                        f"default ({DEADLINE_DEFAULT_S:g} s).")
    return seconds
