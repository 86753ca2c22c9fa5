"""``showbot migrate --to postgresql://...``: a SQLite database built by the
real poller and outbox, copied to a fresh PostgreSQL database, compared
table by table; the migrated bot announces nothing old; an interrupted copy
resumed; a non-empty target refused; the password never printed."""

from __future__ import annotations

import asyncio
import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.clock import FrozenClock
from bot.intents import FilterRule, PollIntent, SnapshotRow, SourceProgress
from bot.models import ContentKind, Destination, DestinationKind, DigestPeriod, EventKind, EventPurpose, Platform, SourceSpec
from bot.outbox.flood import next_period_end
from bot.outbox import Outbox
from bot.poller import Poller
from bot.search import parse_query
from bot.sources.feeds import parse_feed_off_loop
from bot.sources.http import HttpFetcher
from bot.sources.rss import RssSource
from bot.storage import RouteSeed, SqliteStorage, Storage
from bot.storage.migrate import TABLES, MigrationRefused, migrate
from bot.storage.records import QueuedDelivery, QueuedEvent
from bot.documents import DocumentWrite
from bot.models import Chapter, DocumentKind, TranscriptSegment
from tests.backends import PgRun, open_target, run_of
from tests.fake_chat import RecordingAdapter
from tests.feedgen import make_podcast_feed
from tests.feedserver import FeedServer, feed_server  # noqa: F401  (fixture)
from tests.test_poll_pipeline import START, now_after

ALL = frozenset(EventKind)


def poller(store: Storage, clock: FrozenClock) -> tuple[Poller, HttpFetcher]:
    fetcher = HttpFetcher(timeout_s=5, max_body_bytes=8 * 1024 * 1024, allow_private_addresses=True)
    return Poller(store, {"rss": RssSource(fetcher, parse=parse_feed_off_loop)}, clock=clock), fetcher


async def build_sqlite(path: Path, server: FeedServer) -> FrozenClock:
    """A database as a running bot leaves it: polled twice through the real
    pipeline, Discord delivered, Slack still queued, and every other table used."""
    clock = FrozenClock(now_after(5))
    store = await SqliteStorage.open(path)
    poll, fetcher = poller(store, clock)
    try:
        await store.seed([], [RouteSeed(Platform.DISCORD, "123", ALL)], clock())
        await store.upsert_route(Platform.SLACK, "C1", ALL, "@here", clock())
        # A moderator's digest channel: every route setting, a held row, a digest.
        digests = await store.put_route(RouteSeed(Platform.DISCORD, "456", ALL, None, False, frozenset({"podcast"}),
                                                  "{title}", 30, None, DigestPeriod.DAILY), clock())
        await store.add_source(SourceSpec("podcast", "rss", server.url("/podcast.xml"), ContentKind.EPISODE), clock())
        server.add_feed("/podcast.xml", make_podcast_feed(5, start=START), etag='"v5"')
        assert (await poll.poll("podcast", force=True)).ok  # the first poll: silent
        clock.now = now_after(6)
        server.add_feed("/podcast.xml", make_podcast_feed(6, start=START), etag='"v6"')
        second = await poll.poll("podcast", force=True)
        assert len(second.events) == 1
        discord = RecordingAdapter(Platform.DISCORD)
        outbox = Outbox(store, {Platform.DISCORD: discord}, clock=clock)
        report = await outbox.dispatch_once()
        assert (report.sent, report.held) == (1, 1)
        source = await store.get_source("podcast")
        (stored,) = second.new
        (first,) = [r for r in await store.list_routes() if r.channel == "123"]
        await store.queue_events([QueuedEvent(EventKind.EPISODE, "A test", None, stored.id, source.id, (
            QueuedDelivery(Destination(Platform.DISCORD, DestinationKind.CHANNEL, "123"), first.id),),
            EventPurpose.TEST)], clock())
        assert await store.build_digest(digests.id, DigestPeriod.DAILY, next_period_end(DigestPeriod.DAILY, clock()),
                                        "Daily digest", clock()) is not None
        assert (await outbox.dispatch_once()).sent == 2  # the test post and the digest
        await store.add_filter(source.id, FilterRule("exclude", "sponsor"), clock(), audit=(Platform.DISCORD, "42"))
        await store.add_subscription(Platform.DISCORD, "1001", "kafka", clock(), 10)
        await store.set_setting("discord.guild", "g1")
        # Documents an item links to: JSON chapters, a transcript, a failure.
        await store.write_documents([
            DocumentWrite(stored.id, DocumentKind.CHAPTERS, "https://c.example/6.json", "fetched", clock(),
                          media_type="application/json+chapters", chapters=(Chapter(0, "Intro"), Chapter(61, "Slots"))),
            DocumentWrite(stored.id, DocumentKind.TRANSCRIPT, "https://t.example/6.vtt", "fetched", clock(),
                          segments=(TranscriptSegment(0, "Welcome back."), TranscriptSegment(750, "The logical slot."))),
            DocumentWrite(stored.id - 1, DocumentKind.TRANSCRIPT, "https://t.example/5.vtt", "failed", clock(),
                          error="HTTP 404", attempts=1, retry_at=clock() + timedelta(minutes=15)),
        ])
        x = await store.add_source(SourceSpec("x", "x", None, ContentKind.POST, handle="hnasr", provider="api"), clock())
        for n in range(3):
            snap = SnapshotRow(clock() - timedelta(days=n), 100 - n, 5, 7, "bio", None, None, None, '{"n": %d}' % n)
            await store.write_poll(x, PollIntent(snapshot=snap), SourceProgress(clock(), clock()))
    finally:
        await fetcher.close()
        await store.close()
    return clock


