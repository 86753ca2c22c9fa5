"""Feed bytes -> ParsedFeed. Pure parsing, no I/O.

A hardened front (encoding first, then entity declarations removed, see
``_harden``), then one of two readers, then one normaliser:

- ``bot.sources.fastfeed`` (lxml) reads the shapes real feeds use (RSS and
  Atom 1.0 with the itunes, media, yt and podcast namespaces) ~10x faster,
  and declines any document it cannot read exactly as feedparser would;
- feedparser reads everything else (broken XML, RSS 1.0, old Atom, ...).

Both hand over feedparser's dictionary shape (``FeedDoc``), which the
normaliser below turns into ``Item`` dataclasses, so the rules for titles,
summaries, links, dates and chapters live in one place whichever reader ran.
"""

from __future__ import annotations

import asyncio
import calendar
import codecs
import io
import logging
import re
import time
from datetime import datetime, timezone
from typing import Any, Generator, Mapping
from urllib.parse import urljoin

import feedparser
from feedparser.encodings import convert_to_utf8
from feedparser.exceptions import ThingsNobodyCaresAboutButMe

from bot.errors import FeedParseError
from bot.models import Chapter, DocumentKind, DocumentLink, Item, ParsedFeed
from bot.sources import feedparser_ext  # noqa: F401 - feedparser reads <podcast:episode> (see there)
from bot.sources.fastfeed import Declined, drain, read_feed_steps
from bot.sources.feeddoc import FeedDoc
from bot.sources.text import (
    normalize_space,
    one_line,
    parse_chapters,
    parse_duration_text,
    strip_html,
)

log = logging.getLogger("showbot.parse")

UNTITLED = "(untitled)"
_TITLE_FROM_SUMMARY_CHARS = 80
_SNIFF_BYTES = 4096

# ------------------------------------------------------------------ transcoding

# BOMs and the BOM-less "<?xm" sniff of XML spec appendix F, for the encodings
# that are not ASCII-compatible: a regex over their raw bytes sees nothing.
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
)
_MARKERS: tuple[tuple[bytes, str], ...] = (
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00<\x00?", "utf-16-be"),
    (b"<\x00?\x00", "utf-16-le"),
    # BOM-less UTF-16 starting straight with an element ("<rss"): the "<" is
    # followed by a NUL byte, which never happens in an ASCII-compatible file.
    (b"\x00<", "utf-16-be"),
    (b"<\x00", "utf-16-le"),
)
_XML_DECL = re.compile(rb"^\s*<\?xml[^>]{0,400}?\?>")
_UTF8_DECL = b"<?xml version='1.0' encoding='utf-8'?>"


def _sniff_wide_encoding(body: bytes) -> tuple[str, int] | None:
    """(codec, bytes to skip) for a BOM or a UTF-16/32 '<?xm' pattern, else None."""
    for bom, codec in _BOMS:
        if body.startswith(bom):
            return codec, len(bom)
    for marker, codec in _MARKERS:
        if body.startswith(marker):
            return codec, 0
    return None


def _replace_declaration(data: bytes) -> bytes:
    """Make the XML declaration say UTF-8 (what the bytes now are)."""
    if m := _XML_DECL.match(data):
        return _UTF8_DECL + data[m.end() :]
    return _UTF8_DECL + b"\n" + data


_DECLARED_ENCODING = re.compile(rb"""^\s*<\?xml[^>]{0,200}?encoding\s*=\s*["']([A-Za-z0-9._:-]{1,40})["']""")


def _declared_encoding(body: bytes) -> str | None:
    """The encoding named in an ASCII-compatible XML declaration, if any."""
    m = _DECLARED_ENCODING.match(body[:300])
    return m.group(1).decode("ascii") if m else None


