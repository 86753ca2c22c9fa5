"""Transcripts (``podcast:transcript``) -> timed segments. Pure, one parser per format.

Formats, as the Podcasting 2.0 transcript spec lists them:
- SRT (``application/srt``, ``application/x-subrip``): numbered cues,
  ``00:01:02,500 --> 00:01:05,000``, text lines, a blank line;
- WebVTT (``text/vtt``): ``WEBVTT`` first, cues ``01:02.500 --> 01:05.000``
  (hours optional) with optional settings; NOTE/STYLE/REGION blocks and
  inline tags (``<v Speaker>``, ``<c>``, ``<00:01.000>``) are not text;
- JSON (``application/json``): ``{"version", "segments": [{"startTime",
  "endTime"?, "body", "speaker"?}]}``, often one word per segment;
- HTML (``text/html``): paragraphs, each timed by the last ``<time>`` (or a
  leading "12:30" / "[12:30]") before it; text before any time is at 0.

A malformed cue or segment is skipped (transcripts are machine-made and a
single bad line is common); a document with no usable text at all raises
DocumentParseError. ``parse_transcript`` picks the parser (declared type,
then the body's own shape) and merges cues into passages of about
``PASSAGE_S`` seconds: what search indexes and quotes. A hit then names a
minute a member can jump to, and one episode is ~120 rows an hour, not the
~1,000 cues of its SRT.
"""

from __future__ import annotations

import json
import math
import re

from bot.errors import DocumentParseError
from bot.models import TranscriptSegment
from bot.sources.text import one_line, strip_html

PASSAGE_S = 30
# A passage longer than this (characters) is closed early: snippets and the
# index stay useful even when a transcript has no timing inside a paragraph.
MAX_PASSAGE_CHARS = 1200
# More than any real transcript (a 4-hour show, one segment per word).
MAX_SEGMENTS = 100_000
MAX_START_S = 7 * 86400

# ---------------------------------------------------------------- time stamps

_CUE_TIME = re.compile(
    r"^\s*(?:(\d{1,3}):)?(\d{1,2}):(\d{2})(?:[,.](\d{1,3}))?\s*-->\s*"
    r"(?:(\d{1,3}):)?(\d{1,2}):(\d{2})(?:[,.](\d{1,3}))?",
    re.ASCII,
)
_VTT_TAG = re.compile(r"<[^>\n]*>")


def _seconds(hours: str | None, minutes: str, seconds: str) -> int | None:
    m, s = int(minutes), int(seconds)
    if s > 59 or (hours is not None and m > 59):
        return None
    return (int(hours) if hours else 0) * 3600 + m * 60 + s


def _cue_times(line: str) -> tuple[int, int | None] | None:
    m = _CUE_TIME.match(line)
    if m is None:
        return None
    start = _seconds(m.group(1), m.group(2), m.group(3))
    end = _seconds(m.group(5), m.group(6), m.group(7))
    if start is None:
        return None
    return start, end if end is not None and end >= start else None


def _decode(body: bytes) -> str:
    # utf-8-sig drops a BOM; a stray invalid byte must not lose the whole transcript.
    return body.decode("utf-8-sig", errors="replace").replace("\r\n", "\n").replace("\r", "\n")


def _blocks(text: str) -> list[list[str]]:
    # \s* spans several blank lines: a block never starts with an empty line
    return [block.strip("\n").split("\n") for block in re.split(r"\n\s*\n", text.strip("\n"))]


def _need(segments: list[TranscriptSegment], what: str) -> tuple[TranscriptSegment, ...]:
    if not segments:
        raise DocumentParseError(f"transcript: no {what} with text and a time")
    return tuple(segments)


# ----------------------------------------------------------------------- SRT


