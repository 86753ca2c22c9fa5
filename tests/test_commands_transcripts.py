"""Transcript hits in member search: their own labelled section under the
results ("at 12:30 in episode 220: …"), linked to that minute where the
platform can seek, the same lines on every adapter and in ``ask --json``."""

from __future__ import annotations

import pytest

from adapters.discord.render import render_reply as discord_reply
from adapters.slack.render import render_reply as slack_reply
from bot.commands import reply_to_json
from bot.documents import DocumentWrite
from bot.models import ContentKind, DocumentKind, TranscriptSegment
from bot.presenter import CHAPTERS_LABEL, TRANSCRIPTS_LABEL
from bot.plaintext import render_text
from tests.catalog_helpers import MEMBER, NOW
from tests.chat import Chat

EPISODE_PAGE = "https://podcasters.spotify.com/pod/show/hnasr/episodes/postgres-is-half-as-fast-in-linux-7-0-e220"


async def _transcribe(chat: Chat, kind: ContentKind, n: int, passages: tuple[TranscriptSegment, ...]) -> int:
    stored = (await chat.store.latest_items(kind, limit=n + 1))[n]
    await chat.store.write_documents([DocumentWrite(stored.id, DocumentKind.TRANSCRIPT, f"https://t.example/{stored.id}.vtt",
                                                    "fetched", NOW, segments=passages)])
    return stored.id


@pytest.fixture
async def transcribed(chat: Chat) -> Chat:
    await _transcribe(chat, ContentKind.EPISODE, 0, (
        TranscriptSegment(0, "Welcome back to the backend engineering show."),
        TranscriptSegment(750, "The spinlock contention shows up because the preemption model changed in the "
                               "new kernel, and every backend process fights for the same buffer mapping lock."),
    ))
    await _transcribe(chat, ContentKind.VIDEO, 0, (
        TranscriptSegment(95, "Here the spinlock is held across an fsync, which is the real problem."),
    ))
    return chat


async def test_search_shows_transcript_hits_in_their_own_section(transcribed: Chat) -> None:
    reply = await transcribed.say("search spinlock", MEMBER)
    # transcripts come last, after any chapter section (tests/test_search_chapters.py)
    assert reply.sections[-1].label == TRANSCRIPTS_LABEL and CHAPTERS_LABEL not in [s.label for s in reply.sections[1:]]
    section = reply.sections[-1]
    podcast = next(line for line in section.lines if "episode 220" in line.text)
    assert podcast.text.startswith("at 12:30 in episode 220: ")
    assert "spinlock contention" in podcast.text
    assert podcast.url == EPISODE_PAGE  # a podcast page cannot seek: linked as it is
    video = next(line for line in section.lines if "video" in line.text)
    assert video.text.startswith("at 1:35 in video “Postgres fsync and SSD caches, explained with a demo”: ")
    assert video.url == "https://www.youtube.com/watch?v=5_pYJ3bq4IA&t=95"  # opens at that minute
    assert len(section.lines) == 2

    text = render_text(reply)
    assert f"{TRANSCRIPTS_LABEL}:" in text and "↳ at 12:30 in episode 220: " in text
    urls = {line["url"] for line in reply_to_json(reply)["sections"][-1]["lines"]}
    assert urls == {EPISODE_PAGE, "https://www.youtube.com/watch?v=5_pYJ3bq4IA&t=95"}
    discord = discord_reply(reply).content or ""
    assert f"**{TRANSCRIPTS_LABEL}**" in discord and "<https://www.youtube.com/watch?v=5_pYJ3bq4IA&t=95>" in discord
    slack = slack_reply(reply)
    mrkdwn = [b["text"]["text"] for b in slack["blocks"] if b.get("type") == "section"]
    assert any("<https://www.youtube.com/watch?v=5_pYJ3bq4IA&amp;t=95|at 1:35 in video" in m
               or "<https://www.youtube.com/watch?v=5_pYJ3bq4IA&t=95|at 1:35 in video" in m for m in mrkdwn), mrkdwn


async def test_words_only_said_in_a_transcript_still_answer(transcribed: Chat) -> None:
    reply = await transcribed.say("search buffer mapping lock", MEMBER)
    assert reply.items == ()
    assert reply.text == "Nothing in titles or show notes for “buffer mapping lock”, but it was said:"
    (section,) = reply.sections
    (line,) = section.lines
    assert line.text.startswith("at 12:30 in episode 220: The spinlock") and "buffer mapping lock" in line.text


async def test_kind_and_pages_and_nothing_found(transcribed: Chat) -> None:
    reply = await transcribed.say("videos about spinlock", MEMBER)
    assert [len(s.lines) for s in reply.sections] == [1] and "video" in reply.sections[0].lines[0].text
    assert (await transcribed.say("search zebra crossings", MEMBER)).sections == ()
    assert (await transcribed.say("search zebra crossings", MEMBER)).text.startswith("Nothing found")
    # Hostile text is still just words.
    for text in ['search "NEAR(', "search *", "search spinlock:*", "search ' OR 1=1 --"]:
        reply = await transcribed.say(text, MEMBER)
        assert reply.kind in ("search", "not-found", "error"), text


async def test_no_transcripts_no_section(chat: Chat) -> None:
    reply = await chat.say("search postgres", MEMBER)
    assert reply.items and TRANSCRIPTS_LABEL not in [s.label for s in reply.sections]
    # a question no chapter title answers: no section at all, and ask --json keeps its three keys
    reply = await chat.say("search incremental backups", MEMBER)
    assert reply.items and reply.sections == ()
    assert "sections" not in reply_to_json(reply)
