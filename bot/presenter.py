"""One presenter for every platform: ``present(announcement) -> AnnouncementView``.

Pure. Everything a reader sees of an announcement is decided here once --
the heading, which link, the facts under the title, the chapters in time
order with their links already built, how many are left out, who is
mentioned, whether it is a follow-up, a test or a direct message, and the
route's template rendered. The Discord, Slack and console renderers only map
the view to an embed, Block Kit or text, so the platforms can't drift apart
("New book" on one, "Book news" on another; a chapter link that got ``t=``
twice because the core and an adapter both added it).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping, Sequence

from bot.edits import edit_note, parse_edit
from bot.documents import TranscriptHit, snippet
from bot.errors import UserError
from bot.models import (
    Announcement,
    AnnouncementView,
    Chapter,
    ChapterView,
    EntryView,
    Event,
    EventKind,
    Fact,
    ReplySection,
    SectionLine,
    Segment,
    SegmentRole,
    StoredItem,
)
from bot.replies import (
    FOLLOW_UP_HEADING,
    format_date,
    format_duration,
    format_timestamp,
    link_at,
    more_chapters,
    plural,
    timed_link,
    trim,
)
from bot.templates import merge_segments, parse_template, render_template

HEADINGS: dict[EventKind, str] = {
    EventKind.EPISODE: "New episode",
    EventKind.VIDEO: "New video",
    EventKind.ARTICLE: "New article",
    EventKind.POST: "New post",
    EventKind.BOOK: "Book news",
    EventKind.PROFILE: "Profile update",
    EventKind.MILESTONE: "Milestone",
    EventKind.ALERT: "Moderator alert",
    EventKind.DIGEST: "Digest",
}
DIGEST_HEADINGS = {"daily": "Daily digest", "weekly": "Weekly digest"}
TEST_PREFIX = "Test post"
MAX_CHAPTERS = 10
MAX_ENTRIES = 25
SUMMARY_CHARS = 300


TRANSCRIPTS_LABEL = "In transcripts"
CHAPTERS_LABEL = "In chapters"


def chapter_section(hits: Sequence[tuple[StoredItem, Chapter]]) -> ReplySection | None:
    """Chapter matches as one labelled section, best first: "“episode
    title”: chapter title (at 12:30)", linked to that minute where the
    platform can seek, else to the item's page as it is."""
    lines = []
    for stored, chapter in hits:
        item = stored.item
        lead = f"“{' '.join(item.title.split())}”"
        text = f"{lead}: {' '.join(chapter.title.split())} (at {format_timestamp(chapter.start_s)})"
        lines.append(SectionLine(text, link_at(item.link or item.enclosure_url, chapter.start_s, item.video_id), lead))
    return ReplySection(CHAPTERS_LABEL, tuple(lines)) if lines else None


def transcript_section(hits: Sequence[TranscriptHit], words: Sequence[str]) -> ReplySection | None:
    """Transcript hits as one labelled section: "at 12:30 in episode 141:
    …snippet…", linked to that minute where the platform can seek (YouTube
    ``t=``), else to the item's page as it is."""
    lines = []
    for hit in hits:
        stored = hit.item
        item = stored.item
        if stored.kind.value == "episode" and item.episode_number is not None:
            where = f"episode {item.episode_number}"
        else:
            where = f"{stored.kind.value} “{' '.join(item.title.split())}”"
        lead = f"at {format_timestamp(hit.start_s)} in {where}"
        text = f"{lead}: {snippet(hit.text, words)}"
        lines.append(SectionLine(text, link_at(item.link or item.enclosure_url, hit.start_s, item.video_id), lead))
    return ReplySection(TRANSCRIPTS_LABEL, tuple(lines)) if lines else None


def heading_of(kind: EventKind) -> str:
    return HEADINGS.get(kind, kind.value)


def chapter_views(url: str | None, chapters: Sequence[Chapter],
                  limit: int = MAX_CHAPTERS, video_id: str | None = None) -> tuple[tuple[ChapterView, ...], int]:
    """The first ``limit`` chapters in time order (feeds list them in any
    order), each with a link that opens it where the platform can; and how
    many were left out."""
    ordered = sorted(chapters, key=lambda c: c.start_s)
    shown = ordered[:max(0, limit)]
    views = tuple(ChapterView(c.start_s, format_timestamp(c.start_s), " ".join(c.title.split()),
                              timed_link(url, c.start_s, video_id)) for c in shown)
    return views, len(ordered) - len(shown)


