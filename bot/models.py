"""Plain dataclasses spoken at every seam of the core.

Nothing here does I/O. Timestamps are timezone-aware UTC datetimes named ``*_at``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal


class ContentKind(str, enum.Enum):
    """What an item of a source is."""

    EPISODE = "episode"
    VIDEO = "video"
    ARTICLE = "article"
    POST = "post"


class EventKind(str, enum.Enum):
    """What routes select. Content kinds plus the news derived from them."""

    EPISODE = "episode"
    VIDEO = "video"
    ARTICLE = "article"
    POST = "post"
    BOOK = "book"
    PROFILE = "profile"
    MILESTONE = "milestone"
    # For moderators: a source failing N times in a row, a route that broke.
    # A route selecting "alert" is the moderators' channel.
    ALERT = "alert"
    # One message with a period's items, for a route with a digest. Not a
    # kind a route selects (see ROUTE_KINDS): it is made from what it held.
    DIGEST = "digest"
    # An announcement already posted, edited in place (bot.edits): its
    # payload names the event it edits and what the message shows now. Not
    # a kind a route selects: it goes where the edited event went.
    EDIT = "edit"


# The kinds a route can select, in the order replies list them.
ROUTE_KINDS: tuple[EventKind, ...] = tuple(k for k in EventKind if k not in (EventKind.DIGEST, EventKind.EDIT))


class EventPurpose(str, enum.Enum):
    """Why an event exists. Only ``announce`` events are unique per (item,
    kind): a test post or a digest may show an item announced before."""

    ANNOUNCE = "announce"
    TEST = "test"  # `announce test here`: the newest item, marked as a test
    DIGEST = "digest"  # a route's digest of the items it held


class DigestPeriod(str, enum.Enum):
    DAILY = "daily"
    WEEKLY = "weekly"


class Platform(str, enum.Enum):
    DISCORD = "discord"
    SLACK = "slack"
    CONSOLE = "console"


class DestinationKind(str, enum.Enum):
    """Where an outbox row goes: a channel (a route) or one member (a DM)."""

    CHANNEL = "channel"
    USER = "user"


@dataclass(frozen=True, slots=True)
class Destination:
    """One place a message is posted to. Order of delivery is kept per destination."""

    platform: Platform
    kind: DestinationKind
    id: str  # a channel id, or a user id for a direct message

    @property
    def is_direct(self) -> bool:
        return self.kind is DestinationKind.USER

    @property
    def label(self) -> str:
        """"channel 123" / "user 456", for messages that already name the platform."""
        return f"{self.kind.value} {self.id}"

    def __str__(self) -> str:
        return f"{self.platform.value} {self.label}"


@dataclass(frozen=True, slots=True)
class Chapter:
    start_s: int
    title: str


class DocumentKind(str, enum.Enum):
    """A document an item links to and the bot fetches itself (Podcasting 2.0)."""

    CHAPTERS = "chapters"  # podcast:chapters, JSON chapters
    TRANSCRIPT = "transcript"  # podcast:transcript: SRT, WebVTT, JSON or HTML


@dataclass(frozen=True, slots=True)
class DocumentLink:
    """``<podcast:chapters url=... type=...>`` / ``<podcast:transcript ...>`` as the feed gives it."""

    kind: DocumentKind
    url: str
    media_type: str | None = None  # as declared, lower-cased; the body may say otherwise


@dataclass(frozen=True, slots=True)
class TranscriptSegment:
    """One timed piece of a transcript (a cue, a paragraph)."""

    start_s: int
    text: str
    end_s: int | None = None


@dataclass(frozen=True, slots=True)
class Item:
    """One entry of a feed, normalized; what a source hands to detection."""

    title: str
    link: str | None = None
    guid: str | None = None
    summary: str = ""  # plain text, HTML already stripped
    published_at: datetime | None = None
    updated_at: datetime | None = None
    duration_s: int | None = None
    episode_number: int | None = None
    enclosure_url: str | None = None
    image_url: str | None = None
    video_id: str | None = None
    chapters: tuple[Chapter, ...] = ()
    # podcast:chapters / podcast:transcript links. Not stored on the item:
    # the poller fetches them (bot.documents) and storage keeps each
    # document's state and content in tables of their own.
    documents: tuple[DocumentLink, ...] = ()


class LiveState(str, enum.Enum):
    """A video's ``snippet.liveBroadcastContent`` in the YouTube Data API."""

    UPCOMING = "upcoming"  # a scheduled premiere or stream, not started
    LIVE = "live"  # on air now
    NONE = "none"  # an ordinary video, or a premiere/stream that has ended


