"""Which webhook URLs the tracker may call, and the one address it then connects to.

A URL is resolved once per attempt, every address is vetted, and the connection goes to the
vetted address with the URL's host kept for ``Host`` and TLS (SNI and certificate name): a
name that resolves differently the second time (DNS rebinding) cannot steer the request. Only
globally routable addresses pass (not private, loopback, link-local, shared 100.64/10, or
reserved ranges), including IPv4 hidden inside IPv6 forms (mapped, 6to4, Teredo, NAT64); and IPv6
ranges Python's ``is_global`` still calls global but nobody should route to: NAT64 local-use,
site-local, IPv4-compatible, IPv4-translated, documentation (3fff::/20) and SRv6 (5f00::/16).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit, urlunsplit

Resolver = Callable[[str, int], Awaitable[list[str]]]
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NEVER_PUBLIC = tuple(
    ipaddress.ip_network(net)
    for net in (
        "64:ff9b:1::/48",  # NAT64 local-use (RFC 8215): translates to whatever the local network holds
        "fec0::/10",  # site-local (deprecated by RFC 3879, still routed on some networks)
        "::/96",  # IPv4-compatible (deprecated by RFC 4291): ::10.0.0.1 reaches 10.0.0.1 on some stacks
        "::ffff:0:0:0/96",  # IPv4-translated (SIIT, RFC 2765)
        "3fff::/20",  # documentation (RFC 9637): never routed on the internet
        "5f00::/16",  # SRv6 SIDs (RFC 9602): segment routing inside one operator's network
    )
)


class TargetRefused(ValueError):
    """The URL is malformed or points somewhere the registry must not call."""


class PrivateTarget(TargetRefused):
    """The URL's host has an address that is not public: refused unless private targets are allowed."""


@dataclass(frozen=True)
class Target:
    """Where one attempt connects: the URL with the vetted address, and the name it stands for."""

    url: str  # the subscription URL with its host replaced by the vetted address
    host_header: str  # the original host[:port]
    hostname: str  # for TLS: SNI and the certificate's name


async def system_resolver(host: str, port: int, *, timeout: float = 2.0) -> list[str]:
    """Addresses of ``host`` from the system resolver, within ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout)
    except (OSError, TimeoutError):
        raise TargetRefused(f"cannot resolve {host!r}") from None
    return [str(info[4][0]) for info in infos]


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether ``address`` is globally routable, looking inside IPv6 forms that carry an IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address):
        if any(address in network for network in _NEVER_PUBLIC):
            return False
        embedded: list[ipaddress.IPv4Address] = []
        if address.ipv4_mapped:
            embedded.append(address.ipv4_mapped)
        if address.sixtofour:
            embedded.append(address.sixtofour)
        if address.teredo:
            embedded.extend(address.teredo)
        if address in _NAT64:
            embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if embedded:
            return all(is_public(inner) for inner in embedded)
    return address.is_global and not address.is_multicast


def _parts(url: str) -> tuple[SplitResult, str, int]:
    """The URL's parts, host and port, or :class:`TargetRefused` when it is no plain http(s) URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused("the URL must be http(s)://host/…")
    if parts.username or parts.password:
        raise TargetRefused("the URL must not carry credentials")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise TargetRefused("the URL's port is not a number in range") from None
    return parts, parts.hostname, port


async def vet(url: str, *, allow_private: bool, resolver: Resolver) -> Target:
    """Resolve ``url``'s host once, refuse it unless every address is public, and pin the first."""
    parts, hostname, port = _parts(url)
    addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in await resolver(hostname, port)]
    if not addresses:
        raise TargetRefused(f"{hostname!r} has no address")
    if not allow_private and not all(is_public(a) for a in addresses):
        raise PrivateTarget(f"{hostname!r} resolves to an address that is not public")
    pinned = addresses[0]
    literal = f"[{pinned}]" if pinned.version == 6 else str(pinned)
    pinned_url = urlunsplit((parts.scheme, f"{literal}:{port}", parts.path or "/", parts.query, ""))
    return Target(pinned_url, host_header=parts.netloc.rsplit("@", 1)[-1], hostname=hostname)


async def check_target(url: str, *, allow_private: bool, resolver: Resolver | None = None) -> None:
    """Refuse a URL at subscription time (it is vetted again before every attempt)."""
    await vet(url, allow_private=allow_private, resolver=resolver or system_resolver)
