"""The poll pipeline: fetch -> decide (pure) -> one write. One source at a time.

A failure of any kind is stored on the source and reported; it never
escapes to the scheduler, so one broken source cannot stop the others.

One poll of a source at a time, across tasks and processes: a poll first
takes the source's claim in the database (a row with a lease), and its
write is refused if the claim was lost meanwhile. A scheduled poll that
finds the claim taken skips (someone is doing the work); a forced one
(``showbot poll``) reports "poll already running".
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Awaitable, Callable, Literal, Mapping, Protocol, Sequence, runtime_checkable

from bot.backoff import backoff_s
from bot.clock import Clock
from bot.config import MergeConfig, SourceOptions, XSourceOptions
from bot.detect import BookMatcher, Decision, decide, item_identity
from bot.documents import (
    MAX_ATTEMPTS as MAX_DOCUMENT_ATTEMPTS,
    MAX_FETCHES_PER_POLL,
    DocumentFetch,
    DocumentState,
    DocumentWrite,
    failure,
    plan_after_write,
    plan_before_write,
)
from bot.errors import ClaimLost, SourceError, Stale, StorageError
from bot.filters import make_item_judge
from bot.holds import DEFAULT_HOLD_UNPLAYABLE_S, apply_holds, plan_live
from bot.models import (
    Chapter, ContentKind, DocumentLink, Event, EventKind, Item, Platform, Source, StoredItem, VideoFacts,
)
from bot.profile import ProfileSnapshot, profile_changes
from bot.replies import plural
from bot.sources.documents import FetchedDocument
from bot.sources.rss import Fetched
from bot.hybrid import Embedder, embed_off_loop, item_job
from bot.storage.records import PollWrite
from bot.intents import PollIntent, PollState, SnapshotRow, SourceProgress
from bot.logs import log_context
from bot.metrics import Metrics
from bot.merge import MergeRules
from bot.plan import Change, plan_poll
from bot.presenter import heading_of
from bot.sources.x import parse_snapshot_json, snapshot_to_json
from bot.sources.youtube.checks import YouTubeChecks
from bot.storage import Storage
from bot.subscriptions import match_subscriptions

log = logging.getLogger("showbot.poll")

MAX_POLL_BACKOFF_S = 6 * 3600
# A poll that keeps losing the race to announce (bot.errors.Stale) tries
# this often, then gives up like a lost claim (the next poll tries again).
STALE_RETRIES = 5
# Documents (chapters, transcripts) fetched at once by one poll.
DOCUMENT_CONCURRENCY = 4

DocumentFetcher = Callable[[DocumentFetch], Awaitable[FetchedDocument]]
BUSY = "poll already running (another process or task is polling this source); try again shortly"


def due_slack_s(every_s: int) -> float:
    """How early a scheduled fire may come and still poll. The scheduler's
    jitter moves fire times around the interval, and several instances fire
    at different moments: a poll less than this before ``next_poll_at`` is the
    same interval's, not an early one (backoff pushes next_poll_at far out)."""
    return min(every_s * 0.2, 120.0)


class SourceKind(Protocol):
    async def fetch(self, source: Source) -> Fetched: ...


@runtime_checkable
class ProfileSourceKind(Protocol):
    """A kind that takes profile snapshots (x). Its fetch touches no storage:
    the poller passes the previous stored snapshot in, and diffs the one
    that comes back itself."""

    takes_previous_snapshot: Literal[True]

    async def fetch(self, source: Source, previous: ProfileSnapshot | None) -> Fetched: ...


AnySourceKind = SourceKind | ProfileSourceKind