@dataclass(frozen=True, slots=True)
class VideoFacts:
    """What the YouTube checks (bot.sources.youtube) found out about one
    video, handed to the pure decider. ``None`` means "not checked" or "the
    check failed" (then ``*_error`` says why)."""

    video_id: str
    short: bool | None = None  # a Short (HEAD {base_url}/shorts/{id} answered 200)
    short_error: str | None = None
    live: LiveState | None = None  # from videos.list (with YOUTUBE_API_KEY)
    scheduled_start_at: datetime | None = None
    actual_start_at: datetime | None = None
    actual_end_at: datetime | None = None
    api_error: str | None = None
    # Without a key: the watch page's playabilityStatus.status ("OK",
    # "LIVE_STREAM_OFFLINE", ...); playable is False only while it says the
    # video cannot be watched *yet*.
    playable: bool | None = None
    playability: str | None = None
    playable_error: str | None = None


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    title: str
    items: tuple[Item, ...]
    link: str | None = None
    image_url: str | None = None
    warning: str | None = None  # feedparser's bozo reason, kept as a hint


SourceKindName = Literal["rss", "x"]


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """What a source is and how to poll it (config or a moderator's ``feed add``)."""

    name: str
    kind: SourceKindName
    url: str | None = None
    content: ContentKind = ContentKind.ARTICLE
    every_s: int = 900
    announce_on_first_poll: int = 0
    max_age_s: int = 7 * 86400
    handle: str | None = None
    provider: str | None = None
    api_base_url: str | None = None


@dataclass(frozen=True, slots=True)
class Source:
    """A source as stored, with its poll state."""

    id: int
    spec: SourceSpec
    paused: bool = False
    synced: bool = False  # True once a first poll succeeded
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    last_polled_at: datetime | None = None
    last_success_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    consecutive_failures: int = 0
    next_poll_at: datetime | None = None
    cursor: str | None = None  # a provider's resume point (X since_id)

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True, slots=True)
class Route:
    """Where announcements of some kinds go."""

    id: int
    platform: Platform
    channel: str
    kinds: frozenset[EventKind]
    mention: str | None = None
    broken_reason: str | None = None
    thread: bool = False  # a discussion thread under each announcement, where the platform has them
    # Only events of these sources (by name); empty: every source.
    feeds: frozenset[str] = frozenset()
    # The message template (bot.templates); None: the default card.
    template: str | None = None
    # Flood control (bot.outbox.flood): at least pace_s between two posts,
    # at most daily_cap posts a UTC day, and/or one digest per period.
    pace_s: int | None = None
    daily_cap: int | None = None
    digest: DigestPeriod | None = None

    @property
    def broken(self) -> bool:
        return self.broken_reason is not None

    def takes(self, kind: EventKind, source: str | None) -> bool:
        """Whether this route selects an event of ``kind`` from ``source``.
        Alerts are about sources, not from them: a feed restriction never
        hides one."""
        if kind not in self.kinds:
            return False
        if kind is EventKind.ALERT or not self.feeds:
            return True
        return source is not None and source in self.feeds


@dataclass(frozen=True, slots=True)
class StoredItem:
    """An item as stored: its row id, source and identity on top of the Item."""

    id: int
    source_name: str
    kind: ContentKind
    identity: str
    item: Item
    first_seen_at: datetime


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    kind: EventKind
    title: str
    url: str | None
    created_at: datetime
    item_id: int | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    purpose: EventPurpose = EventPurpose.ANNOUNCE


@dataclass(frozen=True, slots=True)
class Announcement:
    """One outbox row made concrete for an adapter: what to post, where."""

    outbox_id: int
    idempotency_key: str  # stable per (event, destination); adapters use it as a nonce/marker
    event: Event
    destination: Destination
    item: StoredItem | None  # None for profile/milestone events
    mention: str | None = None  # the route's role / user group; never for a DM
    thread: bool = False  # open a discussion thread under it (the route's option)
    attempts: int = 0  # attempts before this one
    outcome_unknown: bool = False  # a previous attempt may have posted it (crash, timeout, 5xx)
    # When the first attempt started: a lookup for an earlier post searches
    # the platform's history back to here, not just the newest messages.
    first_attempt_at: datetime | None = None
    # A follow-up (more links for book news already announced): the platform
    # message id of the first announcement in this channel, to reply under.
    reply_to: str | None = None
    template: str | None = None  # the route's message template (None: the card)
    # A digest: the events it gathers, oldest first, each with its item.
    entries: tuple[tuple[Event, StoredItem | None], ...] = ()
    # An edit (an outbox row of an ``edit`` event): ``event``/``item`` are
    # the announcement being edited, ``edit`` the edit event (its payload
    # says what the message shows now, bot.edits), ``edit_of`` the platform
    # message id of the post to change.
    edit: Event | None = None
    edit_of: str | None = None

    @property
    def is_follow_up(self) -> bool:
        return self.event.payload.get("follow_up_of") is not None

    @property
    def is_test(self) -> bool:
        return self.event.purpose is EventPurpose.TEST


