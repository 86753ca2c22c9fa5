"""A poll stores its items' search vectors right after its write (bot.poller
``_store_vectors``, bot.hybrid): feeds and a chapters document served on
127.0.0.1, the real fetcher, the real model, both storage backends.

What must hold: with the model loaded, a new item is found by meaning the
moment it is stored (nothing left for the background pass), its vectors are
exactly those the background pass would compute from the stored item (JSON
chapters included), an edit's vectors replace the old ones; with no model
yet, or an embedding that fails, the poll still stores everything and the
items stay due for the background pass.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Sequence

import pytest

from bot import hybrid
from bot.clock import FrozenClock
from bot.hybrid import DOC_CHARS, Embedder, SemanticModel, embed_jobs, embed_pending
from bot.models import ContentKind, SourceSpec
from bot.poller import Poller
from bot.sources.documents import fetch_document
from bot.sources.feeds import parse_feed_off_loop
from bot.sources.http import HttpFetcher
from bot.sources.rss import RssSource
from bot.storage import Storage
from bot.storage.records import split_chapters
from tests.feedserver import FeedServer, feed_server  # noqa: F401  (fixture)
from tests.test_poll_documents import DOCS, JSON_CHAPTERS, Episode, feed

START = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def model() -> Embedder:
    embedder = SemanticModel().get()
    assert embedder is not None
    return embedder


MakeRig = Callable[[Callable[[], Embedder | None] | None], Awaitable["Rig"]]


@dataclass
class Rig:
    store: Storage
    server: FeedServer
    poller: Poller

    def serve(self, episodes: list[Episode]) -> None:
        self.server.add_feed("/feed.xml", feed(self.server, episodes))

    async def poll(self) -> None:
        report = await self.poller.poll("podcast", force=True)
        assert report.ok, report.error


@pytest.fixture
async def make_rig(storage: Storage, feed_server: FeedServer) -> AsyncIterator[MakeRig]:  # noqa: F811
    fetchers: list[HttpFetcher] = []

    async def make(embedder: Callable[[], Embedder | None] | None) -> Rig:
        clock = FrozenClock(START + timedelta(days=7 * 10))
        fetcher = HttpFetcher(timeout_s=2, max_body_bytes=8 * 1024 * 1024, allow_private_addresses=True)
        fetchers.append(fetcher)
        poller = Poller(storage, {"rss": RssSource(fetcher, parse=parse_feed_off_loop)}, clock=clock,
                        fetch_document=functools.partial(fetch_document, fetcher), embedder=embedder,
                        embed_pause_s=0)
        await storage.add_source(SourceSpec("podcast", "rss", feed_server.url("/feed.xml"), ContentKind.EPISODE,
                                            max_age_s=365 * 86400), clock())
        feed_server.add_feed("/ch/1.json", (DOCS / "ep141.chapters.json").read_bytes(),
                             content_type="application/json")
        return Rig(storage, feed_server, poller)

    try:
        yield make
    finally:
        for fetcher in fetchers:
            await fetcher.close()


async def _expected(store: Storage, embedder: Embedder, item_ids: Sequence[int]) -> dict[int, tuple[bytes, list[bytes]]]:
    """What the background pass would store for these items, from the stored rows."""
    stored = await store.items_by_id(list(item_ids))
    jobs = [hybrid.item_job(i, "", stored[i].item) for i in item_ids]
    return {v.item_id: (v.item, split_chapters(v.chapters, v.chapter_count)) for v in embed_jobs(embedder, jobs)}


async def _stored(store: Storage, item_ids: Sequence[int]) -> dict[int, tuple[bytes, list[bytes]]]:
    items, chapters = await store.find_vectors(list(item_ids)), await store.chapter_vectors(list(item_ids))
    return {i: (items[i], chapters.get(i, [])) for i in items}


async def test_a_poll_stores_its_new_items_vectors_with_them(make_rig, model: Embedder) -> None:  # type: ignore[no-untyped-def]
    rig = await make_rig(lambda: model)
    rig.serve([Episode(1, "/ch/1.json"), Episode(2), Episode(3)])
    await rig.poll()
    assert await rig.store.items_needing_vectors(10) == []  # nothing left for the background pass
    ep1 = await rig.store.episode_by_number(1)
    assert ep1 is not None and ep1.item.chapters == JSON_CHAPTERS
    ids = [ep1.id] + [e.id for n in (2, 3) if (e := await rig.store.episode_by_number(n)) is not None]
    stored = await _stored(rig.store, ids)
    assert stored == await _expected(rig.store, model, ids)  # the JSON chapters' vectors, not the description's
    assert len(stored[ep1.id][1]) == len(JSON_CHAPTERS)
    assert await embed_pending(rig.store, model) == 0

    # An edit: its vectors are replaced by the same poll.
    rig.serve([Episode(1, "/ch/1.json", summary="Edited: disks filling up with WAL. 0:00 Welcome"),
               Episode(2), Episode(3)])
    await rig.poll()
    assert await rig.store.items_needing_vectors(10) == []
    after = await _stored(rig.store, [ep1.id])
    assert after[ep1.id][0] != stored[ep1.id][0]
    assert after == await _expected(rig.store, model, [ep1.id])


async def test_without_a_loaded_model_the_items_wait_for_the_background_pass(make_rig, model: Embedder) -> None:  # type: ignore[no-untyped-def]
    rig = await make_rig(SemanticModel().find)  # never loaded: find() is None
    rig.serve([Episode(1), Episode(2)])
    await rig.poll()
    due = await rig.store.items_needing_vectors(10)
    assert len(due) == 2 and await rig.store.find_vectors([j.item_id for j in due]) == {}
    assert await embed_pending(rig.store, model) == 2
    assert await rig.store.items_needing_vectors(10) == []


async def test_an_embedding_that_fails_costs_the_vectors_never_the_poll(
        make_rig, model: Embedder, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    class Broken:
        def embed(self, texts: Sequence[str]) -> object:
            raise RuntimeError("model bug")

        sums = embed

    rig = await make_rig(lambda: Broken())
    rig.serve([Episode(1), Episode(2)])
    with caplog.at_level(logging.ERROR, logger="showbot.poll"):
        await rig.poll()
    assert len(await rig.store.items_needing_vectors(10)) == 2  # stored, and due
    errors = [r for r in caplog.records if "embedding new items" in r.getMessage()]
    assert len(errors) == 1 and errors[0].exc_info is not None
    assert await rig.store.episode_by_number(2) is not None


def test_an_items_job_is_what_the_background_pass_reads() -> None:
    from bot.models import Chapter, Item

    item = Item(guid="g", title="T", link=None, published_at=None, summary="s" * (DOC_CHARS + 50),
                chapters=(Chapter(0, "Intro"), Chapter(60, "Body")))
    job = hybrid.item_job(7, "h", item)
    assert (job.item_id, job.content_hash, job.title, job.chapters) == (7, "h", "T", ("Intro", "Body"))
    assert job.summary == "s" * DOC_CHARS  # as items_needing_vectors(summary_chars=DOC_CHARS) reads it


async def test_vectors_that_cannot_be_saved_cost_a_warning_never_the_poll(
        make_rig, model: Embedder, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from bot.errors import StorageError

    rig = await make_rig(lambda: model)

    async def full_disk(vectors: object) -> None:
        raise StorageError("saving search vectors failed: database or disk is full")

    monkeypatch.setattr(rig.store, "put_vectors", full_disk)
    rig.serve([Episode(1), Episode(2)])
    with caplog.at_level(logging.WARNING, logger="showbot.poll"):
        await rig.poll()
    assert len(await rig.store.items_needing_vectors(10)) == 2  # stored, and due for the background pass
    assert [r.levelno for r in caplog.records if "search vectors not saved" in r.getMessage()] == [logging.WARNING]


# A process that polls with an embedder killing it (SIGKILL) once the poll's
# write has committed: the crash window between the items and their vectors.
_KILLED_POLL = """
import asyncio, os, signal, sys
from datetime import datetime, timezone
from bot.clock import FrozenClock
from bot.models import ContentKind, SourceSpec
from bot.poller import Poller
from bot.sources.feeds import parse_feed_off_loop
from bot.sources.http import HttpFetcher
from bot.sources.rss import RssSource
from bot.storage import SqliteStorage

