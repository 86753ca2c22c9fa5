"""bot.sources.http against a real server on 127.0.0.1, plus the SSRF guard as units."""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import socket
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from bot.errors import FetchError
from bot.sources.http import (
    ApiResponse,
    BlockedAddressError,
    FetchResult,
    GuardedResolver,
    HttpFetcher,
    HttpStatusError,
    fetcher_from_config,
    ip_literal,
    is_forbidden_address,
    parse_retry_after,
)
from tests.feedserver import FeedServer, feed_server  # noqa: F401  (fixture)
from tests.xstub import XStub, x_stub  # noqa: F401  (fixture)

PODCAST = (Path(__file__).parent / "fixtures" / "podcast.xml").read_bytes()


@pytest.fixture
async def fetcher() -> AsyncIterator[HttpFetcher]:
    # The test server lives on 127.0.0.1, so private addresses are allowed here;
    # the guard itself is tested below with allow_private_addresses=False.
    async with HttpFetcher(
        timeout_s=5, max_body_bytes=1024 * 1024, allow_private_addresses=True,
        user_agent="showbot-test/1.0",
    ) as f:
        yield f


# ----------------------------------------------------------------- happy paths


async def test_fetch_200_with_validators(feed_server: FeedServer, fetcher: HttpFetcher) -> None:
    feed_server.add_feed("/feed.xml", PODCAST, etag='"v1"', last_modified="Wed, 17 Jun 2026 14:35:12 GMT")
    result = await fetcher.fetch(feed_server.url("/feed.xml"))
    assert result == FetchResult(
        status=200, body=PODCAST, etag='"v1"', last_modified="Wed, 17 Jun 2026 14:35:12 GMT",
        url=feed_server.url("/feed.xml"), content_type="application/rss+xml; charset=utf-8",
    )
    sent = feed_server.headers_of("/feed.xml")[0]
    assert sent["User-Agent"] == "showbot-test/1.0"
    assert "If-None-Match" not in sent and "If-Modified-Since" not in sent


async def test_conditional_get_etag_304(feed_server: FeedServer, fetcher: HttpFetcher) -> None:
    feed_server.add_feed("/feed.xml", PODCAST, etag='"v1"')
    result = await fetcher.fetch(feed_server.url("/feed.xml"), etag='"v1"')
    assert (result.status, result.body, result.etag) == (304, None, '"v1"')
    assert feed_server.headers_of("/feed.xml")[0]["If-None-Match"] == '"v1"'


async def test_conditional_get_last_modified_304(feed_server: FeedServer, fetcher: HttpFetcher) -> None:
    stamp = "Wed, 17 Jun 2026 14:35:12 GMT"
    feed_server.add_feed("/feed.xml", PODCAST, last_modified=stamp)
    result = await fetcher.fetch(feed_server.url("/feed.xml"), last_modified=stamp)
    assert (result.status, result.body, result.last_modified) == (304, None, stamp)
    assert feed_server.headers_of("/feed.xml")[0]["If-Modified-Since"] == stamp


async def test_stale_validator_gets_full_body(feed_server: FeedServer, fetcher: HttpFetcher) -> None:
    feed_server.add_feed("/feed.xml", PODCAST, etag='"v2"')
    result = await fetcher.fetch(feed_server.url("/feed.xml"), etag='"v1"')
    assert (result.status, result.etag, result.body) == (200, '"v2"', PODCAST)


async def test_gzip_is_decompressed(feed_server: FeedServer, fetcher: HttpFetcher) -> None:
    feed_server.add_feed("/feed.xml", PODCAST, gzip=True)
    result = await fetcher.fetch(feed_server.url("/feed.xml"))
    assert result.body == PODCAST
    assert "gzip" in feed_server.headers_of("/feed.xml")[0]["Accept-Encoding"]


async def test_redirects_are_followed(feed_server: FeedServer, fetcher: HttpFetcher) -> None:
    feed_server.add_redirect("/old", "/older", status=301)
    feed_server.add_redirect("/older", feed_server.url("/feed.xml"), status=308)
    feed_server.add_feed("/feed.xml", PODCAST)
    result = await fetcher.fetch(feed_server.url("/old"))
    assert result.url == feed_server.url("/feed.xml") and result.body == PODCAST
    assert (feed_server.hits["/old"], feed_server.hits["/older"], feed_server.hits["/feed.xml"]) == (1, 1, 1)


