"""Holding announcements back, and letting them go: a pure step after ``bot.detect.decide``.

``apply_holds`` takes the decision of a poll, the source's options
(``settle``, ``shorts``), what the YouTube checks found (``VideoFacts``,
fetched by the poller for the videos that need them), the items already
held and the time, and returns the decision with:

- **Shorts** (a video whose ``/shorts/`` URL answered 200) on a source with
  ``shorts = false``: stored, searchable, never announced (fate SHORT). When
  the check failed (timeout, 5xx) the video is announced as a regular one
  and the verdict says so: a lost announcement can't be undone, a Short in
  the channel is only noise.
- **Settle** (``settle = "10m"``): a new item that would be announced is
  held (fate HELD, "settling until T"); every poll that sees its content
  (title, link, summary...) change starts the wait again; the first poll
  after it has looked the same for ``settle`` releases it, so the one
  announcement carries the final title.
- **Not playable yet** (YouTube, no ``YOUTUBE_API_KEY`` or the API failed):
  a video whose watch page says it can't be watched yet (a premiere or a
  scheduled stream) is held until a poll finds it playable, at most
  ``hold_unplayable_s`` (then it is announced anyway and says why). A
  watch page that could not be read (network, no player response) holds
  it one poll; a second failure announces it, saying so (a video once
  seen "not yet" keeps waiting through failed checks, same bound).
- **Premieres and streams** (with the API): an upcoming or live video is
  announced at once, its event carrying the schedule (the presenter says
  "Premieres at <time>" / "Live now"), and tracked (``LiveIntent``) so later
  polls see it start and end (``plan_live``).

Pure: no I/O, ``now`` is an argument.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.config import SourceOptions
from bot.detect import BookMatcher, Decision, EventIntent
from bot.models import EventKind, Item, LiveState, VideoFacts
from bot.verdicts import ItemFate, ItemVerdict

if TYPE_CHECKING:
    from bot.intents import AnnouncedEvent

DEFAULT_HOLD_UNPLAYABLE_S = 48 * 3600


@dataclass(frozen=True, slots=True)
class HeldItem:
    """A stored item whose announcement waits (the ``held_items`` table)."""

    item_id: int
    item: Item  # as stored now (the latest title)
    content_hash: str
    held_since_at: datetime
    steady_since_at: datetime  # when its content last changed (or it was first seen)
    waiting_playable: bool  # a YouTube video that could not be watched yet
    # ...only because its watch page could not be read: one more failure
    # announces it (a video seen "not yet" keeps waiting through failures).
    check_failed: bool = False


@dataclass(frozen=True, slots=True)
class HoldIntent:
    """Store (or replace) a held row: for a new item (``new_index``) or a
    held one seen again (``item_id``)."""

    new_index: int | None
    item_id: int | None
    content_hash: str
    held_since_at: datetime
    steady_since_at: datetime
    waiting_playable: bool
    check_failed: bool = False


@dataclass(frozen=True, slots=True)
class ItemRelease:
    """A held item let go: its held row is deleted and its decision record
    becomes ``verdict``; its events are in ``Decision.events`` (``item_id``)."""

    item_id: int
    verdict: ItemVerdict


@dataclass(frozen=True, slots=True)
class TrackedLive:
    """A premiere or stream announced while upcoming or live (the
    ``live_videos`` table): later polls follow it to its end. ``anchor`` is
    its announcement as an edit needs it (where it went, its newest edit)."""

    item_id: int
    event_id: int
    video_id: str
    state: LiveState
    scheduled_start_at: datetime | None = None
    anchor: "AnnouncedEvent | None" = None


@dataclass(frozen=True, slots=True)
class LiveIntent:
    """Track a video's live state: a new one (``new_index``; the writer
    links it to the event it announces) or a change (``item_id``).
    ``edit`` says the announced message should now read differently
    ("Live now", then the finished video); ``done`` ends the tracking."""

    new_index: int | None
    item_id: int | None
    state: LiveState
    scheduled_start_at: datetime | None = None
    actual_start_at: datetime | None = None
    actual_end_at: datetime | None = None
    edit: bool = False
    done: bool = False
    start: bool = False  # following begins now: linked to the event announcing the item in this intent


def at(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


def live_payload(facts: VideoFacts) -> tuple[tuple[str, object], ...]:
    """What an announcement of an upcoming or live video carries in its
    event payload (``live``), for the presenter's "Premieres at" / "Live now"."""
    out: dict[str, object] = {"state": facts.live.value if facts.live else LiveState.NONE.value}
    if facts.scheduled_start_at is not None:
        out["scheduled_start_at"] = facts.scheduled_start_at.isoformat()
    if facts.actual_start_at is not None:
        out["actual_start_at"] = facts.actual_start_at.isoformat()
    return (("live", out),)