class Killer:
    def sums(self, texts):
        os.kill(os.getpid(), signal.SIGKILL)
    embed = sums

async def main(path, url):
    now = datetime(2026, 12, 1, tzinfo=timezone.utc)
    store = await SqliteStorage.open(path)
    fetcher = HttpFetcher(timeout_s=5, allow_private_addresses=True)
    await store.add_source(SourceSpec("podcast", "rss", url, ContentKind.EPISODE, max_age_s=3650 * 86400), now)
    poller = Poller(store, {"rss": RssSource(fetcher, parse=parse_feed_off_loop)}, clock=FrozenClock(now),
                    embedder=Killer)
    await poller.poll("podcast", force=True)
    print("not killed")

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def test_a_sigkill_between_the_poll_and_its_vectors_loses_nothing(
        tmp_path, feed_server: FeedServer, model: Embedder) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    import asyncio
    import sys

    from bot.storage import SqliteStorage

    feed_server.add_feed("/feed.xml", feed(feed_server, [Episode(n) for n in range(1, 6)]))
    path = tmp_path / "killed.db"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _KILLED_POLL, str(path), feed_server.url("/feed.xml"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == -9, (out, err)  # killed inside the embedding, after the write
    async with await SqliteStorage.open(path) as store:
        stored = await store.feed_items("podcast", 10)
        assert sorted(s.item.episode_number or 0 for s in stored) == [1, 2, 3, 4, 5]  # the poll's write stands
        assert len(await store.items_needing_vectors(10)) == 5  # and its items are due: the start's backfill
        assert await embed_pending(store, model) == 5
        assert await store.items_needing_vectors(10) == []
        assert len(await store.feed_items("podcast", 10)) == 5  # nothing twice