async def test_too_many_redirects(feed_server: FeedServer) -> None:
    feed_server.add_redirect("/loop", "/loop")
    async with HttpFetcher(allow_private_addresses=True, max_redirects=3) as fetcher:
        with pytest.raises(FetchError, match=r"too many redirects \(more than 3\)"):
            await fetcher.fetch(feed_server.url("/loop"))
    assert feed_server.hits["/loop"] == 4


async def test_session_is_reused_and_close_is_idempotent(feed_server: FeedServer) -> None:
    feed_server.add_feed("/a", b"<rss/>")
    fetcher = HttpFetcher(allow_private_addresses=True)
    await fetcher.fetch(feed_server.url("/a"))
    await fetcher.fetch(feed_server.url("/a"))
    await fetcher.close()
    await fetcher.close()
    assert feed_server.hits["/a"] == 2


def test_fetcher_from_config() -> None:
    from bot.config import Config

    fetcher = fetcher_from_config(Config(timeout_s=3.0, max_body_bytes=2048))
    assert (fetcher._timeout_s, fetcher._max_body, fetcher._allow_private) == (3.0, 2048, False)


# ------------------------------------------------------------- HTTP failures


@pytest.mark.parametrize(
    ("status", "message"),
    [(404, "HTTP 404 Not Found"), (500, "HTTP 500 Internal Server Error"), (410, "HTTP 410 Gone"),
     (401, "HTTP 401 Unauthorized")],
)
async def test_error_statuses(
    feed_server: FeedServer, fetcher: HttpFetcher, status: int, message: str
) -> None:
    feed_server.add_status("/feed.xml", status, body=b"<html>error</html>")
    with pytest.raises(FetchError) as info:
        await fetcher.fetch(feed_server.url("/feed.xml"))
    assert str(info.value) == message
    assert info.value.retry_after is None


async def test_429_retry_after_seconds(feed_server: FeedServer, fetcher: HttpFetcher) -> None:
    feed_server.add_status("/feed.xml", 429, headers={"Retry-After": "120"})
    with pytest.raises(FetchError) as info:
        await fetcher.fetch(feed_server.url("/feed.xml"))
    assert str(info.value) == "HTTP 429 Too Many Requests (retry after 120s)"
    assert info.value.retry_after == 120.0


async def test_503_retry_after_http_date(feed_server: FeedServer, fetcher: HttpFetcher) -> None:
    feed_server.add_status("/feed.xml", 503, headers={"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"})
    with pytest.raises(FetchError, match="HTTP 503 Service Unavailable") as info:
        await fetcher.fetch(feed_server.url("/feed.xml"))
    assert info.value.retry_after is not None and info.value.retry_after > 86400


async def test_503_without_retry_after(feed_server: FeedServer, fetcher: HttpFetcher) -> None:
    feed_server.add_status("/feed.xml", 503)
    with pytest.raises(FetchError) as info:
        await fetcher.fetch(feed_server.url("/feed.xml"))
    assert str(info.value) == "HTTP 503 Service Unavailable" and info.value.retry_after is None


def test_parse_retry_after() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
    assert parse_retry_after("30", now=now) == 30.0
    assert parse_retry_after("Thu, 01 Jan 2026 12:01:30 GMT", now=now) == 90.0
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now=now) == 0.0  # past
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after("", now=now) is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("9" * 50) == 7 * 86400.0  # capped, never an overflow


async def test_timeout(feed_server: FeedServer) -> None:
    release = feed_server.add_slow("/slow")
    async with HttpFetcher(allow_private_addresses=True, timeout_s=0.2) as fetcher:
        with pytest.raises(FetchError, match=r"^timed out after 0.2s$"):
            await fetcher.fetch(feed_server.url("/slow"))
    assert feed_server.started.is_set()  # the request really reached the server
    release.set()


async def test_connection_refused() -> None:
    # A port that was free a moment ago: bind, read the port, close.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with HttpFetcher(allow_private_addresses=True) as fetcher:
        with pytest.raises(FetchError, match=rf"could not connect to 127.0.0.1:{port}"):
            await fetcher.fetch(f"http://127.0.0.1:{port}/feed.xml")


