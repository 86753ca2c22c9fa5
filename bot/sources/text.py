"""Pure text helpers for feed items: HTML to plain text, durations, chapters.

Nothing here does I/O or raises on bad input: feed text is written by
strangers, so every helper degrades to "nothing found" (``None`` / ``()``)
instead of an exception.
"""

from __future__ import annotations

import re
from html import unescape

from bot.models import Chapter

# --------------------------------------------------------------------------- HTML

# Tags that end a line of text. Without them "<p>a</p><p>b</p>" would become
# "ab" and chapter lists written one per line would run together.
_BLOCK_TAGS = frozenset(
    {"p", "div", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr",
     "blockquote", "pre", "section", "article", "table", "dd", "dt"}
)
_PARAGRAPH_TAGS = frozenset({"p", "div", "ul", "ol", "blockquote", "pre", "table", "section"})
# Their content is never prose (scripts, styles, embedded documents).
_SKIP_TAGS = frozenset({"script", "style", "head", "title", "template", "noscript"})

_HSPACE = re.compile(r"[ \t\f\v\r\u00a0\u2000-\u200b\u202f\u205f\u3000]+")
_ODD_SPACE = re.compile(r"[\t\f\v\r\u00a0\u2000-\u200b\u202f\u205f\u3000]")
_MANY_NEWLINES = re.compile(r"\n{3,}")


# Markers for block edges, merged after tag removal so "</li><li>" is one
# line break and "</p>\n<p>" one blank line, not three. Two characters
# each, both starting with \x01 (removed from the input first): a regex that
# starts with a literal finds them with a fast scan, where a character class
# ([\x01\x02]) is tried at every offset of a 3 KB description.
_MARK = "\x01"
_LINE, _PARAGRAPH = "\x01\x01", "\x01\x02"
_SKIPPED = re.compile(
    r"<(script|style|head|title|template|noscript)\b[^>]*>.*?(?:</\1\s*>|$)", re.IGNORECASE | re.DOTALL
)
_MARKUP = re.compile(r"<!--.*?(?:-->|$)|<![^>]*>|<\?[^>]*>|<(/?)([A-Za-z][A-Za-z0-9]*)\b[^>]*>", re.DOTALL)
_BREAKS = re.compile(r"\x01[\x01\x02](?:\s*\x01[\x01\x02])*")
# What a tag becomes: <br> a line break (consecutive <br>s are deliberate:
# not merged), a paragraph or block tag its marker, anything else nothing.
_TAG_TEXT = {
    "br": "\n",
    **dict.fromkeys(_BLOCK_TAGS - _PARAGRAPH_TAGS, _LINE),
    **dict.fromkeys(_PARAGRAPH_TAGS, _PARAGRAPH),
}


def _tag_to_text(m: re.Match[str]) -> str:
    name = m[2]
    return _TAG_TEXT.get(name.lower(), "") if name else ""


def _merge_breaks(m: re.Match[str]) -> str:
    return "\n\n" if "\x02" in m[0] else "\n"


def normalize_space(text: str) -> str:
    """Collapse runs of spaces inside lines, trim lines, keep at most one blank line."""
    # Each pass runs only when a cheap test (a C-speed substring search)
    # says it would change something: a regex scan of a 3 KB description
    # costs ~0.1 ms even when it finds nothing, times three, times 540 items.
    if "  " in text or _has_odd_space(text):
        text = _HSPACE.sub(" ", text)
    # Now no two spaces are adjacent: trimming one space around each
    # newline is stripping the lines.
    if " \n" in text or "\n " in text:
        text = "\n".join(line.strip(" ") for line in text.split("\n"))
    if "\n\n\n" in text:
        text = _MANY_NEWLINES.sub("\n\n", text)
    return text.strip(" \n")


def _has_odd_space(text: str) -> bool:
    if text.isascii():  # four C-speed substring searches instead of a regex scan
        return "\t" in text or "\r" in text or "\f" in text or "\v" in text
    return _ODD_SPACE.search(text) is not None


