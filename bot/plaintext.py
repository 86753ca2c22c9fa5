"""Announcements as plain text: the console adapter and `showbot ask` previews.

Maps an ``AnnouncementView`` (bot.presenter) to lines and decides nothing:
the heading, links and what is left out come from the view, so the terminal
reads like Discord and Slack.
"""

from __future__ import annotations

from bot.models import Announcement, AnnouncementView, Fact, Reply, SegmentRole
from bot.presenter import present
from bot.replies import format_timestamp, item_line, more_chapters, shown_chapters

INDENT = "  "


def facts_line(facts: tuple[Fact, ...]) -> str:
    return " · ".join(f.value for f in facts)


def _heading(view: AnnouncementView) -> str:
    if view.direct_to is not None:
        return f"{view.heading} · direct message to {view.direct_to}"
    return view.heading


def render_view(view: AnnouncementView) -> str:
    if view.body:
        text = "".join(f"@{s.text}" if s.role is SegmentRole.MENTION else s.text for s in view.body)
        # A DM is marked even when a template makes the message: on one
        # terminal it is otherwise indistinguishable from the channel's post.
        return f"[direct message to {view.direct_to}] {text}" if view.direct_to is not None else text
    lines = [f"[{_heading(view)}] {view.title}"]
    if view.facts:
        lines.append(INDENT + facts_line(view.facts))
    if view.summary:
        lines.append(INDENT + view.summary)
    for chapter in view.chapters:
        line = f"{INDENT}{chapter.clock}  {chapter.title}"
        lines.append(f"{line}  {chapter.url}" if chapter.url else line)
    if view.more_chapters:
        lines.append(INDENT + more_chapters(view.more_chapters))
    for entry in view.entries:
        facts = f" — {facts_line(entry.facts)}" if entry.facts else ""
        lines.append(f"{INDENT}• {entry.heading}: {entry.title}{facts}")
        if entry.url:
            lines.append(f"{INDENT}  {entry.url}")
    if view.more_entries:
        lines.append(f"{INDENT}… and {view.more_entries} more")
    if view.url:
        lines.append(INDENT + view.url)
    for also in view.also:
        lines.append(f"{INDENT}also on {also.label}: {also.value}")
    return "\n".join(lines)


def render_announcement(announcement: Announcement) -> str:
    return render_view(present(announcement))


def render_edit(announcement: Announcement) -> str:
    """An edit, for a terminal that can't change a line already printed:
    one line saying what changed ("+ also on YouTube: …", "(edited) …")."""
    view = present(announcement)
    return view.edit_note or f"(edited) {view.heading}: {view.title}"


def render_text(reply: Reply, *, max_chapters: int = 3) -> str:
    """Plain text for terminals: the headline, then one line per item with
    its matched chapters (or the first few) indented under it. A preview
    shows the announcement itself, as the console would post it."""
    lines = [reply.text]
    if reply.announcement is not None:
        lines.append(render_view(reply.announcement))
    else:
        for n, item in enumerate(reply.items, start=1):
            lines.append(f"{n}. {item_line(item)}")
            chapters, hidden = shown_chapters(item.chapters, max_chapters)
            for chapter in chapters:
                lines.append(f"   ↳ {format_timestamp(chapter.start_s)} {chapter.title}")
            if hidden:
                lines.append(f"   ↳ {more_chapters(hidden)}")
    for section in reply.sections:
        lines.append(f"{section.label}:")
        for line in section.lines:
            lines.append(f"   ↳ {line.text}" + (f"  {line.url}" if line.url else ""))
    if reply.more:
        lines.append(f"More: {reply.more}")
    return "\n".join(lines)
