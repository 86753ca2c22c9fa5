"""Reply / Announcement -> Discord message parts. Pure: no I/O, no client.

Discord's limits (https://discord.com/developers/docs/resources/message#embed-object-embed-limits)
are enforced here, so a long feed description or 40 chapters can never make
the API answer 400. Trimming happens between "atoms" (words, chapter lines,
markdown links), so a cut never lands inside a link or a mention entity and
never leaves a dangling escape backslash.

Feed text is untrusted: every piece of it is passed through
``discord.utils.escape_markdown`` and ``escape_mentions`` before it is shown.
Escaping is defence in depth; what really stops pings is ``allowed_mentions``
(set by the adapter on every send).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Sequence
from urllib.parse import quote, urlsplit

import discord

from bot.models import AnnouncementView, ChapterView, Reply, ReplyItem, SegmentRole
from bot.presenter import chapter_views
from bot.replies import format_duration, more_chapters, shown_chapters
from bot.replies import format_timestamp as format_clock  # noqa: F401 - tests use the one clock format

TITLE_MAX = 256
DESCRIPTION_MAX = 4096
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
FIELDS_MAX = 25
FOOTER_MAX = 2048
EMBEDS_MAX = 10
EMBED_TOTAL_MAX = 6000  # summed over every embed of one message
CONTENT_MAX = 2000
SUMMARY_BUDGET = 1500  # keep room in the description for chapters
ELLIPSIS = "…"

# What find_delivered looks for in an announcement's footer.
MARKER_PREFIX = "id:"

_WORD = re.compile(r"\S+\s*")


@dataclass(slots=True)
class RenderedMessage:
    """Everything needed for one ``send``; the adapter adds allowed_mentions and the view."""

    content: str | None
    embeds: list[discord.Embed] = field(default_factory=list)
    more: str | None = None
    image_path: str | None = None
    ephemeral: bool = False


# --- small formatting helpers -------------------------------------------------


def escape_text(text: str) -> str:
    """Untrusted text made inert: no markdown, no mention entity."""
    return discord.utils.escape_mentions(discord.utils.escape_markdown(text))


def escape_link_text(text: str) -> str:
    """Text inside ``[...]``: brackets escaped too, so the link can't be closed early."""
    return escape_text(text).replace("[", "\\[").replace("]", "\\]")


def safe_url(url: str | None) -> str | None:
    """An http(s) URL usable inside ``(...)`` of a markdown link, else None."""
    if not url:
        return None
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    # Percent-encode what would end the markdown link target or break the URL.
    return quote(url, safe=":/?#@!$&'*+,;=%~._-[]")


def truncate(text: str, limit: int) -> str:
    """Cut plain (already safe) text to ``limit`` chars, at a word boundary when possible."""
    if len(text) <= limit:
        return text
    if limit <= len(ELLIPSIS):
        return ELLIPSIS[:limit]
    cut = text[: limit - len(ELLIPSIS)]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip() + ELLIPSIS


def fit_escaped(raw: str, limit: int) -> str:
    """Escape ``raw`` and fit it in ``limit`` chars, cutting only between words.

    Escaping happens per word, so a cut never splits ``\\*`` or a mention
    entity. A single word longer than the budget is cut by characters of the
    *raw* text and re-escaped, which keeps escapes whole too.
    """
    full = escape_text(raw)
    if len(full) <= limit:
        return full
    budget = limit - len(ELLIPSIS)
    if budget <= 0:
        return ""
    out = ""
    for m in _WORD.finditer(raw):
        piece = escape_text(m.group(0))
        if len(out) + len(piece) > budget:
            if not out:  # one giant word: cut the raw word, then escape
                word = m.group(0)
                lo, hi = 0, len(word)
                while lo < hi:  # longest raw prefix whose escape fits
                    mid = (lo + hi + 1) // 2
                    if len(escape_text(word[:mid])) <= budget:
                        lo = mid
                    else:
                        hi = mid - 1
                out = escape_text(word[:lo])
            break
        out += piece
    return out.rstrip() + ELLIPSIS


def chapter_line(chapter: ChapterView) -> str:
    """'[12:00 VMA areas](https://youtu.be/x?t=720)', or plain text when the
    core built no timed link (the link is the core's, never extended here)."""
    label = f"{chapter.clock} {chapter.title}".strip()
    link = safe_url(chapter.url)
    if link is None:
        return escape_text(truncate(label, 200))
    return f"[{escape_link_text(truncate(label, 200))}]({link})"