def parse_srt(text: str) -> tuple[TranscriptSegment, ...]:
    """SubRip text -> cues in file order; DocumentParseError when none is usable."""
    segments: list[TranscriptSegment] = []
    for lines in _blocks(text):
        at = next((i for i, line in enumerate(lines[:2]) if "-->" in line), None)
        if at is None:
            continue  # no time line where one belongs: a broken cue
        times = _cue_times(lines[at])
        body = one_line(strip_html(" ".join(lines[at + 1:])))  # SRT allows <i>, <b>, <font>
        if times is None or not body:
            continue
        segments.append(TranscriptSegment(times[0], body, times[1]))
        if len(segments) > MAX_SEGMENTS:
            raise DocumentParseError(f"transcript: more than {MAX_SEGMENTS} cues")
    return _need(segments, "cue")


# -------------------------------------------------------------------- WebVTT


def parse_vtt(text: str) -> tuple[TranscriptSegment, ...]:
    """WebVTT text -> cues in file order; DocumentParseError when not WebVTT or none is usable."""
    if not text.lstrip("\ufeff").startswith("WEBVTT"):
        raise DocumentParseError("transcript: a WebVTT file must start with WEBVTT")
    segments: list[TranscriptSegment] = []
    for n, lines in enumerate(_blocks(text)):
        if n == 0 or not lines or lines[0].startswith(("NOTE", "STYLE", "REGION")):
            continue  # the header block, comments and styling
        at = next((i for i, line in enumerate(lines[:2]) if "-->" in line), None)
        if at is None:
            continue
        times = _cue_times(lines[at])
        body = one_line(_VTT_TAG.sub(" ", " ".join(lines[at + 1:])))
        body = one_line(strip_html(body)) if "&" in body else body  # entities (&amp;) only
        if times is None or not body:
            continue
        segments.append(TranscriptSegment(times[0], body, times[1]))
        if len(segments) > MAX_SEGMENTS:
            raise DocumentParseError(f"transcript: more than {MAX_SEGMENTS} cues")
    return _need(segments, "cue")


# ---------------------------------------------------------------------- JSON


