"""Where a webhook may be sent: never to this host or the private network behind it.

The check runs on the addresses a name resolves to, at creation and again at every delivery,
and delivery connects to the very addresses that passed (see `CheckedResolver`), so a name that
resolves to a public address when checked and a private one a moment later (DNS rebinding)
reaches nothing internal.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

MAX_URL_LENGTH = 2000
RESOLVE_SECONDS = 5.0


class TargetRefused(Exception):
    """The url is malformed, does not resolve, or leads to an address that is not allowed."""


def is_allowed_address(address: str) -> bool:
    """Public unicast addresses only: not loopback, private, link-local, unspecified,
    multicast or reserved (an IPv4 address mapped into IPv6 counts as itself)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_unspecified
        or ip.is_multicast
        or ip.is_reserved
    )


def host_and_port(url: str) -> tuple[str, int]:
    """The url's host and port, or TargetRefused for anything but an absolute http(s) url."""
    if len(url) > MAX_URL_LENGTH:
        raise TargetRefused(f"url is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(f"url is not valid: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused("url must be an absolute http or https url")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("url must not carry credentials")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


async def check_url(url: str, *, allow_private: bool) -> None:
    """Refuse a url whose host is, or resolves to, an address webhooks may not reach."""
    host, port = host_and_port(url)
    if allow_private:
        return
    for address in await _addresses(host, port):
        if not is_allowed_address(address):
            raise TargetRefused(f"url leads to {address}, which is not a public address")


async def _addresses(host: str, port: int) -> list[str]:
    try:
        ipaddress.ip_address(host)
        return [host]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_SECONDS):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError):
        raise TargetRefused(f"url's host {host} does not resolve") from None
    return sorted({str(info[4][0]) for info in infos})


class CheckedResolver(AbstractResolver):
    """Resolves as usual, then keeps only allowed addresses; aiohttp connects to what this
    returns, so the checked address is the connected one. (A literal IP in a url never reaches
    a resolver: `check_url` runs before every delivery for that case.)"""

    def __init__(self, allow_private: bool) -> None:
        self._resolver = DefaultResolver()
        self._allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._resolver.resolve(host, port, family)
        allowed = [r for r in found if self._allow_private or is_allowed_address(r["host"])]
        if not allowed:
            # aiohttp keeps only an OSError's errno and strerror when it wraps it.
            raise OSError(socket.EAI_NONAME, f"{host} resolves to no public address")
        return allowed

    async def close(self) -> None:
        await self._resolver.close()


def describe(exc: BaseException) -> str:
    """A short reason for logs and the endpoint's record, never a url's secrets."""
    return (str(exc) or type(exc).__name__)[:300]