def join_atoms(atoms: list[str], limit: int, *, sep: str = "\n") -> str:
    """Join whole atoms while they fit; say how many were left out."""
    out: list[str] = []
    used = 0
    for i, atom in enumerate(atoms):
        extra = len(atom) + (len(sep) if out else 0)
        if used + extra > limit:
            rest = len(atoms) - i
            note = f"{ELLIPSIS} and {rest} more"
            while out and used + len(sep) + len(note) > limit:
                used -= len(out.pop()) + (len(sep) if out else 0)
                rest += 1
                note = f"{ELLIPSIS} and {rest} more"
            if used + len(sep) + len(note) <= limit:
                out.append(note)
            break
        out.append(atom)
        used += extra
    return sep.join(out)


# --- embeds -------------------------------------------------------------------


def _description(summary: str, chapters: Sequence[ChapterView], hidden: int = 0,
                 entries: Sequence[str] = ()) -> str:
    parts: list[str] = []
    if summary.strip():
        parts.append(fit_escaped(" ".join(summary.split()), SUMMARY_BUDGET))
    if chapters:
        lines = [chapter_line(c) for c in chapters] + ([escape_text(more_chapters(hidden))] if hidden else [])
        used = sum(len(p) + 2 for p in parts)
        block = join_atoms(lines, DESCRIPTION_MAX - used - len("**Chapters**\n"))
        if block:
            parts.append("**Chapters**\n" + block)
    if entries:
        used = sum(len(p) + 2 for p in parts)
        block = join_atoms(list(entries), DESCRIPTION_MAX - used)
        if block:
            parts.append(block)
    return "\n\n".join(parts)[:DESCRIPTION_MAX]


REPLY_CHAPTERS = 25  # a reply lists more than an announcement: `episode N` shows them all


def item_embed(item: ReplyItem) -> discord.Embed:
    url = safe_url(item.url)
    shown, hidden = shown_chapters(item.chapters, REPLY_CHAPTERS)
    chapters, _ = chapter_views(item.url, shown, len(shown), item.video_id)
    embed = discord.Embed(
        title=fit_escaped(item.title or "(untitled)", TITLE_MAX),
        url=url,
        description=_description(item.summary, chapters, hidden) or None,
        timestamp=item.published_at if isinstance(item.published_at, datetime) else None,
    )
    fields: list[tuple[str, str]] = []
    if item.kind:
        fields.append(("Kind", escape_text(item.kind)))
    if item.source:
        fields.append(("Source", escape_text(item.source)))
    if item.duration_s:
        fields.append(("Duration", format_duration(item.duration_s)))
    for name, value in fields[:FIELDS_MAX]:
        embed.add_field(name=name[:FIELD_NAME_MAX], value=truncate(value, FIELD_VALUE_MAX), inline=True)
    thumb = safe_url(item.image_url)
    if thumb:
        embed.set_thumbnail(url=thumb)
    return embed


def fit_embeds(embeds: list[discord.Embed]) -> list[discord.Embed]:
    """At most 10 embeds whose text totals at most 6000 chars (Discord counts title,
    description, field names/values, footer and author)."""
    out: list[discord.Embed] = []
    total = 0
    for embed in embeds[:EMBEDS_MAX]:
        size = len(embed)
        if total + size > EMBED_TOTAL_MAX:
            room = EMBED_TOTAL_MAX - total - (size - len(embed.description or ""))
            if out or room < 200:
                break  # drop this and later items rather than mangling them
            embed.description = join_atoms((embed.description or "").split("\n"), room) or None
            size = len(embed)
        out.append(embed)
        total += size
    return out


