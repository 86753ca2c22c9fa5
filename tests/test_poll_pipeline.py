"""The spine end to end: a real HTTP server on 127.0.0.1 -> fetch -> parse ->
decide -> one SQLite transaction. New process objects on the same file stand in
for a restart."""

from __future__ import annotations

import codecs
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from bot.clock import FrozenClock
from bot.detect import make_book_matcher
from bot.models import ContentKind, EventKind, ParsedFeed, Platform, SourceSpec
from bot.poller import Poller
from bot.sources.feeds import parse_feed_off_loop
from bot.sources.http import HttpFetcher
from bot.sources.rss import RssSource
from bot.storage import SqliteStorage
from tests.feedgen import make_podcast_feed
from tests.feedserver import FeedServer, feed_server  # noqa: F401  (fixture)

START = datetime(2026, 1, 5, 16, 0, tzinfo=timezone.utc)
ALL = frozenset(EventKind)


def now_after(n_weekly: int) -> datetime:
    """Just after episode ``n_weekly`` of a weekly feed came out."""
    return START + timedelta(days=7 * (n_weekly - 1), hours=1)


@dataclass
class Bot:
    """Process objects on one database file; ``restart`` makes new ones."""

    path: Path
    clock: FrozenClock
    store: SqliteStorage
    fetcher: HttpFetcher
    poller: Poller
    parses: int = 0

    async def poll(self, name: str = "podcast") -> Any:
        return await self.poller.poll(name, force=True)

    async def close(self) -> None:
        await self.fetcher.close()
        await self.store.close()


async def open_bot(path: Path, clock: FrozenClock, *, timeout_s: float = 5, max_body: int = 8 * 1024 * 1024,
                   allow_private: bool = True) -> Bot:
    store = await SqliteStorage.open(path)
    fetcher = HttpFetcher(timeout_s=timeout_s, max_body_bytes=max_body, allow_private_addresses=allow_private)
    bot = Bot(path, clock, store, fetcher, poller=None)  # type: ignore[arg-type]

    async def counting_parse(body: bytes, **kw: Any) -> ParsedFeed:
        bot.parses += 1
        return await parse_feed_off_loop(body, **kw)

    bot.poller = Poller(store, {"rss": RssSource(fetcher, parse=counting_parse)}, clock=clock,
                        is_book_news=make_book_matcher(["Root Cause"]))
    return bot


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[Bot]:
    b = await open_bot(tmp_path / "showbot.db", FrozenClock(now_after(5)))
    try:
        yield b
    finally:
        await b.close()


async def add_podcast(bot: Bot, server: FeedServer, **kw: Any) -> None:
    await bot.store.add_source(
        SourceSpec(name=kw.pop("name", "podcast"), kind="rss", url=server.url(kw.pop("path", "/podcast.xml")),
                   content=ContentKind.EPISODE, **kw),
        bot.clock(),
    )


async def route(bot: Bot, platform: Platform, channel: str) -> None:
    await bot.store.upsert_route(platform, channel, ALL, None, bot.clock())


async def test_a_new_episode_is_one_event_and_one_row_per_route_and_a_restart_repeats_nothing(
    bot: Bot, feed_server: FeedServer
) -> None:
    await route(bot, Platform.DISCORD, "123")
    await route(bot, Platform.SLACK, "C1")
    await add_podcast(bot, feed_server)
    feed_server.add_feed("/podcast.xml", make_podcast_feed(5, start=START))
    first = await bot.poll()
    assert first.ok and len(first.new) == 5 and first.events == ()

    bot.clock.now = now_after(6)
    feed_server.add_feed("/podcast.xml", make_podcast_feed(6, start=START))
    second = await bot.poll()
    assert [e.kind for e in second.events] == [EventKind.EPISODE]
    assert len(second.new) == 1 and second.events[0].title == second.new[0].item.title
    rows = await bot.store.outbox_rows()
    assert sorted((r.platform.value, r.channel) for r in rows) == [("discord", "123"), ("slack", "C1")]

    await bot.close()  # restart: new objects, same file
    restarted = await open_bot(bot.path, bot.clock)
    try:
        # Same feed, byte-for-byte different (whitespace) so it is parsed again.
        feed_server.add_feed("/podcast.xml", make_podcast_feed(6, start=START) + b"\n\n")
        again = await restarted.poll()
        assert again.ok and again.new == () and again.events == ()
        assert restarted.parses == 1
        assert len(await restarted.store.outbox_rows()) == 2
    finally:
        await restarted.close()
        bot.store = await SqliteStorage.open(bot.path)  # the fixture closes what it holds
        bot.fetcher = HttpFetcher()


