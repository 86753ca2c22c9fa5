"""Reply / Announcement -> Slack Block Kit. Pure: no I/O, no Slack SDK.

Every message gets a plain-text fallback ``text`` (notifications, old clients)
and respects Block Kit limits: at most 50 blocks, 3000 characters per section
text, 150 per header, 75 per button label, 2000 per button value. All feed
text is escaped (see ``mrkdwn.escape``) and trimmed without cutting inside an
escape sequence or a link.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from bot.models import Announcement, Chapter, Reply, ReplyItem
from bot.replies import FOLLOW_UP_HEADING, format_duration, format_timestamp

from .mrkdwn import escape, link, one_line, safe_url, subteam_id, trim_mrkdwn, trim_plain

MAX_BLOCKS = 50
SECTION_TEXT = 3000
CONTEXT_TEXT = 2000
HEADER_TEXT = 150
BUTTON_VALUE = 2000
FALLBACK_TEXT = 3000
MAX_CHAPTERS = 10
SUMMARY_CHARS = 300

MORE_ACTION_ID = "showbot_more"

HEADINGS = {
    "episode": "New episode",
    "video": "New video",
    "article": "New article",
    "post": "New post",
    "book": "Book news",
    "profile": "Profile update",
    "milestone": "Milestone",
    "alert": "Moderator alert",
}

Block = dict[str, Any]


# ---------------------------------------------------------------- small formatters


def format_date(when: datetime | None) -> str | None:
    if when is None:
        return None
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc)
    return when.strftime("%Y-%m-%d")


def is_youtube(url: str | None) -> bool:
    if not url:
        return False
    host = (urlsplit(url).hostname or "").lower()
    return host == "youtu.be" or host == "youtube.com" or host.endswith(".youtube.com")


def chapter_url(url: str | None, start_s: int) -> str | None:
    """The item's URL at ``start_s`` (YouTube understands ``t=<s>s``); None elsewhere."""
    if not is_youtube(url):
        return None
    assert url is not None
    base, _, fragment = url.partition("#")
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}t={int(start_s)}s"


# ---------------------------------------------------------------- block builders


def section(mrkdwn: str, accessory: Block | None = None) -> Block:
    block: Block = {"type": "section", "text": {"type": "mrkdwn", "text": trim_mrkdwn(mrkdwn, SECTION_TEXT)}}
    if accessory is not None:
        block["accessory"] = accessory
    return block


def context(parts: list[str]) -> Block:
    text = " · ".join(p for p in parts if p)
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": trim_mrkdwn(text, CONTEXT_TEXT)}]}