def _playable_now(facts: VideoFacts | None) -> tuple[bool, str | None]:
    """(may be announced now, why it may not). With the API's answer any
    video may: an upcoming one is announced as a premiere. Without it, the
    watch page decides; a page that could not be read waits a poll."""
    if facts is None:
        return True, None
    if facts.live is not None:
        return True, None
    if facts.playable is False:
        return False, f"not playable yet (the watch page says {facts.playability or 'not yet'})"
    if facts.playable is None and facts.playable_error is not None:
        return False, f"the watch page could not be checked ({facts.playable_error}); checking again next poll"
    return True, None


def apply_holds(
    decision: Decision,
    *,
    options: SourceOptions,
    facts: Mapping[str, VideoFacts],
    held: Sequence[HeldItem],
    now: datetime,
    content_event: EventKind,
    is_book_news: BookMatcher | None = None,
    hold_unplayable_s: int = DEFAULT_HOLD_UNPLAYABLE_S,
    check_playable: bool = False,
) -> Decision:
    """The decision with Shorts dropped, settling and unplayable items
    held, held items released once steady and playable, and upcoming or
    live videos announced with their schedule (see the module docstring).
    ``check_playable``: the source's videos are checked for playability
    (a YouTube source); without it no item waits for that."""
    verdicts = list(decision.verdicts)
    holds: list[HoldIntent] = []
    live: list[LiveIntent] = []
    kept: list[EventIntent] = []
    by_item: dict[int, list[EventIntent]] = {}
    for event in decision.events:
        if event.new_index is None:
            kept.append(event)
        else:
            by_item.setdefault(event.new_index, []).append(event)

    settle = options.settle_s
    for index, events in by_item.items():
        new = decision.new_items[index]
        item = new.item
        vf = facts.get(item.video_id) if item.video_id else None
        verdict = verdicts[index]
        if vf is not None and vf.short is True and not options.shorts:
            verdicts[index] = ItemVerdict(ItemFate.SHORT, note=f"a YouTube Short ({vf.video_id}); shorts = false")
            continue
        notes = []
        if vf is not None and vf.short is None and vf.short_error and not options.shorts:
            notes.append(f"the Shorts check failed ({vf.short_error}): announced as a regular video")
        if check_playable and vf is not None and vf.playable is None and vf.playability == "UNREADABLE":
            notes.append("its watch page said nothing about playability (no player response): announced")
        playable, why_not = _playable_now(vf) if check_playable and item.video_id else (True, None)
        if settle or not playable:
            held_until = now + timedelta(seconds=settle) if settle else None
            give_up = None if playable else now + timedelta(seconds=hold_unplayable_s)
            reasons = []
            if held_until is not None:
                reasons.append(f"settling until {at(held_until)}")
            if why_not:
                reasons.append(why_not)
            verdicts[index] = ItemVerdict(ItemFate.HELD, held_until=held_until, give_up_at=give_up,
                                          note="; ".join(reasons + notes))
            holds.append(HoldIntent(index, None, new.content_hash, now, now, not playable,
                                    check_failed=not playable and vf is not None and vf.playable is None))
            continue
        if vf is not None and vf.live in (LiveState.UPCOMING, LiveState.LIVE):
            payload = live_payload(vf)
            events = [replace(e, payload=payload) if e.kind is content_event else e for e in events]
            notes.append("a premiere or live stream: announced now, edited when it starts and ends"
                         if vf.live is LiveState.UPCOMING else "live now: announced, edited when it ends")
            live.append(LiveIntent(index, None, vf.live, vf.scheduled_start_at, vf.actual_start_at, start=True))
        if notes:
            verdicts[index] = replace(verdict, note="; ".join(notes))
        kept.extend(events)

    releases: list[ItemRelease] = []
    updated = {u.item_id: u for u in decision.updates}
    for h in held:
        item, chash, steady = h.item, h.content_hash, h.steady_since_at
        change = updated.get(h.item_id)
        if change is not None and change.content_hash != h.content_hash:
            item, chash, steady = change.item, change.content_hash, now  # changed: the wait starts again
        vf = facts.get(item.video_id) if item.video_id else None
        waiting, check_failed = h.waiting_playable, h.check_failed
        unchecked = False
        if waiting:
            playable, why_not = _playable_now(vf)
            failed_now = not playable and vf is not None and vf.playable is None
            # A check that failed holds one poll, not 48h: a watch page
            # that can't be read twice (a consent wall, an outage) says
            # nothing about the video, so it is announced as usual. A video
            # once seen "not yet" keeps waiting through a failed check.
            unchecked = failed_now and h.check_failed
            waiting = not playable and not unchecked
            check_failed = failed_now and h.check_failed
        give_up_at = h.held_since_at + timedelta(seconds=hold_unplayable_s)
        gave_up = waiting and now >= give_up_at
        settled_at = steady + timedelta(seconds=settle) if settle else None
        if (settled_at is not None and now < settled_at) or (waiting and not gave_up):
            holds.append(HoldIntent(None, h.item_id, chash, h.held_since_at, steady, waiting, check_failed))
            continue
        if unchecked:
            note = (f"its watch page could not be checked twice ({vf.playable_error if vf else ''}): "
                    "announced without knowing whether it plays yet")
        elif gave_up:
            note = f"held since {at(h.held_since_at)} while not playable; announced after {hold_unplayable_s // 3600}h anyway"
        elif h.waiting_playable:
            note = f"held until it could be watched (since {at(h.held_since_at)}); released"
        else:
            note = f"held to settle; unchanged since {at(steady)}: released"
        released: list[EventIntent] = []
        if is_book_news is not None and is_book_news(item):
            released.append(EventIntent(EventKind.BOOK, None, item.title, item.link, item_id=h.item_id))
        extra: tuple[tuple[str, object], ...] = ()
        if vf is not None and vf.live in (LiveState.UPCOMING, LiveState.LIVE):
            # Settled while still upcoming or on air: announced as such, and followed.
            extra = live_payload(vf)
            live.append(LiveIntent(None, h.item_id, vf.live, vf.scheduled_start_at, vf.actual_start_at, start=True))
        released.append(EventIntent(content_event, None, item.title, item.link or item.enclosure_url,
                                    item_id=h.item_id, payload=extra))
        kept.extend(released)
        releases.append(ItemRelease(h.item_id, ItemVerdict(ItemFate.ANNOUNCED, note=note)))
    return replace(decision, events=tuple(kept), verdicts=tuple(verdicts), holds=tuple(holds),
                   releases=tuple(releases), live=decision.live + tuple(live))