async def dump(store: Storage) -> dict[str, Any]:
    """Everything the bot reads, through the protocol, plus each table's row count."""
    sources = await store.list_sources()
    rows = await store.outbox_rows()
    counts = {}
    for table in TABLES:
        counts[table.name] = (await store._one(f"SELECT count(*) FROM {table.name}"))[0]  # type: ignore[attr-defined]
    return {
        "counts": counts,
        "sources": sources,
        "items": await store.latest_items(limit=1000),
        "routes": await store.list_routes(),
        "outbox": rows,
        "events": await store.events_by_id(list(range(1, 100))),
        "filters": [await store.load_filters(s.id) for s in sources],
        "subscriptions": await store.load_subscriptions(),
        "audit": await store.list_audit(100),
        "setting": await store.find_setting("discord.guild"),
        "snapshot": [await store.latest_snapshot_json(s.id) for s in sources],
        "search": sorted(h.item_id for h in await store.search(parse_query("episode"))),
        "documents": [await store.load_documents(s.id) for s in sources],
        "transcripts": [(h.item.id, h.start_s, h.text) for h in await store.search_transcripts(parse_query("slot"))],
        "version": await store.catalogue_version(),
        # The decision records `why` reads: verdicts, routings, message links.
        "trails": [await store.item_trail(i.id) for i in await store.latest_items(limit=1000)],
    }


async def test_a_migrated_database_holds_the_same_and_announces_nothing_old(
    tmp_path: Path, feed_server: FeedServer, pg_run: PgRun | None,  # noqa: F811
) -> None:
    run = run_of(pg_run)
    db = tmp_path / "showbot.db"
    clock = await build_sqlite(db, feed_server)
    url = await run.create_database("showbot_test_migrate")
    out = io.StringIO()
    copied = await migrate(db, url, out=out)
    assert copied["items"] == 6 and copied["outbox"] == 5 and copied["profile_snapshots"] == 3
    assert copied["digests"] == 1
    assert copied["item_documents"] == 3 and copied["transcript_segments"] == 2
    assert "items: 6/6" in out.getvalue() and out.getvalue().rstrip().splitlines()[-1].startswith("done: ")

    sqlite, pg = await SqliteStorage.open(db), await open_target(url)
    try:
        before, after = await dump(sqlite), await dump(pg)
        for key in before:
            assert after[key] == before[key], key
        assert [r.status.value for r in after["outbox"]] == ["sent", "pending", "digested", "sent", "sent"]
        assert [e.purpose.value for e in after["events"].values()] == ["announce", "test", "digest"]
        (digests,) = [r for r in after["routes"] if r.digest is not None]
        assert (digests.feeds, digests.template, digests.pace_s) == (frozenset({"podcast"}), "{title}", 30)
        # Sequences moved past the copied ids.
        assert (await pg.add_source(SourceSpec("new", "rss", "https://e.org/f"), clock())).id == 3
        # The migrated bot polls the same feed (a new body, the same episodes): nothing is new.
        feed_server.add_feed("/podcast.xml", make_podcast_feed(6, start=START, feed_title="Renamed"))
        poll, fetcher = poller(pg, clock)
        try:
            report = await poll.poll("podcast", force=True)
        finally:
            await fetcher.close()
        assert report.ok and not report.unchanged and report.new == () and report.events == ()
        discord = RecordingAdapter(Platform.DISCORD)
        assert (await Outbox(pg, {Platform.DISCORD: discord}, clock=clock).dispatch_once()).sent == 0
        slack = RecordingAdapter(Platform.SLACK)
        assert (await Outbox(pg, {Platform.SLACK: slack}, clock=clock).dispatch_once()).sent == 1  # what was queued
    finally:
        await sqlite.close()
        await pg.close()


class Interrupt(Exception):
    pass


async def test_an_interrupted_copy_resumes_and_a_non_empty_target_is_refused(
    tmp_path: Path, feed_server: FeedServer, pg_run: PgRun | None,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = run_of(pg_run)
    db = tmp_path / "showbot.db"
    await build_sqlite(db, feed_server)
    url = await run.create_database("showbot_test_resume")
    secret_url = url.replace("://postgres@", "://postgres:hunter2@")

    def stop_after_items(table: str) -> None:
        if table == "items":
            raise Interrupt(table)

    with pytest.raises(Interrupt):
        await migrate(db, url, out=io.StringIO(), after_table=stop_after_items)
    config = tmp_path / "config.toml"
    config.write_text(f'[storage]\npath = "{db}"\n')
    capsys.readouterr()

    refused = await asyncio.to_thread(main, ["migrate", "--config", str(config), "--to", secret_url])
    captured = capsys.readouterr()
    assert refused == 1 and "not empty (2 sources, 6 items)" in captured.err and "--resume" in captured.err
    resumed = await asyncio.to_thread(main, ["migrate", "--config", str(config), "--to", secret_url, "--resume"])
    captured = capsys.readouterr()
    assert resumed == 0, captured.err
    assert "hunter2" not in captured.out + captured.err and "postgres:***@" in captured.out
    assert "sources: 2/2" in captured.out and "outbox: 5/5" in captured.out and "digests: 1/1" in captured.out

    sqlite, pg = await SqliteStorage.open(db), await open_target(url)
    try:
        before, after = await dump(sqlite), await dump(pg)
        for key in before:
            assert after[key] == before[key], key
    finally:
        await sqlite.close()
        await pg.close()
    with pytest.raises(MigrationRefused):  # complete now, and still not empty
        await migrate(db, url, out=io.StringIO())