@dataclass(frozen=True, slots=True)
class Delivered:
    message_id: str | None = None
    url: str | None = None  # a link to the posted message, where the platform has one (`why` shows it)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is talking to the bot, as filled in by an adapter."""

    platform: Platform
    user_id: str
    channel: str
    is_moderator: bool = False
    display_name: str | None = None


@dataclass(frozen=True, slots=True)
class ReplyItem:
    title: str
    url: str | None
    kind: str
    source: str
    published_at: datetime | None = None
    duration_s: int | None = None
    chapters: tuple[Chapter, ...] = ()
    summary: str = ""
    image_url: str | None = None
    video_id: str | None = None  # a YouTube video (yt:videoId): its chapter links seek with t=


class SegmentRole(str, enum.Enum):
    """What a piece of a rendered template is, so each platform escapes it right."""

    LITERAL = "literal"  # the moderator's own template text (markup allowed, never a ping)
    TEXT = "text"  # feed text: shown as is, every markup escaped
    LINK = "link"  # a URL
    MENTION = "mention"  # the route's role / user group id


@dataclass(frozen=True, slots=True)
class Segment:
    text: str
    role: SegmentRole = SegmentRole.LITERAL


@dataclass(frozen=True, slots=True)
class Fact:
    """One labelled fact under an announcement's title ("Duration", "46m 39s")."""

    label: str
    value: str


@dataclass(frozen=True, slots=True)
class ChapterView:
    start_s: int
    clock: str  # "12:26"
    title: str
    url: str | None  # opens at the chapter where the platform supports it, else None


@dataclass(frozen=True, slots=True)
class EntryView:
    """One line of a digest."""

    heading: str  # "New episode"
    title: str
    url: str | None
    facts: tuple[Fact, ...] = ()


@dataclass(frozen=True, slots=True)
class AnnouncementView:
    """An announcement as every platform shows it (bot.presenter.present).
    Adapters map it to an embed, Block Kit or text and decide nothing: the
    heading, links, chapter links and what is left out are settled here."""

    kind: EventKind
    heading: str  # "New episode", "Book news", "More book news", "Moderator alert", ...
    title: str
    url: str | None
    summary: str = ""  # plain text, already trimmed
    facts: tuple[Fact, ...] = ()
    chapters: tuple[ChapterView, ...] = ()  # in time order
    more_chapters: int = 0  # chapters left out
    image_url: str | None = None
    published_at: datetime | None = None
    mention: str | None = None  # the role / user group to ping; None for follow-ups, tests, DMs
    follow_up: bool = False
    test: bool = False
    direct_to: str | None = None  # a direct message to this user id
    # A route template, rendered: the whole message. Empty: the card above.
    body: tuple[Segment, ...] = ()
    entries: tuple[EntryView, ...] = ()  # a digest's items
    more_entries: int = 0
    # An edited announcement: links to the same release elsewhere ("Also
    # on": label = where, value = the URL), and what changed, for a
    # platform that can't edit (the console prints it as a line).
    also: tuple[Fact, ...] = ()
    edited: bool = False
    edit_note: str = ""

    @property
    def plain_body(self) -> str:
        return "".join(s.text for s in self.body)


@dataclass(frozen=True, slots=True)
class SectionLine:
    text: str  # plain text ("at 12:30 in episode 141: …"); each renderer escapes it
    url: str | None = None  # opens at that minute where the platform can, else the item's page
    # The start of ``text`` a renderer that links inline makes the link
    # ("at 12:30 in episode 141"); "" for the whole line. Said here rather
    # than found again in the text: a title can hold the same ": " that
    # ends the lead ("Kafka: consumer groups").
    lead: str = ""

    def __post_init__(self) -> None:
        if not self.text.startswith(self.lead):
            raise ValueError(f"section line lead {self.lead!r} does not start its text {self.text!r}")


@dataclass(frozen=True, slots=True)
class ReplySection:
    """A labelled block under a reply's items ("In transcripts"), built by
    bot.presenter so every adapter shows the same lines."""

    label: str
    lines: tuple[SectionLine, ...]


# What a Reply answers: adapters and `ask --json` key on it ("error" is
# shown privately; "failure" makes `showbot ask` exit 1).
ReplyKind = Literal[
    "latest", "search", "episode", "random", "book", "stats", "help", "subscriptions",
    "feeds", "feed", "filter", "status", "announce", "template", "preview", "why", "not-found",
    "error", "failure",
]


@dataclass(frozen=True, slots=True)
class Reply:
    """A chat-neutral answer. Adapters only render it."""

    kind: ReplyKind
    text: str
    items: tuple[ReplyItem, ...] = ()
    ephemeral: bool = False
    more: str | None = None  # the command text that shows the next page, if any
    image_path: str | None = None
    # A preview: the announcement exactly as a channel would get it. Adapters
    # show it in place of ``items`` (which stay for ``ask --json``).
    announcement: AnnouncementView | None = None
    sections: tuple[ReplySection, ...] = ()  # shown after the items
