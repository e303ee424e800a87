"""Who is calling, by network address: the peer, or the client a trusted proxy names.

Behind Envoy (and for the web app's calls) the gRPC peer is the proxy, so
the client is read from ``x-forwarded-for``: walking it from the right, the
first address that is not itself a trusted proxy. A peer that is not trusted
is the client, whatever it claims.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence
from typing import Any

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@functools.lru_cache(maxsize=16)
def _networks(cidrs: tuple[str, ...]) -> tuple[_Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def _parse(text: str) -> _Address | None:
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


def peer_address(peer: str) -> str:
    """The address of a gRPC peer string ("ipv4:1.2.3.4:5", "ipv6:[::1]:5", "unix:/path")."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rsplit(":", 1)[0]
    if kind == "ipv6":
        return rest.rsplit(":", 1)[0].strip("[]")
    return kind or "unknown"  # a Unix socket: local, like loopback


def client_address(peer: str, metadata: Any, trusted_proxies: Sequence[str]) -> str:
    """The calling client's address (text), given the call's peer and metadata."""
    networks = _networks(tuple(trusted_proxies))

    def trusted(text: str) -> bool:
        address = _parse(text)
        if address is None:
            return text == "unix"
        return any(address in network for network in networks)

    address = peer_address(peer)
    if not trusted(address):
        return address
    forwarded = [v for k, v in metadata or () if k == "x-forwarded-for" and isinstance(v, str)]
    hops = [hop.strip() for value in forwarded for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        parsed = _parse(hop)
        if parsed is None:
            return address  # garbage from the client side: keep the proxy's own view
        if not trusted(hop):
            return str(parsed)
    return str(_parse(hops[0])) if hops else address