def _time(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if not math.isfinite(value) or value < 0 or value > MAX_START_S:
        return None
    return int(value)


def parse_transcript_json(text: str) -> tuple[TranscriptSegment, ...]:
    """Podcasting 2.0 JSON transcript -> segments; DocumentParseError when unusable."""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise DocumentParseError(f"transcript: not JSON ({type(exc).__name__})") from None
    raw = doc.get("segments") if isinstance(doc, dict) else None
    if not isinstance(raw, list):
        raise DocumentParseError("transcript: no \"segments\" list in the JSON document")
    if len(raw) > MAX_SEGMENTS:
        raise DocumentParseError(f"transcript: more than {MAX_SEGMENTS} segments")
    segments = []
    for entry in raw:
        if not isinstance(entry, dict) or not isinstance(entry.get("body"), str):
            continue
        start, body = _time(entry.get("startTime")), one_line(entry["body"])
        if start is None or not body:
            continue
        end = _time(entry.get("endTime"))
        segments.append(TranscriptSegment(start, body, end if end is not None and end >= start else None))
    return _need(segments, "segment")


# ---------------------------------------------------------------------- HTML

_TIME_ELEMENT = re.compile(r"<time\b[^>]*>(.*?)</time\s*>", re.IGNORECASE | re.DOTALL)
# Speaker labels (<cite>Hussein:</cite>) precede the <time> of their
# paragraph, so they would land in the previous one; nor are they searched
# for (WebVTT's <v Speaker> is dropped the same way).
_CITE_ELEMENT = re.compile(r"<cite\b[^>]*>.*?</cite\s*>", re.IGNORECASE | re.DOTALL)
_LEADING_CLOCK = re.compile(r"^\[?(?:(\d{1,2}):)?(\d{1,2}):(\d{2})\]?\s+", re.ASCII)
_PARAGRAPH = re.compile(r"\n\s*\n")


def _clock(text: str) -> int | None:
    m = re.fullmatch(r"\s*(?:(\d{1,2}):)?(\d{1,2}):(\d{2})(?:[.,]\d{1,3})?\s*", text, re.ASCII)
    return _seconds(m.group(1), m.group(2), m.group(3)) if m else None


def parse_transcript_html(html: str) -> tuple[TranscriptSegment, ...]:
    """An HTML transcript -> one segment per paragraph, timed by the last time before it."""
    # <time>12:30</time> becomes a marker paragraph the loop below reads back.
    marked = _TIME_ELEMENT.sub(lambda m: f"<p>\x00{strip_html(m.group(1))}\x00</p>", _CITE_ELEMENT.sub("", html))
    segments: list[TranscriptSegment] = []
    current = 0
    for paragraph in _PARAGRAPH.split(strip_html(marked)):
        for line in paragraph.split("\n"):
            line = line.strip()
            if line.startswith("\x00") and line.endswith("\x00"):
                seconds = _clock(line.strip("\x00"))
                if seconds is not None:
                    current = seconds
                continue
            if m := _LEADING_CLOCK.match(line):
                seconds = _seconds(m.group(1), m.group(2), m.group(3))
                if seconds is not None:
                    current, line = seconds, line[m.end():]
            line = one_line(line.replace("\x00", ""))
            if line:
                segments.append(TranscriptSegment(current, line))
        if len(segments) > MAX_SEGMENTS:
            raise DocumentParseError(f"transcript: more than {MAX_SEGMENTS} paragraphs")
    return _need(segments, "paragraph")


# ------------------------------------------------------------------ dispatch

_BY_TYPE = {
    "application/srt": "srt", "application/x-subrip": "srt", "text/srt": "srt",
    "text/vtt": "vtt", "text/webvtt": "vtt",
    "application/json": "json", "text/json": "json",
    "text/html": "html", "application/xhtml+xml": "html",
}


def transcript_format(media_type: str | None, text: str) -> str:
    """Which parser: the body's own shape when it is unmistakable (hosts
    mislabel transcripts: an SRT served as text/plain), else the declared
    type, else SRT if it has cue times."""
    head = text.lstrip("\ufeff \n\t")[:200]
    if head.startswith("WEBVTT"):
        return "vtt"
    if head.startswith(("{", "[")):
        return "json"
    declared = _BY_TYPE.get((media_type or "").split(";")[0].strip().lower())
    if declared is not None and declared != "vtt":
        return declared
    if "-->" in text[:2000]:
        return "srt"  # cue times without a WEBVTT line: SubRip, whatever the label
    if declared == "vtt":
        return "vtt"  # which then says what is missing
    if head.startswith("<"):
        return "html"
    raise DocumentParseError(f"transcript: unknown format (declared {media_type or 'nothing'})")


_PARSERS = {"srt": parse_srt, "vtt": parse_vtt, "json": parse_transcript_json, "html": parse_transcript_html}


def merge_passages(segments: tuple[TranscriptSegment, ...], window_s: int = PASSAGE_S) -> tuple[TranscriptSegment, ...]:
    """Consecutive segments joined into passages of about ``window_s`` seconds
    (a passage starts at its first segment's time), in time order."""
    ordered = sorted(segments, key=lambda s: s.start_s)  # stable: file order within a second
    passages: list[TranscriptSegment] = []
    start, size = 0, 0
    end: int | None = None
    parts: list[str] = []
    for seg in ordered:
        if parts and (seg.start_s - start >= window_s or size + len(seg.text) > MAX_PASSAGE_CHARS):
            passages.append(TranscriptSegment(start, " ".join(parts), end))
            parts, size = [], 0
        if not parts:
            start = seg.start_s
        parts.append(seg.text)
        size += len(seg.text) + 1
        end = seg.end_s if seg.end_s is not None else end
    if parts:
        passages.append(TranscriptSegment(start, " ".join(parts), end))
    return tuple(passages)


def parse_transcript(body: bytes, media_type: str | None = None) -> tuple[TranscriptSegment, ...]:
    """A transcript document -> passages in time order; DocumentParseError if unusable."""
    text = _decode(body)
    if not text.strip():
        raise DocumentParseError("transcript: empty document")
    return merge_passages(_PARSERS[transcript_format(media_type, text)](text))
