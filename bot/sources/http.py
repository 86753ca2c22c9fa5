"""Fetching feed bytes over HTTP: conditional GET, caps, timeouts, SSRF guard.

Everything that can go wrong comes out of ``HttpFetcher.fetch`` as a
``FetchError`` with a one-line message a moderator can read in ``status``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from types import TracebackType
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from bot.errors import FetchError

if TYPE_CHECKING:
    from bot.config import Config

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_RETRY_LATER = frozenset({429, 503})
_CHUNK = 64 * 1024
_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/xml;q=0.9, "
    "text/xml;q=0.9, */*;q=0.5"
)
# NAT64 embeds an IPv4 address in the low 32 bits: 64:ff9b::10.0.0.1 is 10.0.0.1.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


@dataclass(frozen=True, slots=True)
class FetchResult:
    status: int  # 200 (or another 2xx) or 304
    body: bytes | None  # None on 304
    etag: str | None
    last_modified: str | None
    url: str  # final URL after redirects
    content_type: str | None


# ------------------------------------------------------------------ SSRF guard


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, NAT64), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_forbidden_address(ip: IPAddress) -> bool:
    """True for addresses a feed URL must not reach: anything not on the public internet.

    Loopback, private (10/8, 172.16/12, 192.168/16, fc00::/7), link-local
    (169.254/16 with cloud metadata, fe80::/10), CGNAT, reserved, multicast,
    unspecified, and IPv6 forms that wrap such an IPv4 address.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None and is_forbidden_address(inner):
            return True
    return (
        not ip.is_global
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def ip_literal(host: str | None) -> IPAddress | None:
    """The address when ``host`` is an IP literal (brackets and zone id allowed)."""
    if not host:
        return None
    text = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


class BlockedAddressError(OSError):
    """The resolver refused every address of a host (private/loopback/...)."""

    def __init__(self, host: str, addresses: list[str]) -> None:
        shown = ", ".join(addresses[:3])
        super().__init__(f"refused: {host} resolves only to non-public addresses ({shown})")
        self.host = host
        self.addresses = addresses


class GuardedResolver(AbstractResolver):
    """Wraps a resolver and drops non-public addresses from its answers.

    Checking after resolution (not on the host name) is what stops
    "internal.example.com -> 10.0.0.5" and DNS-rebinding names. aiohttp skips
    resolvers for IP-literal hosts, so ``HttpFetcher`` checks those itself.
    Raises an OSError subclass: aiohttp wraps OSErrors from resolvers in
    ClientConnectorDNSError, which ``fetch`` turns into a FetchError.
    """

    def __init__(self, inner: AbstractResolver, *, allow_private: bool = False) -> None:
        self._inner = inner
        self._allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if self._allow_private:
            return results
        allowed = [r for r in results if not _result_forbidden(r)]
        if not allowed:
            raise BlockedAddressError(host, [str(r.get("host")) for r in results])
        return allowed

    async def close(self) -> None:
        await self._inner.close()


def _result_forbidden(result: ResolveResult) -> bool:
    ip = ip_literal(str(result.get("host", "")))
    return ip is None or is_forbidden_address(ip)  # unparseable: refuse, don't guess


# ---------------------------------------------------------------------- helpers


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: "120" or an HTTP date. None when absent or garbage."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(min(int(text[:9]), 7 * 86400))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return max(0.0, (when - now).total_seconds())


def _status_text(status: int, reason: str | None) -> str:
    if not reason:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = ""
    return f"HTTP {status} {reason}".rstrip()


def _format_seconds(seconds: float) -> str:
    return f"{seconds:g}s"


def _check_url(url: URL, allow_private: bool) -> None:
    """Scheme and IP-literal checks, run on the first URL and on every redirect hop."""
    if url.scheme not in ("http", "https"):
        raise FetchError(f"refused URL {str(url)[:200]!r}: only http and https are allowed")
    if not url.host:
        raise FetchError(f"invalid URL {str(url)[:200]!r}: no host")
    ip = ip_literal(url.host)
    if ip is not None and not allow_private and is_forbidden_address(ip):
        raise FetchError(f"refused to fetch {url.host}: not a public address")


def _parse_url(url: str) -> URL:
    try:
        parsed = URL(url.strip())
    except (ValueError, TypeError) as exc:
        raise FetchError(f"invalid URL {url[:200]!r}: {exc}") from None
    if parsed.scheme and parsed.scheme not in ("http", "https"):
        _check_url(parsed, allow_private=False)  # raises the scheme error
    if not parsed.is_absolute():
        raise FetchError(f"invalid URL {url[:200]!r}: not absolute")
    return parsed


def _connect_error_message(exc: aiohttp.ClientConnectorError) -> str:
    host = f"{exc.host}:{exc.port}"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        inner = exc.os_error
        if isinstance(inner, BlockedAddressError):
            return str(inner)
        return f"could not resolve host {exc.host}"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return f"TLS certificate error for {exc.host}: {exc.certificate_error}"
    if isinstance(exc, aiohttp.ClientSSLError):
        return f"TLS error connecting to {host}"
    reason = exc.os_error.strerror or str(exc.os_error) or type(exc.os_error).__name__
    return f"could not connect to {host}: {reason}"


# ---------------------------------------------------------------------- fetcher


class HttpFetcher:
    """One aiohttp session for every feed, created lazily inside the running loop."""

    def __init__(
        self,
        *,
        timeout_s: float = 20,
        max_body_bytes: int = 10 * 1024 * 1024,
        user_agent: str = "showbot/0.1",
        allow_private_addresses: bool = False,
        max_redirects: int = 5,
    ) -> None:
        self._timeout_s = timeout_s
        self._max_body = max_body_bytes
        self._user_agent = user_agent
        self._allow_private = allow_private_addresses
        self._max_redirects = max_redirects
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> HttpFetcher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()  # closes the connector, which closes our resolver

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            resolver = GuardedResolver(
                aiohttp.DefaultResolver(), allow_private=self._allow_private
            )
            connector = aiohttp.TCPConnector(resolver=resolver, limit_per_host=4)
            self._session = aiohttp.ClientSession(
                connector=connector,
                connector_owner=True,
                headers={"User-Agent": self._user_agent, "Accept": _ACCEPT},
                # The overall deadline is asyncio.timeout in fetch(); this only
                # bounds connecting, so one dead address cannot eat it all.
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._timeout_s),
                auto_decompress=True,
                trust_env=False,
            )
        return self._session

    async def fetch(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None
    ) -> FetchResult:
        """GET ``url`` (conditionally). Raises FetchError, and only FetchError."""
        try:
            async with asyncio.timeout(self._timeout_s):
                return await self._fetch(url, etag, last_modified)
        except FetchError:
            raise
        except TimeoutError:  # asyncio.TimeoutError is TimeoutError on 3.11
            raise FetchError(f"timed out after {_format_seconds(self._timeout_s)}") from None
        except aiohttp.ClientConnectorError as exc:
            raise FetchError(_connect_error_message(exc)) from None
        except aiohttp.ClientPayloadError as exc:
            raise FetchError(f"connection broke while reading the body: {exc}") from None
        except aiohttp.ServerDisconnectedError:
            raise FetchError("server disconnected before answering") from None
        except aiohttp.InvalidURL as exc:
            raise FetchError(f"invalid URL: {exc}") from None
        except aiohttp.ClientResponseError as exc:
            raise FetchError(f"bad HTTP response: {exc.message}") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise FetchError(f"request failed: {type(exc).__name__}: {exc}") from None
        except Exception as exc:  # a bug or an aiohttp surprise: still one error type out
            log.exception("unexpected error fetching %s", url)
            raise FetchError(f"unexpected error: {type(exc).__name__}: {exc}") from None

    async def _fetch(self, url: str, etag: str | None, last_modified: str | None) -> FetchResult:
        current = _parse_url(url)
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        session = self._get_session()
        for _hop in range(self._max_redirects + 1):
            _check_url(current, self._allow_private)
            async with session.get(current, headers=headers, allow_redirects=False) as resp:
                if resp.status in _REDIRECTS and "Location" in resp.headers:
                    current = self._next_hop(current, resp.headers["Location"])
                    continue
                return await self._result(resp, current, etag, last_modified)
        raise FetchError(f"too many redirects (more than {self._max_redirects})")

    @staticmethod
    def _next_hop(current: URL, location: str) -> URL:
        try:
            return current.join(URL(location))
        except (ValueError, TypeError):
            raise FetchError(f"redirect to an invalid URL: {location[:200]!r}") from None

    async def _result(
        self,
        resp: aiohttp.ClientResponse,
        url: URL,
        etag: str | None,
        last_modified: str | None,
    ) -> FetchResult:
        status = resp.status
        new_etag = resp.headers.get("ETag")
        new_modified = resp.headers.get("Last-Modified")
        if status == 304:
            # Keep the validators we sent when the server does not repeat them.
            return FetchResult(304, None, new_etag or etag, new_modified or last_modified,
                               str(url), resp.headers.get("Content-Type"))
        if status in _RETRY_LATER:
            retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            hint = f" (retry after {retry_after:g}s)" if retry_after is not None else ""
            raise FetchError(_status_text(status, resp.reason) + hint, retry_after=retry_after)
        if not 200 <= status < 300:
            raise FetchError(_status_text(status, resp.reason))
        body = await self._read_capped(resp)
        return FetchResult(status, body, new_etag, new_modified, str(url),
                           resp.headers.get("Content-Type"))

    async def _read_capped(self, resp: aiohttp.ClientResponse) -> bytes:
        """The decompressed body, refusing anything past max_body_bytes.

        Content-Length is only a hint (absent when chunked, the compressed
        size when gzipped), so the cap is enforced while streaming too.
        """
        cap = self._max_body
        declared = resp.content_length
        if declared is not None and declared > cap:
            resp.close()  # do not drain a body we refuse
            raise FetchError(
                f"response too large: Content-Length {declared} bytes exceeds the "
                f"{cap}-byte limit"
            )
        body = bytearray()
        async for chunk in resp.content.iter_chunked(_CHUNK):
            body += chunk
            if len(body) > cap:
                resp.close()
                raise FetchError(f"response too large: body exceeds the {cap}-byte limit")
        return bytes(body)


def fetcher_from_config(config: "Config") -> HttpFetcher:
    """An HttpFetcher with the network settings of a ``bot.config.Config``."""
    return HttpFetcher(
        timeout_s=config.timeout_s,
        max_body_bytes=config.max_body_bytes,
        user_agent=config.user_agent,
        allow_private_addresses=config.allow_private_addresses,
    )