def one_line(text: str) -> str:
    """All whitespace, newlines included, collapsed to single spaces (titles)."""
    # str.split() and the regex \s agree on what whitespace is (every code
    # point); splitting is ~3x faster than the regex substitution.
    return " ".join(text.split())


def strip_html(html: str) -> str:
    """HTML fragment -> plain text.

    Tags are dropped, entities unescaped, ``<br>`` becomes a line break and
    paragraphs/blocks become blank-line separated; whitespace is collapsed.
    Plain text passes through (apart from whitespace and entity handling).
    """
    if not html:
        return ""
    if "<" not in html:
        # Fast path: most titles and many descriptions are plain text.
        return normalize_space(unescape(html))
    # Regular expressions rather than html.parser: 10x faster on a 540-episode
    # feed, and feed HTML is fragments, not documents. Entities are unescaped
    # only after tags are gone, so "&lt;b&gt;" stays literal text.
    if _MARK in html or "\x02" in html:
        html = html.replace(_MARK, "").replace("\x02", "")  # only our markers may use them
    text = _SKIPPED.sub("", html)
    text = _MARKUP.sub(_tag_to_text, text)
    if _MARK in text:
        text = _BREAKS.sub(_merge_breaks, text)
    return normalize_space(unescape(text))


# ----------------------------------------------------------------------- durations

# ASCII digits only (\d would also take Arabic-Indic digits). Bounded digit counts: int() of a 5,000-digit string raises in Python 3.11,
# and no episode lasts longer than a few days anyway.
_SECONDS_ONLY = re.compile(r"^(\d{1,9})(?:\.\d{1,9})?$", re.ASCII)
_CLOCK = re.compile(r"^(?:(\d{1,4}):)?(\d{1,4}):(\d{1,2})(?:\.\d{1,9})?$", re.ASCII)