def snapshot_row(snapshot: ProfileSnapshot) -> SnapshotRow:
    """The store's row: the columns it queries, and the JSON that the next
    poll reads back as ``previous``."""
    pinned = snapshot.pinned
    return SnapshotRow(
        taken_at=snapshot.taken_at, followers=snapshot.followers, following=snapshot.following,
        posts=snapshot.posts, bio=snapshot.bio,
        pinned_id=pinned.id if pinned else None, pinned_text=pinned.text if pinned else None,
        pinned_url=pinned.url if pinned else None,
        raw_json=snapshot_to_json(snapshot).decode("utf-8"),
    )


@dataclass(frozen=True, slots=True)
class PollReport:
    name: str
    ok: bool
    error: str | None = None
    unchanged: bool = False
    new: tuple[StoredItem, ...] = ()
    events: tuple[Event, ...] = ()
    consecutive_failures: int = 0
    skipped: bool = False  # paused, backing off, not due, or someone else is polling it
    busy: bool = False  # forced, but another poll of it is running
    warnings: tuple[str, ...] = field(default_factory=tuple)
    queued: int = 0  # outbox rows the events made (0: no channel takes them)


def _decide(source: Source, state: PollState, fetched: Fetched, now: datetime,
            is_book_news: BookMatcher | None) -> Decision:
    assert fetched.items is not None
    return decide(
        spec=source.spec, synced=source.synced, known=state.known, fetched=fetched.items, now=now,
        is_book_news=is_book_news,
        item_filter=make_item_judge(state.filters) if state.filters else None,
    )


def videos_to_check(
    source: Source, state: PollState, fetched: Fetched, *, now: datetime,
    options: SourceOptions = SourceOptions(), is_book_news: BookMatcher | None = None, has_key: bool = False,
    decision: Decision | None = None,
) -> tuple[list[str], list[str]]:
    """(videos to check for Shorts, videos whose live state or playability
    to check), pure: the new videos this poll would announce (only those:
    the baseline and old videos cost no request), the held ones still
    waiting to be watchable (with an API key: every held one, so one that
    settles while upcoming is announced as a premiere), and the premieres
    and streams being followed.
    YouTube items are recognised by their yt:videoId, not their link.
    ``decision``: ``decide``'s, when the caller has it (decide_poll takes it too)."""
    if fetched.items is None or not (state.held or state.live or any(i.video_id for i in fetched.items)):
        return [], []
    if decision is None:
        decision = _decide(source, state, fetched, now, is_book_news)
    chosen = sorted({e.new_index for e in decision.events if e.new_index is not None})
    videos = [v for i in chosen if (v := decision.new_items[i].item.video_id)]
    live = [*videos, *(h.item.video_id for h in state.held if (h.waiting_playable or has_key) and h.item.video_id),
            *(t.video_id for t in state.live)]
    return ([] if options.shorts else videos), live


