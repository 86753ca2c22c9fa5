"""What a poll knows before it decides, and what it decided: the two halves
of "decide, then write".

``PollState`` is loaded from storage before deciding (one read); the pure
planner (``bot.plan.plan_poll``) turns it, the fetched data and the time into
one ``PollIntent``; storage writes the intent in one transaction and decides
nothing. Everything here is plain data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.detect import ItemUpdate, KnownItem, NewItem
from bot.edits import EditSpec
from bot.models import Destination, EventKind, Platform, Route
from bot.verdicts import ItemVerdict, Routing


@dataclass(frozen=True, slots=True)
class FilterRule:
    mode: str  # "include" | "exclude"
    pattern: str


@dataclass(frozen=True, slots=True)
class Subscription:
    platform: Platform
    user_id: str
    topic: str


@dataclass(frozen=True, slots=True)
class SnapshotRow:
    """A profile snapshot as stored: the columns /stats reads, plus the whole
    snapshot as JSON for the next diff."""

    taken_at: datetime
    followers: int | None
    following: int | None
    posts: int | None
    bio: str | None
    pinned_id: str | None
    pinned_text: str | None
    pinned_url: str | None
    raw_json: str


@dataclass(frozen=True, slots=True)
class BookAnchor:
    """The first book news announced in the current window: later book news
    follows up on it instead of being announced again."""

    event_id: int
    links: tuple[str, ...]  # its own link first, then the follow-ups' links
    route_ids: frozenset[int]  # routes it was queued to and not given up on


@dataclass(frozen=True, slots=True)
class PlannedDelivery:
    destination: Destination
    route_id: int | None = None  # None for a direct message
    mention: str | None = None


@dataclass(frozen=True, slots=True)
class AnnouncedEvent:
    """An announcement made within ``[merge] window`` (by creation), as an
    edit of it needs it: what it is about, where it went, and the newest
    edit queued for it (edits are cumulative, bot.edits)."""

    event_id: int
    kind: EventKind
    item_id: int
    source: str | None  # the item's source name (None: removed since)
    title: str  # the item's title as stored now
    url: str | None  # the item's link as stored now
    created_at: datetime
    published_at: datetime | None
    # Its outbox rows not given up (failed) nor held/digested: where an
    # edit of it goes, each behind the post in that destination's queue.
    deliveries: tuple[PlannedDelivery, ...] = ()
    last_edit: EditSpec | None = None
    summary: str = ""  # the item's description (links in it tie releases together)
    links: tuple[str, ...] = ()  # the item's link and enclosure, as stored
    video_id: str | None = None  # a YouTube item's yt:videoId


@dataclass(frozen=True, slots=True)
class PollState:
    """What deciding a poll of one source needs from storage."""

    known: tuple[KnownItem, ...] = ()
    filters: tuple[FilterRule, ...] = ()
    subscriptions: tuple[Subscription, ...] = ()
    routes: tuple[Route, ...] = ()
    book_anchor: BookAnchor | None = None
    previous_snapshot: bytes | None = None  # the last profile snapshot's JSON (x sources)
    best_followers: int | None = None  # the most followers any snapshot recorded
    # Announcements of any source made within [merge] window, oldest first
    # (empty when merging is off): what title edits and merges edit.
    announced: tuple[AnnouncedEvent, ...] = ()
    # The newest event id when this was read (with ``announced``): a write
    # that finds another source's announcement after it re-decides.
    last_event_id: int = 0
    # The creation time ``announced`` starts at (None: merging off).
    announced_since: datetime | None = None
    held: tuple["HeldItem", ...] = ()  # the source's items whose announcement waits (bot.holds)
    live: tuple["TrackedLive", ...] = ()  # its premieres and streams announced before they ended


@dataclass(frozen=True, slots=True)
class PlannedEvent:
    """One event to store, and where it goes.

    ``item`` indexes ``PollIntent.new_items`` (None: a profile change, or
    ``item_id``: an item stored before, e.g. the item an edit is about).
    ``follow_up_of`` is the id of a stored anchor event, or
    ``follow_up_of_planned`` the index of an anchor planned in the same
    intent (book news seen twice in one poll); the writer puts the anchor's
    id into the payload as ``follow_up_of``."""

    kind: EventKind
    title: str
    url: str | None
    item: int | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    follow_up_of: int | None = None
    follow_up_of_planned: int | None = None
    deliveries: tuple[PlannedDelivery, ...] = ()
    routing: Routing | None = None  # the decision record of where it went (bot.verdicts)
    item_id: int | None = None  # a stored item (when ``item`` is None): an edit's, or a held one released


@dataclass(frozen=True, slots=True)
class AnchorLinks:
    """Replace the links of a stored anchor event (book news seen again)."""

    event_id: int
    links: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SourceProgress:
    """How a successful poll moves the source on."""

    polled_at: datetime
    next_poll_at: datetime
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    cursor: str | None = None  # None: keep the stored one


@dataclass(frozen=True, slots=True)
class MergeCheck:
    """The writer's part of merging across processes: this intent was
    decided from the events up to ``last_event_id``. If another source
    announced something since (two sources of one release polled at once),
    the write is refused with ``Stale`` and the poll decides again from
    what is stored now, so one of them edits the other's announcement.

    ``seen`` and ``since`` are the announcements the decision saw and the
    window they were read from: on PostgreSQL an id is taken at insert, not
    at commit, so an announcement committed after the read can have an id
    below ``last_event_id``; any in the window that the decision did not see
    is one made meanwhile."""

    last_event_id: int
    seen: frozenset[int] = frozenset()
    since: datetime | None = None


@dataclass(frozen=True, slots=True)
class PollIntent:
    new_items: tuple[NewItem, ...] = ()
    updates: tuple[ItemUpdate, ...] = ()
    snapshot: SnapshotRow | None = None
    # In the order they are written: a destination's rows keep this order.
    events: tuple[PlannedEvent, ...] = ()
    anchor_links: AnchorLinks | None = None
    # One per new item, same order: the decision records storage writes
    # with each item (bot.verdicts). Empty from planners that predate them.
    verdicts: tuple[ItemVerdict, ...] = ()
    merge_check: MergeCheck | None = None  # set when [merge] is on and this intent announces items
    # Held announcements to store or replace, those let go (bot.holds), and
    # premieres/streams to track or move on.
    holds: tuple["HoldIntent", ...] = ()
    releases: tuple["ItemRelease", ...] = ()
    live: tuple["LiveIntent", ...] = ()


if TYPE_CHECKING:
    from bot.holds import HeldItem, HoldIntent, ItemRelease, LiveIntent, TrackedLive
