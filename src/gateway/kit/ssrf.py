"""The SSRF guard: a merchant's webhook URL must not point the gateway at its own network."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

Resolver = Callable[[str, int], Awaitable[list[str]]]

# Cloud metadata services answer on these even where they are not in a private range.
_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


class UnsafeUrl(ValueError):
    pass


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast and ip not in _METADATA


async def check_url(url: str, resolver: Resolver = system_resolver) -> None:
    """Raises UnsafeUrl unless every address the host resolves to is public."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeUrl("the URL must be http(s) with a host")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = await resolver(parts.hostname, port)
    except OSError as e:
        raise UnsafeUrl(f"the host {parts.hostname!r} does not resolve") from e
    if not addresses:
        raise UnsafeUrl(f"the host {parts.hostname!r} does not resolve")
    for address in addresses:
        if not is_public(address):
            raise UnsafeUrl(f"the host {parts.hostname!r} resolves to a non-public address ({address})")