async def test_dns_failure() -> None:
    async with HttpFetcher(allow_private_addresses=True, timeout_s=10) as fetcher:
        with pytest.raises(FetchError, match="could not resolve host feeds.invalid"):
            await fetcher.fetch("http://feeds.invalid/rss")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/feed", "only http and https are allowed"),
        ("file:///etc/passwd", "only http and https are allowed"),
        ("/relative/feed.xml", "not absolute"),
        ("http://", "invalid URL"),
    ],
)
async def test_bad_urls(url: str, message: str) -> None:
    async with HttpFetcher() as fetcher:
        with pytest.raises(FetchError, match=message):
            await fetcher.fetch(url)


# ------------------------------------------------------------------ body cap


async def test_cap_rejects_large_content_length_early(feed_server: FeedServer) -> None:
    feed_server.add_feed("/big", b"x" * 5000)
    async with HttpFetcher(allow_private_addresses=True, max_body_bytes=4096) as fetcher:
        with pytest.raises(FetchError, match="Content-Length 5000 bytes exceeds the 4096-byte limit"):
            await fetcher.fetch(feed_server.url("/big"))


async def test_cap_while_streaming_without_content_length(feed_server: FeedServer) -> None:
    # 1 MiB chunked with no Content-Length; the cap is 64 KiB.
    feed_server.add_stream("/stream", b"y" * 16384, chunks=64)
    async with HttpFetcher(allow_private_addresses=True, max_body_bytes=65536) as fetcher:
        with pytest.raises(FetchError, match="body exceeds the 65536-byte limit"):
            await fetcher.fetch(feed_server.url("/stream"))


async def test_cap_applies_to_decompressed_bytes(feed_server: FeedServer) -> None:
    # Content-Length is the honest gzip size (~1 KB) but the body inflates to 2 MB.
    body = b"<rss>" + b" " * 2_000_000 + b"</rss>"
    feed_server.add_feed("/bomb.xml", body, gzip=True)
    assert len(gzip.compress(body)) < 4096
    async with HttpFetcher(allow_private_addresses=True, max_body_bytes=100_000) as fetcher:
        with pytest.raises(FetchError, match="body exceeds the 100000-byte limit"):
            await fetcher.fetch(feed_server.url("/bomb.xml"))


async def test_body_exactly_at_cap_is_fine(feed_server: FeedServer) -> None:
    feed_server.add_stream("/exact", b"z" * 1024, chunks=4)
    async with HttpFetcher(allow_private_addresses=True, max_body_bytes=4096) as fetcher:
        result = await fetcher.fetch(feed_server.url("/exact"))
    assert result.body == b"z" * 4096


async def test_content_length_longer_than_body(feed_server: FeedServer) -> None:
    # The server promises 10,000 bytes and hangs up after 1,000.
    feed_server.add_stream("/short", b"a" * 1000, chunks=1, content_length=10_000)
    async with HttpFetcher(allow_private_addresses=True, timeout_s=5) as fetcher:
        with pytest.raises(FetchError, match="connection broke while reading the body"):
            await fetcher.fetch(feed_server.url("/short"))


# ------------------------------------------------------------------ SSRF guard


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "127.5.6.7", "10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1",
     "169.254.169.254", "0.0.0.0", "100.64.0.1", "224.0.0.1", "255.255.255.255", "240.0.0.1",
     "::1", "::", "fc00::1", "fd12:3456::1", "fe80::1", "ff02::1", "::ffff:127.0.0.1",
     "::ffff:10.0.0.1", "64:ff9b::a00:1", "2002:7f00:1::1"],
)
def test_forbidden_addresses(address: str) -> None:
    assert is_forbidden_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "8.8.8.8"])
def test_public_addresses(address: str) -> None:
    assert not is_forbidden_address(ipaddress.ip_address(address))


def test_ip_literal() -> None:
    assert ip_literal("127.0.0.1") == ipaddress.ip_address("127.0.0.1")
    assert ip_literal("[::1]") == ipaddress.ip_address("::1")
    assert ip_literal("fe80::1%eth0") == ipaddress.ip_address("fe80::1")
    assert ip_literal("example.com") is None
    assert ip_literal(None) is None


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1/feed", "http://[::1]:8080/feed", "https://169.254.169.254/latest/meta-data",
     "http://[::ffff:127.0.0.1]/", "http://10.1.2.3/rss", "http://0.0.0.0:80/"],
)
async def test_ip_literal_urls_refused(url: str) -> None:
    async with HttpFetcher(allow_private_addresses=False) as fetcher:
        with pytest.raises(FetchError, match="not a public address"):
            await fetcher.fetch(url)


