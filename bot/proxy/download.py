"""Downloading a task's image: through aiohttp (which discord.py brings; about a quarter of httpx's
CPU per download), only from addresses :class:`MediaGuard` allows, within a size cap, with the proxy's
secret sent only to the proxy's own origin."""

from __future__ import annotations

import urllib.request
from typing import Any

import aiohttp
import httpx

from bot.core.config import ProxySettings
from bot.core.errors import ImageTooLarge, ProxyBadResponse, ProxyTimeout, ProxyUnreachable
from bot.proxy.media_guard import MediaGuard

# Image downloads at once (connections of the download session); the others wait their turn.
DOWNLOAD_CONCURRENCY = 8
IMAGE_CHUNK = 64 * 1024


class ImageDownloader:
    def __init__(self, settings: ProxySettings, auth: dict[str, str]) -> None:
        self._settings = settings
        self._auth = auth
        self._origin = httpx.URL(settings.base_url).copy_with(path="/", query=None)
        self._media = MediaGuard(settings.base_url, settings.media_hosts)
        # Made on first use, inside the running loop.
        self._images: aiohttp.ClientSession | None = None
        self._image_proxies: dict[str, tuple[str, aiohttp.BasicAuth | None]] = {}

    async def aclose(self) -> None:
        if self._images is not None:
            await self._images.close()
            self._images = None

    def _image_session(self) -> aiohttp.ClientSession:
        if self._images is None or self._images.closed:
            timeout_s = self._settings.timeout_s
            self._images = aiohttp.ClientSession(
                # Per step, like httpx's: connecting, then each read of the body.
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=min(timeout_s, 10.0), sock_read=timeout_s),
                connector=aiohttp.TCPConnector(limit=DOWNLOAD_CONCURRENCY),
            )
            self._image_proxies = _environment_proxies()
        return self._images

    def _image_proxy(self, target: httpx.URL) -> dict[str, Any]:
        """``proxy``/``proxy_auth`` for a download when HTTP(S)_PROXY says so (NO_PROXY honoured),
        as httpx's ``trust_env`` did. Read once with the session: aiohttp's own ``trust_env``
        looks them (and ~/.netrc) up again in a worker thread for every request."""
        found = self._image_proxies.get(target.scheme)
        if found is None or urllib.request.proxy_bypass(target.host):
            return {}
        return {"proxy": found[0], "proxy_auth": found[1]}

    async def download(self, url: str, *, max_bytes: int) -> tuple[bytes, str | None]:
        """Fetch a task's image (the proxy gave us the URL). Returns bytes and content type.

        Capped at ``max_bytes`` so a hostile or broken server cannot exhaust memory, and only from
        addresses :class:`MediaGuard` allows (raises its ``MediaRefused`` otherwise).
        """
        await self._media.check(url)
        # CDN and gateway links are fetched as given; the secret goes only to the proxy's origin.
        target = httpx.URL(url)
        same_origin = (target.scheme, target.host, target.port) == (
            self._origin.scheme,
            self._origin.host,
            self._origin.port,
        )
        try:
            session = self._image_session()
            async with session.get(
                url, headers=self._auth if same_origin else None, allow_redirects=False, **self._image_proxy(target)
            ) as response:
                if not self._media.allow_peer_of_listed(target.host):
                    self._media.check_peer(_image_peer(response))
                if response.status != 200:
                    raise ProxyBadResponse(f"GET image: HTTP {response.status}")
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > max_bytes:
                    raise ImageTooLarge(f"image is {declared} bytes, cap {max_bytes}")
                chunks, size = [], 0
                async for chunk in response.content.iter_chunked(IMAGE_CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise ImageTooLarge(f"image over the cap of {max_bytes} bytes")
                    chunks.append(chunk)
                return b"".join(chunks), response.headers.get("content-type")
        except TimeoutError:
            raise ProxyTimeout("GET image: timed out") from None
        except (aiohttp.ClientError, ValueError) as exc:  # ValueError: a URL aiohttp cannot use
            raise ProxyUnreachable(f"GET image: {type(exc).__name__}") from None


def _environment_proxies() -> dict[str, tuple[str, aiohttp.BasicAuth | None]]:
    """The http/https proxies of the environment, each without its credentials and with them."""
    proxies = {}
    for scheme, address in urllib.request.getproxies().items():
        if scheme not in ("http", "https"):
            continue
        url = httpx.URL(address)
        auth = aiohttp.BasicAuth(url.username, url.password or "") if url.username else None
        proxies[scheme] = (str(url.copy_with(username=None, password=None)), auth)
    return proxies


def _image_peer(response: aiohttp.ClientResponse) -> str | None:
    """The address an image response came from (None once aiohttp has let the connection go,
    which it does at once for an empty body)."""
    connection = response.connection
    transport = connection.transport if connection is not None else None
    address = transport.get_extra_info("peername") if transport is not None else None
    return str(address[0]) if address else None