# A premiere or stream still "upcoming" or "live" this long after it was
# due (or announced) is no longer followed: a permanent waiting room or a
# stream left on would cost a videos.list call every poll forever.
FOLLOW_LIVE_S = 7 * 86400


def plan_live(tracked: Sequence[TrackedLive], facts: Mapping[str, VideoFacts],
              now: datetime | None = None) -> tuple[LiveIntent, ...]:
    """How the tracked premieres and streams moved since the last poll:
    upcoming -> live ("Live now"), upcoming/live -> ended (the finished
    video: ``liveBroadcastContent`` back to none with an actualEndTime, or
    none at all for a premiere that simply became a video). A video the
    API no longer knows (deleted, private) or could not be asked about
    stays as it is -- until ``FOLLOW_LIVE_S`` past its scheduled start (or
    its announcement), when following ends without an edit."""
    out: list[LiveIntent] = []
    for t in tracked:
        since = t.scheduled_start_at or (t.anchor.created_at if t.anchor is not None else None)
        if now is not None and since is not None and now >= since + timedelta(seconds=FOLLOW_LIVE_S):
            out.append(LiveIntent(None, t.item_id, LiveState.NONE, done=True))
            continue
        vf = facts.get(t.video_id)
        if vf is None or vf.live is None or vf.live is t.state:
            continue
        if vf.live is LiveState.LIVE:
            out.append(LiveIntent(None, t.item_id, LiveState.LIVE, vf.scheduled_start_at,
                                  vf.actual_start_at, edit=True))
        elif vf.live is LiveState.NONE:
            out.append(LiveIntent(None, t.item_id, LiveState.NONE, vf.scheduled_start_at, vf.actual_start_at,
                                  vf.actual_end_at, edit=True, done=True))
    return tuple(out)
