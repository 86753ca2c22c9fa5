"""The records storage hands back and takes in, shared by every backend.

Plain frozen dataclasses and enums: what a row of the outbox is, what became
of a delivery, what a poll wrote, and the read models of the catalogue,
stats and moderation commands. Timestamps are timezone-aware UTC datetimes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Sequence

from bot.models import (
    DigestPeriod, Destination, Event, EventKind, EventPurpose, Platform, StoredItem,
)
from bot.verdicts import ItemVerdict, Routing


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"  # waiting its turn (next_attempt_at)
    SENDING = "sending"  # claimed by lease_owner until lease_until; maybe being posted right now
    SENT = "sent"
    FAILED = "failed"  # given up: the route broke or was removed, or a DM can't be received
    HELD = "held"  # kept back for the route's next digest (out of the queue: blocks nothing)
    DIGESTED = "digested"  # went out inside a digest (outbox.digest_id)


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    event_id: int
    route_id: int | None
    destination: Destination
    mention: str | None
    idempotency_key: str
    status: OutboxStatus
    attempts: int
    outcome_unknown: bool
    next_attempt_at: datetime
    first_attempt_at: datetime | None
    lease_owner: str | None
    lease_until: datetime | None
    last_error: str | None
    message_id: str | None

    @property
    def platform(self) -> Platform:
        return self.destination.platform

    @property
    def channel(self) -> str:
        return self.destination.id


class DeliveryOutcome(enum.StrEnum):
    SENT = "sent"
    RETRY = "retry"  # back to pending at next_attempt_at
    FAILED = "failed"
    RELEASED = "released"  # claimed but not attempted: back to pending as it was
    HELD = "held"  # not posted alone: kept for the route's next digest


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What became of one claimed outbox row; written by ``record_deliveries``."""

    outbox_id: int
    outcome: DeliveryOutcome
    at: datetime
    attempted: bool = True
    message_id: str | None = None
    message_url: str | None = None  # SENT: a link to the message, where the platform has one
    error: str | None = None
    next_attempt_at: datetime | None = None  # RETRY (and RELEASED, to postpone it)
    outcome_unknown: bool = False  # RETRY: the platform may have the post; ask before re-posting
    break_route: int | None = None  # FAILED because this route can never work: mark it broken...
    alert: str | None = None  # ...and tell the moderators' channels this, once


@dataclass(frozen=True, slots=True)
class PollWrite:
    """What one successful poll wrote, for reports (``poll --json``)."""

    new_items: tuple[StoredItem, ...]
    events: tuple[Event, ...]
    outbox_rows: int


@dataclass(frozen=True, slots=True)
class RouteSeed:
    """Every setting of one channel's route: what the config file says
    (``seed``, ``apply-config``) or what a moderator's command made it
    (``put_route``)."""

    platform: Platform
    channel: str
    kinds: frozenset[EventKind]
    mention: str | None = None
    thread: bool = False
    feeds: frozenset[str] = frozenset()
    template: str | None = None
    pace_s: int | None = None
    daily_cap: int | None = None
    digest: DigestPeriod | None = None


@dataclass(frozen=True, slots=True)
class QueuedDelivery:
    destination: Destination
    route_id: int | None = None
    mention: str | None = None


@dataclass(frozen=True, slots=True)
class QueuedEvent:
    """An event about an item already stored (a backfill, a test post),
    with where it goes: written by ``queue_events``."""

    kind: EventKind
    title: str
    url: str | None
    item_id: int | None
    source_id: int | None
    deliveries: tuple[QueuedDelivery, ...]
    purpose: EventPurpose = EventPurpose.ANNOUNCE
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RouteTally:
    """What flood control needs of a route's recent posts."""

    capped_since: int  # posts since the asked time that count toward a daily cap
    last_sent_at: datetime | None  # the last post that counts toward the pace


@dataclass(frozen=True, slots=True)
class RouteFacts:
    """A route's deliveries, for `status`."""

    last_delivered_at: datetime | None = None
    queued: int = 0  # pending or sending, due now
    waiting: int = 0  # pending, due later (a retry, the pace, the daily cap)
    next_attempt_at: datetime | None = None  # the earliest of the waiting ones
    held: int = 0  # kept for the next digest


@dataclass(frozen=True, slots=True)
class SearchHit:
    item_id: int
    score: float  # the backend's own relevance units: compare only within one search
    strong: bool  # a query term matched the title or a chapter title
    published_at: datetime | None = None  # for `search X newest`


@dataclass(frozen=True, slots=True)
class ChapterHit:
    """A chapter whose title matched a search (``Storage.search_chapters``)."""

    item_id: int
    position: int  # the chapter's place in its item's chapter order (0-based)
    score: float  # the backend's own chapter-title relevance: compare only within one search