def header(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": trim_plain(one_line(text), HEADER_TEXT), "emoji": True}}


def image_accessory(url: str | None) -> Block | None:
    # image_url is a JSON string, not mrkdwn: the raw URL, if it is http(s).
    if url and safe_url(url):
        return {"type": "image", "image_url": url.strip(), "alt_text": "artwork"}
    return None


def more_button(more: str) -> Block | None:
    if not more or len(more) > BUTTON_VALUE:
        return None
    return {
        "type": "actions",
        "block_id": "showbot_more",
        "elements": [
            {
                "type": "button",
                "action_id": MORE_ACTION_ID,
                "text": {"type": "plain_text", "text": "More", "emoji": True},
                "value": more,
            }
        ],
    }


def chapters_text(url: str | None, chapters: tuple[Chapter, ...], limit: int = MAX_CHAPTERS) -> str:
    lines = []
    for ch in chapters[:limit]:
        label = format_timestamp(ch.start_s)
        at = chapter_url(url, ch.start_s)
        stamp = link(at, label) if at else escape(label)
        lines.append(f"• {stamp} {escape(trim_plain(one_line(ch.title), 150))}")
    if len(chapters) > limit:
        lines.append(f"… {len(chapters) - limit} more")
    return "\n".join(lines)


def meta_parts(
    kind: str | None, source: str | None, published_at: datetime | None, duration_s: int | None
) -> list[str]:
    return [
        escape(one_line(kind)) if kind else "",
        escape(trim_plain(one_line(source), 80)) if source else "",
        format_date(published_at) or "",
        format_duration(duration_s) or "",
    ]


def item_blocks(item: ReplyItem) -> list[Block]:
    title = f"*{link(item.url, item.title or item.url or 'untitled')}*"
    body = title
    if item.summary:
        body += "\n" + escape(trim_plain(item.summary, SUMMARY_CHARS))
    blocks = [section(body, image_accessory(item.image_url))]
    parts = meta_parts(item.kind, item.source, item.published_at, item.duration_s)
    if any(parts):
        blocks.append(context(parts))
    if item.chapters:
        blocks.append(section("*Chapters*\n" + chapters_text(item.url, item.chapters)))
    return blocks


def text_sections(text: str) -> list[Block]:
    """Escape ``text`` and split it into sections of at most 3000 characters, at line ends."""
    chunks: list[str] = []
    current = ""
    for line in escape(text).split("\n"):
        line = trim_mrkdwn(line, SECTION_TEXT)
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > SECTION_TEXT:
            chunks.append(current)
            current = line
        else:
            current = candidate
    if current.strip():
        chunks.append(current)
    return [section(c) for c in chunks if c.strip()]


def fallback(lines: list[str]) -> str:
    return trim_mrkdwn("\n".join(line for line in lines if line), FALLBACK_TEXT) or " "


# ---------------------------------------------------------------- replies


def render_reply(reply: Reply) -> dict[str, Any]:
    """``{"text": fallback, "blocks": [...]}`` for a member's answer."""
    more = more_button(reply.more) if reply.more else None
    reserve = 2 + (1 if more else 0)  # room for "and N more" + the button
    blocks: list[Block] = text_sections(reply.text)[:10] if reply.text else []
    shown = 0
    for item in reply.items:
        extra = item_blocks(item)
        if len(blocks) + len(extra) > MAX_BLOCKS - reserve:
            break
        blocks.extend(extra)
        shown += 1
    if shown < len(reply.items):
        blocks.append(context([f"… and {len(reply.items) - shown} more not shown"]))
    if more:
        blocks.append(more)
    if not blocks:
        blocks.append(section(" "))

    lines = [escape(reply.text)] if reply.text else []
    for item in reply.items:
        lines.append("• " + link(item.url, item.title or "untitled", label_limit=150))
    return {"text": fallback(lines), "blocks": blocks[:MAX_BLOCKS]}


# ---------------------------------------------------------------- announcements


def mention_markup(mention: str | None) -> str:
    """``<!subteam^ID>`` for a configured user group; nothing for anything else."""
    group = subteam_id(mention)
    return f"<!subteam^{group}>" if group else ""


def render_announcement(announcement: Announcement) -> dict[str, Any]:
    """``{"text", "blocks"}`` announcing one event in one channel."""
    event = announcement.event
    kind = event.kind.value if hasattr(event.kind, "value") else str(event.kind)
    heading = FOLLOW_UP_HEADING if announcement.is_follow_up else HEADINGS.get(kind, "New")
    stored = announcement.item
    item = stored.item if stored is not None else None
    title = (item.title if item and item.title else event.title) or "untitled"
    url = (item.link if item and item.link else None) or event.url
    # A follow-up never pings the group again: it heard about this news once.
    mention = None if announcement.is_follow_up else mention_markup(announcement.mention)

    blocks: list[Block] = [header(heading)]
    body = f"*{link(url, title)}*"
    if mention:
        body = f"{mention} {body}"
    if item is not None and item.summary:
        body += "\n" + escape(trim_plain(item.summary, SUMMARY_CHARS))
    blocks.append(section(body, image_accessory(item.image_url if item else None)))
    if item is not None:
        parts = meta_parts(None, stored.source_name if stored else None, item.published_at, item.duration_s)
        if any(parts):
            blocks.append(context(parts))
        if item.chapters:
            blocks.append(section("*Chapters*\n" + chapters_text(url, item.chapters)))

    head = f"{mention} {heading}:" if mention else f"{heading}:"
    text_line = f"{head} {escape(trim_plain(one_line(title), 500))}"
    u = safe_url(url)
    if u:
        text_line += f" <{u}>"
    return {"text": fallback([text_line]), "blocks": blocks}
