"""Who is asking over HTTP: the address rate limits are kept by.

Behind an Ingress or a load balancer every connection comes from the proxy, so keying limits by
the peer address would put all API users in one bucket. The proxy says who it is forwarding for
in ``X-Forwarded-For`` (each hop appends the address it received the request from), but anyone
can send that header, so it is believed only from the proxies named in FITS_TRUSTED_PROXIES:
reading the header from the right, the first address that is not a trusted proxy is the client.
Without trusted proxies the header is ignored.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> tuple[Network, ...]:
    """``"10.0.0.0/8, 127.0.0.1"`` -> networks; raises ValueError naming the bad entry."""
    out: list[Network] = []
    for part in text.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            out.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(f"{part[:60]!r} is not an IP address or network such as "
                             "10.0.0.0/8") from None
    return tuple(out)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(address: str | None, proxies: Iterable[Network]) -> bool:
    ip = _address(address or "")
    return ip is not None and any(ip in net for net in proxies)


def client_address(peer: str | None, forwarded_for: list[str],
                   proxies: tuple[Network, ...]) -> str:
    """The client's address: ``peer`` unless it is a trusted proxy, then the right-most
    address of X-Forwarded-For (every header line, in order) that is not one."""
    if not proxies or not _trusted(peer, proxies):
        return peer or "unknown"
    hops = [hop.strip() for line in forwarded_for for hop in line.split(",") if hop.strip()]
    for hop in reversed(hops):
        if _address(hop) is None:
            break  # garbage: do not believe anything left of it
        if not _trusted(hop, proxies):
            return str(_address(hop))
    return peer or "unknown"
