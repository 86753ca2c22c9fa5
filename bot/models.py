"""Plain dataclasses spoken at every seam of the core.

Nothing here does I/O. Timestamps are timezone-aware UTC datetimes named ``*_at``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


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


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    title: str
    items: tuple[Item, ...]
    link: str | None = None
    image_url: str | None = None
    warning: str | None = None  # feedparser's bozo reason, kept as a hint


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """What a source is and how to poll it (config or a moderator's ``feed add``)."""

    name: str
    kind: str  # "rss" | "x"
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

    @property
    def broken(self) -> bool:
        return self.broken_reason is not None


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

    @property
    def is_follow_up(self) -> bool:
        return self.event.payload.get("follow_up_of") is not None


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


@dataclass(frozen=True, slots=True)
class Reply:
    """A chat-neutral answer. Adapters only render it."""

    kind: str  # "latest", "search", "help", "error", "status", ...
    text: str
    items: tuple[ReplyItem, ...] = ()
    ephemeral: bool = False
    more: str | None = None  # the command text that shows the next page, if any
    image_path: str | None = None