async def test_first_poll_of_500_items_announces_nothing(bot: Bot, feed_server: FeedServer) -> None:
    await route(bot, Platform.CONSOLE, "terminal")
    await add_podcast(bot, feed_server)
    bot.clock.now = now_after(500)
    feed_server.add_feed("/podcast.xml", make_podcast_feed(500, start=START))
    report = await bot.poll()
    assert report.ok and len(report.new) == 500 and report.events == ()
    assert await bot.store.outbox_rows() == []


async def test_announce_on_first_poll_announces_only_the_newest(bot: Bot, feed_server: FeedServer) -> None:
    await route(bot, Platform.CONSOLE, "terminal")
    await add_podcast(bot, feed_server, announce_on_first_poll=1)
    bot.clock.now = now_after(500)
    feed_server.add_feed("/podcast.xml", make_podcast_feed(500, start=START))
    report = await bot.poll()
    newest = max(report.new, key=lambda s: s.item.published_at)
    assert [e.title for e in report.events] == [newest.item.title]
    assert len(await bot.store.outbox_rows()) == 1


@pytest.mark.parametrize(
    ("label", "changed"),
    [
        ("all guids rewritten", {"guid_prefix": "https://anchor.fm/episodes/"}),
        ("items re-dated", {"date_shift": timedelta(hours=5)}),
        ("titles edited", {"title_suffix": " (remastered)"}),
    ],
)
async def test_a_rewritten_feed_announces_nothing(
    bot: Bot, feed_server: FeedServer, label: str, changed: dict[str, Any]
) -> None:
    await route(bot, Platform.CONSOLE, "terminal")
    await add_podcast(bot, feed_server)
    feed_server.add_feed("/podcast.xml", make_podcast_feed(5, start=START))
    await bot.poll()
    feed_server.add_feed("/podcast.xml", make_podcast_feed(5, start=START, **changed))
    report = await bot.poll()
    assert report.ok, label
    assert report.new == () and report.events == (), label
    assert await bot.store.count_items() == 5
    assert await bot.store.outbox_rows() == []
    if "title_suffix" in changed:
        latest = await bot.store.latest_items(limit=5)
        assert all(s.item.title.endswith("(remastered)") for s in latest)  # updated in place


async def test_an_old_item_appearing_is_stored_not_announced(bot: Bot, feed_server: FeedServer) -> None:
    await route(bot, Platform.CONSOLE, "terminal")
    await add_podcast(bot, feed_server)
    # Episodes 3..5 first; then the feed also lists 1 and 2, months old.
    feed_server.add_feed("/podcast.xml", make_podcast_feed(5, start=START).replace(b"ep-1<", b"ep-1<"))
    full = make_podcast_feed(5, start=START)
    head, _, rest = full.partition(b"<item>")
    items = [b"<item>" + chunk for chunk in rest.split(b"<item>")]
    feed_server.add_feed("/podcast.xml", head + b"".join(items[:3]) + b"</channel></rss>")
    await bot.poll()
    bot.clock.now = now_after(5) + timedelta(days=30)  # episodes 1 and 2 are now > 7 days old
    feed_server.add_feed("/podcast.xml", full)
    report = await bot.poll()
    assert len(report.new) == 2 and report.events == ()


async def test_book_episode_is_book_news(bot: Bot, feed_server: FeedServer, fixtures_dir: Path) -> None:
    await route(bot, Platform.CONSOLE, "terminal")
    await add_podcast(bot, feed_server)
    body = (fixtures_dir / "podcast.xml").read_bytes()
    head, _, rest = body.partition(b"<item>")
    items = [b"<item>" + chunk for chunk in rest.split(b"<item>")]
    book = [i for i in items if b"Root cause" in i or b"Root Cause" in i]
    others = [i for i in items if i not in book]
    assert book, "the fixture holds the book episode"
    tail = b"</channel>\n</rss>\n"
    feed_server.add_feed("/podcast.xml", head + b"".join(others).replace(tail, b"") + tail)
    await bot.poll()
    bot.clock.now = datetime(2026, 4, 16, tzinfo=timezone.utc)
    feed_server.add_feed("/podcast.xml", body)
    report = await bot.poll()
    kinds = sorted(e.kind.value for e in report.events)
    assert "book" in kinds and "episode" in kinds
    # One channel routing both kinds gets the book episode once.
    assert len(await bot.store.outbox_rows()) == len(report.events) - 1