@dataclass(frozen=True, slots=True)
class KindStats:
    kind: str
    count: int
    first: datetime | None
    last: datetime | None
    total_duration_s: int


@dataclass(frozen=True, slots=True)
class SourceFacts:
    items: int
    last_announced_at: datetime | None  # when an event of it was last created
    last_item_at: datetime | None = None  # when an item of it was last first seen
    last_item_title: str | None = None
    last_delivered_at: datetime | None = None  # when a post of its events last went out


@dataclass(frozen=True, slots=True)
class AuditRow:
    at: datetime
    platform: str
    user_id: str
    action: str
    detail: str


@dataclass(frozen=True, slots=True)
class BookNews:
    title: str
    url: str | None
    at: datetime  # the item's publication date when known, else when the news was detected
    source: str  # the source's name, "" when the source was removed
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Snapshot:
    taken_at: datetime
    followers: int | None
    following: int | None
    posts: int | None


@dataclass(frozen=True, slots=True)
class ProfileStats:
    source: str
    handle: str | None
    latest: Snapshot
    # window in days -> the snapshot closest to now - window, None: not enough history
    baselines: dict[int, Snapshot | None]
    # one point per UTC day (the day's last snapshot with a follower count), oldest first
    followers_daily: list[tuple[datetime, int]]


@dataclass(frozen=True, slots=True)
class Cadence:
    source: str
    kind: str  # the source's content kind
    paused: bool
    recent: int  # items dated within the window
    per_week: float  # recent / weeks in the window
    newest: datetime | None


def month_starts(now: datetime, months: int = 12) -> list[str]:
    """The last ``months`` calendar months (UTC) ending with now's, as 'YYYY-MM', oldest first."""
    year, month = now.year, now.month
    out = []
    for _ in range(months):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return out[::-1]


# -- decision trails: `why` and the status page ------------------------------------


@dataclass(frozen=True, slots=True)
class DeliveryTrail:
    """One outbox row as `why` and the status page show it."""

    outbox_id: int
    event_id: int
    destination: Destination
    route_id: int | None
    status: OutboxStatus
    attempts: int
    created_at: datetime  # when it was queued
    next_attempt_at: datetime
    sent_at: datetime | None
    last_error: str | None
    message_url: str | None  # a link to the posted message, where the platform gave one
    outcome_unknown: bool
    ahead: int = 0  # unsent rows queued before it to the same destination (0 once it is sent or failed)


@dataclass(frozen=True, slots=True)
class EventTrail:
    """An event with the record of where it was routed and its deliveries."""

    event: Event
    source: str  # the source's name, "" when it was removed (or an alert)
    routing: Routing | None  # None: stored before decision records existed, or an alert
    deliveries: tuple[DeliveryTrail, ...]


@dataclass(frozen=True, slots=True)
class ItemTrail:
    """An item's whole path: its verdict at first sight, then its events."""

    item: StoredItem
    source_id: int
    verdict: ItemVerdict | None  # None: stored before decision records existed
    events: tuple[EventTrail, ...]


@dataclass(frozen=True, slots=True)
class SourceActivity:
    """The newest item a source stored (the status page's "last new item")."""

    last_item_title: str
    last_item_at: datetime  # when we first saw it


@dataclass(frozen=True, slots=True)
class RouteActivity:
    last_sent_at: datetime | None
    unsent: int  # pending or being sent
    failed: int  # given up on, ever


@dataclass(frozen=True, slots=True)
class VectorJob:
    """An item whose search vectors are missing or older than its content:
    what they are computed from (a backfill reads the whole catalogue, so not
    a full StoredItem)."""

    item_id: int
    content_hash: str  # the item's content when read: what the vectors will be of
    title: str
    summary: str  # its first ``summary_chars`` characters
    chapters: tuple[str, ...] = ()  # chapter titles, in order


@dataclass(frozen=True, slots=True)
class ItemVectors:
    """An item's search vectors (bytes in bot/hybrid.py's stored encoding): one for the
    item, one per chapter in chapter order, the chapters' concatenated as
    both backends store them (``split_chapters``; the embedder writes them as
    one block, and 5,400 slices joined again cost ~10% of a feed's
    embedding)."""

    item_id: int
    content_hash: str
    item: bytes
    chapters: bytes = b""  # chapter_count vectors of one length, in chapter order
    chapter_count: int = 0

    @classmethod
    def of(cls, item_id: int, content_hash: str, item: bytes, chapters: Sequence[bytes] = ()) -> "ItemVectors":
        """From one vector per chapter (all of one length)."""
        return cls(item_id, content_hash, item, b"".join(chapters), len(chapters))


def split_chapters(blob: bytes, count: int) -> list[bytes]:
    """One vector per chapter from their concatenation (``ItemVectors.chapters``)."""
    if count <= 0:
        return []
    size = len(blob) // count
    return [blob[n * size:(n + 1) * size] for n in range(count)]