async def test_localhost_name_refused_after_dns() -> None:
    # "localhost" goes through the resolver (no IP literal), which refuses 127.0.0.1.
    async with HttpFetcher(allow_private_addresses=False) as fetcher:
        with pytest.raises(FetchError, match="localhost resolves only to non-public addresses"):
            await fetcher.fetch("http://localhost:9/feed")


async def test_redirect_to_loopback_refused(
    feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guard runs on every hop, not only on the URL the moderator typed.

    The test server is on 127.0.0.1 itself, so the first hop is let through
    (as if it were a public host) and the redirect to 127.0.0.1 must be refused.
    """
    from bot.sources import http as http_module

    feed_server.add_redirect("/hop", "http://127.0.0.1:1/admin")
    real_check = http_module._check_url
    seen: list[str] = []

    def first_hop_is_public(url: object, allow_private: bool) -> None:
        seen.append(str(url))
        real_check(url, allow_private=len(seen) == 1 or allow_private)  # type: ignore[arg-type]

    monkeypatch.setattr(http_module, "_check_url", first_hop_is_public)
    async with HttpFetcher(allow_private_addresses=False) as fetcher:
        with pytest.raises(FetchError, match="refused to fetch 127.0.0.1: not a public address"):
            await fetcher.fetch(feed_server.url("/hop"))
    assert seen == [feed_server.url("/hop"), "http://127.0.0.1:1/admin"]
    assert feed_server.hits["/hop"] == 1


async def test_loopback_first_hop_refused_before_connecting(feed_server: FeedServer) -> None:
    feed_server.add_feed("/feed.xml", PODCAST)
    async with HttpFetcher(allow_private_addresses=False) as fetcher:
        with pytest.raises(FetchError, match="not a public address"):
            await fetcher.fetch(feed_server.url("/feed.xml"))
    assert feed_server.hits["/feed.xml"] == 0


class _FakeResolver(AbstractResolver):
    """An inner resolver answering fixed addresses (the DNS we cannot run in tests)."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses
        self.closed = False

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=a, port=port,
                          family=socket.AF_INET6 if ":" in a else socket.AF_INET,
                          proto=0, flags=socket.AI_NUMERICHOST)
            for a in self.addresses
        ]

    async def close(self) -> None:
        self.closed = True


async def test_resolver_refuses_private_only_answers() -> None:
    resolver = GuardedResolver(_FakeResolver("10.0.0.1", "::1"))
    with pytest.raises(BlockedAddressError, match=r"internal.example.com resolves only to non-public addresses \(10.0.0.1, ::1\)"):
        await resolver.resolve("internal.example.com", 443)


async def test_resolver_filters_mixed_answers() -> None:
    resolver = GuardedResolver(_FakeResolver("10.0.0.1", "93.184.216.34", "169.254.169.254"))
    results = await resolver.resolve("mixed.example.com", 80)
    assert [r["host"] for r in results] == ["93.184.216.34"]


async def test_resolver_allows_private_when_configured() -> None:
    inner = _FakeResolver("10.0.0.1")
    resolver = GuardedResolver(inner, allow_private=True)
    assert [r["host"] for r in await resolver.resolve("internal.example.com", 80)] == ["10.0.0.1"]
    await resolver.close()
    assert inner.closed


async def test_resolver_refusal_becomes_fetch_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """End to end: a public-looking name whose DNS answer is private is refused."""
    import aiohttp

    monkeypatch.setattr(aiohttp, "DefaultResolver", lambda: _FakeResolver("10.0.0.1"))
    async with HttpFetcher(allow_private_addresses=False) as fetcher:
        with pytest.raises(FetchError, match=r"^refused: feeds.example.com resolves only to non-public addresses \(10.0.0.1\)$"):
            await fetcher.fetch("http://feeds.example.com/rss")


async def test_never_anything_but_fetch_error(monkeypatch: pytest.MonkeyPatch) -> None:
    fetcher = HttpFetcher()

    async def boom(*args: object) -> None:
        raise KeyError("surprise")

    monkeypatch.setattr(fetcher, "_fetch", boom)
    with pytest.raises(FetchError, match="unexpected error: KeyError"):
        await fetcher.fetch("https://example.com/feed")
    await fetcher.close()