async def test_304_and_same_body_polls_do_no_parsing(bot: Bot, feed_server: FeedServer) -> None:
    await add_podcast(bot, feed_server)
    await add_podcast(bot, feed_server, name="static", path="/static.xml")
    feed_server.add_feed("/podcast.xml", make_podcast_feed(5, start=START), etag='"v1"')
    feed_server.add_feed("/static.xml", make_podcast_feed(5, start=START))  # no validators at all
    await bot.poll("podcast")
    await bot.poll("static")
    assert bot.parses == 2
    for _ in range(3):
        assert (await bot.poll("podcast")).unchanged
        assert (await bot.poll("static")).unchanged
    assert bot.parses == 2
    sent = [h.get("If-None-Match") for h in feed_server.headers_of("/podcast.xml")]
    assert sent == [None, '"v1"', '"v1"', '"v1"']
    source = await bot.store.get_source("podcast")
    assert source.last_success_at == bot.clock() and source.consecutive_failures == 0


def quadratic_entity_feed() -> bytes:
    blob = "A" * 50_000
    refs = "&e;" * 20_000
    return (f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY e "{blob}">]>'
            f"<rss version=\"2.0\"><channel><title>t</title><item><title>x</title>"
            f"<description>{refs}</description></item></channel></rss>").encode()


def _bad_cases(server: FeedServer) -> dict[str, str]:
    """path -> a fragment the stored error must contain."""
    html = b"<!doctype html><html><head><title>Oops</title></head><body>Server error</body></html>"
    server.add_feed("/not-xml", b"\x00\x01 this is { not xml", content_type="application/octet-stream")
    server.add_feed("/html-200", html, content_type="text/html")
    server.add_feed("/truncated", make_podcast_feed(3, start=START)[:300])
    server.add_status("/404", 404, body=b"gone")
    server.add_status("/500", 500, body=b"boom")
    server.add_slow("/slow")
    server.add_stream("/huge", b"<rss>" + b"x" * 65_536, 40)  # ~2.6 MB against a 1 MiB cap
    server.add_feed("/quadratic", quadratic_entity_feed())
    utf16 = quadratic_entity_feed().decode().replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="utf-16"?>')
    server.add_feed("/quadratic16", codecs.BOM_UTF16_LE + utf16.encode("utf-16-le"),
                    content_type="application/xml")
    server.add_feed("/unknown-encoding", b'<?xml version="1.0" encoding="x-unknown-zzz"?><rss><channel>'
                    b"<title>\xff\xfe</title></channel></rss>", content_type="application/xml")
    return {
        "/not-xml": "not a feed",
        "/html-200": "HTML",
        "/truncated": "",
        "/404": "404",
        "/500": "500",
        "/slow": "timed out",
        "/huge": "",
        "/quadratic": "entity-expansion",
        "/quadratic16": "entity-expansion",
        "/unknown-encoding": "",
    }


