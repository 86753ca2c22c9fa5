"""The chapter channel of search (issue #15): "episode title: chapter title"
documents found by a word of the question in the chapter title, kept by
the same soft-AND rule as items (against the chapter's own vector), ranked
by RRF of the lexical order and the dense cosine, shown as a labelled
"In chapters" section (bot.presenter.chapter_section) on the first page."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest

from adapters.discord.render import render_reply as discord_reply
from bot.clock import FrozenClock
from bot.commands import Commands, reply_to_json
from bot.commands.member import chapter_matches
from bot.documents import TranscriptHit
from bot.hybrid import ChapterCandidate, SemanticModel, embed_pending, rank_chapters
from bot.models import Chapter, ContentKind, Item, StoredItem
from bot.plaintext import render_text
from bot.presenter import CHAPTERS_LABEL, chapter_section, chapter_views, transcript_section
from bot.search import parse_query
from bot.sources.youtube.addresses import YouTubeAddresses
from tests.backends import Target, open_target
from tests.catalog_helpers import MEMBER
from tests.judged import store_catalogue

NOW = datetime(2026, 6, 20, 12, tzinfo=timezone.utc)


# -- the rule (pure) ------------------------------------------------------------------

def _c(item_id: int, position: int, present: set[int], score: float) -> ChapterCandidate:
    return ChapterCandidate(item_id, position, frozenset(present), score)


def test_without_a_model_a_chapter_needs_every_word_and_the_lexical_order_stands() -> None:
    cands = [_c(1, 0, {0}, 9.0), _c(2, 3, {0, 1}, 1.0), _c(3, 1, {0, 1}, 2.0)]
    ranked = rank_chapters(cands, None, {}, None, 2)
    assert [(c.item_id, c.position) for c in ranked] == [(3, 1), (2, 3)]  # more words, then the score


def test_a_missing_word_close_to_the_chapter_vector_keeps_it_and_rrf_orders_by_both() -> None:
    x, y = np.array([1.0, 0.0], dtype=np.float32), np.array([0.0, 1.0], dtype=np.float32)
    vectors = {(1, 0): x, (2, 0): y, (3, 0): y}
    cands = [_c(1, 0, {0}, 5.0),  # "missing" is close to its vector: kept
             _c(2, 0, {0}, 4.0),  # far: dropped
             _c(3, 0, {0, 1}, 1.0),  # every word: kept whatever its vector
             _c(4, 0, {0}, 9.0)]  # no vector yet: must have every word
    ranked = rank_chapters(cands, lambda missing: x, vectors, x, 2)
    # lexical order: 3 (both words) then 1; dense: 1 (cosine 1) then 3 (0): an RRF tie keeps the lexical order
    assert [c.item_id for c in ranked] == [3, 1]
    # a question close to neither changes nothing; the limit cuts
    assert [c.item_id for c in rank_chapters(cands, lambda missing: x, vectors, x, 2, limit=1)] == [3]
    # one word of three is not a real share of the question: never by meaning
    assert rank_chapters([_c(1, 0, {0}, 5.0)], lambda missing: x, vectors, x, 3) == []
    assert rank_chapters([], None, {}, None, 1) == []


def test_the_section_line_names_the_episode_and_opens_the_chapter_where_it_can() -> None:
    def stored(link: str) -> StoredItem:
        item = Item(title="Kafka  consumer groups", link=link, guid="g", chapters=(Chapter(1080, "Rebalancing"),))
        return StoredItem(1, "pod", ContentKind.EPISODE, "g", item, NOW)

    page = stored("https://pod.example.org/e085")
    video = stored("https://www.youtube.com/watch?v=abcdefghijk")
    section = chapter_section([(page, page.item.chapters[0]), (video, video.item.chapters[0])])
    assert section is not None and section.label == CHAPTERS_LABEL
    first, second = section.lines
    assert first.text == "“Kafka consumer groups”: Rebalancing (at 18:00)"
    assert first.url == "https://pod.example.org/e085"  # a podcast page cannot seek
    assert second.url == "https://www.youtube.com/watch?v=abcdefghijk&t=1080"
    assert chapter_section([]) is None


def test_section_lines_of_a_video_off_youtube_com_seek_like_its_chapters() -> None:
    # A non-default [youtube] base_url puts a video's link on another host;
    # its yt:videoId (not the host) is what says the link can take t=, as
    # the announcement's chapter links already knew (chapter_views).
    link = YouTubeAddresses("http://127.0.0.1:8321").watch("abcdefghijk")
    item = Item(title="Kafka: consumer groups", link=link, guid="g", video_id="abcdefghijk",
                chapters=(Chapter(1080, "Rebalancing"),))
    video = StoredItem(1, "yt", ContentKind.VIDEO, "g", item, NOW)
    chapters = chapter_section([(video, item.chapters[0])])
    transcripts = transcript_section([TranscriptHit(video, 95, "the rebalancing protocol")], ["rebalancing"])
    assert chapters is not None and transcripts is not None
    seeking = "http://127.0.0.1:8321/watch?v=abcdefghijk&t="
    assert chapters.lines[0].url == seeking + "1080"
    assert transcripts.lines[0].url == seeking + "95"
    assert chapter_views(link, item.chapters, video_id="abcdefghijk")[0][0].url == seeking + "1080"


# -- through the bot, on both backends --------------------------------------------------

@pytest.fixture(scope="module")
def model() -> SemanticModel:
    semantic = SemanticModel()
    assert semantic.get() is not None
    return semantic


def _lines(reply: object) -> list[str]:
    sections = [s for s in reply.sections if s.label == CHAPTERS_LABEL]  # type: ignore[attr-defined]
    return [line.text for s in sections for line in s.lines]


async def test_chapters_answer_in_their_own_section(db: Target, model: SemanticModel) -> None:
    async with await open_target(db) as store:
        await store_catalogue(store, NOW)
        embedder = model.get()
        assert embedder is not None
        await embed_pending(store, embedder)
        semantic = Commands(store, clock=FrozenClock(NOW), semantic=model)
        lexical = Commands(store, clock=FrozenClock(NOW))

        async def channel(bot: Commands, text: str) -> list[str]:
            return [f"{s.item.title}: {c.title}" for s, c in await chapter_matches(bot._ctx, parse_query(text), None)]

        rebalancing = "Kafka consumer groups and partitions: Rebalancing"
        assert (await channel(semantic, "kafka rebalancing"))[:1] == [rebalancing]
        assert (await channel(lexical, "kafka rebalancing"))[:1] == [rebalancing]
        # the reply does not repeat a chapter already listed under its episode on the page
        reply = await semantic("search kafka rebalancing", MEMBER)
        assert any(c.title == "Rebalancing" for i in reply.items for c in i.chapters)
        assert not any(line.endswith("Rebalancing (at 18:00)") for line in _lines(reply))

        # "failure" is in no chapter title of the SSD episode: lexically no chapter, by meaning its chapter
        assert await channel(lexical, "ssd power failure") == []
        assert (await channel(semantic, "ssd power failure"))[:1] == [
            "Your SSD lies but that's ok | Postgres fsync: What happens if SSD loses power"]

        # chapters the page does not list get their own section, rendered on every surface
        reply = await semantic("search page faults", MEMBER)
        assert "“CPU and Kernel Page Faults”: File backed page fault (at 39:39)" in _lines(reply)
        assert "In chapters:" in render_text(reply)
        assert f"**{CHAPTERS_LABEL}**" in (discord_reply(reply).content or "")
        assert CHAPTERS_LABEL in [s["label"] for s in reply_to_json(reply)["sections"]]
        # the first page only
        assert _lines(await semantic("search page faults page 2", MEMBER)) == []

        # never for questions with no good answer
        for text in ("linux desktop gaming", "hiring backend engineers", "postgres gui client", "react hooks",
                     "ssd pricing", "postgres certification"):
            assert await channel(semantic, text) == [], text
            assert _lines(await semantic(f"search {text}", MEMBER)) == [], text
