"""``Storage``: everything the core asks of a database, and what it promises.

The core (poller, outbox, commands, app) sees only this protocol; each
backend (``bot.storage.sqlite``, ``bot.storage.postgres``) implements all of
it and passes the same contract tests (tests/test_storage_contract.py).
Modelled on lemon24/reader's ``StorageType``.

General contract, for every method unless it says otherwise:
- Errors: an operational failure of the database (unreachable, locked past
  its timeout, disk full, read-only, corrupt) raises ``StorageError`` with a
  one-line message; nothing else from the driver escapes. Domain errors are
  ``NotFound`` (a named thing is missing), ``AlreadyExists`` (a unique name is
  taken), ``UserError`` (a limit), ``ClaimLost`` (work this caller had
  claimed was taken over).
- Writes are atomic: one transaction each; on any error nothing of it
  happened. Storage decides nothing: it writes what it is given (intents,
  results) and reads what it is asked.
- Times are aware UTC datetimes in and out; a naive datetime is a bug
  (``ValueError``).
- Several processes may share one database (PostgreSQL): every once-only
  action is a claim in the database (a unique key with a lease), never an
  in-memory lock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Protocol

from bot.documents import DocumentState, DocumentWrite, TranscriptHit
from bot.intents import FilterRule, PollIntent, PollState, SourceProgress, Subscription
from bot.models import (
    Chapter,
    ContentKind,
    DigestPeriod,
    Destination,
    Event,
    EventKind,
    Platform,
    Route,
    Source,
    SourceSpec,
    StoredItem,
)
from bot.search import Query
from bot.storage.records import (
    AuditRow,
    BookNews,
    Cadence,
    ChapterHit,
    DeliveryResult,
    DeliveryTrail,
    EventTrail,
    ItemTrail,
    KindStats,
    OutboxRow,
    PollWrite,
    ProfileStats,
    RouteActivity,
    QueuedEvent,
    RouteFacts,
    RouteSeed,
    RouteTally,
    ItemVectors,
    SearchHit,
    VectorJob,
    SourceActivity,
    SourceFacts,
)


class Storage(Protocol):
    # -- lifecycle --------------------------------------------------------------

    backend: str  # "sqlite" | "postgresql"

    async def close(self) -> None:
        """Release the connection(s). Idempotent."""

    async def check_writable(self, now: datetime) -> None:
        """Make one real write (health checks). Raises StorageError when the
        database can't take writes."""

    async def schema_version(self) -> tuple[int, int]:
        """(version the database is at, version this showbot writes)."""

    # -- settings ----------------------------------------------------------------

    async def find_setting(self, key: str) -> str | None:
        """The value stored under ``key``, or None."""

    async def set_setting(self, key: str, value: str) -> None:
        """Store ``value`` under ``key`` (insert or replace)."""

    # -- sources -------------------------------------------------------------------

    async def add_source(self, spec: SourceSpec, now: datetime) -> Source:
        """Store a new source, due for polling at ``now``. AlreadyExists when
        the name is taken."""

    async def seed(self, sources: Iterable[SourceSpec], routes: Iterable[RouteSeed], now: datetime) -> None:
        """Copy config entries into the database, each at most once ever
        (keyed by source name / route platform+channel): after the first
        start the database is the truth, so a source a moderator removed is
        not brought back. Atomic; safe to run from several processes at once."""

    async def list_sources(self) -> list[Source]:
        """Every source, by name."""

    async def update_source(self, spec: SourceSpec) -> Source:
        """Replace the spec of the source named ``spec.name`` (kind, url,
        content, every, announce_on_first_poll, max_age, handle, provider,
        api_base_url); its poll state, items and filters stay. NotFound when
        missing. (``showbot apply-config``.)"""

    async def find_source(self, name: str) -> Source | None: ...

    async def get_source(self, name: str) -> Source:
        """NotFound when there is no source of that name."""

    async def remove_source(self, name: str) -> None:
        """Delete it with its items, chapters, filters and snapshots (events
        keep no source). NotFound when missing."""

    async def set_paused(self, name: str, paused: bool) -> None:
        """NotFound when missing."""

    async def record_unchanged(
        self, source_id: int, *, now: datetime, next_poll_at: datetime,
        etag: str | None, last_modified: str | None, release: str | None = None,
    ) -> None:
        """A poll that found nothing new (304, same body): a success that
        writes no items; resets the failure count; keeps validators not given.
        ``release``: give up that poll claim in the same transaction."""

    async def record_failure(self, source_id: int, error: str, *, now: datetime, next_poll_at: datetime,
                             release: str | None = None) -> int:
        """Store the error and the next attempt; returns the failures in a row
        (counted atomically, so concurrent writers never lose one).
        ``release``: give up that poll claim in the same transaction."""

    async def claim_poll(self, source_id: int, owner: str, now: datetime, lease_until: datetime) -> bool:
        """Take (or renew) the one claim on polling ``source_id`` until
        ``lease_until``. True when ``owner`` holds it now; False while another
        owner's lease runs. Atomic across processes."""

    async def release_poll(self, source_id: int, owner: str) -> None:
        """Give the claim up; a no-op when ``owner`` no longer holds it."""

    async def claim_lease(self, name: str, owner: str, now: datetime, lease_until: datetime) -> bool:
        """Take (or renew) the named lease (e.g. "discord.shard.0") until
        ``lease_until``: True when ``owner`` holds it now, False while another
        owner's runs. Atomic across processes."""

    async def release_lease(self, name: str, owner: str) -> None:
        """Give it up; a no-op when ``owner`` no longer holds it."""

    async def expire_leases(self) -> int:
        """Expire every named lease now (the only process of an embedded
        database starting up: what a dead process held is free at once)."""

    # -- polls: decide, then write ---------------------------------------------------

    async def load_poll_state(self, source: Source, now: datetime, *, book_window_s: float,
                              edit_window_s: float = 0.0) -> PollState:
        """Everything deciding a poll of ``source`` needs: its known items and
        filters, every subscription and route, the book-news anchor of the
        window ending at ``now`` (the first book event announced within
        ``book_window_s``, with its links and the routes it went to), for
        an x source the previous snapshot and the best follower count, and
        the source's held announcements (``held``: each with its item as
        stored now) and the premieres/streams it follows (``live``: not yet
        ended, with the event that announced them).
        With ``edit_window_s`` > 0, ``announced``: every announcement of an
        item (kinds episode, video, article, post, book; purpose announce;
        not a follow-up) of ANY source created at or after ``now -
        edit_window_s``, in id order, each with its item as stored now, its
        outbox rows that are pending, sending or sent (id order: where an
        edit goes), and the newest ``edit`` event whose payload's
        ``edit_of`` names it (bot.edits). Empty with 0 (the default)."""

    async def has_waiting(self, source_id: int) -> bool:
        """Whether the source has held announcements or premieres/streams it
        follows: a poll whose feed did not change must still decide them."""

    async def write_poll(
        self, source: Source, intent: PollIntent, progress: SourceProgress, *, claim: str | None = None,
    ) -> PollWrite:
        """Write one poll's intent in ONE transaction: new items (with
        chapters and search index), updates, the snapshot, events in order
        (a follow-up's ``follow_up_of`` filled in), their outbox rows (one per
        planned delivery, each with a fresh idempotency key, in order), the
        anchor's new links, the holds (``holds`` stored or replaced per item,
        ``releases`` deleted with the item's decision record rewritten; a
        released item's events name it by ``item_id``), the followed
        premieres (``live``: a new one linked to the event announcing its
        item in this intent, a change updating state and times), and the
        source's progress (synced, validators, cursor, next poll). With ``claim``: refused with ClaimLost unless that
        claim still holds the source, and given up in the same transaction
        when the write commits. If anything fails, none of it happened
        (the next poll fetches the same body again)."""

    async def queue_alert(self, title: str, now: datetime, *, skip_route: int | None = None) -> int:
        """An ``alert`` event plus an outbox row for every unbroken route that
        selects alerts (except ``skip_route``), atomically. Returns rows queued."""

    # -- items and the catalogue -----------------------------------------------------

    async def find_item(self, item_id: int) -> StoredItem | None: ...

    async def items_by_id(self, item_ids: Sequence[int]) -> dict[int, StoredItem]:
        """Those that exist, with their chapters."""

    async def find_titles(self, item_ids: Sequence[int]) -> dict[int, str]:
        """The titles of those that exist (what semantic search embeds of an
        item it judges by its views: no notes, no chapters read)."""

    async def latest_items(self, kind: ContentKind | None = None, limit: int = 5, offset: int = 0) -> list[StoredItem]:
        """Newest first by publication date (undated last), then newest id."""

    async def count_items(self, kind: ContentKind | None = None, *, source_id: int | None = None) -> int: ...

    async def episode_by_number(self, number: int) -> StoredItem | None:
        """The newest item carrying that episode number, episodes first."""

    async def episode_number_range(self) -> tuple[int, int] | None: ...

    async def item_at(self, kind: ContentKind | None, offset: int) -> StoredItem | None:
        """The item at ``offset`` in publication order (seeded random picks)."""

    async def kind_stats(self) -> list[KindStats]:
        """Per content kind: count, first and last publication, total duration; biggest first."""

    async def title_words(self) -> list[str]:
        """Every item title (for "did you mean" and autocomplete)."""

    async def catalogue_version(self) -> tuple[int, int]:
        """Changes whenever items are added or removed (a cache key)."""

    async def source_facts(self) -> dict[int, SourceFacts]:
        """Per source id: items stored; when an announce event of it was
        last created; its item first seen last (when, and its title); when a
        post of one of its events last went out (outbox ``sent_at``)."""

    async def feed_items(self, source_name: str, limit: int = 5) -> list[StoredItem]:
        """The newest items of one source (as ``latest_items`` orders them),
        with their chapters; [] for an unknown source."""

    async def items_mentioning(self, needles: Sequence[str], limit: int = 50) -> list[StoredItem]:
        """Items whose title or description contains any of ``needles`` as
        plain text (case-insensitive for ASCII; never a pattern), newest
        first, at most ``limit``. A coarse pre-filter: the caller decides
        what really matches (the book matcher)."""

    # -- search -----------------------------------------------------------------------

    async def search(self, query: Query, kind: ContentKind | None = None, *, limit: int = 200) -> list[SearchHit]:
        """Items matching every term of ``query`` (any alternative of a term,
        prefix terms as prefixes), in the backend's own dialect, over title,
        chapter titles and description weighted in that order, kept only
        when relevant (a term in the title or a chapter title, or a strong
        enough description match: the floor is the backend's calibration).
        Best first; near-equal scores by newest publication. At most
        ``limit``. User text never reaches the database as query syntax."""

    async def page_items(
        self, ids: Sequence[int], query: Query | None, limit: int = 5
    ) -> list[tuple[StoredItem, list[Chapter]]]:
        """The items of ``ids`` in that order, each with the chapters whose
        titles match any term of ``query`` (best first, at most ``limit``;
        none when ``query`` is None)."""

    async def search_chapters(
        self, query: Query, kind: ContentKind | None = None, *, limit: int = 200
    ) -> list[ChapterHit]:
        """Chapters whose own title matches ANY term of ``query`` (as
        ``search`` matches: alternatives, prefixes; user text never query
        syntax), best chapter-title score first (earlier item and position on
        a tie), at most ``limit``; with ``kind``, only items of it. The
        chapter channel of search (bot.hybrid.rank_chapters) decides which
        of them answer the question."""

    async def search_transcripts(
        self, query: Query, kind: ContentKind | None = None, *, limit: int = 5
    ) -> list[TranscriptHit]:
        """Transcript passages matching every term of ``query`` (as ``search``
        matches items: alternatives, prefixes; user text never query
        syntax), at most one per item (its best passage, earliest on a tie),
        best first, at most ``limit``; with ``kind``, only items of it. Each
        hit carries its item (with chapters), the passage's start and text."""

    # -- documents an item links to (bot.documents) ------------------------------------

    async def load_documents(self, source_id: int) -> list[DocumentState]:
        """The state of every document of the source's items (chapters with
        their stored JSON chapters), in item id order then kind."""

    async def write_documents(self, writes: Sequence[DocumentWrite]) -> None:
        """Write these outcomes in ONE transaction, in order, deciding nothing
        (bot.documents did). ``declared``: the row's url and media type,
        failures reset; fetched_url and content kept. ``fetched``: url =
        fetched_url = the write's url, failures reset; ``chapters`` replace
        the item's chapters (and their search index) and are kept as the
        row's content; ``segments`` replace the item's transcript. ``failed``:
        url, attempts, last_error, retry_at; stored content kept.
        ``withdrawn``: the row removed, a transcript's passages too, and
        ``chapters`` (when given) replace the item's chapters. A write for
        an item that no longer exists is skipped."""

    # -- search vectors (bot/hybrid.py) ------------------------------------------------

    async def items_needing_vectors(self, limit: int = 64, *, after_id: int = 0,
                                    summary_chars: int = 300) -> list[VectorJob]:
        """Items with no search vectors, or vectors of older content (an
        edited item), with an id above ``after_id`` (a cursor: a backfill
        reads the catalogue once, not from the start each batch), oldest id
        first, at most ``limit``: each with the content hash it has now, its
        title, the start of its description and its chapter titles."""

    async def put_vectors(self, vectors: Sequence[ItemVectors]) -> None:
        """Replace each item's vectors (its own and its chapters', in chapter
        order, the chapters' all of one length and concatenated), in one transaction; an item that is gone, or whose content
        changed since ``content_hash`` was read, is skipped (it stays due)."""

    async def find_vectors(self, item_ids: Sequence[int]) -> dict[int, bytes]:
        """The items' own vectors, for those of ``item_ids`` that have one."""

    async def chapter_vectors(self, item_ids: Sequence[int]) -> dict[int, list[bytes]]:
        """The items' chapter vectors in chapter order, for those that have them."""

    # -- routes --------------------------------------------------------------------------

    async def list_routes(self) -> list[Route]:
        """Every route, oldest first."""

    async def upsert_route(
        self, platform: Platform, channel: str, kinds: frozenset[EventKind], mention: str | None,
        now: datetime, *, thread: bool = False,
    ) -> Route:
        """Create or replace the route of one channel (clearing broken)."""

    async def put_route(self, route: RouteSeed, now: datetime) -> Route:
        """Create or replace EVERY setting of one channel's route (kinds,
        mention, thread, feeds, template, pace_s, daily_cap, digest),
        clearing broken; returns it. When the new settings have no digest,
        the rows the route held for one go back to pending (posted one by
        one, in their order) in the same transaction. (``upsert_route``
        leaves the settings it does not name as they were.)"""

    async def remove_route(self, platform: Platform, channel: str) -> None:
        """NotFound when the channel has no route. Rows it held for a digest
        become failed ("route removed") in the same transaction."""

    async def mark_route_broken(self, route_id: int, reason: str) -> bool:
        """True when this call broke it (so moderators are told once)."""

    # -- the outbox ------------------------------------------------------------------------

    async def outbox_rows(self, status: str | None = None) -> list[OutboxRow]:
        """Rows (of one status), in id (queue) order."""

    async def count_unsent(self) -> dict[Platform, int]:
        """Pending or sending rows per platform."""

    async def find_outbox_row(self, event_id: int, destination: Destination) -> OutboxRow | None: ...

    async def claim_outbox(
        self, owner: str, now: datetime, lease_until: datetime, *,
        budgets: Mapping[Platform, int], per_destination: int,
    ) -> list[OutboxRow]:
        """Claim work for ``owner``: for up to ``budgets[p]`` destinations of
        platform ``p`` whose head (oldest unsent row) is due -- pending with
        ``next_attempt_at <= now``, or sending under a lease that ran out --
        the first ``per_destination`` rows of that destination, in id order,
        stopping before any row that isn't claimable. Claimed rows are
        ``sending`` under ``owner`` until ``lease_until``; a row taken over
        from an expired lease comes back with ``outcome_unknown``. Atomic
        across processes and durable before it returns. A destination is never
        claimed while an earlier row of it is held by someone else. Returns
        rows in id order; [] without a write when nothing is due."""

    async def renew_outbox_leases(self, owner: str, lease_until: datetime) -> int:
        """Extend every lease ``owner`` holds; returns how many rows it holds."""

    async def expire_outbox_leases(self) -> int:
        """Expire every lease now (the only delivering process starting up
        on an embedded database). Returns how many rows were held."""

    async def record_deliveries(self, owner: str, results: Sequence[DeliveryResult]) -> list[int]:
        """Write what became of claimed rows, atomically. SENT is written
        whoever holds the row (the platform has the post); every other
        outcome only while ``owner`` still holds its lease. HELD makes the
        row ``held`` (out of its destination's queue, kept for the route's
        next digest) with ``next_attempt_at`` set to the result's ``at``:
        when it was held, which ``build_digest`` reads. ``break_route``
        marks that route broken and, when this call broke it, queues
        ``alert`` to the other alert routes. Idempotent. Returns the ids of
        the routes this call broke."""

    async def events_by_id(self, event_ids: Sequence[int]) -> dict[int, Event]: ...

    async def queue_events(self, events: Sequence[QueuedEvent], now: datetime) -> list[Event]:
        """Write events about stored items (a backfill, a test post, an
        edit) with their outbox rows (fresh idempotency keys), in order, in
        ONE transaction. An ``announce`` event for an item that already has
        an announce event of that kind is skipped with its rows (one
        announcement per item and kind, ever): queueing the same backfill
        twice queues nothing new. ``edit`` events are outside that rule (an
        item's announcement may be edited any number of times). Returns the
        events written."""

    async def route_tallies(self, route_ids: Sequence[int], since: datetime) -> dict[int, RouteTally]:
        """For flood control, per route id asked (zeros when it has none):
        its sent posts with ``sent_at >= since`` that count toward a daily cap
        (not alerts, tests, digests or edits), and the ``sent_at`` of its last
        sent post that counts toward the pace (not alerts, tests or edits)."""

    async def held_counts(self) -> dict[int, int]:
        """Rows each route holds for its next digest (routes holding none are left out)."""

    async def build_digest(
        self, route_id: int, period: DigestPeriod, period_end: datetime, title: str, now: datetime,
    ) -> Event | None:
        """The digest of ``route_id`` for the period ending ``period_end``,
        atomically and at most once per (route, period_end) (a unique key):
        a ``digest`` event (purpose digest, payload {"period", "period_end",
        "event_ids": the held rows' events in queue order}), its outbox row
        to the route, and every row the route held before ``period_end``
        (its ``next_attempt_at``, see HELD) marked ``digested`` with the
        digest's id. None, writing nothing, when the route held nothing
        before then, is gone, or that period's digest exists already."""

    async def route_facts(self, now: datetime) -> dict[int, RouteFacts]:
        """Per route id with outbox rows: its last delivery, rows queued
        (due), waiting (pending with ``next_attempt_at > now``, and the
        earliest of those), held for a digest."""

    async def get_event(self, event_id: int) -> Event:
        """NotFound when missing."""

    # -- profile snapshots ----------------------------------------------------------------------

    async def latest_snapshot_json(self, source_id: int) -> bytes | None: ...

    async def max_followers(self, source_id: int) -> int | None: ...

    # -- audit, filters, subscriptions ------------------------------------------------------------

    async def add_audit(self, at: datetime, platform: Platform, user_id: str, action: str, detail: str) -> None: ...

    async def list_audit(self, limit: int = 50) -> list[AuditRow]:
        """Newest first."""

    async def load_filters(self, source_id: int) -> list[FilterRule]:
        """The source's rules, oldest first."""

    async def add_filter(
        self, source_id: int, rule: FilterRule, now: datetime, *, audit: tuple[Platform, str] | None = None,
    ) -> None:
        """Save a rule and (same transaction) its audit row. AlreadyExists
        when the source has that rule; UserError for a mode that is not
        include/exclude."""

    async def clear_filters(self, source_id: int, now: datetime, *, audit: tuple[Platform, str] | None = None) -> int:
        """Remove the source's rules (and audit it); returns how many."""

    async def load_subscriptions(self) -> list[Subscription]:
        """Every subscription, oldest first."""

    async def member_subscriptions(self, platform: Platform, user_id: str) -> list[str]:
        """One member's topics, alphabetical."""

    async def add_subscription(
        self, platform: Platform, user_id: str, topic: str, now: datetime, max_per_member: int,
    ) -> bool:
        """False when the member already had it; UserError past ``max_per_member``."""

    async def remove_subscription(self, platform: Platform, user_id: str, topic: str) -> None:
        """NotFound when the member had no such subscription."""

    # -- stats --------------------------------------------------------------------------------------

    async def book_news(self, limit: int = 5) -> list[BookNews]:
        """Events of kind book, newest first (by their item's publication, else detection)."""

    async def profile_stats(
        self, now: datetime, windows: tuple[int, ...] = (7, 30), history_days: int = 365,
    ) -> ProfileStats | None:
        """The latest snapshot of the x source polled most recently, a
        baseline per window (the snapshot closest to now - window, within
        half a window), and its daily follower series."""

    async def episodes_per_month(self, now: datetime, months: int = 12) -> list[tuple[str, int]]:
        """[('2025-07', 3), ...] for the last ``months`` calendar months, zeros included."""

    async def cadence(self, now: datetime, days: int = 90) -> list[Cadence]:
        """Per source, by name: items per week over the last ``days`` days and its newest item."""

    # -- decision trails: `why` and the status page -------------------------------------------
    #
    # ``write_poll`` stores the decision records the deciders put in the
    # intent (bot.verdicts): each new item's ``ItemVerdict`` with the item,
    # each event's ``Routing`` with the event, as bot.verdicts' JSON text.
    # ``record_deliveries`` stores a SENT result's ``message_url``. These
    # read them back; like every read here, they decide nothing.

    async def items_by_link(self, links: Sequence[str], limit: int = 10) -> list[StoredItem]:
        """Items whose link, normalized link (the ``norm_link`` written with
        the item) or enclosure URL equals one of ``links`` exactly; newest
        first by first sight; at most ``limit``."""

    async def items_by_title(self, folded: str, raw: str, limit: int = 10) -> list[StoredItem]:
        """Items whose title is ``raw`` exactly, or whose stored title key
        (bot.detect.title_key: the folded title, '|', the publication day)
        starts with ``folded`` + '|'; newest first by first sight; at most
        ``limit``."""

    async def item_trail(self, item_id: int) -> ItemTrail | None:
        """The item, its source id, its verdict (None when stored before
        decision records) and every event made of it -- and every ``edit``
        event whose payload's ``edit_of`` is one of those (an edit another
        item made of its announcement) -- oldest first, each
        with its routing record and its outbox rows (id order; an unsent
        row's ``ahead`` counts the unsent rows queued before it to the same
        destination). None when there is no such item."""

    async def recent_event_trails(self, limit: int = 50) -> list[EventTrail]:
        """The last ``limit`` events of any kind, newest first, each with its
        routing record and its outbox rows (as in ``item_trail``)."""

    async def outbox_queue(self, limit: int = 50) -> list[DeliveryTrail]:
        """Unsent rows (pending or sending), oldest first, at most ``limit``,
        each with ``ahead`` filled in."""

    async def source_activity(self) -> dict[int, SourceActivity]:
        """Per source id that has items: its newest item by first sight, and
        among items first seen together the newest published."""

    async def route_activity(self) -> dict[int, RouteActivity]:
        """Per route id with outbox rows: the last time a row was sent, how
        many are unsent, how many failed."""

    # -- operations ---------------------------------------------------------------------------

    async def backup(self, target: Path) -> None:
        """Write a consistent copy of the whole database to ``target`` (a new
        file, replaced atomically if it exists) while the bot keeps running
        and writing. SQLite: the online backup API. A backend that can't
        (a database server: use its own dump tool) raises UserError saying so."""