def to_utf8(body: bytes, content_type: str | None) -> tuple[bytes, str | None]:
    """Transcode to UTF-8 with a UTF-8 XML declaration; returns (bytes, warning).

    A BOM (or a BOM-less UTF-16/32 pattern) wins, as the XML spec says;
    otherwise feedparser's RFC 3023 logic weighs the Content-Type charset, the
    XML declaration and fallbacks (utf-8, windows-1252, iso-8859-2).

    An encoding the feed declares but no codec knows is refused with a clear
    error rather than guessed: a guess silently turns every non-ASCII title
    into mojibake, and the moderator would never learn why.
    """
    declared = _declared_encoding(body)
    if declared is not None:
        try:
            codecs.lookup(declared)
        except LookupError:
            raise FeedParseError(f"unknown character encoding {declared!r} declared by the feed") from None
    wide = _sniff_wide_encoding(body)
    if wide is not None:
        codec, skip = wide
        text = body[skip:].decode(codec, errors="replace")
        return _replace_declaration(text.encode("utf-8")), None
    headers = {"content-type": content_type} if content_type else {}
    result: dict[str, Any] = {}
    data = convert_to_utf8(headers, body, result)
    if not result.get("encoding"):
        raise FeedParseError("unsupported or unknown character encoding")
    warning = str(result["bozo_exception"]) if result.get("bozo_exception") else None
    return data, warning


# ------------------------------------------------------------- entity hardening

_DOCTYPE_START = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_ENTITY_DECL = re.compile(rb"<!ENTITY", re.IGNORECASE)
_PROLOG_SKIP = re.compile(rb"\s+|<\?.*?\?>|<!--.*?-->", re.DOTALL)
# Short, reference-free entity values are kept (they resolve e.g. &copy; in
# old feeds); anything else is dropped. Bounded, so N references expand to at
# most N * 64 bytes: no quadratic blow-up.
_SAFE_VALUE_DQ = rb'"(&#\w{1,8};|[^&"<>%\]]{0,64})"'
_SAFE_VALUE_SQ = rb"'(&#\w{1,8};|[^&'\"<>%\]]{0,64})'"
_SAFE_ENTITY = re.compile(rb"<!ENTITY\s+(\w+)\s+(?:" + _SAFE_VALUE_DQ + rb"|" + _SAFE_VALUE_SQ + rb")\s*>")
# An internal subset this large is not a feed's few &copy;-style helpers but
# an entity-expansion attack: refuse it by name instead of parsing around it,
# so the moderator sees why in `status`.
MAX_INTERNAL_SUBSET_BYTES = 4096


def _find_doctype(data: bytes) -> int | None:
    """Offset of a DOCTYPE in the prolog (after the declaration, comments, PIs)."""
    pos = 0
    while True:
        m = _PROLOG_SKIP.match(data, pos)
        if not m or m.end() == pos:
            break
        pos = m.end()
    if _DOCTYPE_START.match(data, pos):
        return pos
    return None


def _doctype_end(data: bytes, start: int) -> tuple[int, int, int] | None:
    """(subset_open, subset_close, decl_end) of a DOCTYPE, scanning quotes and comments.

    subset_open/close are -1 when there is no internal subset. None when the
    declaration never ends (truncated document).
    """
    i, n = start + len(b"<!DOCTYPE"), len(data)
    subset_open = subset_close = -1
    quote: int | None = None
    in_subset = False
    while i < n:
        c = data[i]
        if quote is not None:
            if c == quote:
                quote = None
        elif c in (0x22, 0x27):  # " '
            quote = c
        elif in_subset and data.startswith(b"<!--", i):
            close = data.find(b"-->", i + 4)
            if close < 0:
                return None
            i = close + 2
        elif c == 0x5B and not in_subset:  # [
            in_subset, subset_open = True, i
        elif c == 0x5D and in_subset:  # ]
            in_subset, subset_close = False, i
        elif c == 0x3E and not in_subset:  # >
            return subset_open, subset_close, i + 1
        i += 1
    return None


