"""Which webhook URLs the tracker may call: no private, loopback or link-local targets by default."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit


class TargetRefused(ValueError):
    """The URL is malformed or points somewhere the registry must not call."""


async def check_target(url: str, *, allow_private: bool) -> None:
    """Resolve the URL's host and refuse internal addresses (checked again before each delivery)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused("the URL must be http(s)://host/…")
    if parts.username or parts.password:
        raise TargetRefused("the URL must not carry credentials")
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except OSError:
        raise TargetRefused(f"cannot resolve {parts.hostname!r}") from None
    if allow_private:
        return
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        internal = (
            address.is_private
            or address.is_loopback
            or address.is_link_local
            or address.is_reserved
            or address.is_multicast
            or address.is_unspecified
        )
        if internal:
            raise TargetRefused(f"{parts.hostname!r} resolves to an internal address ({address})")