def item_facts(stored: StoredItem | None) -> tuple[Fact, ...]:
    if stored is None:
        return ()
    item = stored.item
    facts = [Fact("Source", stored.source_name)]
    if item.published_at is not None:
        facts.append(Fact("Published", format_date(item.published_at)))
    if item.duration_s:
        facts.append(Fact("Duration", format_duration(item.duration_s)))
    return tuple(f for f in facts if f.value)


def _link(event: Event, stored: StoredItem | None) -> str | None:
    item = stored.item if stored is not None else None
    return (item.link if item else None) or event.url or (item.enclosure_url if item else None)


def live_heading(payload: Mapping[str, Any]) -> str | None:
    """A premiere or stream announced before it ended (bot.holds puts
    ``live`` in its event's payload): "Premieres at 2026-12-01 18:00 UTC"
    while upcoming, "Live now" while on air; None for anything else (a
    finished one reads as the plain video)."""
    live = payload.get("live")
    if not isinstance(live, Mapping):
        return None
    state = live.get("state")
    if state == "live":
        return "Live now"
    if state == "upcoming":
        try:
            start = datetime.fromisoformat(str(live.get("scheduled_start_at")))
        except ValueError:
            return "Premieres soon"
        return f"Premieres at {start.astimezone(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}"
    return None


def _title(event: Event, stored: StoredItem | None) -> str:
    item = stored.item if stored is not None else None
    title = (item.title if item and item.title.strip() else None) or event.title
    return " ".join((title or heading_of(event.kind)).split())


def present(announcement: Announcement) -> AnnouncementView:
    """What to show for one outbox row (or a preview made to look like one)."""
    event = announcement.event
    stored = announcement.item
    item = stored.item if stored is not None else None
    follow_up = announcement.is_follow_up
    test = announcement.is_test
    direct = announcement.destination.is_direct

    if follow_up:
        heading = FOLLOW_UP_HEADING
    elif event.kind is EventKind.DIGEST:
        heading = DIGEST_HEADINGS.get(str(event.payload.get("period")), heading_of(event.kind))
    else:
        heading = live_heading(event.payload) or heading_of(event.kind)
    if test:
        heading = f"{TEST_PREFIX}: {heading}"

    url = _link(event, stored)
    summary_text = item.summary if item is not None else str(event.payload.get("summary") or "")
    chapters, hidden = chapter_views(url, item.chapters if item is not None else (),
                                     video_id=item.video_id if item is not None else None)
    # A follow-up heard about once already, a test is not news, a DM is one
    # member's: none of them pings the role.
    mention = None if (follow_up or test or direct) else announcement.mention

    entries: list[EntryView] = []
    for entry_event, entry_item in announcement.entries[:MAX_ENTRIES]:
        entries.append(EntryView(heading_of(entry_event.kind), _title(entry_event, entry_item),
                                 _link(entry_event, entry_item), item_facts(entry_item)))

    title = _digest_title(event, len(announcement.entries)) if event.kind is EventKind.DIGEST else None
    view = AnnouncementView(
        kind=event.kind,
        heading=heading,
        title=title or _title(event, stored),
        url=url,
        summary=trim(summary_text, SUMMARY_CHARS) if summary_text else "",
        facts=item_facts(stored),
        chapters=chapters,
        more_chapters=hidden,
        image_url=item.image_url if item is not None else None,
        published_at=item.published_at if item is not None else None,
        mention=mention,
        follow_up=follow_up,
        test=test,
        direct_to=announcement.destination.id if direct else None,
        entries=tuple(entries),
        more_entries=max(0, len(announcement.entries) - MAX_ENTRIES),
    )
    if announcement.edit is not None:
        view = _edited(view, announcement.edit)
    # Alerts and digests keep their own shape: a moderator must read an alert
    # whatever the channel's template, and a digest is a list.
    if announcement.template and event.kind not in (EventKind.ALERT, EventKind.DIGEST):
        return _with_body(view, announcement.template, event, stored)
    return view