def _safe_entities(subset: bytes) -> bytes:
    kept = []
    for m in _SAFE_ENTITY.finditer(subset):
        value = m.group(2) if m.group(2) is not None else m.group(3)
        # One per line: feedparser only sees entity declarations at a line start.
        kept.append(b'\n<!ENTITY %s "%s">' % (m.group(1), value))
    return b"".join(kept) + (b"\n" if kept else b"")


def _harden(data: bytes) -> bytes:
    """Remove the DOCTYPE internal subset, keeping only small literal entities.

    Must run on UTF-8: in UTF-16 the bytes '<!ENTITY' do not appear at all.
    The DOCTYPE itself stays (feedparser reads "Netscape RSS 0.91" from it).
    Then, belt and braces, any '<!ENTITY' left before the root element (a
    malformed prolog the scanner did not understand) is defused, because
    feedparser's own DOCTYPE step would otherwise re-insert it for its
    loose parser, which expands it without limit.
    """
    start = _find_doctype(data)
    if start is not None:
        bounds = _doctype_end(data, start)
        if bounds is None:
            data = data[:start]  # truncated inside the DOCTYPE: nothing useful follows
        else:
            subset_open, subset_close, _ = bounds
            if subset_close - subset_open > MAX_INTERNAL_SUBSET_BYTES:
                raise FeedParseError(
                    f"refused: the DOCTYPE declares {subset_close - subset_open} bytes of entities "
                    "(an entity-expansion attack?)"
                )
            if subset_open >= 0 and subset_close > subset_open:
                kept = _safe_entities(data[subset_open + 1 : subset_close])
                data = data[: subset_open + 1] + kept + data[subset_close:]
    # feedparser's head: everything before the first "<" + word character.
    root = re.search(rb"<\w", data)
    head_end = root.start() if root else len(data)
    return _defuse_unsafe(data[:head_end]) + data[head_end:]


def _defuse_unsafe(head: bytes) -> bytes:
    """Turn every non-safe '<!ENTITY' in the prolog into an inert comment opener."""
    def repl(m: re.Match[bytes]) -> bytes:
        return m.group(0) if _SAFE_ENTITY.match(head, m.start()) else b"<!-- -->"

    return _ENTITY_DECL.sub(repl, head)


# ------------------------------------------------------------------ parse + check


def _looks_like(data: bytes) -> str:
    """A short guess at what a non-feed document is, for the error message."""
    sniff = data[:_SNIFF_BYTES].lower()
    stripped = sniff.lstrip()
    if b"<html" in sniff or b"<!doctype html" in sniff:
        return "looks like an HTML page"
    if stripped.startswith((b"{", b"[")):
        return "looks like JSON"
    if b"<" not in sniff:
        return "no XML markup found"
    return "no RSS or Atom elements found"


def _warning(doc: FeedDoc, extra: str | None) -> str | None:
    notes = []
    if doc.bozo_exception is not None:  # broken XML or just an encoding note: both worth a hint
        notes.append(one_line(str(doc.bozo_exception)))
    if extra and extra not in notes:
        notes.append(one_line(extra))
    return "; ".join(notes)[:300] or None


def _run_feedparser(data: bytes) -> FeedDoc:
    # No content-location: with one, feedparser rewrites a relative <guid>
    # ("ep-12") into a URL, so an item's identity would depend on where the
    # feed was fetched from. Links are resolved by us (_http_url) instead.
    headers = {"content-type": "application/xml; charset=utf-8"}
    # BytesIO only: bytes that look like a path make feedparser open a local
    # file, and a str URL makes it fetch by itself.
    parsed = feedparser.parse(
        io.BytesIO(data),
        response_headers=headers,
        sanitize_html=False,  # we strip HTML ourselves; sanitizing is slow
        resolve_relative_uris=False,
    )
    exc = parsed.get("bozo_exception")
    return FeedDoc(
        version=parsed.get("version") or "",
        feed=_get(parsed, "feed") or {},
        entries=parsed.get("entries") or [],
        # bozo caused by broken XML, not by an encoding or content-type note
        bozo=bool(parsed.get("bozo")) and not isinstance(exc, ThingsNobodyCaresAboutButMe),
        bozo_exception=exc if parsed.get("bozo") else None,
        reader="feedparser",
    )