def decide_poll(
    source: Source, state: PollState, fetched: Fetched, *, now: datetime,
    is_book_news: BookMatcher | None = None, x_options: XSourceOptions | None = None,
    options: SourceOptions = SourceOptions(), facts: Mapping[str, VideoFacts] | None = None,
    hold_unplayable_s: int = DEFAULT_HOLD_UNPLAYABLE_S, check_playable: bool = False,
    merge: MergeRules | None = None, decision: Decision | None = None,
) -> PollIntent:
    """Everything one poll decides, pure: what is new or edited (``decide``),
    what is held back or let go (``apply_holds``: settle, Shorts, videos not
    watchable yet, premieres), what changed on a profile since the stored
    snapshot, which members get a DM (their subscriptions), and the events
    with their routes, book follow-ups, merges and edits (``plan_poll``).
    ``decision``: ``decide``'s of this state and fetch, when the caller
    already made it (a YouTube poll needs it first to know what to check)."""
    if decision is None:
        decision = _decide(source, state, fetched, now, is_book_news)
    content = EventKind(source.spec.content.value if source.spec.content else ContentKind.ARTICLE.value)
    if options != SourceOptions() or facts or state.held or state.live:
        decision = apply_holds(decision, options=options, facts=facts or {}, held=state.held, now=now,
                               content_event=content, is_book_news=is_book_news,
                               hold_unplayable_s=hold_unplayable_s, check_playable=check_playable)
        if state.live:
            decision = replace(decision, live=decision.live + plan_live(state.live, facts or {}, now))
    announced = sorted({e.new_index for e in decision.events if e.new_index is not None})
    direct: list[tuple[int, Platform, str]] = []
    if announced and state.subscriptions:
        items = [decision.new_items[i].item for i in announced]
        direct = [(announced[i], platform, user)
                  for i, platform, user in match_subscriptions(items, state.subscriptions)]
    released: list[tuple[int, Platform, str]] = []
    if decision.releases and state.subscriptions:
        latest = {h.item_id: h.item for h in state.held}
        latest.update({u.item_id: u.item for u in decision.updates if u.item_id in latest})
        ids = [r.item_id for r in decision.releases]
        released = [(ids[i], platform, user)
                    for i, platform, user in match_subscriptions([latest[x] for x in ids], state.subscriptions)]
    changes: list[Change] = []
    snapshot = None
    if fetched.snapshot is not None:
        previous = parse_snapshot_json(state.previous_snapshot) if state.previous_snapshot else None
        # best_followers: a dip below a threshold and back must not announce it twice.
        found = profile_changes(x_options or XSourceOptions(), previous, fetched.snapshot,
                                best_followers=state.best_followers, is_book_news=is_book_news)
        changes = [Change(c.kind, c.title, c.url, dict(c.payload)) for c in found]
        snapshot = snapshot_row(fetched.snapshot)
    return plan_poll(decision, state, changes=changes, direct_messages=direct, snapshot=snapshot,
                     source=source.name, now=now, merge=merge,
                     show_names=(fetched.feed_title,) if fetched.feed_title else (),
                     released_messages=released, content_heading=heading_of(content))


def _declared(
    items: Sequence[Item], ids: Mapping[str, int],
) -> tuple[dict[int, tuple[DocumentLink, ...]], dict[int, tuple[Chapter, ...]]]:
    """Stored item id -> the document links its entry in this fetch
    declares, and -> its own (description) chapters."""
    declared: dict[int, tuple[DocumentLink, ...]] = {}
    own: dict[int, tuple[Chapter, ...]] = {}
    for item in items:
        item_id = ids.get(item_identity(item))
        if item_id is not None and item_id not in declared:
            declared[item_id] = item.documents
            own[item_id] = item.chapters
    return declared, own


