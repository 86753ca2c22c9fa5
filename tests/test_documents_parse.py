"""The pure parsers for what an item links to: JSON chapters and the four transcript formats.

Samples in tests/fixtures/documents are shaped like what podcast hosts
serve (Buzzsprout/Podlove-style JSON chapters, speech-recognizer SRT and
WebVTT, Podcasting 2.0 JSON, an HTML transcript page); the malformed cases
are the ones such files really have: a broken cue, a bad number, a file
that is something else.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import DocumentParseError
from bot.models import Chapter, TranscriptSegment
from bot.sources.chapters import MAX_JSON_CHAPTERS, parse_chapters_json
from bot.sources.transcripts import (
    merge_passages,
    parse_srt,
    parse_transcript,
    parse_transcript_html,
    parse_transcript_json,
    parse_vtt,
    transcript_format,
)

DOCS = Path(__file__).parent / "fixtures" / "documents"


def _read(name: str) -> bytes:
    return (DOCS / name).read_bytes()


# ------------------------------------------------------------------ chapters JSON


def test_json_chapters_sample() -> None:
    assert parse_chapters_json(_read("ep141.chapters.json")) == (
        Chapter(0, "Intro"),
        Chapter(72, "How replication slots work"),  # 72.5 floored: links are whole seconds
        # "Sponsor" has toc: false: a silent marker, not a chapter
        Chapter(520, "The alert that never fired"),
        Chapter(1265, "max_slot_wal_keep_size and friends"),
        Chapter(2100, "Summary"),
    )


def test_json_chapters_sorted_deduplicated_and_bad_entries_skipped() -> None:
    body = (b'{"version":"1.2.0","chapters":[{"startTime":600,"title":"  Late\\n  one "},'
            b'{"startTime":0,"title":"Intro"},{"startTime":0,"title":"Dup"},{"startTime":-5,"title":"neg"},'
            b'{"startTime":"60","title":"string time"},{"startTime":true,"title":"bool"},{"startTime":90},'
            b'{"startTime":1e400,"title":"inf"},"junk",{"startTime":120,"title":""}]}')
    assert parse_chapters_json(body) == (Chapter(0, "Intro"), Chapter(600, "Late one"))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "not JSON"),
        (b"<html>404</html>", "not JSON"),
        (b'{"version":"1.2.0","chapters":[{"startTime":0,"title":"a"}', "not JSON"),  # truncated
        (b"\xff\xfe{}", "not JSON"),
        (b"[1, 2]", 'no "chapters" list'),
        (b'{"chapters": {"startTime": 0}}', 'no "chapters" list'),
        (b'{"chapters": []}', "no chapter"),
        (b'{"chapters": [{"title": "no start"}]}', "no chapter"),
        (b"[" * 100_000, "not JSON"),  # deep nesting: RecursionError, reported
    ],
)
def test_json_chapters_malformed(body: bytes, message: str) -> None:
    with pytest.raises(DocumentParseError, match=message):
        parse_chapters_json(body)


def test_json_chapters_too_many() -> None:
    body = ('{"chapters":[' + ",".join(f'{{"startTime":{i},"title":"c{i}"}}'
                                         for i in range(MAX_JSON_CHAPTERS + 1)) + "]}").encode()
    with pytest.raises(DocumentParseError, match="entries"):
        parse_chapters_json(body)


def test_json_chapter_titles_are_capped() -> None:
    body = b'{"chapters":[{"startTime":0,"title":"' + b"word " * 100 + b'"}]}'
    (chapter,) = parse_chapters_json(body)
    assert len(chapter.title) <= 100 and chapter.title.endswith("…")


# ---------------------------------------------------------------------- transcripts

EXPECTED_CUES = [0, 4, 750, 756, 2100]


def test_srt_sample() -> None:
    cues = parse_srt(_read("ep141.srt").decode())
    assert [c.start_s for c in cues] == EXPECTED_CUES
    assert cues[2] == TranscriptSegment(
        750, "The WAL kept growing because the logical slot held back every segment since Tuesday.", 756)


def test_vtt_sample() -> None:
    cues = parse_vtt(_read("ep141.vtt").decode())
    assert [c.start_s for c in cues] == [0, 4, 750, 2100]
    assert cues[0].text == "Welcome to the backend engineering show."  # <v Hussein> is markup
    assert cues[2].text == "The WAL kept growing because the logical slot held back every segment since Tuesday."
    assert cues[3].text == "Set max_slot_wal_keep_size & alert on slot lag."


def test_json_transcript_sample() -> None:
    segments = parse_transcript_json(_read("ep141.transcript.json").decode())
    assert [s.start_s for s in segments] == [0, 0, 1, 750, 2100]
    assert segments[2] == TranscriptSegment(1, "the backend engineering show.", 4)


def test_html_transcript_sample() -> None:
    segments = parse_transcript_html(_read("ep141.html").decode())
    assert [s.start_s for s in segments] == [0, 750, 2100]  # speaker labels (<cite>) are not text
    texts = {s.start_s: s.text for s in segments}
    assert texts[750] == "The WAL kept growing because the logical slot held back every segment since Tuesday."
    assert texts[2100] == "Set max_slot_wal_keep_size, and alert on slot lag."
    assert all("margin" not in s.text and "Transcript: episode" not in s.text for s in segments)


def test_html_leading_clock_times() -> None:
    segments = parse_transcript_html("<p>[00:00] Hello</p><p>12:30 The slot</p><p>still the slot</p>")
    assert [(s.start_s, s.text) for s in segments] == [(0, "Hello"), (750, "The slot"), (750, "still the slot")]


@pytest.mark.parametrize("name", ["ep141.srt", "ep141.vtt", "ep141.transcript.json", "ep141.html"])
def test_every_format_gives_the_same_passages(name: str) -> None:
    passages = parse_transcript(_read(name))
    assert [p.start_s for p in passages] == [0, 750, 2100]
    assert "logical slot held back every segment" in passages[1].text
    assert "max_slot_wal_keep_size" in passages[2].text


def test_broken_cues_are_skipped_not_fatal() -> None:
    text = ("1\n00:00:01,000 --> 00:00:02,000\nfine\n\n"
            "2\n00:00:99,000 --> 00:01:00,000\nbad seconds\n\n"
            "3\nno time line here\n\n"
            "4\n00:00:05,000 --> 00:00:06,000\n\n\n"
            "5\n00:01:00,000 --> 00:00:59,000\nends before it starts\n")
    assert parse_srt(text) == (TranscriptSegment(1, "fine", 2), TranscriptSegment(60, "ends before it starts"))


@pytest.mark.parametrize(
    ("body", "media_type", "message"),
    [
        (b"", "application/srt", "empty"),
        (b"   \n", "text/vtt", "empty"),
        (b"1\nnot a time\nhello\n", "application/srt", "no cue"),
        (b"Hello, this is not WebVTT\n\nnor anything else", "text/vtt", "start with WEBVTT"),
        (b'{"segments": "nope"}', "application/json", 'no "segments"'),
        (b'{"segments": [{"startTime": 0}]}', "application/json", "no segment"),
        (b'{"segments": [', "application/json", "not JSON"),
        (b"<html><body></body></html>", "text/html", "no paragraph"),
        (b"just words", "text/plain", "unknown format"),
        (b"\x00\x01\x02", None, "unknown format"),
    ],
)
def test_malformed_transcripts(body: bytes, media_type: str | None, message: str) -> None:
    with pytest.raises(DocumentParseError, match=message):
        parse_transcript(body, media_type)


def test_vtt_needs_its_header() -> None:
    with pytest.raises(DocumentParseError, match="start with WEBVTT"):
        parse_vtt("00:01.000 --> 00:02.000\nx")


def test_format_is_sniffed_when_mislabelled() -> None:
    assert transcript_format("text/plain", "1\n00:00:01,000 --> 00:00:02,000\nhi") == "srt"
    assert transcript_format("application/srt", "WEBVTT\n\n00:01.000 --> 00:02.000\nhi") == "vtt"
    assert transcript_format("text/html", '{"segments": []}') == "json"
    assert transcript_format(None, "<p>hi</p>") == "html"


def test_passages_group_about_thirty_seconds() -> None:
    cues = tuple(TranscriptSegment(s, f"w{s}") for s in range(0, 100, 5))
    passages = merge_passages(cues)
    assert [p.start_s for p in passages] == [0, 30, 60, 90]
    assert passages[0].text == "w0 w5 w10 w15 w20 w25"


@settings(max_examples=150)
@given(st.binary(max_size=400), st.sampled_from([None, "application/srt", "text/vtt", "application/json", "text/html"]))
def test_any_bytes_give_passages_or_a_parse_error(body: bytes, media_type: str | None) -> None:
    try:
        passages = parse_transcript(body, media_type)
    except DocumentParseError:
        return
    starts = [p.start_s for p in passages]
    assert starts == sorted(starts) and all(p.text.strip() for p in passages)


@settings(max_examples=150)
@given(st.binary(max_size=300))
def test_any_bytes_give_chapters_or_a_parse_error(body: bytes) -> None:
    try:
        chapters = parse_chapters_json(body)
    except DocumentParseError:
        return
    assert [c.start_s for c in chapters] == sorted({c.start_s for c in chapters})


def test_snippet_cuts_around_the_first_query_word() -> None:
    from bot.documents import snippet

    text = " ".join(f"w{i}" for i in range(100)) + " replication slots held the WAL " + " ".join(
        f"v{i}" for i in range(100))
    cut = snippet(text, ["replication"], width=60)
    assert cut.startswith("…") and cut.endswith("…") and "replication slots" in cut
    assert len(cut) <= 60 + 2 + 10
    assert snippet("short text", ["nothing"]) == "short text"
    assert snippet("", ["x"]) == ""