def prepare(body: bytes, content_type: str | None = None) -> tuple[bytes, str | None]:
    """The hardened front both readers sit behind: (UTF-8 bytes, encoding note)."""
    if not body or not body.strip():
        raise FeedParseError("empty body: not a feed")
    try:
        data, encoding_note = to_utf8(body, content_type)
        return _harden(data), encoding_note
    except FeedParseError:
        raise
    except (MemoryError, RecursionError) as exc:
        raise FeedParseError(f"feed too complex to parse ({type(exc).__name__})") from None
    except Exception as exc:  # hostile input: report, never crash a poll
        raise FeedParseError(f"feed parser failed: {type(exc).__name__}: {one_line(str(exc))[:200]}") from None


def read_fast(data: bytes) -> FeedDoc | Declined:
    """The lxml reader on prepared bytes; Declined means: ask feedparser."""
    return drain(read_fast_steps(data))


def read_fast_steps(data: bytes) -> Generator[None, None, FeedDoc | Declined]:
    try:
        return (yield from read_feed_steps(data))
    except Exception as exc:  # a bug in the fast reader must cost speed, never a feed
        log.warning("fast feed reader failed (%s: %s); using feedparser", type(exc).__name__, exc)
        return Declined(f"reader error: {type(exc).__name__}")


def read_slow(data: bytes) -> FeedDoc:
    """feedparser on prepared bytes; raises FeedParseError only."""
    try:
        return _run_feedparser(data)
    except (MemoryError, RecursionError) as exc:
        raise FeedParseError(f"feed too complex to parse ({type(exc).__name__})") from None
    except Exception as exc:  # feedparser on hostile input: report, never crash a poll
        raise FeedParseError(f"feed parser failed: {type(exc).__name__}: {one_line(str(exc))[:200]}") from None


def parse_feed(
    body: bytes, *, url: str | None = None, content_type: str | None = None, fast: bool = True
) -> ParsedFeed:
    """RSS/Atom bytes -> ParsedFeed. Raises FeedParseError, never anything else.

    ``fast=False`` goes straight to feedparser (what a document the fast
    reader declines gets; the differential test and the benchmark compare
    the two readers on the same bytes).
    """
    if fast:
        result = drain(parse_fast_steps(body, url=url, content_type=content_type))
        if isinstance(result, ParsedFeed):
            return result
    else:
        log.debug("feed %s: parsed by feedparser (fast reader off)", url or "(no url)")
    data, encoding_note = prepare(body, content_type)
    return to_parsed_feed(read_slow(data), body, url, encoding_note)


def parse_fast_steps(
    body: bytes, *, url: str | None = None, content_type: str | None = None
) -> Generator[None, None, ParsedFeed | Declined]:
    """The fast path of parse_feed in steps of well under a millisecond (a
    chunk of bytes, an entry, an item), for a caller that yields to the event
    loop between them. Returns Declined when feedparser must read the
    document: ``parse_feed(..., fast=False)`` then does, wherever the
    caller likes (a worker process for a big one)."""
    data, encoding_note = prepare(body, content_type)
    yield
    doc = yield from read_fast_steps(data)
    name = url or "(no url)"
    if isinstance(doc, Declined):
        log.debug("feed %s: parsed by feedparser (the fast reader declined: %s)", name, doc.reason)
        return doc
    log.debug("feed %s: parsed by the fast reader (lxml), %d entries", name, len(doc.entries))
    return (yield from to_parsed_feed_steps(doc, body, url, encoding_note))