async def test_bad_input_is_a_clear_error_on_the_source_and_nothing_changes(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    bot = await open_bot(tmp_path / "s.db", FrozenClock(now_after(5)), timeout_s=0.5, max_body=1024 * 1024)
    try:
        await route(bot, Platform.CONSOLE, "terminal")
        cases = _bad_cases(feed_server)
        good = make_podcast_feed(3, start=START)
        for path in cases:
            name = "bad" + path.replace("/", "-")
            await add_podcast(bot, feed_server, name=name, path=path + ".good")
            feed_server.add_feed(path + ".good", good, etag='"good"')
            assert (await bot.poll(name)).ok
        await add_podcast(bot, feed_server, name="healthy", path="/healthy.xml")
        feed_server.add_feed("/healthy.xml", make_podcast_feed(3, start=START))
        await bot.poll("healthy")
        feed_server.add_feed("/healthy.xml", make_podcast_feed(4, start=START))
        items_before = await bot.store.count_items()

        outcomes = {}
        for path, fragment in cases.items():
            name = "bad" + path.replace("/", "-")
            # The feed now answers badly (the moderator's URL started failing).
            feed_server.routes[path + ".good"] = feed_server.routes[path]
            report = await bot.poll(name)
            outcomes[path] = report.error
            source = await bot.store.get_source(name)
            assert not report.ok, path
            assert report.error and "\n" not in report.error and len(report.error) < 300, (path, report.error)
            assert fragment in report.error, (path, report.error)
            assert source.last_error == report.error and source.consecutive_failures == 1
            assert source.etag == '"good"', "validators never advance on a failed poll"
            assert source.next_poll_at and source.next_poll_at > bot.clock(), "backs off"
        # The other source is still polled, and nothing stored changed.
        healthy = await bot.poll("healthy")
        assert healthy.ok and len(healthy.new) == 1
        assert await bot.store.count_items() == items_before + 1
        assert [r for r in await bot.store.outbox_rows() if r.status != "pending"] == []
    finally:
        await bot.close()


async def test_private_addresses_are_refused_unless_allowed(tmp_path: Path, feed_server: FeedServer) -> None:
    bot = await open_bot(tmp_path / "s.db", FrozenClock(now_after(5)), allow_private=False)
    try:
        await add_podcast(bot, feed_server)
        feed_server.add_feed("/podcast.xml", make_podcast_feed(3, start=START))
        report = await bot.poll()
        assert not report.ok and "127.0.0.1" in (report.error or "")
        assert feed_server.hits["/podcast.xml"] == 0  # refused before connecting
        assert await bot.store.count_items() == 0
    finally:
        await bot.close()


async def test_backoff_grows_and_recovers(bot: Bot, feed_server: FeedServer) -> None:
    await add_podcast(bot, feed_server, every_s=60)
    feed_server.add_status("/podcast.xml", 500)
    waits = []
    for _ in range(4):
        await bot.poll()
        source = await bot.store.get_source("podcast")
        waits.append((source.next_poll_at - bot.clock()).total_seconds())
    assert waits == [60, 120, 240, 480]
    # A scheduled (not forced) poll inside the backoff window does nothing.
    skipped = await bot.poller.poll("podcast")
    assert skipped.skipped and feed_server.hits["/podcast.xml"] == 4
    feed_server.add_feed("/podcast.xml", make_podcast_feed(2, start=START))
    assert (await bot.poll()).ok
    source = await bot.store.get_source("podcast")
    assert source.consecutive_failures == 0 and source.last_error is None


async def test_a_failing_feed_tells_the_moderators_channel_once(tmp_path: Path, feed_server: FeedServer) -> None:
    bot = await open_bot(tmp_path / "s.db", FrozenClock(now_after(5)))
    bot.poller._failure_alert_after = 3
    try:
        await bot.store.upsert_route(Platform.DISCORD, "mods", frozenset({EventKind.ALERT}), None, bot.clock())
        await add_podcast(bot, feed_server)
        feed_server.add_status("/podcast.xml", 503)
        for _ in range(6):
            await bot.poll()
        rows = await bot.store.outbox_rows()
        assert [(r.channel, r.status) for r in rows] == [("mods", "pending")]
        event = await bot.store.get_event(rows[0].event_id)
        assert event.title == "Feed “podcast” has failed 3 times in a row: HTTP 503 Service Unavailable"
        # It recovers: the channel that heard it failing hears it works again, once.
        feed_server.add_feed("/podcast.xml", make_podcast_feed(2, start=START))
        for _ in range(2):
            assert (await bot.poll()).ok
        rows = await bot.store.outbox_rows()
        titles = [(await bot.store.get_event(r.event_id)).title for r in rows]
        assert titles[1:] == ["Feed “podcast” works again after 6 failures in a row."]
    finally:
        await bot.close()


async def test_a_feed_that_never_reached_the_alert_recovers_quietly(tmp_path: Path, feed_server: FeedServer) -> None:
    bot = await open_bot(tmp_path / "s.db", FrozenClock(now_after(5)))
    bot.poller._failure_alert_after = 3
    try:
        await bot.store.upsert_route(Platform.DISCORD, "mods", frozenset({EventKind.ALERT}), None, bot.clock())
        await add_podcast(bot, feed_server)
        feed_server.add_status("/podcast.xml", 503)
        for _ in range(2):
            await bot.poll()
        feed_server.add_feed("/podcast.xml", make_podcast_feed(2, start=START))
        assert (await bot.poll()).ok
        assert await bot.store.outbox_rows() == []  # never told it failed: nothing to take back
    finally:
        await bot.close()
