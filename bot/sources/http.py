"""Fetching over HTTP: conditional GET, caps, timeouts, SSRF guard.

Two calls share one deadline, one capped read and one error mapping:
``HttpFetcher.fetch`` (a feed or snapshot URL: redirects, validators) and
``HttpFetcher.get_api`` (one GET of an HTTP API: query parameters, request
headers such as a bearer token, no redirects). Everything that can go wrong
comes out of either as a ``FetchError`` with a one-line message a moderator
can read in ``status``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import traceback
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from types import TracebackType
from typing import TYPE_CHECKING, Awaitable, Mapping, Sequence, TypeVar

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from multidict import CIMultiDict
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
_REDACTED = "***"

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class FetchResult:
    status: int  # 200 (or another 2xx) or 304
    body: bytes | None  # None on 304
    etag: str | None
    last_modified: str | None
    url: str  # final URL after redirects
    content_type: str | None


@dataclass(frozen=True, slots=True)
class ApiResponse:
    """A 2xx answer to ``HttpFetcher.get_api``, its body read whole within the cap."""

    status: int
    headers: Mapping[str, str]  # case-insensitive: a copy of the response's
    body: bytes


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """The answer to ``HttpFetcher.head``: a status and where a redirect points, no body."""

    status: int
    location: str | None


class HttpStatusError(FetchError):
    """``get_api`` got an answer that is not 2xx (3xx included: not followed).

    The message is generic ("HTTP 503 Service Unavailable"); ``status``,
    ``headers`` and the capped ``body`` are there for an API client that can
    say more (a problem-detail body, its own rate-limit headers).
    ``retry_after`` is the Retry-After of a 429 or 5xx, in seconds.
    """

    def __init__(
        self, message: str, *, status: int, headers: Mapping[str, str], body: bytes,
        retry_after: float | None,
    ) -> None:
        super().__init__(message, retry_after=retry_after)
        self.status = status
        self.headers = headers
        self.body = body


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


def _scrub(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, _REDACTED)
    return text


def _redacted(exc: FetchError, secrets: Sequence[str]) -> FetchError:
    """``exc`` with ``secrets`` blanked out of its message. A server can echo
    a request header in its reason phrase or a malformed header line, and
    aiohttp quotes those: the message must not carry them to a log or chat."""
    message = str(exc)
    clean = _scrub(message, secrets)
    if clean == message:
        return exc
    if isinstance(exc, HttpStatusError):
        return HttpStatusError(clean, status=exc.status, headers=exc.headers, body=exc.body,
                               retry_after=exc.retry_after)
    return FetchError(clean, retry_after=exc.retry_after)


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
        # For get_api(guard_addresses=False) only: a separate session, so a
        # connection opened without the guard is never reused by a feed fetch.
        self._unguarded: aiohttp.ClientSession | None = None

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
        sessions = (self._session, self._unguarded)
        self._session = self._unguarded = None
        for session in sessions:
            if session is not None:
                await session.close()  # closes the connector, which closes our resolver

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            resolver = GuardedResolver(
                aiohttp.DefaultResolver(), allow_private=self._allow_private
            )
            self._session = self._new_session(resolver, {"Accept": _ACCEPT})
        return self._session

    def _get_unguarded_session(self) -> aiohttp.ClientSession:
        if self._unguarded is None or self._unguarded.closed:
            self._unguarded = self._new_session(aiohttp.DefaultResolver(), {})
        return self._unguarded

    def _new_session(self, resolver: AbstractResolver, headers: dict[str, str]) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(resolver=resolver, limit_per_host=4)
        return aiohttp.ClientSession(
            connector=connector,
            connector_owner=True,
            headers={"User-Agent": self._user_agent, **headers},
            # The overall deadline is asyncio.timeout in _within_deadline; this
            # only bounds connecting, so one dead address cannot eat it all.
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._timeout_s),
            auto_decompress=True,
            trust_env=False,
        )

    async def fetch(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None,
        max_body_bytes: int | None = None,
    ) -> FetchResult:
        """GET ``url`` (conditionally). Raises FetchError, and only FetchError.
        ``max_body_bytes`` lowers the fetcher's cap for this call (a chapters
        document has no business being as big as a feed)."""
        cap = self._max_body if max_body_bytes is None else min(max_body_bytes, self._max_body)
        return await self._within_deadline(self._fetch(url, etag, last_modified, cap), url)

    async def get_api(
        self,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        guard_addresses: bool = True,
        max_body_bytes: int | None = None,
        redact: Sequence[str] = (),
    ) -> ApiResponse:
        """One GET of an HTTP API: a 2xx answer with its capped body, else a
        FetchError (an ``HttpStatusError`` for any other status), and only that.

        Redirects are not followed: a request carrying credentials must not
        be sent on to wherever a Location points. ``guard_addresses=False``
        skips the private-address guard; it is for a base URL the operator
        configured (tests point one at 127.0.0.1), never for one from chat.
        ``max_body_bytes`` lowers the fetcher's cap for this call. No error
        message contains an Authorization header's value or a ``redact`` string.
        """
        sent = dict(headers or {})
        secrets = [s for s in (*redact, *(v for k, v in sent.items() if k.lower() == "authorization"))
                   if s]
        cap = self._max_body if max_body_bytes is None else min(max_body_bytes, self._max_body)
        try:
            return await self._within_deadline(
                self._get_api(url, params, sent, guard_addresses, cap), url, secrets)
        except FetchError as exc:
            raise _redacted(exc, secrets) from None

    async def head(self, url: str) -> ProbeResult:
        """One HEAD of ``url`` through the address guard, redirects not
        followed (a redirect is the answer: YouTube sends a /shorts/ URL of a
        regular video on to /watch). Raises FetchError, and only FetchError."""
        return await self._within_deadline(self._head(url), url)

    async def _head(self, url: str) -> ProbeResult:
        target = _parse_url(url)
        _check_url(target, self._allow_private)
        async with self._get_session().head(target, allow_redirects=False) as resp:
            return ProbeResult(resp.status, resp.headers.get("Location"))

    async def _within_deadline(self, work: Awaitable[T], url: str, secrets: Sequence[str] = ()) -> T:
        """``work`` under the overall deadline, every failure mapped to a FetchError
        (the caller scrubs ``secrets`` from its message; this scrubs the log)."""
        try:
            async with asyncio.timeout(self._timeout_s):
                return await work
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
            # The traceback goes to the log scrubbed: its last line quotes the
            # exception, which may quote a request header.
            trace = _scrub("".join(traceback.format_exception(exc)), secrets)
            log.error("unexpected error fetching %s\n%s", _scrub(url, secrets), trace.rstrip())
            raise FetchError(f"unexpected error: {type(exc).__name__}: {exc}") from None

    async def _fetch(self, url: str, etag: str | None, last_modified: str | None, cap: int) -> FetchResult:
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
                return await self._result(resp, current, etag, last_modified, cap)
        raise FetchError(f"too many redirects (more than {self._max_redirects})")

    async def _get_api(
        self, url: str, params: Mapping[str, str] | None, headers: dict[str, str], guard: bool, cap: int
    ) -> ApiResponse:
        target = _parse_url(url)
        _check_url(target, self._allow_private or not guard)
        session = self._get_session() if guard else self._get_unguarded_session()
        async with session.get(target, params=params, headers=headers, allow_redirects=False) as resp:
            body = await self._read_capped(resp, cap)
            status, reason = resp.status, resp.reason
            copied: Mapping[str, str] = CIMultiDict(resp.headers)
        if 200 <= status < 300:
            return ApiResponse(status, copied, body)
        retry_after = parse_retry_after(copied.get("Retry-After")) if status == 429 or status >= 500 else None
        hint = f" (retry after {retry_after:g}s)" if retry_after is not None else ""
        raise HttpStatusError(_status_text(status, reason) + hint, status=status, headers=copied,
                              body=body, retry_after=retry_after)

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
        cap: int | None = None,
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
        body = await self._read_capped(resp, cap)
        return FetchResult(status, body, new_etag, new_modified, str(url),
                           resp.headers.get("Content-Type"))

    async def _read_capped(self, resp: aiohttp.ClientResponse, cap: int | None = None) -> bytes:
        """The decompressed body, refusing anything past ``cap`` (max_body_bytes).

        Content-Length is only a hint (absent when chunked, the compressed
        size when gzipped), so the cap is enforced while streaming too.
        """
        cap = self._max_body if cap is None else cap
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