async def parse_feed_off_loop(
    body: bytes, *, url: str | None = None, content_type: str | None = None
) -> ParsedFeed:
    """parse_feed in a worker thread: a 2 MB feed takes long enough to stall the loop."""
    return await asyncio.to_thread(parse_feed, body, url=url, content_type=content_type)


def to_parsed_feed(doc: FeedDoc, body: bytes, url: str | None, note: str | None) -> ParsedFeed:
    """The normaliser: a reader's FeedDoc -> ParsedFeed (or FeedParseError)."""
    return drain(to_parsed_feed_steps(doc, body, url, note))


def to_parsed_feed_steps(
    doc: FeedDoc, body: bytes, url: str | None, note: str | None
) -> Generator[None, None, ParsedFeed]:
    """``to_parsed_feed`` with a step after each item."""
    raw_entries = doc.entries
    if not doc.version and not raw_entries:
        raise FeedParseError(f"not a feed: {_looks_like(body)}")
    if not raw_entries and doc.bozo:
        reason = one_line(str(doc.bozo_exception))[:200]
        raise FeedParseError(f"malformed feed with no readable entries: {reason}")
    feed = doc.feed
    items = []
    for entry in raw_entries:
        items.append(_item(entry, url))
        yield
    return ParsedFeed(
        title=_text_field(feed, "title") or "",
        items=tuple(items),
        link=_http_url(_get(feed, "link"), url),
        image_url=_feed_image(feed, url),
        warning=_warning(doc, note),
    )


# ------------------------------------------------------------------- normalizing


def _http_url(value: object, base: str | None) -> str | None:
    """An absolute http(s) URL, resolving a relative one against the feed URL."""
    if not isinstance(value, str) or not value.strip():
        return None
    value = value.strip()
    if base and not value.lower().startswith(("http://", "https://")):
        try:
            value = urljoin(base, value)
        except ValueError:
            return None
    return value if value.lower().startswith(("http://", "https://")) else None


def _get(d: object, key: str) -> Any:
    """A raw value of a FeedParserDict.

    Bypasses FeedParserDict's key aliasing, whose updated->published fallback
    emits a DeprecationWarning (an error under strict warning filters).
    """
    return dict.get(d, key) if isinstance(d, dict) else None


def _text_field(d: Mapping[str, Any], key: str) -> str:
    """A feedparser text construct as one plain-text line."""
    value = _get(d, key)
    if not isinstance(value, str):
        return ""
    detail = _get(d, f"{key}_detail") or {}
    if detail.get("type") == "text/plain" and "<" not in value:
        return one_line(value)
    return one_line(strip_html(value))


def _plain(detail_value: str, detail_type: str | None) -> str:
    if detail_type == "text/plain":
        return normalize_space(detail_value)
    return strip_html(detail_value)


def _summary(entry: Mapping[str, Any]) -> str:
    """Plain text of the summary, or of content[0] when that is longer."""
    detail = _get(entry, "summary_detail") or {}
    summary = _plain(_get(entry, "summary") or "", _get(detail, "type"))
    for content in _get(entry, "content") or []:
        text = _plain(_get(content, "value") or "", _get(content, "type"))
        if len(text) > len(summary):
            summary = text
        break
    return summary


def _title(entry: Mapping[str, Any], summary: str) -> str:
    title = _text_field(entry, "title")
    if title:
        return title
    first = one_line(summary)
    if not first:
        return UNTITLED
    if len(first) <= _TITLE_FROM_SUMMARY_CHARS:
        return first
    return first[: _TITLE_FROM_SUMMARY_CHARS - 1].rsplit(" ", 1)[0] + "…"


def _utc(value: object) -> datetime | None:
    """feedparser's *_parsed (a UTC struct_time) -> aware datetime; None if invalid."""
    if not isinstance(value, time.struct_time):
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), tz=timezone.utc)
    except (OverflowError, ValueError, OSError):
        return None


