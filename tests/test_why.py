"""`why`: every outcome, on records written by real polls (a feed served on
127.0.0.1, the real poller, a real SQLite file) and real deliveries (the
outbox against a scripted adapter), read back through the moderators'
command, and `showbot why` as a subprocess."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from bot.clock import FrozenClock
from bot.commands import Commands
from bot.detect import make_book_matcher
from bot.errors import DeliveryError
from bot.intents import FilterRule
from bot.models import Announcement, ContentKind, Delivered, EventKind, Platform, SourceSpec
from bot.outbox import DeliveryPolicy, Outbox
from bot.poller import Poller
from bot.sources.feeds import parse_feed_off_loop
from bot.sources.http import HttpFetcher
from bot.sources.rss import RssSource
from bot.storage import SqliteStorage, Storage
from bot.verdicts import ItemFate
from bot.why import Outcome, StepKind, explain
from tests.catalog_helpers import MEMBER, MODERATOR
from tests.fake_chat import RecordingAdapter
from tests.backends import Target, open_target
from tests.feedserver import FeedServer, feed_server  # noqa: F401  (fixture)

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
ROOT = Path(__file__).resolve().parents[1]
POLICY = DeliveryPolicy(concurrency=4, retry_base_s=30, retry_cap_s=3600, probe_every_s=15, lease_s=60)


@dataclass(frozen=True)
class Entry:
    title: str
    days_ago: float = 0.5
    summary: str = "An episode."
    slug: str = ""

    @property
    def link(self) -> str:
        return f"https://show.example/{self.slug or self.title.lower().replace(' ', '-')}"


def rss(*entries: Entry, now: datetime = NOW) -> bytes:
    items = "".join(
        f"<item><title>{escape(e.title)}</title><guid>{escape(e.link)}</guid><link>{escape(e.link)}</link>"
        f"<pubDate>{(now - timedelta(days=e.days_ago)).strftime('%a, %d %b %Y %H:%M:%S +0000')}</pubDate>"
        f"<description>{escape(e.summary)}</description></item>"
        for e in entries
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Show</title>{items}</channel></rss>'.encode()


class LinkingAdapter(RecordingAdapter):
    """The platform gives a link to each post (as Discord and Slack do)."""

    async def deliver(self, announcement: Announcement) -> Delivered:
        delivered = await super().deliver(announcement)
        return Delivered(delivered.message_id,
                         f"https://chat.example/{announcement.destination.id}/{delivered.message_id}")


@dataclass
class World:
    store: Storage
    clock: FrozenClock
    fetcher: HttpFetcher
    poller: Poller
    server: FeedServer
    commands: Commands
    health: dict[str, bool]

    async def poll(self, name: str = "podcast") -> None:
        report = await self.poller.poll(name, force=True)
        assert report.ok, report.error

    async def serve(self, *entries: Entry, path: str = "/podcast.xml") -> None:
        self.server.add_feed(path, rss(*entries, now=self.clock()))

    async def why(self, text: str) -> str:
        reply = await self.commands(f"why {text}", MODERATOR)
        assert reply.kind in ("why", "not-found") and reply.ephemeral, reply.text
        return reply.text

    async def explain(self, title: str):  # type: ignore[no-untyped-def]
        (item,) = await self.store.items_by_title(title.casefold(), title)
        trail = await self.store.item_trail(item.id)
        assert trail is not None
        return explain(trail, routes=await self.store.list_routes(), now=self.clock(), adapters=self.health or None)


@pytest.fixture
async def world(db: Target, feed_server: FeedServer) -> AsyncIterator[World]:
    """Real polls into a real store, on SQLite and on PostgreSQL."""
    store = await open_target(db)
    clock = FrozenClock(NOW)
    fetcher = HttpFetcher(timeout_s=5, allow_private_addresses=True)
    poller = Poller(store, {"rss": RssSource(fetcher, parse=parse_feed_off_loop)}, clock=clock,
                    is_book_news=make_book_matcher(["Root Cause"]))
    health: dict[str, bool] = {}
    commands = Commands(store, clock=clock, health=lambda: health)
    await store.add_source(SourceSpec(name="podcast", kind="rss", url=feed_server.url("/podcast.xml"),
                                      content=ContentKind.EPISODE, max_age_s=7 * 86400), clock())
    try:
        yield World(store, clock, fetcher, poller, feed_server, commands, health)
    finally:
        await fetcher.close()
        await store.close()


FIRST = (Entry("Kafka Internals", 3), Entry("Postgres MVCC", 10))


async def synced(world: World, *routes: tuple[Platform, str, frozenset[EventKind]]) -> None:
    for platform, channel, kinds in routes:
        await world.store.upsert_route(platform, channel, kinds, None, world.clock())
    await world.serve(*FIRST)
    await world.poll()


EPISODES = frozenset({EventKind.EPISODE})


async def test_stored_at_the_first_sync_is_the_baseline(world: World) -> None:
    await synced(world, (Platform.DISCORD, "123", EPISODES))
    text = await world.why("Kafka Internals")
    assert text.splitlines()[1] == "Not announced: stored at the first sync (baseline)."
    assert "Stored at the first sync of “podcast”, not announced" in text
    assert "First seen 2026-03-02 12:00 UTC by a poll of “podcast” (published 2026-02-27 12:00 UTC)" in text
    explanation = await world.explain("Kafka Internals")
    assert [s.kind for s in explanation.steps] == [StepKind.SEEN, StepKind.BASELINE]


async def test_an_item_older_than_max_age_is_stored_not_announced(world: World) -> None:
    await synced(world, (Platform.DISCORD, "123", EPISODES))
    world.clock.advance(days=1)
    await world.serve(Entry("Linux Page Tables", 30), *FIRST)  # new to us, a month old
    await world.poll()
    explanation = await world.explain("Linux Page Tables")
    assert explanation.outcome is Outcome.NOT_ANNOUNCED and explanation.steps[1].kind is StepKind.TOO_OLD
    assert explanation.steps[1].text == ("Not announced: published 2026-02-01 12:00 UTC, before the cutoff "
                                         "2026-02-24 12:00 UTC (max_age 7 days: new to us, but too old).")


async def test_held_by_an_exclude_filter_names_the_rule_even_after_it_is_removed(world: World) -> None:
    await synced(world, (Platform.DISCORD, "123", EPISODES))
    source = await world.store.get_source("podcast")
    await world.store.add_filter(source.id, FilterRule("exclude", "sponsored, giveaway"), world.clock())
    await world.serve(Entry("A sponsored word", summary="From our sponsor."), *FIRST)
    await world.poll()
    await world.store.clear_filters(source.id, world.clock())  # the record says what held it then
    text = await world.why("a Sponsored   word")  # titles fold like detection folds them
    assert "Not announced: held by a filter." in text
    assert "Held back by the filter `exclude sponsored, giveaway` of “podcast”." in text


async def test_held_by_include_filters_lists_them(world: World) -> None:
    await synced(world, (Platform.DISCORD, "123", EPISODES))
    source = await world.store.get_source("podcast")
    await world.store.add_filter(source.id, FilterRule("include", "postgres"), world.clock())
    await world.store.add_filter(source.id, FilterRule("include", "/kafka|redis/"), world.clock())
    await world.serve(Entry("TLS handshakes"), Entry("Redis streams", slug="redis"), *FIRST)
    await world.poll()
    explanation = await world.explain("TLS handshakes")
    assert explanation.steps[1].text == ("Held back: it matches none of the include filters of “podcast” "
                                         "(`include postgres`, `include /kafka|redis/`).")
    assert (await world.explain("Redis streams")).steps[1].kind is StepKind.ANNOUNCED


async def test_no_route_takes_its_kind(world: World) -> None:
    await synced(world, (Platform.DISCORD, "123", frozenset({EventKind.VIDEO})))
    await world.serve(Entry("QUIC explained"), *FIRST)
    await world.poll()
    text = await world.why("QUIC explained")
    assert "No route takes episode (of the 1 route then), so nothing was queued." in text
    assert "Announced, but no route took it: nothing was sent." in text


async def test_no_route_at_all(world: World) -> None:
    await synced(world)
    await world.serve(Entry("QUIC explained"), *FIRST)
    await world.poll()
    assert "No route existed, so nothing was queued (`announce episode here` adds one)." in await world.why(
        "QUIC explained")


async def test_queued_for_two_routes_delivered_with_links_and_waiting_on_a_disconnected_platform(
        world: World) -> None:
    await synced(world, (Platform.DISCORD, "123", EPISODES), (Platform.SLACK, "C1", EPISODES))
    world.clock.advance(minutes=5)
    await world.serve(Entry("HTTP/2 deep dive", slug="h2"), *FIRST)
    await world.poll()

    world.health.update({"discord": True, "slack": False})
    text = await world.why("HTTP/2 deep dive")
    assert "Queued for 2 routes (discord 123, slack C1)." in text
    assert "Waiting for slack C1 since 2026-03-02 12:05 UTC: the slack adapter is not connected." in text
    assert "Waiting: queued for 2 destinations, not out yet." in text

    discord = LinkingAdapter(Platform.DISCORD)
    slack = LinkingAdapter(Platform.SLACK)
    slack.healthy = False
    box = Outbox(world.store, {Platform.DISCORD: discord, Platform.SLACK: slack}, clock=world.clock, policy=POLICY)
    world.clock.advance(seconds=30)
    assert (await box.dispatch_once()).sent == 1
    explanation = await world.explain("HTTP/2 deep dive")
    delivered = [s for s in explanation.steps if s.kind is StepKind.DELIVERED]
    assert [s.url for s in delivered] == ["https://chat.example/123/m1"]
    assert delivered[0].text == ("Delivered to discord 123 at 2026-03-02 12:05 UTC (30s after it was queued): "
                                 "https://chat.example/123/m1.")
    assert explanation.outcome is Outcome.PARTLY

    world.health["slack"] = True
    slack.healthy = True
    assert (await box.dispatch_once()).sent == 1
    assert (await world.explain("HTTP/2 deep dive")).summary == "Delivered to all 2 destinations."


async def test_a_url_finds_the_item_whatever_tracking_it_carries(world: World) -> None:
    await synced(world, (Platform.DISCORD, "123", EPISODES))
    text = await world.why("<http://www.show.example/kafka-internals/?utm_source=x|Kafka>")
    assert text.startswith("Why “Kafka Internals” — https://show.example/kafka-internals")


async def test_waiting_behind_earlier_posts_and_for_a_retry(world: World) -> None:
    await synced(world, (Platform.DISCORD, "123", EPISODES))
    await world.serve(Entry("TCP slow start", 0.2), Entry("DNS caching", 0.4), *FIRST)
    await world.poll()
    assert "Waiting for discord 123 since 2026-03-02 12:00 UTC: queued behind 1 earlier announcement to it." \
        in await world.why("TCP slow start")
    assert "Waiting for discord 123 since 2026-03-02 12:00 UTC: due now: the outbox takes it at its next round." \
        in await world.why("DNS caching")

    chat = RecordingAdapter(Platform.DISCORD)
    chat.failures = [DeliveryError("discord answered 503 for channel 123")]
    box = Outbox(world.store, {Platform.DISCORD: chat}, clock=world.clock, policy=POLICY)
    assert (await box.dispatch_once()).retried == 1
    world.clock.advance(seconds=10)
    text = await world.why("DNS caching")
    assert ("Waiting for discord 123 since 2026-03-02 12:00 UTC: attempt 1 failed (discord answered 503 for "
            "channel 123); next try in 20s." in text)


async def test_failed_because_the_route_broke_and_later_items_skip_the_broken_route(world: World) -> None:
    await synced(world, (Platform.DISCORD, "123", EPISODES))
    await world.serve(Entry("B-Trees"), *FIRST)
    await world.poll()
    chat = RecordingAdapter(Platform.DISCORD)
    chat.failing["123"] = DeliveryError("missing permission in channel 123", permanent=True)
    box = Outbox(world.store, {Platform.DISCORD: chat}, clock=world.clock, policy=POLICY)
    assert (await box.dispatch_once()).failed == 1
    text = await world.why("B-Trees")
    assert "Failed for discord 123 after 1 attempt: missing permission in channel 123." in text
    assert "Failed: the delivery was given up on." in text

    await world.serve(Entry("gRPC"), Entry("B-Trees"), *FIRST)
    await world.poll()
    text = await world.why("gRPC")
    assert "Route discord 123 takes episode but was broken then: nothing was queued there." in text


async def test_book_news_seen_twice_follows_up_and_a_route_hears_of_an_item_once(
        world: World, feed_server: FeedServer) -> None:
    both = frozenset({EventKind.EPISODE, EventKind.BOOK})
    await synced(world, (Platform.DISCORD, "123", both))
    await world.store.add_source(SourceSpec(name="blog", kind="rss", url=feed_server.url("/blog.xml"),
                                            content=ContentKind.ARTICLE), world.clock())
    await world.serve(Entry("Old post"), path="/blog.xml")
    await world.poll("blog")
    await world.serve(Entry("Root Cause is out", slug="book-episode"), *FIRST)
    await world.poll()
    explanation = await world.explain("Root Cause is out")
    kinds = [s.kind for s in explanation.steps]
    assert kinds.count(StepKind.ANNOUNCED) == 3  # the verdict, the book event, the episode event
    assert any(s.text == "Route discord 123 had this item already as an earlier event (one announcement "
                         "per item per channel)." for s in explanation.steps)

    await world.serve(Entry("Root Cause: the book", slug="book-post"), Entry("Old post"), path="/blog.xml")
    await world.poll("blog")
    text = await world.why("Root Cause: the book")
    assert "Book news already announced as event #1 within the book window: its link joins that " \
           "announcement and goes as a reply in its channels." in text
    assert "Queued for 1 route (discord 123)." in text


async def test_not_found_suggests_the_closest_titles(world: World) -> None:
    await synced(world, (Platform.DISCORD, "123", EPISODES))
    text = await world.why("Kafak Internal")
    assert text.startswith("No stored item matches “Kafak Internal”. Closest titles: “Kafka Internals”")
    text = await world.why("kafka")  # one title contains it: that's the item
    assert text.startswith("Why “Kafka Internals”")
    assert (await world.commands("why", MODERATOR)).kind == "error"


async def test_members_are_refused(world: World) -> None:
    reply = await world.commands("why Kafka Internals", MEMBER)
    assert reply.kind == "error" and "`why` is for moderators only" in reply.text


async def test_items_stored_before_decision_records_say_so(world: World) -> None:
    await synced(world)
    # As an older showbot left them: no record.
    if isinstance(world.store, SqliteStorage):
        await world.store._conn.execute("UPDATE items SET decision = NULL")
    else:
        async with world.store._pool.acquire() as conn:  # type: ignore[attr-defined]
            await conn.execute("UPDATE items SET decision = NULL")
    explanation = await world.explain("Kafka Internals")
    assert explanation.outcome is Outcome.UNKNOWN
    assert explanation.steps[1].text.startswith("Stored before showbot kept decision records")


async def test_verdicts_round_trip_through_json() -> None:
    from bot.verdicts import FilterHold, ItemVerdict, Routing, routing_from_json, routing_to_json
    from bot.verdicts import verdict_from_json, verdict_to_json

    merged = ItemVerdict(ItemFate.MERGED, merged_into=7)  # reserved for the merge feature
    held = ItemVerdict(ItemFate.TOO_OLD, max_age_s=60, cutoff=NOW, held_by=FilterHold("include", ("a", "b")))
    for v in (merged, held, ItemVerdict(ItemFate.BASELINE, first_sync=True, announce_first=2)):
        assert verdict_from_json(verdict_to_json(v)) == v
    r = Routing(queued=(1, 2), direct=1, broken=(3,), served=(4,), routes=5, follow_up_of=9, new_link=True)
    assert routing_from_json(routing_to_json(r)) == r


async def test_showbot_why_on_the_command_line(tmp_path: Path, feed_server: FeedServer) -> None:  # noqa: F811
    config = tmp_path / "config.toml"
    feed_server.add_feed("/podcast.xml", rss(Entry("Kafka Internals", 3), now=datetime.now(timezone.utc)))
    config.write_text(f"""
[storage]
path = "{tmp_path / 'showbot.db'}"
[network]
allow_private_addresses = true
[[sources]]
name = "podcast"
url = "{feed_server.url('/podcast.xml')}"
content = "episode"
[[routes]]
platform = "console"
channel = "terminal"
kinds = ["episode"]
""")

    async def cli(*args: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", *args, "--config", str(config), cwd=ROOT,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode is not None
        return proc.returncode, out.decode() + err.decode()

    assert (await cli("poll"))[0] == 0
    code, out = await cli("why", "Kafka", "Internals")
    assert code == 0 and "Not announced: stored at the first sync (baseline)." in out
    code, out = await cli("why", "nothing like it")
    assert code == 1 and out.startswith("No stored item matches “nothing like it”.")
