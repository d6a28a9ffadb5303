"""Which addresses the bot may download a task's image from.

An image URL arrives in task data, which the bot does not write: a hostile or misconfigured proxy
could point it at the bot's own network (a metadata service, an admin page on localhost). So only
http(s) is fetched, and an address that is loopback, private, link-local or otherwise not public is
refused, unless the proxy itself lives there (a self-hosted proxy serves its own images) or an
admin listed the host in ``[proxy] media_hosts``. When ``media_hosts`` is set, only those hosts
(and the proxy's own) are fetched at all.
"""

from __future__ import annotations

import asyncio
import fnmatch
import ipaddress
import socket
from collections.abc import Sequence

import httpx

from bot.core.errors import ProxyBadResponse


class MediaRefused(ProxyBadResponse):
    """The image URL points somewhere the bot will not fetch from."""


class MediaGuard:
    def __init__(self, proxy_base_url: str, media_hosts: Sequence[str] = ()) -> None:
        self._proxy_host = (httpx.URL(proxy_base_url).host or "").lower()
        self._listed = [pattern.lower() for pattern in media_hosts]
        self._proxy_addresses: set[ipaddress._BaseAddress] | None = None

    def _is_listed(self, host: str) -> bool:
        return any(fnmatch.fnmatch(host, pattern) for pattern in self._listed)

    async def check(self, url: str) -> None:
        """Raise :class:`MediaRefused` unless ``url`` may be fetched; resolves its host."""
        try:
            target = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError):
            raise MediaRefused("image URL is not a URL") from None
        if target.scheme not in ("http", "https") or not target.host:
            raise MediaRefused(f"image URL scheme {target.scheme!r} is not http(s)")
        host = target.host.lower()
        if host == self._proxy_host:
            return  # the proxy's own images, wherever it lives
        if self._listed and not self._is_listed(host):
            raise MediaRefused(f"image host {host} is not in [proxy] media_hosts")
        if self._is_listed(host):
            return  # an admin named it: private addresses allowed
        for address in await _resolve(host, target.port or (443 if target.scheme == "https" else 80)):
            if not address.is_global and address not in await self._proxy_ips():
                raise MediaRefused(f"image host {host} resolves to a non-public address ({address})")

    def check_peer(self, peer: str | None) -> None:
        """After connecting: the address actually reached must be allowed too (DNS may change)."""
        if peer is None:
            return
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return
        if not address.is_global and (self._proxy_addresses is None or address not in self._proxy_addresses):
            raise MediaRefused(f"image download reached a non-public address ({address})")

    async def _proxy_ips(self) -> set[ipaddress._BaseAddress]:
        if self._proxy_addresses is None:
            try:
                self._proxy_addresses = set(await _resolve(self._proxy_host, 80)) if self._proxy_host else set()
            except MediaRefused:
                return set()  # not cached: the proxy's name may resolve later
        return self._proxy_addresses

    def allow_peer_of_listed(self, host: str) -> bool:
        return host.lower() == self._proxy_host or self._is_listed(host.lower())


async def _resolve(host: str, port: int) -> list[ipaddress._BaseAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise MediaRefused(f"image host {host} does not resolve ({exc.strerror or exc})") from None
    return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