def parse_duration_text(value: object) -> int | None:
    """itunes:duration in any form seen in the wild -> whole seconds, else None.

    "3723" and "3723.4" are seconds; "62:03" and "5:30" are M:SS (minutes may
    exceed 59 when there is no hour part); "1:02:03" is H:MM:SS. A seconds
    field over 59 ("00:50:95"), minutes over 59 next to hours, negatives and
    garbage are None: a wrong duration shown to members is worse than none.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if m := _SECONDS_ONLY.match(text):
        return int(m.group(1))
    m = _CLOCK.match(text)
    if not m:
        return None
    hours = int(m.group(1)) if m.group(1) is not None else None
    minutes, seconds = int(m.group(2)), int(m.group(3))
    if seconds > 59 or (hours is not None and minutes > 59):
        return None
    return (hours or 0) * 3600 + minutes * 60 + seconds


# ------------------------------------------------------------------------ chapters

# A timestamp not glued to a preceding digit (so "2024:11" in a URL-ish run or
# "210:14" is not read as "10:14"), H:MM:SS or M:SS / MM:SS. A letter right
# before it is allowed: descriptions copied from YouTube often lose the line
# breaks, giving "Intro2:30 The Discovery".
# Written to start with a digit class rather than an optional group: the
# same matches, ~2x faster over long descriptions.
_TIMESTAMP = re.compile(r"(?<![\d:])(\d{1,2}):(\d{2})(?::(\d{2}))?(?![\d:])", re.ASCII)
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_URL_AT = re.compile(r"(?:https?://|www\.)\S+")  # matched on lowercased text
# Characters used only as decoration in chapter lists ("Page Tables ⁃ ⁃ ⁃").
_BULLET_TOKEN = re.compile(r"(?:(?<=\s)|^)[⁃•·▪►▸◦●○■□➤→✅✔️🔹🔸]+(?=\s|$)")
_EDGE_PUNCT = " \t\n-–—|:⁃•·▪►▸◦●○■□➤→,;"
MAX_CHAPTER_TITLE = 100
MAX_FIRST_START_S = 60
# A list that starts at 60 s or later needs this many timestamps, or two
# that each begin a line ("1:30 Intro" / "5:00 Topic").
LATE_LIST_MIN = 3
# Starts tried for a late list: bounds the work on hostile text full of colons.
MAX_START_CANDIDATES = 64


def _timestamp_seconds(m: re.Match[str]) -> int | None:
    if m.group(3) is not None:
        hours, minutes, seconds = m.group(1), int(m.group(2)), int(m.group(3))
    else:
        hours, minutes, seconds = None, int(m.group(1)), int(m.group(2))
    if seconds > 59:
        return None
    if hours is not None:
        if minutes > 59:
            return None
        return int(hours) * 3600 + minutes * 60 + seconds
    return minutes * 60 + seconds


def _clean_title(raw: str) -> str:
    line = raw.strip().split("\n", 1)[0]  # the last chapter's title ends with its line
    # parse_chapters hands over text with URLs already blanked, and every
    # bullet is non-ASCII: both passes are skipped when they cannot match.
    lower = line.lower()
    if "http" in lower or "www." in lower:
        line = _URL.sub(" ", line)
    if not line.isascii():
        line = _BULLET_TOKEN.sub(" ", line)
    line = one_line(line).strip(_EDGE_PUNCT)
    if len(line) > MAX_CHAPTER_TITLE:
        cut = line[: MAX_CHAPTER_TITLE - 1]
        if " " in cut[MAX_CHAPTER_TITLE // 2 :]:
            cut = cut.rsplit(" ", 1)[0]
        line = cut.rstrip(_EDGE_PUNCT) + "…"
    return line


def _find_timestamps(text: str) -> list[tuple[int, int, int]]:
    """(start, end, seconds) of every valid timestamp, in text order.

    The same matches as ``_TIMESTAMP.finditer``, found faster: a timestamp
    starts one or two characters before a colon, so the regex is tried only
    there (colons are few) instead of at every offset of a 3 KB description.
    """
    found = []
    end = 0  # like finditer: matches never overlap
    colon = text.find(":")
    while colon != -1:
        if colon > end:
            for start in (colon - 2, colon - 1):
                if start < end or start < 0:
                    continue
                m = _TIMESTAMP.match(text, start)
                if m is not None:
                    end = m.end()
                    seconds = _timestamp_seconds(m)
                    if seconds is not None:
                        found.append((m.start(), end, seconds))
                    break
        colon = text.find(":", max(colon + 1, end))
    return found


def _chapter_boundaries(text: str, stamps: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """The timestamps that start chapters, per the rules of ``parse_chapters``."""
    first = next((i for i, s in enumerate(stamps) if s[2] < MAX_FIRST_START_S), None)
    if first is not None:
        chosen = _increasing_from(stamps, first)
        if len(chosen) >= 2:
            return chosen
    # No list from the beginning: the longest increasing run starting
    # anywhere (earliest on a tie), held to a stricter standard because a
    # late-starting list is harder to tell from clock times in prose.
    best: list[tuple[int, int, int]] = []
    for start in range(min(len(stamps), MAX_START_CANDIDATES)):
        chain = _increasing_from(stamps, start)
        if len(chain) > len(best):
            best = chain
    if len(best) >= LATE_LIST_MIN or (len(best) >= 2 and all(_starts_line(text, s[0]) for s in best)):
        return best
    return []


def _increasing_from(stamps: list[tuple[int, int, int]], first: int) -> list[tuple[int, int, int]]:
    chosen = [stamps[first]]
    for stamp in stamps[first + 1 :]:
        if stamp[2] > chosen[-1][2]:
            chosen.append(stamp)
    return chosen


def _starts_line(text: str, offset: int) -> bool:
    """Whether only whitespace, bullets or an opening bracket precede ``offset`` on its line."""
    line_start = text.rfind("\n", 0, offset) + 1
    return not text[line_start:offset].strip(_EDGE_PUNCT + "([")


def _blank(m: re.Match[str]) -> str:
    return " " * len(m.group(0))


def _blank_urls(text: str) -> str:
    """``text`` with every URL replaced by as many spaces (offsets unchanged)."""
    lower = text.lower()
    if "http" not in lower and "www." not in lower:
        return text
    if len(lower) != len(text):  # a character lowercased into two: offsets differ
        return _URL.sub(_blank, text)
    # Jump between the few places a URL can start instead of letting the
    # regex try every offset: ~10x faster on link-heavy descriptions.
    pieces: list[str] = []
    done = 0
    for needle in _url_starts(lower):
        if needle < done:
            continue
        m = _URL_AT.match(lower, needle)
        if m is None:
            continue
        pieces.append(text[done:needle])
        pieces.append(" " * (m.end() - needle))
        done = m.end()
    if not pieces:
        return text
    pieces.append(text[done:])
    return "".join(pieces)


def _url_starts(lower: str) -> list[int]:
    starts = []
    for prefix in ("http", "www."):
        i = lower.find(prefix)
        while i != -1:
            starts.append(i)
            i = lower.find(prefix, i + 1)
    return sorted(starts)


# A YouTube link that opens a video at a time ("watch?v=ID&t=754s",
# "youtu.be/ID?t=1h2m5s"): YouTube descriptions pasted elsewhere keep these
# as the chapter markers once the visible "12:34" link text is lost.
_YOUTUBE_TIMED = re.compile(
    r"(?:https?://)?(?:www\.|m\.)?(?:youtube\.com/watch\?|youtu\.be/)[^\s]*?[?&]t="
    r"(?:(\d{1,6})s?|(?:(\d{1,2})h)?(?:(\d{1,3})m)?(?:(\d{1,2})s)?)(?![\w])[^\s]*",
    re.IGNORECASE | re.ASCII,
)


def _youtube_clock(m: re.Match[str]) -> str:
    if m.group(1) is not None:
        seconds = int(m.group(1))
    else:
        seconds = int(m.group(2) or 0) * 3600 + int(m.group(3) or 0) * 60 + int(m.group(4) or 0)
        if not (m.group(2) or m.group(3) or m.group(4)):
            return m.group(0)  # "t=" with no time: an ordinary link
    hours, rest = divmod(seconds, 3600)
    clock = f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"
    return f" {clock} "


def _timed_links_to_clock(text: str) -> str:
    lower = text.lower()
    if "t=" not in lower or "youtu" not in lower:
        return text
    return _YOUTUBE_TIMED.sub(_youtube_clock, text)


def parse_chapters(text: str) -> tuple[Chapter, ...]:
    """Chapters ("0:00 Intro 2:30 The Discovery ...") found in a plain-text description.

    Rules, and why:
    - A YouTube link to a time ("watch?v=ID&t=754s") counts as that
      timestamp; other URLs are blanked first: links sit next to chapter lists and their
      digits/colons must not become timestamps or titles.
    - At least two timestamps: one lone "5:30" is a mention, not a list.
    - The list starts at the first timestamp under 60 s (usually 0:00) when
      that gives two chapters or more: this skips earlier clock-time mentions
      ("live at 10:30"). Otherwise the list may start anywhere (show notes
      often leave out "0:00 Intro"; dropping such a list lost whole chapter
      lists): the longest strictly increasing run wins, if it has at least
      three timestamps, or two that each begin a line.
    - Strictly increasing: a later timestamp that is not greater than the
      previous chapter's start is a mention inside a title, not a boundary.
    - A title is the text up to the next timestamp (the last one: to the end
      of its line), trimmed, URLs and decorative bullets (⁃ • - |) removed,
      capped at ~100 characters: descriptions often lose their line breaks,
      so the last title would otherwise swallow the rest of the text.
    - Chapters whose title ends up empty are dropped: a bare timestamp gives
      a member nothing to search for or click.
    """
    if not text or ":" not in text:
        return ()
    scrubbed = _blank_urls(_timed_links_to_clock(text))
    boundaries = _chapter_boundaries(scrubbed, _find_timestamps(scrubbed))
    chapters: list[Chapter] = []
    for i, (_, end, seconds) in enumerate(boundaries):
        stop = boundaries[i + 1][0] if i + 1 < len(boundaries) else len(scrubbed)
        title = _clean_title(scrubbed[end:stop])
        if title:
            chapters.append(Chapter(start_s=seconds, title=title))
    return tuple(chapters)