def _episode_number(value: object) -> int | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    # isdigit is False for "-3" and "1.5", and True for "²", which int() refuses
    if not text.isdigit() or not text.isascii() or len(text) > 9:
        return None
    return int(text)


def _first_number(*values: object) -> int | None:
    for value in values:
        number = _episode_number(value)
        if number is not None:
            return number
    return None


def _enclosure(entry: Mapping[str, Any], base: str | None) -> str | None:
    """First audio/video enclosure, else the first enclosure with a link."""
    links = _get(entry, "links") or []
    enclosures = [e for e in links if isinstance(e, dict) and _get(e, "rel") == "enclosure"]
    for e in enclosures:
        if str(_get(e, "type") or "").startswith(("audio/", "video/")):
            if href := _http_url(_get(e, "href"), base):
                return href
    for e in enclosures:
        if href := _http_url(_get(e, "href"), base):
            return href
    return None


def _entry_image(entry: Mapping[str, Any], base: str | None) -> str | None:
    """itunes:image, else media:thumbnail, else an image media:content."""
    if href := _http_url(_get(_get(entry, "image"), "href"), base):
        return href
    for thumb in _get(entry, "media_thumbnail") or []:
        if href := _http_url(_get(thumb, "url"), base):
            return href
    for media in _get(entry, "media_content") or []:
        kind = str(_get(media, "medium") or _get(media, "type") or "")
        if kind == "image" or kind.startswith("image/"):
            if href := _http_url(_get(media, "url"), base):
                return href
    return None


def _feed_image(feed: Mapping[str, Any], base: str | None) -> str | None:
    image = _get(feed, "image")
    return _http_url(_get(image, "href") or _get(image, "url"), base)


def _link(entry: Mapping[str, Any], base: str | None) -> str | None:
    # feedparser copies a non-permalink <guid> into link ("guidislink"): a
    # guid like "ep-12" is not a link anyone can open.
    return _http_url(_get(entry, "link"), base)


def _chapters(summary: str) -> tuple[Chapter, ...]:
    return parse_chapters(summary)


def _documents(entry: Mapping[str, Any], base: str | None) -> tuple[DocumentLink, ...]:
    """podcast:chapters and podcast:transcript (one of each: with several
    transcripts both readers keep the last, as feedparser does)."""
    found = []
    for key, kind in (("podcast_chapters", DocumentKind.CHAPTERS), ("podcast_transcript", DocumentKind.TRANSCRIPT)):
        attrs = _get(entry, key)
        if not isinstance(attrs, dict):
            continue  # no attributes: feedparser kept its text, which names nothing
        url = _http_url(_get(attrs, "url"), base)
        if url is None:
            continue
        media_type = _get(attrs, "type")
        found.append(DocumentLink(kind, url, media_type.strip().lower() or None
                                  if isinstance(media_type, str) else None))
    return tuple(found)


def _item(entry: Mapping[str, Any], base: str | None) -> Item:
    summary = _summary(entry)
    guid = _get(entry, "id")
    video_id = _get(entry, "yt_videoid")
    return Item(
        title=_title(entry, summary),
        link=_link(entry, base),
        guid=(guid.strip() or None) if isinstance(guid, str) else None,
        summary=summary,
        published_at=_utc(_get(entry, "published_parsed")),
        updated_at=_utc(_get(entry, "updated_parsed")),
        duration_s=parse_duration_text(_get(entry, "itunes_duration")),
        # podcast:episode (Podcasting 2.0) is the number players show; it
        # wins over itunes:episode, which some hosts fill with a season index.
        episode_number=_first_number(_get(entry, "podcast_episode"), _get(entry, "itunes_episode")),
        enclosure_url=_enclosure(entry, base),
        image_url=_entry_image(entry, base),
        video_id=(video_id.strip() or None) if isinstance(video_id, str) else None,
        chapters=_chapters(summary),
        documents=_documents(entry, base),
    )