async def test_cancellation_propagates(feed_server: FeedServer) -> None:
    feed_server.add_slow("/slow")
    async with HttpFetcher(allow_private_addresses=True, timeout_s=30) as fetcher:
        task = asyncio.ensure_future(fetcher.fetch(feed_server.url("/slow")))
        await asyncio.wait_for(feed_server.started.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


# ------------------------------------------------------------- get_api (API calls)

TOKEN = "AAAA-api-secret-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"}


def api_url(stub: XStub, path: str) -> str:
    return f"http://127.0.0.1:{stub.port}{path}"


async def test_get_api_sends_params_and_headers_and_returns_the_answer(x_stub: XStub) -> None:
    x_stub.answer("/v/thing", body={"ok": True}, headers={"X-Rate-Limit-Remaining": "7"})
    async with HttpFetcher(timeout_s=5, user_agent="showbot-test/1.0") as fetcher:
        resp = await fetcher.get_api(api_url(x_stub, "/v/thing"), params={"ids": "1,2", "q": "a b"},
                                     headers=AUTH, guard_addresses=False)
    assert resp == ApiResponse(200, resp.headers, b'{"ok": true}')
    assert resp.headers["x-rate-limit-remaining"] == "7"  # any case
    [req] = x_stub.requests
    assert req.query == {"ids": "1,2", "q": "a b"}
    assert req.authorization == f"Bearer {TOKEN}"
    assert (req.headers["accept"], req.headers["user-agent"]) == ("application/json", "showbot-test/1.0")


async def test_get_api_guards_addresses_unless_told_not_to(x_stub: XStub) -> None:
    x_stub.answer("/v/thing", body={})
    url = f"http://localhost:{x_stub.port}/v/thing"
    async with HttpFetcher(timeout_s=5) as fetcher:
        with pytest.raises(FetchError, match="refused to fetch 127.0.0.1: not a public address"):
            await fetcher.get_api(api_url(x_stub, "/v/thing"))
        with pytest.raises(FetchError, match="localhost resolves only to non-public addresses"):
            await fetcher.get_api(url)
        assert x_stub.requests == []
        assert (await fetcher.get_api(url, guard_addresses=False)).status == 200
        # The unguarded connection to localhost is not lent to a feed fetch.
        with pytest.raises(FetchError, match="localhost resolves only to non-public addresses"):
            await fetcher.fetch(url)
    assert len(x_stub.requests) == 1


async def test_get_api_refuses_what_is_not_http_even_unguarded() -> None:
    async with HttpFetcher() as fetcher:
        with pytest.raises(FetchError, match="only http and https are allowed"):
            await fetcher.get_api("file:///etc/passwd", guard_addresses=False)


async def test_get_api_caps_the_body(feed_server: FeedServer) -> None:
    feed_server.add_feed("/big", b"x" * 5000)
    feed_server.add_stream("/stream", b"y" * 16384, chunks=64)
    async with HttpFetcher(allow_private_addresses=True, max_body_bytes=65536) as fetcher:
        with pytest.raises(FetchError, match="Content-Length 5000 bytes exceeds the 4096-byte limit"):
            await fetcher.get_api(feed_server.url("/big"), max_body_bytes=4096)
        with pytest.raises(FetchError, match="body exceeds the 65536-byte limit"):
            await fetcher.get_api(feed_server.url("/stream"))
        # A per-call cap only lowers the fetcher's.
        with pytest.raises(FetchError, match="body exceeds the 65536-byte limit"):
            await fetcher.get_api(feed_server.url("/stream"), max_body_bytes=10**9)
        assert (await fetcher.get_api(feed_server.url("/big"))).body == b"x" * 5000


async def test_get_api_times_out(feed_server: FeedServer) -> None:
    release = feed_server.add_slow("/slow")
    async with HttpFetcher(allow_private_addresses=True, timeout_s=0.2) as fetcher:
        with pytest.raises(FetchError, match=r"^timed out after 0.2s$") as info:
            await fetcher.get_api(feed_server.url("/slow"), headers=AUTH)
    assert feed_server.started.is_set()
    assert not isinstance(info.value, HttpStatusError)
    release.set()


