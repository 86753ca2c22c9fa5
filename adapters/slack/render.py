"""Reply / Announcement -> Slack Block Kit. Pure: no I/O, no Slack SDK.

Every message gets a plain-text fallback ``text`` (notifications, old clients)
and respects Block Kit limits: at most 50 blocks, 3000 characters per section
text, 150 per header, 75 per button label, 2000 per button value. All feed
text is escaped (see ``mrkdwn.escape``) and trimmed without cutting inside an
escape sequence or a link.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Sequence

from bot.models import Announcement, AnnouncementView, ChapterView, Reply, ReplyItem, SectionLine, SegmentRole
from bot.presenter import chapter_views, present
from bot.replies import format_duration, more_chapters, shown_chapters

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

Block = dict[str, Any]


# ---------------------------------------------------------------- small formatters


def format_date(when: datetime | None) -> str | None:
    if when is None:
        return None
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc)
    return when.strftime("%Y-%m-%d")


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


def chapters_text(chapters: Sequence[ChapterView], hidden: int = 0) -> str:
    """One line per chapter; the timestamp links to the minute when the core
    built a link for it (never extended here)."""
    lines = []
    for ch in chapters:
        stamp = link(ch.url, ch.clock) if ch.url else escape(ch.clock)
        lines.append(f"• {stamp} {escape(trim_plain(one_line(ch.title), 150))}")
    if hidden:
        lines.append(escape(more_chapters(hidden)))
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
        shown, hidden = shown_chapters(item.chapters, MAX_CHAPTERS)
        views, _ = chapter_views(item.url, shown, len(shown), item.video_id)
        blocks.append(section("*Chapters*\n" + chapters_text(views, hidden)))
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
    """``{"text": fallback, "blocks": [...]}`` for a member's answer. A
    preview shows its announcement exactly as the channel would get it."""
    more = more_button(reply.more) if reply.more else None
    reserve = 2 + (1 if more else 0)  # room for "and N more" + the button
    blocks: list[Block] = text_sections(reply.text)[:10] if reply.text else []
    if reply.announcement is not None:
        preview = render_view(reply.announcement)
        blocks = (blocks + preview["blocks"])[:MAX_BLOCKS]
        return {"text": fallback([escape(reply.text), preview["text"]]), "blocks": blocks}
    shown = 0
    for item in reply.items:
        extra = item_blocks(item)
        if len(blocks) + len(extra) > MAX_BLOCKS - reserve:
            break
        blocks.extend(extra)
        shown += 1
    if shown < len(reply.items):
        blocks.append(context([f"… and {len(reply.items) - shown} more not shown"]))
    for labelled in reply.sections:
        if len(blocks) >= MAX_BLOCKS - reserve:
            break
        # The lead is the link: "<url|at 12:30 in episode 141>: …snippet…",
        # "<url|“E42: Postgres vacuum”>: Autovacuum (at 12:30)"
        rows = [f"• {_section_line(line)}" for line in labelled.lines]
        blocks.append(section(f"*{escape(labelled.label)}*\n" + "\n".join(rows)))
    if more:
        blocks.append(more)
    if not blocks:
        blocks.append(section(" "))

    lines = [escape(reply.text)] if reply.text else []
    for item in reply.items:
        lines.append("• " + link(item.url, item.title or "untitled", label_limit=150))
    for labelled in reply.sections:
        lines += [escape(labelled.label)] + ["• " + _section_line(line) for line in labelled.lines]
    return {"text": fallback(lines), "blocks": blocks[:MAX_BLOCKS]}


def _section_line(line: SectionLine) -> str:
    """The line's lead as the link, the rest as text. The presenter says
    where the lead ends: the text is plain, and a title in it can hold the
    same ": " that ends the clock part."""
    if safe_url(line.url) is None:
        return escape(line.text)
    lead = line.lead or line.text
    return link(line.url, lead) + escape(line.text[len(lead):])


# ---------------------------------------------------------------- announcements


def mention_markup(mention: str | None) -> str:
    """``<!subteam^ID>`` for a configured user group; nothing for anything else."""
    group = subteam_id(mention)
    return f"<!subteam^{group}>" if group else ""


def body_mrkdwn(view: AnnouncementView) -> str:
    """A rendered template: the moderator's text keeps its mrkdwn (``*bold*``)
    but loses ``& < >`` like feed text, so neither can write a ping; links
    are links, and only the route's user group becomes a mention."""
    out = []
    for segment in view.body:
        if segment.role is SegmentRole.LINK:
            u = safe_url(segment.text)
            out.append(f"<{u}>" if u else escape(segment.text))
        elif segment.role is SegmentRole.MENTION:
            out.append(mention_markup(segment.text))
        else:
            out.append(escape(segment.text))
    return "".join(out)


def render_view(view: AnnouncementView) -> dict[str, Any]:
    """``{"text", "blocks"}`` for an announcement view: the header is the
    view's heading, then the linked title, facts, chapters or digest lines."""
    if view.body:
        text = body_mrkdwn(view)
        return {"text": fallback([text]), "blocks": [section(text)]}
    mention = mention_markup(view.mention)
    blocks: list[Block] = [header(view.heading)]
    body = f"*{link(view.url, view.title)}*"
    if mention:
        body = f"{mention} {body}"
    if view.summary:
        body += "\n" + escape(trim_plain(view.summary, SUMMARY_CHARS))
    blocks.append(section(body, image_accessory(view.image_url)))
    if view.facts:
        blocks.append(context([escape(trim_plain(one_line(f.value), 80)) for f in view.facts]))
    if view.chapters:
        blocks.append(section("*Chapters*\n" + chapters_text(view.chapters, view.more_chapters)))
    if view.also:  # an edit: the same release elsewhere
        blocks.append(context(["Also on " + " · ".join(link(a.value, a.label) for a in view.also)]))
    if view.entries:
        lines = []
        for entry in view.entries:
            facts = " · ".join(escape(f.value) for f in entry.facts)
            lines.append(f"• {escape(entry.heading)}: *{link(entry.url, entry.title)}*" + (f" — {facts}" if facts else ""))
        if view.more_entries:
            lines.append(escape(f"… and {view.more_entries} more"))
        blocks.extend(section(chunk) for chunk in _chunks(lines))
    head = f"{mention} {view.heading}:" if mention else f"{view.heading}:"
    text_line = f"{head} {escape(trim_plain(one_line(view.title), 500))}"
    u = safe_url(view.url)
    if u:
        text_line += f" <{u}>"
    return {"text": fallback([text_line]), "blocks": blocks[:MAX_BLOCKS]}


def _chunks(lines: list[str]) -> list[str]:
    """Lines joined into sections of at most SECTION_TEXT characters."""
    chunks: list[str] = []
    current = ""
    for line in lines:
        line = trim_mrkdwn(line, SECTION_TEXT)
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > SECTION_TEXT:
            chunks.append(current)
            current = line
        else:
            current = candidate
    if current:
        chunks.append(current)
    return chunks


def render_announcement(announcement: Announcement) -> dict[str, Any]:
    """``{"text", "blocks"}`` announcing one event in one channel."""
    return render_view(present(announcement))
