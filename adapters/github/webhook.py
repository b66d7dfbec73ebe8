"""One webhook delivery, checked: the HMAC-SHA256 signature, then the event, id and payload.

gidgethub's ``Event.from_http`` checks the signature, but falls back to the legacy SHA-1 header
when the SHA-256 one is absent; we require ``X-Hub-Signature-256`` first (GitHub always sends it)
so that a SHA-1 signature alone is refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gidgethub import BadRequest, ValidationFailure
from gidgethub.sansio import Event

_DELIVERY_ID = re.compile(r"[A-Za-z0-9-]{1,100}")
_EVENT = re.compile(r"[a-z_]{1,64}")
_CONTENT_TYPES = ("application/json", "application/x-www-form-urlencoded")


class DeliveryRefused(Exception):
    """A delivery that is not answered: ``status`` and one sentence for the response."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Delivery:
    event: str
    delivery_id: str
    data: Any


def parse_delivery(headers: Mapping[str, str], body: bytes, secret: str) -> Delivery:
    """The delivery, or DeliveryRefused: 401 unsigned or badly signed, 400 malformed, 415 for a
    content type GitHub's webhook settings do not offer. ``headers`` must match case-insensitively
    (aiohttp's request.headers does)."""
    if not headers.get("x-hub-signature-256"):
        raise DeliveryRefused(401, "The X-Hub-Signature-256 header is missing.")
    try:
        event = Event.from_http(headers, body, secret=secret)
    except ValidationFailure:
        raise DeliveryRefused(401, "The signature does not match the webhook secret.") from None
    except BadRequest:
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type in _CONTENT_TYPES:
            raise DeliveryRefused(400, "The payload is not valid JSON.") from None
        raise DeliveryRefused(415, "The content type must be application/json.") from None
    except RecursionError:  # json.loads on "[[[[..." nested past Python's limit
        raise DeliveryRefused(400, "The payload is nested too deeply.") from None
    except KeyError as missing:  # X-GitHub-Event or X-GitHub-Delivery
        raise DeliveryRefused(400, f"The {missing.args[0]} header is missing.") from None
    if not _EVENT.fullmatch(event.event):
        raise DeliveryRefused(400, "The X-GitHub-Event header is not an event name.")
    if not _DELIVERY_ID.fullmatch(event.delivery_id):
        raise DeliveryRefused(400, "The X-GitHub-Delivery header is not a delivery id.")
    return Delivery(event.event, event.delivery_id, event.data)