def _edited(view: AnnouncementView, edit: Event) -> AnnouncementView:
    """The announcement as its newest edit says it shows now (bot.edits):
    the edit's overrides on the card made from the event and its item, the
    links to the same release elsewhere, and the line a terminal prints."""
    try:
        spec = parse_edit(edit.payload)
    except ValueError:
        return view
    title = " ".join(spec.title.split()) if spec.title else view.title
    heading = spec.heading or view.heading
    url = spec.url or view.url
    summary = trim(spec.summary, SUMMARY_CHARS) if spec.summary is not None else view.summary
    chapters, hidden = view.chapters, view.more_chapters
    if url != view.url:  # chapter links open the new link, not the old one
        chapters = tuple(replace(c, url=timed_link(url, c.start_s)) for c in chapters)
    also = tuple(Fact(a.label, a.url) for a in spec.also if a.url != url)
    return replace(view, title=title, heading=heading, url=url, summary=summary, chapters=chapters,
                   more_chapters=hidden, also=also, edited=True,
                   edit_note=edit_note(spec, heading, title, url))


def _digest_title(event: Event, count: int) -> str | None:
    """'3 new items from 2026-06-19' (daily) / '… in the week to 2026-06-21'."""
    try:
        end = datetime.fromisoformat(str(event.payload["period_end"]))
    except (KeyError, ValueError):
        return None
    last_day = format_date(end - timedelta(days=1))
    what = plural(count, "new item")
    if event.payload.get("period") == "weekly":
        return f"{what} in the week to {last_day}"
    return f"{what} from {last_day}"


def template_values(view: AnnouncementView, event: Event, stored: StoredItem | None) -> dict[str, list[Segment]]:
    item = stored.item if stored is not None else None
    text = SegmentRole.TEXT

    def one(value: str | None, role: SegmentRole = text) -> list[Segment]:
        return [Segment(value, role)] if value else []

    chapter_segments: list[Segment] = []
    for n, c in enumerate(view.chapters):
        if n:
            chapter_segments.append(Segment("\n", SegmentRole.LITERAL))
        chapter_segments.append(Segment(f"{c.clock} {c.title}", text))
        if c.url:
            chapter_segments += [Segment(" ", SegmentRole.LITERAL), Segment(c.url, SegmentRole.LINK)]
    if view.more_chapters:
        chapter_segments += [Segment("\n", SegmentRole.LITERAL), Segment(more_chapters(view.more_chapters), text)]
    return {
        "title": one(view.title),
        "url": one(view.url, SegmentRole.LINK),
        "kind": one(event.kind.value),
        "feed": one(stored.source_name if stored is not None else None),
        "published": one(format_date(item.published_at) if item is not None else None),
        "duration": one(format_duration(item.duration_s) if item is not None else None),
        "episode": one(str(item.episode_number) if item is not None and item.episode_number is not None else None),
        "summary": one(view.summary),
        "chapters": chapter_segments,
        "mention": one(view.mention, SegmentRole.MENTION),
    }


def _with_body(view: AnnouncementView, template: str, event: Event, stored: StoredItem | None) -> AnnouncementView:
    try:
        parts = parse_template(template)
    except UserError:  # a stored template that no longer parses: the card, not a lost post
        return view
    body = list(render_template(parts, template_values(view, event, stored)))
    if not body:  # every placeholder empty: say at least what it is
        body = [Segment(view.title, SegmentRole.TEXT)]
    if view.mention and not any(s.role is SegmentRole.MENTION for s in body):
        body = [Segment(view.mention, SegmentRole.MENTION), Segment(" ", SegmentRole.LITERAL), *body]
    for also in view.also:  # an edit that joined the same release elsewhere
        body += [Segment(f"\nAlso on {also.label}: ", SegmentRole.LITERAL), Segment(also.value, SegmentRole.LINK)]
    if view.test:
        body = [Segment(f"{TEST_PREFIX}: ", SegmentRole.LITERAL), *body]
    elif view.follow_up:
        body = [Segment(f"{FOLLOW_UP_HEADING}: ", SegmentRole.LITERAL), *body]
    return replace(view, body=tuple(merge_segments(body)))