async def test_get_api_429_carries_retry_after_and_the_answer(x_stub: XStub) -> None:
    x_stub.answer("/v/thing", status=429, body={"title": "Too Many Requests"},
                  headers={"Retry-After": "120", "x-rate-limit-reset": "1767225900"})
    async with HttpFetcher() as fetcher:
        with pytest.raises(HttpStatusError) as info:
            await fetcher.get_api(api_url(x_stub, "/v/thing"), guard_addresses=False)
    err = info.value
    assert str(err) == "HTTP 429 Too Many Requests (retry after 120s)"
    assert (err.status, err.retry_after) == (429, 120.0)
    assert err.headers["X-Rate-Limit-Reset"] == "1767225900"
    assert err.body == b'{"title": "Too Many Requests"}'


@pytest.mark.parametrize(("status", "headers", "retry_after"), [
    (503, {"Retry-After": "30"}, 30.0), (502, {"Retry-After": "7"}, 7.0), (500, {}, None),
    (404, {"Retry-After": "30"}, None),  # only a 429 or 5xx says "later"
])
async def test_get_api_other_statuses(
    x_stub: XStub, status: int, headers: dict[str, str], retry_after: float | None
) -> None:
    x_stub.answer("/v/thing", status=status, body={"detail": "nope"}, headers=headers)
    async with HttpFetcher() as fetcher:
        with pytest.raises(HttpStatusError) as info:
            await fetcher.get_api(api_url(x_stub, "/v/thing"), guard_addresses=False)
    assert (info.value.status, info.value.retry_after) == (status, retry_after)
    assert str(info.value).startswith(f"HTTP {status} ")
    assert info.value.body == b'{"detail": "nope"}'


async def test_get_api_does_not_follow_redirects_with_credentials(x_stub: XStub) -> None:
    x_stub.answer("/v/thing", status=302, headers={"Location": api_url(x_stub, "/elsewhere")})
    async with HttpFetcher() as fetcher:
        with pytest.raises(HttpStatusError) as info:
            await fetcher.get_api(api_url(x_stub, "/v/thing"), headers=AUTH, guard_addresses=False)
    assert info.value.status == 302
    assert [r.path for r in x_stub.requests] == ["/v/thing"]


async def test_get_api_never_puts_the_token_in_a_message(
    x_stub: XStub, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A proxy that echoes the Authorization header in its status line.
    x_stub.answer("/v/echo", status=401, reason=f"Unauthorized (got Bearer {TOKEN})")
    x_stub.answer("/v/bare", status=503, reason=f"Down, {TOKEN}")
    async with HttpFetcher() as fetcher:
        with pytest.raises(HttpStatusError) as echoed:
            await fetcher.get_api(api_url(x_stub, "/v/echo"), headers=AUTH, guard_addresses=False)
        with pytest.raises(HttpStatusError) as bare:  # the token alone, without "Bearer"
            await fetcher.get_api(api_url(x_stub, "/v/bare"), headers={"Authorization": f"Bearer {TOKEN}"},
                                  guard_addresses=False, redact=(TOKEN,))
        assert str(echoed.value) == "HTTP 401 Unauthorized (got ***)"
        assert (echoed.value.status, bare.value.status) == (401, 503)
        assert TOKEN not in str(bare.value)

        async def boom(*args: object) -> ApiResponse:
            raise KeyError(f"header was Bearer {TOKEN}")

        monkeypatch.setattr(fetcher, "_get_api", boom)
        with caplog.at_level("ERROR", logger="bot.sources.http"):
            with pytest.raises(FetchError, match="unexpected error: KeyError") as surprise:
                await fetcher.get_api(api_url(x_stub, "/v/x"), headers=AUTH, guard_addresses=False)
    assert TOKEN not in str(surprise.value)
    assert caplog.records and TOKEN not in caplog.text
    assert "KeyError" in caplog.text  # the traceback is still logged, scrubbed


async def test_get_api_connection_refused_is_a_fetch_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with HttpFetcher() as fetcher:
        with pytest.raises(FetchError, match=rf"could not connect to 127.0.0.1:{port}") as info:
            await fetcher.get_api(f"http://127.0.0.1:{port}/v", headers=AUTH, guard_addresses=False)
    assert TOKEN not in str(info.value)
