"""podcast:chapters and podcast:transcript end to end: feeds and documents
served by the local HTTP server, the real fetcher and parsers, the poller,
and both storage backends.

What must hold: JSON chapters replace description chapters (in the
announcement too), transcripts become searchable, an unchanged URL is never
fetched twice (server hits counted), a changed URL is, and every fault (404,
timeout, oversize, malformed) leaves the item stored and announced with the
chapters it had, logged once, retried on later polls, and given up after a
bounded number of tries.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import pytest

from bot.clock import FrozenClock
from bot.documents import MAX_ATTEMPTS, MAX_CHAPTERS_BYTES, retry_delay_s
from bot.models import Chapter, ContentKind, DocumentKind, SourceSpec
from bot.poller import Poller
from bot.search import parse_query
from bot.sources.documents import fetch_document
from bot.sources.feeds import parse_feed_off_loop
from bot.sources.http import HttpFetcher
from bot.sources.rss import RssSource
from bot.storage import Storage
from tests.feedserver import FeedServer, feed_server  # noqa: F401  (fixture)

DOCS = Path(__file__).parent / "fixtures" / "documents"
START = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
JSON_CHAPTERS = (Chapter(0, "Intro"), Chapter(72, "How replication slots work"),
                 Chapter(520, "The alert that never fired"), Chapter(1265, "max_slot_wal_keep_size and friends"),
                 Chapter(2100, "Summary"))
DESCRIPTION_CHAPTERS = (Chapter(0, "Welcome"), Chapter(300, "Slots"), Chapter(900, "Fixes"))


@dataclass
class Episode:
    n: int
    chapters: str | None = None  # a path on the feed server
    transcript: str | None = None
    transcript_type: str = "application/srt"
    summary: str = "Replication slots, WAL and disks. 0:00 Welcome 5:00 Slots 15:00 Fixes"


def feed(server: FeedServer, episodes: list[Episode]) -> bytes:
    items = []
    for e in episodes:
        tags = ""
        if e.chapters:
            tags += f"<podcast:chapters url={quoteattr(server.url(e.chapters))} type='application/json+chapters'/>"
        if e.transcript:
            tags += f"<podcast:transcript url={quoteattr(server.url(e.transcript))} type={quoteattr(e.transcript_type)}/>"
        items.append(
            f"<item><title>Episode {e.n}: replication slots</title><guid isPermaLink='false'>ep-{e.n}</guid>"
            f"<link>https://show.example/ep/{e.n}</link>"
            f"<pubDate>{(START + timedelta(days=7 * e.n)).strftime('%a, %d %b %Y %H:%M:%S +0000')}</pubDate>"
            f"<description>{escape(e.summary)}</description><podcast:episode>{e.n}</podcast:episode>{tags}</item>")
    return ("<?xml version='1.0' encoding='utf-8'?><rss version='2.0' "
            "xmlns:podcast='https://podcastindex.org/namespace/1.0'><channel><title>Show</title>"
            + "".join(reversed(items)) + "</channel></rss>").encode()


@dataclass
class Rig:
    store: Storage
    server: FeedServer
    clock: FrozenClock
    fetcher: HttpFetcher
    poller: Poller

    def serve(self, episodes: list[Episode]) -> None:
        self.server.add_feed("/feed.xml", feed(self.server, episodes))

    async def poll(self) -> object:
        report = await self.poller.poll("podcast", force=True)
        assert report.ok, report.error
        return report

    async def item(self, n: int) -> object:
        found = await self.store.episode_by_number(n)
        assert found is not None
        return found

    async def states(self) -> dict[tuple[int, DocumentKind], object]:
        source = await self.store.get_source("podcast")
        return {(s.item_id, s.kind): s for s in await self.store.load_documents(source.id)}


@pytest.fixture
async def rig(storage: Storage, feed_server: FeedServer) -> AsyncIterator[Rig]:  # noqa: F811
    clock = FrozenClock(START + timedelta(days=7 * 10))
    fetcher = HttpFetcher(timeout_s=2, max_body_bytes=8 * 1024 * 1024, allow_private_addresses=True)
    poller = Poller(storage, {"rss": RssSource(fetcher, parse=parse_feed_off_loop)}, clock=clock,
                    fetch_document=functools.partial(fetch_document, fetcher))
    await storage.add_source(SourceSpec("podcast", "rss", feed_server.url("/feed.xml"), ContentKind.EPISODE,
                                        max_age_s=365 * 86400), clock())
    try:
        yield Rig(storage, feed_server, clock, fetcher, poller)
    finally:
        await fetcher.close()


def serve_documents(server: FeedServer) -> None:
    server.add_feed("/ch/1.json", (DOCS / "ep141.chapters.json").read_bytes(), content_type="application/json")
    server.add_feed("/tr/1.srt", (DOCS / "ep141.srt").read_bytes(), content_type="application/x-subrip")
    server.add_feed("/tr/1.vtt", (DOCS / "ep141.vtt").read_bytes(), content_type="text/vtt")


async def test_chapters_and_transcript_fetched_once_and_searchable(rig: Rig) -> None:
    serve_documents(rig.server)
    rig.serve([Episode(1, "/ch/1.json", "/tr/1.srt"), Episode(2)])
    first = await rig.poll()
    assert [s.item.chapters for s in first.new if s.item.episode_number == 1] == [JSON_CHAPTERS]  # type: ignore[attr-defined]
    ep1 = await rig.item(1)
    assert ep1.item.chapters == JSON_CHAPTERS  # type: ignore[attr-defined]
    assert (await rig.item(2)).item.chapters == DESCRIPTION_CHAPTERS  # type: ignore[attr-defined]
    (hit,) = await rig.store.search_transcripts(parse_query("logical slot"))
    assert (hit.item.id, hit.start_s) == (ep1.id, 750)  # type: ignore[attr-defined]
    # The JSON chapter titles are searchable as chapters.
    assert [h.item_id for h in await rig.store.search(parse_query("alert never fired"))] == [ep1.id]  # type: ignore[attr-defined]
    assert (rig.server.hits["/ch/1.json"], rig.server.hits["/tr/1.srt"]) == (1, 1)

    # The same feed again (unchanged body), then a changed feed with the same
    # document URLs and a new episode: nothing is fetched twice.
    await rig.poll()
    rig.serve([Episode(1, "/ch/1.json", "/tr/1.srt"), Episode(2), Episode(3, transcript="/tr/1.vtt",
                                                                         transcript_type="text/vtt")])
    second = await rig.poll()
    assert [s.item.episode_number for s in second.new] == [3]  # type: ignore[attr-defined]
    assert (rig.server.hits["/ch/1.json"], rig.server.hits["/tr/1.srt"], rig.server.hits["/tr/1.vtt"]) == (1, 1, 1)
    assert rig.server.hits["/feed.xml"] == 3

    # The URL changes: fetched again, and the new content replaces the old.
    rig.server.add_feed("/ch/1-v2.json", b'{"version":"1.2.0","chapters":[{"startTime":0,"title":"Cold open"},'
                                         b'{"startTime":95,"title":"Slots, again"}]}')
    rig.serve([Episode(1, "/ch/1-v2.json", "/tr/1.srt"), Episode(2), Episode(3, transcript="/tr/1.vtt",
                                                                             transcript_type="text/vtt")])
    await rig.poll()
    assert rig.server.hits["/ch/1-v2.json"] == 1 and rig.server.hits["/ch/1.json"] == 1
    assert (await rig.item(1)).item.chapters == (Chapter(0, "Cold open"), Chapter(95, "Slots, again"))  # type: ignore[attr-defined]


async def test_an_edit_keeps_the_json_chapters_without_a_fetch(rig: Rig) -> None:
    serve_documents(rig.server)
    rig.serve([Episode(1, "/ch/1.json")])
    await rig.poll()
    rig.serve([Episode(1, "/ch/1.json", summary="Edited notes. 0:00 Welcome 5:00 Slots")])
    await rig.poll()
    ep1 = await rig.item(1)
    assert ep1.item.summary.startswith("Edited notes") and ep1.item.chapters == JSON_CHAPTERS  # type: ignore[attr-defined]
    assert rig.server.hits["/ch/1.json"] == 1


async def test_a_new_episode_is_announced_with_its_json_chapters(rig: Rig) -> None:
    serve_documents(rig.server)
    rig.serve([Episode(2)])
    await rig.poll()  # the first poll: silent
    rig.serve([Episode(1, "/ch/1.json"), Episode(2)])  # episode 1 is new to the store (a later guid)
    report = await rig.poll()
    assert len(report.events) == 1  # type: ignore[attr-defined]
    (event,) = report.events  # type: ignore[attr-defined]
    announced = await rig.store.find_item(event.item_id)
    assert announced is not None and announced.item.chapters == JSON_CHAPTERS


@pytest.mark.parametrize(
    ("path", "setup", "error"),
    [
        ("/ch/missing.json", None, "404"),
        ("/ch/broken.json", b'{"version":"1.2.0","chapters":[{"startTime":0,', "not JSON"),
        ("/ch/empty.json", b'{"version":"1.2.0","chapters":[]}', "no chapter"),
        ("/ch/huge.json", b"x" * (MAX_CHAPTERS_BYTES + 1), "too large"),
        ("/ch/page.json", b"<html><body>Sign in</body></html>", "not JSON"),
    ],
)
async def test_a_failing_chapters_document_keeps_the_description_chapters_and_is_retried(
    rig: Rig, path: str, setup: bytes | None, error: str, caplog: pytest.LogCaptureFixture,
) -> None:
    if setup is not None:
        rig.server.add_feed(path, setup, content_type="application/json")
    rig.serve([Episode(2)])
    await rig.poll()
    rig.serve([Episode(1, path), Episode(2)])
    with caplog.at_level(logging.WARNING, logger="showbot.poll"):
        report = await rig.poll()
        # stored and announced, with the chapters it had
        assert len(report.events) == 1  # type: ignore[attr-defined]
        ep1 = await rig.item(1)
        assert ep1.item.chapters == DESCRIPTION_CHAPTERS  # type: ignore[attr-defined]
        state = (await rig.states())[(ep1.id, DocumentKind.CHAPTERS)]  # type: ignore[attr-defined]
        assert state.attempts == 1 and error in state.last_error and state.fetched_url is None  # type: ignore[attr-defined]
        assert rig.server.hits[path] == 1
        # not due yet: the next poll leaves it alone
        await rig.poll()
        assert rig.server.hits[path] == 1
        # due: tried again on later polls, feed unchanged, at most MAX_ATTEMPTS times in all
        for attempt in range(2, MAX_ATTEMPTS + 2):
            rig.clock.advance(seconds=retry_delay_s(attempt) + 1)
            await rig.poll()
        assert rig.server.hits[path] == MAX_ATTEMPTS
    warnings = [r.getMessage() for r in caplog.records if path in r.getMessage()]
    assert len(warnings) == 2, warnings  # the first failure, and giving up
    assert "will retry" in warnings[0] and "not trying it again" in warnings[1]
    # Then the host fixes it: a new URL is a new start.
    rig.server.add_feed("/ch/fixed.json", (DOCS / "ep141.chapters.json").read_bytes())
    rig.serve([Episode(1, "/ch/fixed.json"), Episode(2)])
    await rig.poll()
    assert (await rig.item(1)).item.chapters == JSON_CHAPTERS  # type: ignore[attr-defined]


async def test_a_document_that_times_out_fails_cleanly(rig: Rig) -> None:
    release = rig.server.add_slow("/tr/slow.srt")
    try:
        rig.serve([Episode(1, transcript="/tr/slow.srt")])
        await rig.poll()  # the fetcher's 2 s deadline ends it
        ep1 = await rig.item(1)
        state = (await rig.states())[(ep1.id, DocumentKind.TRANSCRIPT)]  # type: ignore[attr-defined]
        assert state.attempts == 1 and "timed out" in state.last_error  # type: ignore[attr-defined]
        assert ep1.item.chapters == DESCRIPTION_CHAPTERS  # type: ignore[attr-defined]
    finally:
        release.set()


async def test_a_malformed_transcript_then_a_good_one(rig: Rig) -> None:
    rig.server.add_feed("/tr/bad.srt", b"1\nthis is not a time line\nhello\n", content_type="application/srt")
    rig.serve([Episode(1, transcript="/tr/bad.srt")])
    await rig.poll()
    ep1 = await rig.item(1)
    state = (await rig.states())[(ep1.id, DocumentKind.TRANSCRIPT)]  # type: ignore[attr-defined]
    assert "no cue" in state.last_error  # type: ignore[attr-defined]
    assert await rig.store.search_transcripts(parse_query("hello")) == []
    # the host replaces the file at the same URL: retried when due
    rig.server.add_feed("/tr/bad.srt", (DOCS / "ep141.srt").read_bytes(), content_type="application/srt")
    rig.clock.advance(seconds=retry_delay_s(1) + 1)
    await rig.poll()
    assert [h.start_s for h in await rig.store.search_transcripts(parse_query("logical slot"))] == [750]


async def test_at_most_a_budget_of_documents_per_poll_and_the_rest_later(rig: Rig) -> None:
    serve_documents(rig.server)
    rig.poller._documents_per_poll = 3  # the budget, small to see it work
    rig.serve([Episode(n, f"/ch/1.json?e={n}", f"/tr/1.srt?e={n}") for n in range(1, 5)])
    await rig.poll()
    assert rig.server.hits["/ch/1.json"] + rig.server.hits["/tr/1.srt"] == 3
    await rig.poll()  # unchanged feed: the backlog goes on
    await rig.poll()
    assert rig.server.hits["/ch/1.json"] + rig.server.hits["/tr/1.srt"] == 8
    for n in range(1, 5):
        assert (await rig.item(n)).item.chapters == JSON_CHAPTERS  # type: ignore[attr-defined]
    await rig.poll()
    assert rig.server.hits["/ch/1.json"] + rig.server.hits["/tr/1.srt"] == 8
    assert len(await rig.store.search_transcripts(parse_query("logical slot"), limit=10)) == 4


async def test_documents_are_fetched_concurrently_not_one_by_one(rig: Rig) -> None:
    # Two slow documents: both requests arrive before either is answered.
    first, second = rig.server.add_slow("/tr/a.srt"), rig.server.add_slow("/tr/b.srt")
    rig.serve([Episode(1, transcript="/tr/a.srt"), Episode(2, transcript="/tr/b.srt")])
    poll = asyncio.create_task(rig.poll())
    await rig.server.wait_hits("/tr/a.srt", 1)
    await rig.server.wait_hits("/tr/b.srt", 1)
    first.set()
    second.set()
    await asyncio.wait_for(poll, 10)


async def test_a_bug_in_a_document_parser_costs_the_document_not_the_poll(
    rig: Rig, caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(fetch: object) -> object:
        raise RuntimeError("parser bug")

    rig.poller._fetch_document = broken  # type: ignore[assignment]
    rig.serve([Episode(1, "/ch/1.json", "/tr/1.srt")])
    with caplog.at_level(logging.ERROR, logger="showbot.poll"):
        report = await rig.poll()
    assert report.ok and len(report.new) == 1  # type: ignore[attr-defined]
    ep1 = await rig.item(1)
    assert ep1.item.chapters == DESCRIPTION_CHAPTERS  # type: ignore[attr-defined]
    states = await rig.states()
    assert {s.kind: s.last_error for s in states.values()} == {  # type: ignore[attr-defined]
        DocumentKind.CHAPTERS: "internal error: RuntimeError: parser bug",
        DocumentKind.TRANSCRIPT: "internal error: RuntimeError: parser bug",
    }
    source = await rig.store.get_source("podcast")
    assert source.consecutive_failures == 0 and source.last_error is None


async def test_a_document_the_feed_stops_naming_is_withdrawn(rig: Rig) -> None:
    serve_documents(rig.server)
    rig.serve([Episode(1, "/ch/1.json", "/tr/1.srt"), Episode(2)])
    await rig.poll()
    assert (await rig.item(1)).item.chapters == JSON_CHAPTERS  # type: ignore[attr-defined]
    rig.serve([Episode(1), Episode(2)])  # the host dropped both tags
    await rig.poll()
    ep1 = await rig.item(1)
    assert ep1.item.chapters == DESCRIPTION_CHAPTERS  # type: ignore[attr-defined]  # the description's again
    assert await rig.states() == {}
    assert await rig.store.search_transcripts(parse_query("logical slot")) == []
    # an item the feed no longer lists at all keeps what it has (old episodes fall off feeds)
    rig.serve([Episode(1, "/ch/1.json"), Episode(2)])
    await rig.poll()
    rig.serve([Episode(2)])
    await rig.poll()
    assert (await rig.item(1)).item.chapters == JSON_CHAPTERS  # type: ignore[attr-defined]
    assert rig.server.hits["/ch/1.json"] == 2