def render_reply(reply: Reply) -> RenderedMessage:
    text = escape_text(reply.text) if reply.text else ""
    if reply.announcement is not None:
        # A preview: the announcement exactly as the channel would get it,
        # under the reply's own line (no marker: it was never posted).
        body, embed = announcement_parts(reply.announcement, marker=None)
        embeds = [embed] if embed is not None else []
        if body:
            text = f"{text}\n\n{body}" if text else body
    else:
        embeds = fit_embeds([item_embed(i) for i in reply.items])
        if len(embeds) < len(reply.items):
            text += f"\n(showing {len(embeds)} of {len(reply.items)})"
        for section in reply.sections:
            text += f"\n\n**{escape_text(section.label)}**"
            for line in section.lines:
                url = safe_url(line.url)
                # <url> keeps Discord from adding a preview per line
                text += f"\n• {escape_text(line.text)}" + (f" <{url}>" if url else "")
    content: str | None = truncate(text.strip(), CONTENT_MAX) or None
    if content is None and not embeds:
        content = "(nothing to show)"
    return RenderedMessage(
        content=content,
        embeds=embeds,
        more=reply.more,
        image_path=reply.image_path,
        ephemeral=reply.ephemeral,
    )


# --- announcements ------------------------------------------------------------


def delivery_marker(idempotency_key: str) -> str:
    """The text an announcement carries so ``find_delivered`` can recognise it."""
    return f"{MARKER_PREFIX}{idempotency_key}"


def body_text(view: AnnouncementView) -> str:
    """A rendered template as message content: the moderator's own text
    keeps its markdown (never a ping), feed text is escaped, links are links,
    and only the route's role becomes a mention. Cut between segments."""
    out = ""
    budget = CONTENT_MAX - len(ELLIPSIS)
    for segment in view.body:
        if segment.role is SegmentRole.LITERAL:
            piece = discord.utils.escape_mentions(segment.text)
        elif segment.role is SegmentRole.LINK:
            piece = safe_url(segment.text) or escape_text(segment.text)
        elif segment.role is SegmentRole.MENTION:
            piece = f"<@&{segment.text}>" if segment.text.isdigit() else ""
        else:
            piece = escape_text(segment.text)
        if len(out) + len(piece) > budget:
            room = budget - len(out)
            if segment.role is SegmentRole.TEXT and room > 20:
                out += fit_escaped(segment.text, room).removesuffix(ELLIPSIS)
            return out.rstrip() + ELLIPSIS
        out += piece
    return out


def view_embed(view: AnnouncementView, marker: str | None) -> discord.Embed:
    """The card: heading as the author, the title linked, the summary and
    chapters (or a digest's lines) in the description, the facts as fields."""
    entries = []
    for entry in view.entries:
        url = safe_url(entry.url)
        label = escape_link_text(truncate(entry.title, 200))
        title = f"[{label}]({url})" if url else escape_text(truncate(entry.title, 200))
        line = f"• {escape_text(entry.heading)}: {title}"
        facts = " · ".join(f.value for f in entry.facts)
        entries.append(f"{line} — {escape_text(facts)}" if facts else line)
    if view.more_entries:
        entries.append(escape_text(f"… and {view.more_entries} more"))
    embed = discord.Embed(
        title=fit_escaped(view.title or view.heading, TITLE_MAX),
        url=safe_url(view.url),
        description=_description(view.summary, view.chapters, view.more_chapters, entries) or None,
        timestamp=view.published_at,
    )
    embed.set_author(name=truncate(view.heading, FIELD_NAME_MAX))
    for fact in view.facts[:FIELDS_MAX]:
        embed.add_field(name=fact.label[:FIELD_NAME_MAX], value=truncate(escape_text(fact.value), FIELD_VALUE_MAX),
                        inline=True)
    also = [f"[{escape_link_text(truncate(a.label, 100))}]({safe_url(a.value)})" for a in view.also
            if safe_url(a.value)]
    if also and len(embed.fields) < FIELDS_MAX:  # an edit: the same release elsewhere
        embed.add_field(name="Also on", value=truncate(" · ".join(also), FIELD_VALUE_MAX), inline=False)
    thumb = safe_url(view.image_url)
    if thumb:
        embed.set_thumbnail(url=thumb)
    if marker is not None:
        embed.set_footer(text=truncate(marker, FOOTER_MAX))
    return fit_embeds([embed])[0]


def announcement_parts(view: AnnouncementView, marker: str | None) -> tuple[str | None, discord.Embed | None]:
    """(content, embed) for one announcement. A template makes the whole
    message (content only: Discord shows its own link preview); otherwise the
    card, with the role mention as the content."""
    if view.body:
        return body_text(view) or None, None
    mention = f"<@&{view.mention}>" if view.mention and view.mention.isdigit() else None
    return mention, view_embed(view, marker)
