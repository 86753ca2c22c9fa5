"""Podcasting 2.0 JSON chapters (``podcast:chapters``) -> Chapter tuples. Pure.

The format (podcastindex.org, "JSON chapters"): ``{"version": "1.2.0",
"chapters": [{"startTime": 0, "title": "Intro", "url"?, "img"?, "toc"?,
"endTime"?}, ...]}``. What counts as a chapter here, and why:
- ``startTime`` a finite number of seconds >= 0 (floats floored: chapter
  links are whole seconds); ``title`` a non-empty string after whitespace is
  collapsed, capped like description chapters;
- ``"toc": false`` marks a silent marker (artwork change, ad) that players
  leave out of the table of contents: left out here too;
- sorted by start, and of two with the same start the first is kept;
- anything else in an entry (urls, images, locations) is ignored.
A document that is not JSON, not an object with a ``chapters`` list, or has
no usable chapter raises DocumentParseError: the caller keeps the chapters
the item already had.
"""

from __future__ import annotations

import json
import math

from bot.errors import DocumentParseError
from bot.models import Chapter
from bot.sources.text import MAX_CHAPTER_TITLE, one_line

# More entries than any episode has: a bigger list is a broken or hostile file.
MAX_JSON_CHAPTERS = 1000
MAX_START_S = 7 * 86400


def _title(value: object) -> str:
    if not isinstance(value, str):
        return ""
    title = one_line(value)
    if len(title) > MAX_CHAPTER_TITLE:
        title = title[: MAX_CHAPTER_TITLE - 1].rstrip() + "…"
    return title


def _start(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if not math.isfinite(value) or value < 0 or value > MAX_START_S:
        return None
    return int(value)


def parse_chapters_json(body: bytes) -> tuple[Chapter, ...]:
    """A JSON chapters document -> chapters in time order; DocumentParseError if unusable."""
    try:
        doc = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise DocumentParseError(f"chapters: not JSON ({type(exc).__name__})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("chapters"), list):
        raise DocumentParseError("chapters: no \"chapters\" list in the document")
    entries = doc["chapters"]
    if len(entries) > MAX_JSON_CHAPTERS:
        raise DocumentParseError(f"chapters: {len(entries)} entries (more than {MAX_JSON_CHAPTERS})")
    found: dict[int, str] = {}
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("toc") is False:
            continue
        start, title = _start(entry.get("startTime")), _title(entry.get("title"))
        if start is not None and title and start not in found:
            found[start] = title
    if not found:
        raise DocumentParseError("chapters: no chapter with a start time and a title")
    return tuple(Chapter(start, found[start]) for start in sorted(found))
