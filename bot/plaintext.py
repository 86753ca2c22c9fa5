"""Plain-text announcements for the terminal (console adapter).

Replies are rendered by ``bot.replies.render_text``; chat adapters render
richer forms themselves.
"""

from __future__ import annotations

from bot.models import Announcement
from bot.replies import FOLLOW_UP_HEADING, format_date, format_duration, format_timestamp

LABELS = {"book": "Book news", "episode": "New episode", "video": "New video",
          "article": "New article", "post": "New post", "profile": "Profile update",
          "milestone": "Milestone", "alert": "Moderator alert"}


def render_announcement(announcement: Announcement, *, max_chapters: int = 10) -> str:
    event = announcement.event
    label = FOLLOW_UP_HEADING if announcement.is_follow_up else LABELS.get(event.kind.value, event.kind.value)
    lines = [f"[{label}] {event.title}"]
    item = announcement.item.item if announcement.item else None
    if item is not None:
        facts = [f for f in (format_date(item.published_at), format_duration(item.duration_s)) if f]
        if facts:
            lines.append("  " + " · ".join(facts))
        for chapter in item.chapters[:max_chapters]:
            lines.append(f"  {format_timestamp(chapter.start_s)}  {chapter.title}")
    if event.url:
        lines.append(f"  {event.url}")
    return "\n".join(lines)
