"""Plain-text rendering of Replies and announcements (console and CLI).

Chat adapters render richer forms themselves; this is the terminal's.
"""

from __future__ import annotations

from bot.models import Announcement, Reply, ReplyItem


def format_duration(seconds: int | None) -> str:
    if not seconds:
        return ""
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h {m:02d}m" if h else f"{m}m {s:02d}s"


def render_announcement(announcement: Announcement) -> str:
    event = announcement.event
    label = {"book": "Book news", "episode": "New episode", "video": "New video",
             "article": "New article", "post": "New post"}.get(event.kind.value, event.kind.value)
    lines = [f"[{label}] {event.title}"]
    item = announcement.item.item if announcement.item else None
    if item is not None:
        meta = [item.published_at.strftime("%Y-%m-%d") if item.published_at else "",
                format_duration(item.duration_s)]
        if any(meta):
            lines.append("  " + " · ".join(m for m in meta if m))
        for chapter in item.chapters[:10]:
            lines.append(f"  {format_duration(chapter.start_s) or '0m 00s'}  {chapter.title}")
    if event.url:
        lines.append(f"  {event.url}")
    return "\n".join(lines)


def render_item(item: ReplyItem) -> str:
    meta = " · ".join(x for x in (
        item.published_at.strftime("%Y-%m-%d") if item.published_at else "",
        format_duration(item.duration_s), item.source) if x)
    lines = [f"- {item.title}" + (f"  ({meta})" if meta else "")]
    for chapter in item.chapters:
        lines.append(f"    at {format_duration(chapter.start_s) or '0m 00s'}: {chapter.title}")
    if item.url:
        lines.append(f"    {item.url}")
    return "\n".join(lines)


def render_reply(reply: Reply) -> str:
    parts = [reply.text] + [render_item(i) for i in reply.items]
    if reply.image_path:
        parts.append(f"(chart: {reply.image_path})")
    if reply.more:
        parts.append(f'(type "{reply.more}" for more)')
    return "\n".join(p for p in parts if p)
