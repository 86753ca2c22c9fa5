"""Building and serializing Replies: chat-neutral, pure.

Adapters render a Reply however their platform likes; ``bot.plaintext.render_text`` is the
plain-text rendering (console, ``showbot ask``), and ``reply_to_json`` is the
``ask --json`` contract of DESIGN.md.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from bot.models import Chapter, Reply, ReplyItem, StoredItem

SUMMARY_CHARS = 280
# The heading of a follow-up announcement (book news seen again elsewhere),
# the same words on every platform.
FOLLOW_UP_HEADING = "More book news"


def format_duration(seconds: int | None) -> str:
    """2799 -> '46m 39s'; 3723 -> '1h 02m 03s'; 45 -> '45s'; None -> ''."""
    if seconds is None or seconds < 0:
        return ""
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def format_span(seconds: int) -> str:
    """An interval as people say it: 900 -> '15m', 3600 -> '1h', 5400 -> '1h 30m', 90 -> '1m 30s'."""
    return format_duration(seconds).removesuffix(" 00s").removesuffix(" 00m")


def format_timestamp(seconds: int) -> str:
    """A chapter start as players show it: 746 -> '12:26', 3723 -> '1:02:03'."""
    hours, rest = divmod(max(0, int(seconds)), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_date(value: datetime | None) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d") if value else ""


def timed_link(url: str | None, start_s: int, video_id: str | None = None) -> str | None:
    """The link opened at ``start_s`` where the platform supports it
    (YouTube: ``t=SECONDS``), else None. Idempotent: a ``t`` already in the
    link is replaced, never repeated (the one place a chapter link is built;
    adapters never add their own). An item with a ``video_id`` (its feed's
    yt:videoId) is a YouTube video whatever its link's host -- tests and a
    ``[youtube] base_url`` put it on another; without one the host decides."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    host = (parts.hostname or "").lower().removeprefix("www.").removeprefix("m.")
    if not video_id and host not in ("youtube.com", "youtu.be", "music.youtube.com"):
        return None
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "t"]
    if start_s > 0:
        query.append(("t", str(int(start_s))))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def link_at(url: str | None, start_s: int, video_id: str | None = None) -> str | None:
    """The link opened at ``start_s`` where the platform supports it;
    otherwise the link unchanged."""
    if not url or start_s <= 0:
        return url
    return timed_link(url, start_s, video_id) or url


def plural(n: int, word: str, words: str | None = None) -> str:
    """'1 chapter', '2 chapters', '1 failure', '0 items'."""
    return f"{n} {word if n == 1 else (words or word + 's')}"


def trim(text: str, limit: int = SUMMARY_CHARS) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0] or text[:limit]
    return cut.rstrip(" ,.;:") + "…"


def reply_item(stored: StoredItem, chapters: Sequence[Chapter] | None = None,
               *, link_to_chapter: bool = False) -> ReplyItem:
    """A stored item as a reply line. ``chapters`` defaults to all of them;
    with ``link_to_chapter`` the link opens at the first one given."""
    item = stored.item
    chosen = tuple(item.chapters if chapters is None else chapters)
    url = item.link or item.enclosure_url
    if link_to_chapter and chosen:
        url = link_at(url, chosen[0].start_s, item.video_id)
    return ReplyItem(
        title=item.title,
        url=url,
        kind=stored.kind.value,
        source=stored.source_name,
        published_at=item.published_at,
        duration_s=item.duration_s,
        chapters=chosen,
        summary=trim(item.summary),
        image_url=item.image_url,
        video_id=item.video_id,
    )


def item_line(item: ReplyItem) -> str:
    """'Page Tables — 2025-12-15 · 46m 39s · https://…'"""
    facts = [f for f in (format_date(item.published_at), format_duration(item.duration_s), item.url) if f]
    return item.title + (" — " + " · ".join(facts) if facts else "")


def shown_chapters(chapters: Sequence[Chapter], limit: int) -> tuple[list[Chapter], int]:
    """The chapters a list shows and how many it leaves out: the first
    ``limit`` given (a search gives its best matches first), in time order."""
    shown = sorted(chapters[:max(0, limit)], key=lambda c: c.start_s)
    return shown, max(0, len(chapters) - len(shown))


def more_chapters(n: int) -> str:
    return f"… {plural(n, 'more chapter')}"


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def item_to_json(item: ReplyItem) -> dict[str, Any]:
    """One item as DESIGN.md's CLI contract shows it (``ask`` and ``poll``)."""
    return {
        "title": item.title,
        "url": item.url,
        "kind": item.kind,
        "source": item.source,
        "published": _iso(item.published_at),
        "duration_s": item.duration_s,
        "chapters": [{"start_s": c.start_s, "title": c.title} for c in item.chapters],
    }


def reply_to_json(reply: Reply) -> dict[str, Any]:
    """The ``ask --json`` object of DESIGN.md ("The CLI contract")."""
    out: dict[str, Any] = {"kind": reply.kind, "text": reply.text, "items": [item_to_json(i) for i in reply.items]}
    if reply.sections:  # only when there are some: the contract's three keys stay as they were
        out["sections"] = [{"label": s.label, "lines": [{"text": line.text, "url": line.url} for line in s.lines]}
                           for s in reply.sections]
    return out