class Poller:
    def __init__(
        self,
        store: Storage,
        kinds: Mapping[str, AnySourceKind],
        *,
        clock: Clock,
        is_book_news: BookMatcher | None = None,
        x_options: Mapping[str, XSourceOptions] | None = None,
        book_window_s: float = 3 * 86400,
        failure_alert_after: int = 5,
        merge: MergeConfig | None = None,
        owner: str = "poller",
        lease_s: float = 120.0,
        metrics: Metrics | None = None,
        source_options: Mapping[str, SourceOptions] | None = None,
        youtube: YouTubeChecks | None = None,
        hold_unplayable_s: int = DEFAULT_HOLD_UNPLAYABLE_S,
        fetch_document: DocumentFetcher | None = None,
        documents_per_poll: int = MAX_FETCHES_PER_POLL,
        embedder: Callable[[], Embedder | None] | None = None,
        embed_pause_s: float | None = None,
    ) -> None:
        # The search model when it is loaded (SemanticModel.find, never a
        # load): a poll then saves its items' vectors right after its write
        # (_store_vectors, bot.hybrid).
        self._embedder = embedder
        self._embed_pause_s = embed_pause_s
        self._source_options = dict(source_options or {})  # settle / shorts, per source name
        # The YouTube checks (Shorts, playability, premieres); None: none are made.
        self._youtube = youtube
        self._hold_unplayable_s = hold_unplayable_s
        self.owner = owner
        # podcast:chapters / podcast:transcript (bot.documents); None: not fetched.
        self._fetch_document = fetch_document
        self._documents_per_poll = documents_per_poll
        self._released: set[str] = set()  # claims a write already gave up in its own transaction
        self._metrics = metrics or Metrics()
        self._lease_s = lease_s
        self._failure_alert_after = failure_alert_after
        self._book_window_s = book_window_s
        # None or disabled: no merges, no edits (the state carries no announcements).
        self._merge = MergeRules(merge.window_s, merge.show_names) if merge is not None and merge.enabled else None
        self._store = store
        self._kinds = kinds
        self._clock = clock
        self._is_book_news = is_book_news
        self._x_options = dict(x_options or {})  # milestones, per x source name

    def _skip(self, source: Source, now: datetime) -> bool:
        if source.paused:
            return True
        if source.next_poll_at is None:
            return False
        return now < source.next_poll_at - timedelta(seconds=due_slack_s(source.spec.every_s))

    async def poll(self, name: str, *, force: bool = False) -> PollReport:
        """Poll one source. ``force`` ignores pause and backoff (``showbot poll``)."""
        with log_context(source=name):  # every line logged while polling names the source
            return await self._poll(name, force=force)

    async def _poll(self, name: str, *, force: bool) -> PollReport:
        source = await self._store.get_source(name)
        now = self._clock()
        if not force and self._skip(source, now):
            return PollReport(source.name, ok=True, skipped=True,
                              consecutive_failures=source.consecutive_failures)
        claim = f"{self.owner}:{uuid.uuid4().hex[:8]}"  # one per poll: two tasks of one process exclude each other too
        lease_until = now + timedelta(seconds=self._lease_s)
        if not await self._store.claim_poll(source.id, claim, now, lease_until):
            if force:
                return PollReport(source.name, ok=False, error=BUSY, busy=True,
                                  consecutive_failures=source.consecutive_failures)
            return PollReport(source.name, ok=True, skipped=True,
                              consecutive_failures=source.consecutive_failures)
        try:
            # Read again under the claim: a poll that just finished moved next_poll_at.
            source = await self._store.get_source(name)
            if not force and self._skip(source, self._clock()):
                return PollReport(source.name, ok=True, skipped=True,
                                  consecutive_failures=source.consecutive_failures)
            renew = asyncio.create_task(self._keep_claim(source.id, claim))
            try:
                started = time.perf_counter()
                report = await self._poll_claimed(source, claim)
                self._count(report, time.perf_counter() - started)
                return report
            finally:
                renew.cancel()
                await asyncio.gather(renew, return_exceptions=True)
        finally:
            if claim not in self._released:
                try:
                    await self._store.release_poll(source.id, claim)
                except StorageError as exc:  # the lease runs out by itself
                    log.warning("%s: could not release the poll claim: %s", source.name, exc)
            self._released.discard(claim)

    def _count(self, report: PollReport, seconds: float) -> None:
        if not self._metrics.enabled or report.skipped:
            return
        outcome = ("failed" if not report.ok else "unchanged" if report.unchanged
                   else "new" if report.new else "nothing_new")
        self._metrics.polled(report.name, outcome, seconds, new_items=len(report.new),
                             event_kinds=tuple(e.kind.value for e in report.events),
                             succeeded_at=self._clock() if report.ok else None)

    async def _keep_claim(self, source_id: int, claim: str) -> None:
        """Renew the claim while a slow fetch runs, so the lease can be short
        (a dead process's poll is taken over soon) without a live poll losing it."""
        every = max(self._lease_s / 3, 0.05)
        while True:
            await asyncio.sleep(every)
            now = self._clock()
            try:
                if not await self._store.claim_poll(source_id, claim, now, now + timedelta(seconds=self._lease_s)):
                    return  # taken over: our write will be refused
            except StorageError:
                continue

    async def _poll_claimed(self, source: Source, claim: str) -> PollReport:
        kind = self._kinds.get(source.spec.kind)
        try:
            if kind is None:
                raise SourceError(f"source kind {source.spec.kind!r} is not available in this build")
            fetched = await self._fetch(kind, source)
            return await self._store_fetched(source, fetched, claim)
        except SourceError as exc:
            return await self._fail(source, str(exc), exc.retry_after, claim)
        except ClaimLost as exc:
            log.warning("%s: %s", source.name, exc)
            return PollReport(source.name, ok=True, skipped=True)
        except StorageError:
            raise  # the database is down: nothing else will work either
        except Exception as exc:  # a bug in a parser must not stop the bot
            log.exception("unexpected error polling %s", source.name)
            return await self._fail(source, f"internal error: {type(exc).__name__}: {exc}", None, claim)

    async def _fetch(self, kind: AnySourceKind, source: Source) -> Fetched:
        """Fetch. A profile kind gets the stored snapshot handed in (when its
        profile is due, the user id): the store is read here, never by a fetch."""
        if not isinstance(kind, ProfileSourceKind):
            return await kind.fetch(source)
        raw = await self._store.latest_snapshot_json(source.id)
        return await kind.fetch(source, parse_snapshot_json(raw) if raw else None)

    async def _store_fetched(self, source: Source, fetched: Fetched, claim: str | None = None) -> PollReport:
        report = await self._write_fetched(source, fetched, claim)
        await self._recovered(source)
        return report

    async def _recovered(self, source: Source) -> None:
        """Moderators were told this feed was failing (the alert goes out at
        exactly ``failure_alert_after`` failures): tell them it works again.
        Queued after the success is stored, so a crash between the two can
        lose this notice but never send it twice (the count is 0 now)."""
        failures = source.consecutive_failures
        if failures < self._failure_alert_after:
            return
        log.warning("%s: works again after %s", source.name, plural(failures, "failure") + " in a row")
        await self._store.queue_alert(
            f"Feed “{source.name}” works again after {plural(failures, 'failure')} in a row.", self._clock())

    async def _write_fetched(self, source: Source, fetched: Fetched, claim: str | None = None) -> PollReport:
        now = self._clock()
        next_poll_at = now + timedelta(seconds=source.spec.every_s)
        if fetched.items is None and await self._store.has_waiting(source.id):
            # The feed did not change, but held announcements and followed
            # premieres are decided by the time and the checks, not the feed.
            fetched = replace(fetched, items=())
        if fetched.items is None:
            await self._store.record_unchanged(
                source.id, now=now, next_poll_at=next_poll_at,
                etag=fetched.etag, last_modified=fetched.last_modified, release=claim,
            )
            self._mark_released(claim)
            # Retries and the backlog of documents wait for no feed change.
            await self._documents_after_safely(source, None, [], now)
            return PollReport(source.name, ok=True, unchanged=True)
        # Decide, then write: one read of everything deciding needs, the
        # pure decision off the loop (hashing 500 items is not free), one write.
        options = self._x_options.get(source.spec.name, XSourceOptions())
        source_options = self._source_options.get(source.spec.name, SourceOptions())
        facts: dict[str, VideoFacts] = {}
        progress = SourceProgress(
            polled_at=now, next_poll_at=next_poll_at, etag=fetched.etag,
            last_modified=fetched.last_modified, body_hash=fetched.body_hash, cursor=fetched.cursor,
        )
        edit_window_s = self._merge.window_s if self._merge is not None else 0.0
        documents = await self._store.load_documents(source.id) if self._fetch_document is not None else []
        for attempt in range(1, STALE_RETRIES + 1):
            state = await self._store.load_poll_state(source, now, book_window_s=self._book_window_s,
                                                      edit_window_s=edit_window_s)
            decision: Decision | None = None
            if self._youtube is not None:
                # Fetched between the read and the decision, for the videos
                # that need it (once a poll, whatever the retries); the checks
                # touch no storage and decide nothing. decide() once: the
                # checks and the intent are both made from it.
                if fetched.items is not None:
                    decision = await asyncio.to_thread(_decide, source, state, fetched, now, self._is_book_news)
                shorts_ids, live_ids = videos_to_check(
                    source, state, fetched, now=now, options=source_options,
                    is_book_news=self._is_book_news, has_key=self._youtube.has_key, decision=decision)
                shorts_ids = [v for v in shorts_ids if v not in facts]
                live_ids = [v for v in live_ids if v not in facts]
                if shorts_ids or live_ids:
                    facts.update(await self._youtube.fetch_facts(shorts_ids=shorts_ids, live_ids=live_ids))
            intent = await asyncio.to_thread(
                decide_poll, source, state, fetched, now=now, is_book_news=self._is_book_news, x_options=options,
                merge=self._merge, options=source_options, facts=facts,
                hold_unplayable_s=self._hold_unplayable_s, check_playable=self._youtube is not None,
                decision=decision)
            try:
                intent, before = await self._documents_before(intent, documents, now)
            except Exception:  # a bug here must cost the documents, never the poll (or every poll after it)
                log.exception("%s: unexpected error preparing chapters documents; storing without them",
                              source.name)
                before = []
            try:
                written = await self._store.write_poll(source, intent, progress, claim=claim)
                break
            except Stale as exc:
                # Another source announced meanwhile (maybe this release, from
                # another instance): decide again from what is stored now.
                if attempt == STALE_RETRIES:
                    # Nothing was written: the next poll fetches and decides again.
                    raise ClaimLost(f"{exc}; gave up deciding after {attempt} tries, the next poll retries") \
                        from exc
                log.info("%s: %s; deciding again", source.name, exc)
        self._mark_released(claim)
        await self._store_vectors(source, intent, written)
        if self._fetch_document is not None:
            ids = {k.identity: k.id for k in state.known}
            ids.update({u.identity: u.item_id for u in intent.updates})
            ids.update({s.identity: s.id for s in written.new_items})
            declared, own = _declared(fetched.items, ids)
            await self._documents_after_safely(source, declared, documents, now, before, ids, own)
        if written.new_items or written.events:
            # "2 event(s)" alone read as two posts made when no channel took them.
            edits = sum(1 for e in written.events if e.kind is EventKind.EDIT)
            log.info("%s: %d new item(s), %d to announce%s, %d post(s) queued%s", source.name,
                     len(written.new_items), len(written.events) - edits,
                     f", {edits} edit(s) of earlier announcements" if edits else "", written.outbox_rows,
                     " (no channel takes them)" if written.events and not written.outbox_rows else "")
        return PollReport(
            source.name, ok=True, new=written.new_items, events=written.events,
            warnings=(fetched.warning,) if fetched.warning else (), queued=written.outbox_rows,
        )

    async def _store_vectors(self, source: Source, intent: PollIntent, written: PollWrite) -> None:
        """The search vectors of the items this poll stored or edited, when
        the model is loaded: embedded from the items in hand (their chapters
        documents already in), so nothing reads them back, and saved in a
        transaction of their own right after the poll's (inside it, 3 MB of
        a 540-episode feed's vectors made that transaction ~25 ms longer,
        against ~13 ms alone), before a document fetched after the write can
        replace chapters (which makes the item due again). Whatever fails
        costs the vectors, never the poll: the background pass
        (``embed_pending``) embeds what is still due."""
        embedder = self._embedder() if self._embedder is not None else None
        if embedder is None or not (written.new_items or intent.updates):
            return
        # written.new_items are the intent's new items, in order, with their ids
        jobs = [item_job(s.id, n.content_hash, n.item) for s, n in zip(written.new_items, intent.new_items)]
        jobs += [item_job(u.item_id, u.content_hash, u.item) for u in intent.updates]
        try:
            await self._store.put_vectors(await embed_off_loop(embedder, jobs, pause_s=self._embed_pause_s))
        except StorageError as exc:
            log.warning("%s: search vectors not saved (embedded later): %s", source.name, exc)
        except Exception:  # a bug in embedding must cost the vectors, never the poll
            log.exception("%s: unexpected error embedding new items for search; they are stored without "
                          "vectors (embedded later)", source.name)

    # -- documents an item links to (bot.documents) -----------------------------------

    async def _documents_before(
        self, intent: PollIntent, stored: Sequence[DocumentState], now: datetime,
    ) -> tuple[PollIntent, list[tuple[DocumentFetch, FetchedDocument | str]]]:
        """Chapters documents of the items this poll stores or edits, fetched
        before the write so their announcements show them; cached ones put
        back after an edit. The intent with those chapters in its items."""
        if self._fetch_document is None or not (intent.new_items or intent.updates):
            return intent, []
        fresh: list[tuple[str, int | None, tuple[DocumentLink, ...]]] = [
            (n.identity, None, n.item.documents) for n in intent.new_items]
        fresh += [(u.identity, u.item_id, u.item.documents) for u in intent.updates]
        by_key = {(d.item_id, d.kind): d for d in stored}
        chapters, wanted = plan_before_write(fresh, by_key, now, limit=self._documents_per_poll)
        outcomes = await self._fetch_documents(wanted)
        for fetch, outcome in outcomes:
            if isinstance(outcome, FetchedDocument) and outcome.chapters:
                chapters[fetch.identity] = outcome.chapters
        if not chapters:
            return intent, outcomes

        def with_chapters(identity: str, item: Item) -> Item:
            found: tuple[Chapter, ...] | None = chapters.get(identity)
            return replace(item, chapters=found) if found is not None else item

        # The content hashes stay the feed's own: JSON chapters are not an edit.
        return replace(
            intent,
            new_items=tuple(replace(n, item=with_chapters(n.identity, n.item)) for n in intent.new_items),
            updates=tuple(replace(u, item=with_chapters(u.identity, u.item)) for u in intent.updates),
        ), outcomes

    async def _documents_after_safely(
        self, source: Source, declared: dict[int, tuple[DocumentLink, ...]] | None,
        stored: Sequence[DocumentState], now: datetime,
        before: Sequence[tuple[DocumentFetch, FetchedDocument | str]] = (), ids: Mapping[str, int] | None = None,
        own_chapters: Mapping[int, tuple[Chapter, ...]] | None = None,
    ) -> None:
        """The poll is written by now: whatever goes wrong with its documents
        is logged and retried by a later poll, never reported as the poll's failure."""
        try:
            await self._documents_after(source, declared, stored, now, before, ids, own_chapters)
        except StorageError as exc:
            log.warning("%s: could not store fetched documents (a later poll tries again): %s", source.name, exc)
        except Exception:
            log.exception("%s: unexpected error handling documents (a later poll tries again)", source.name)

    async def _documents_after(
        self, source: Source, declared: dict[int, tuple[DocumentLink, ...]] | None,
        stored: Sequence[DocumentState], now: datetime,
        before: Sequence[tuple[DocumentFetch, FetchedDocument | str]] = (), ids: Mapping[str, int] | None = None,
        own_chapters: Mapping[int, tuple[Chapter, ...]] | None = None,
    ) -> None:
        """Record what the feed declares, fetch what is due (new URLs, the
        backlog, retries) within this poll's budget, and write every outcome,
        those fetched before the write included, in one transaction."""
        if self._fetch_document is None:
            return
        if declared is None and not stored:
            stored = await self._store.load_documents(source.id)
        writes: list[DocumentWrite] = []
        done = []
        for fetch, outcome in before:
            item_id = fetch.item_id if fetch.item_id is not None else (ids or {}).get(fetch.identity)
            if item_id is not None:
                done.append((item_id, fetch.kind))
                writes.append(self._outcome(source, replace(fetch, item_id=item_id), outcome, now))
        declarations, wanted = plan_after_write(
            declared, stored, now, done=done, limit=self._documents_per_poll - len(before),
            own_chapters=own_chapters)
        for fetch, outcome in await self._fetch_documents(wanted):
            writes.append(self._outcome(source, fetch, outcome, now))
        # Declarations first: a fetch outcome for the same document follows its declaration.
        if declarations or writes:
            await self._store.write_documents([*declarations, *writes])

    async def _fetch_documents(
        self, wanted: Sequence[DocumentFetch],
    ) -> list[tuple[DocumentFetch, FetchedDocument | str]]:
        """Each document fetched and parsed, or the error that says why not."""
        fetch_document = self._fetch_document
        if fetch_document is None or not wanted:
            return []
        gate = asyncio.Semaphore(DOCUMENT_CONCURRENCY)

        async def one(fetch: DocumentFetch) -> tuple[DocumentFetch, FetchedDocument | str]:
            async with gate:
                try:
                    return fetch, await fetch_document(fetch)
                except SourceError as exc:
                    return fetch, str(exc)
                except Exception as exc:  # a bug in a parser costs this document, not the poll
                    log.exception("unexpected error fetching %s", fetch.url)
                    return fetch, f"internal error: {type(exc).__name__}: {exc}"

        return list(await asyncio.gather(*(one(f) for f in wanted)))

    def _outcome(self, source: Source, fetch: DocumentFetch, outcome: FetchedDocument | str,
                 now: datetime) -> DocumentWrite:
        assert fetch.item_id is not None
        if isinstance(outcome, FetchedDocument):
            log.info("%s: %s document of item %d stored from %s", source.name, fetch.kind.value, fetch.item_id,
                     fetch.url)
            return DocumentWrite(fetch.item_id, fetch.kind, fetch.url, "fetched", now, media_type=fetch.media_type,
                                 chapters=outcome.chapters, segments=outcome.segments)
        written = failure(fetch, fetch.item_id, outcome, now)
        # Logged once per URL (and once more when given up): a missing
        # transcript is the host's business, not a reason to fill the log.
        if fetch.attempts == 0:
            log.warning("%s: %s document %s failed (the item keeps what it had; will retry): %s",
                        source.name, fetch.kind.value, fetch.url, outcome)
        elif written.attempts >= MAX_DOCUMENT_ATTEMPTS:
            log.warning("%s: %s document %s failed %d times; not trying it again until its URL changes: %s",
                        source.name, fetch.kind.value, fetch.url, written.attempts, outcome)
        else:
            log.debug("%s: %s document %s failed again: %s", source.name, fetch.kind.value, fetch.url, outcome)
        return written

    def _mark_released(self, claim: str | None) -> None:
        """The write gave the claim up in its own transaction: one fewer per poll."""
        if claim is not None:
            self._released.add(claim)

    async def _fail(self, source: Source, error: str, retry_after: float | None,
                    claim: str | None = None) -> PollReport:
        now = self._clock()
        failures = source.consecutive_failures + 1
        delay = backoff_s(failures, source.spec.every_s, max(MAX_POLL_BACKOFF_S, source.spec.every_s),
                          retry_after)
        count = await self._store.record_failure(
            source.id, error, now=now, next_poll_at=now + timedelta(seconds=delay), release=claim)
        self._mark_released(claim)
        log.warning("%s: poll failed (%d in a row, next try in %.0fs): %s",
                    source.name, count, delay, error)
        if count == self._failure_alert_after:  # exactly once per streak of failures
            await self._store.queue_alert(
                f"Feed “{source.name}” has failed {count} times in a row: {error}", now)
        return PollReport(source.name, ok=False, error=error, consecutive_failures=count)

