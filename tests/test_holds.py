"""The pure holding rules (bot.holds) with an injected clock: settle, Shorts,
videos not playable yet, premieres and live streams."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

from bot.config import SourceOptions
from bot.detect import Decision, EventIntent, ItemUpdate, NewItem, content_hash, decide
from bot.holds import HeldItem, TrackedLive, apply_holds, plan_live
from bot.models import ContentKind, EventKind, Item, LiveState, SourceSpec, VideoFacts
from bot.verdicts import ItemFate, verdict_from_json, verdict_to_json

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=timezone.utc)
SPEC = SourceSpec(name="yt", kind="rss", url="http://127.0.0.1/f", content=ContentKind.VIDEO)
TEN_MIN = SourceOptions(settle_s=600)


def video(vid: str, title: str = "Talk", minutes_ago: int = 5) -> Item:
    return Item(title=title, link=f"http://127.0.0.1:1/watch?v={vid}", guid=f"yt:video:{vid}",
                published_at=NOW - timedelta(minutes=minutes_ago), video_id=vid)


def first_poll_decision(*items: Item) -> Decision:
    return decide(spec=SPEC, synced=True, known=(), fetched=items, now=NOW)


def hold(decision: Decision, options: SourceOptions = SourceOptions(), *, facts: dict[str, VideoFacts] | None = None,
         held: tuple[HeldItem, ...] = (), now: datetime = NOW, check_playable: bool = False,
         give_up_s: int = 48 * 3600) -> Decision:
    return apply_holds(decision, options=options, facts=facts or {}, held=held, now=now,
                       content_event=EventKind.VIDEO, hold_unplayable_s=give_up_s, check_playable=check_playable)


def held_row(item_id: int, item: Item, *, since: datetime, steady: datetime, waiting: bool = False) -> HeldItem:
    return HeldItem(item_id, item, content_hash(item), since, steady, waiting)


# ----------------------------------------------------------------------- settle

def test_settle_holds_a_new_item_and_says_until_when() -> None:
    out = hold(first_poll_decision(video("a")), TEN_MIN)
    assert out.events == ()
    [verdict] = out.verdicts
    assert verdict.fate is ItemFate.HELD and verdict.held_until == NOW + timedelta(minutes=10)
    assert verdict.note == "settling until 2026-12-01 15:10 UTC"
    [h] = out.holds
    assert (h.new_index, h.steady_since_at, h.waiting_playable) == (0, NOW, False)


def test_a_held_item_is_released_once_it_has_looked_the_same_for_the_settle_time() -> None:
    item = video("a")
    row = held_row(7, item, since=NOW - timedelta(minutes=10), steady=NOW - timedelta(minutes=10))
    early = hold(Decision(), TEN_MIN, held=(row,), now=NOW - timedelta(seconds=1))
    assert early.events == () and early.releases == () and [h.item_id for h in early.holds] == [7]
    out = hold(Decision(), TEN_MIN, held=(row,))
    assert [(e.kind, e.item_id, e.title, e.new_index) for e in out.events] == [(EventKind.VIDEO, 7, "Talk", None)]
    [release] = out.releases
    assert release.item_id == 7 and release.verdict.fate is ItemFate.ANNOUNCED
    assert "unchanged since 2026-12-01 14:50 UTC" in (release.verdict.note or "")
    assert out.holds == ()


def test_a_change_during_the_settle_window_starts_the_wait_again_and_the_final_title_is_announced() -> None:
    first = video("a", "Tpyo in teh title")
    fixed = video("a", "Typo in the title")
    row = held_row(7, first, since=NOW - timedelta(minutes=9), steady=NOW - timedelta(minutes=9))
    changed = Decision(updates=(ItemUpdate(7, fixed, content_hash(fixed), "guid:yt:video:a"),))
    out = hold(changed, TEN_MIN, held=(row,), now=NOW + timedelta(minutes=5))  # 14 min after first sight
    assert out.events == ()
    [h] = out.holds
    assert h.steady_since_at == NOW + timedelta(minutes=5) and h.content_hash == content_hash(fixed)
    later = held_row(7, fixed, since=row.held_since_at, steady=h.steady_since_at)
    released = hold(Decision(), TEN_MIN, held=(later,), now=NOW + timedelta(minutes=15))
    assert [e.title for e in released.events] == ["Typo in the title"]


def test_without_settle_nothing_is_held() -> None:
    out = hold(first_poll_decision(video("a")))
    assert [e.kind for e in out.events] == [EventKind.VIDEO] and out.holds == ()


def test_a_released_book_item_is_book_news_first() -> None:
    item = video("a", "Root Cause is out")
    row = held_row(7, item, since=NOW - timedelta(hours=1), steady=NOW - timedelta(hours=1))
    out = apply_holds(Decision(), options=TEN_MIN, facts={}, held=(row,), now=NOW, content_event=EventKind.VIDEO,
                      is_book_news=lambda i: "Root Cause" in i.title)
    assert [e.kind for e in out.events] == [EventKind.BOOK, EventKind.VIDEO]


# ----------------------------------------------------------------------- shorts

def test_a_short_is_stored_not_announced_unless_the_source_takes_shorts() -> None:
    decision = first_poll_decision(video("s"), video("v"))
    facts = {"s": VideoFacts("s", short=True), "v": VideoFacts("v", short=False)}
    out = hold(decision, facts=facts)
    assert [e.new_index for e in out.events] == [1]
    assert out.verdicts[0].fate is ItemFate.SHORT and out.verdicts[1].fate is ItemFate.ANNOUNCED
    assert len(out.new_items) == 2  # both stored, both searchable
    both = hold(decision, SourceOptions(shorts=True), facts=facts)
    assert sorted(e.new_index for e in both.events if e.new_index is not None) == [0, 1]


def test_a_failed_shorts_check_announces_and_says_so() -> None:
    facts = {"a": VideoFacts("a", short=None, short_error="HEAD http://x/shorts/a: timed out after 1s")}
    out = hold(first_poll_decision(video("a")), facts=facts)
    assert len(out.events) == 1
    assert out.verdicts[0].note == ("the Shorts check failed (HEAD http://x/shorts/a: timed out after 1s): "
                                    "announced as a regular video")


# ------------------------------------------------------------------- playability

def test_a_video_not_playable_yet_is_held_then_released_when_it_is() -> None:
    facts = {"a": VideoFacts("a", short=False, playable=False, playability="LIVE_STREAM_OFFLINE")}
    out = hold(first_poll_decision(video("a")), facts=facts, check_playable=True)
    assert out.events == ()
    [verdict] = out.verdicts
    assert verdict.fate is ItemFate.HELD and verdict.give_up_at == NOW + timedelta(hours=48)
    assert "not playable yet (the watch page says LIVE_STREAM_OFFLINE)" in (verdict.note or "")
    row = held_row(3, video("a"), since=NOW, steady=NOW, waiting=True)
    still = hold(Decision(), facts=facts, held=(row,), now=NOW + timedelta(hours=1), check_playable=True)
    assert still.events == () and still.holds[0].waiting_playable
    ok = {"a": VideoFacts("a", playable=True, playability="OK")}
    released = hold(Decision(), facts=ok, held=(row,), now=NOW + timedelta(hours=2), check_playable=True)
    assert [e.item_id for e in released.events] == [3]
    assert "held until it could be watched" in (released.releases[0].verdict.note or "")


def test_holding_an_unplayable_video_is_bounded() -> None:
    facts = {"a": VideoFacts("a", playable=False, playability="LIVE_STREAM_OFFLINE")}
    row = held_row(3, video("a"), since=NOW, steady=NOW, waiting=True)
    out = hold(Decision(), facts=facts, held=(row,), now=NOW + timedelta(hours=48), check_playable=True)
    assert [e.item_id for e in out.events] == [3]
    assert "announced after 48h anyway" in (out.releases[0].verdict.note or "")


def test_a_watch_page_that_could_not_be_read_holds_for_another_poll() -> None:
    facts = {"a": VideoFacts("a", playable=None, playable_error="GET http://x/watch?v=a: HTTP 503")}
    out = hold(first_poll_decision(video("a")), facts=facts, check_playable=True)
    assert out.events == () and out.holds[0].waiting_playable
    assert "could not be checked (GET http://x/watch?v=a: HTTP 503)" in (out.verdicts[0].note or "")


def test_a_second_failed_watch_page_check_announces_and_says_so() -> None:
    facts = {"a": VideoFacts("a", playable=None, playable_error="GET http://x/watch?v=a: HTTP 503")}
    first = hold(first_poll_decision(video("a")), facts=facts, check_playable=True)
    assert first.holds[0].check_failed
    row = replace(held_row(3, video("a"), since=NOW, steady=NOW, waiting=True), check_failed=True)
    out = hold(Decision(), facts=facts, held=(row,), now=NOW + timedelta(minutes=15), check_playable=True)
    assert [e.item_id for e in out.events] == [3]
    assert "could not be checked twice (GET http://x/watch?v=a: HTTP 503)" in (out.releases[0].verdict.note or "")


def test_a_video_seen_not_yet_keeps_waiting_through_a_failed_check() -> None:
    facts = {"a": VideoFacts("a", playable=None, playable_error="GET http://x/watch?v=a: timed out after 5s")}
    row = held_row(3, video("a"), since=NOW, steady=NOW, waiting=True)  # seen LIVE_STREAM_OFFLINE
    out = hold(Decision(), facts=facts, held=(row,), now=NOW + timedelta(minutes=15), check_playable=True)
    assert out.events == () and out.holds[0].waiting_playable and not out.holds[0].check_failed


def test_a_watch_page_that_says_nothing_does_not_hold_and_says_so() -> None:
    facts = {"a": VideoFacts("a", playable=None, playability="UNREADABLE")}
    out = hold(first_poll_decision(video("a")), facts=facts, check_playable=True)
    assert len(out.events) == 1 and out.holds == ()
    assert "said nothing about playability" in (out.verdicts[0].note or "")


def test_other_playability_statuses_do_not_hold() -> None:
    # An age-restricted video will never become playable anonymously: waiting changes nothing.
    facts = {"a": VideoFacts("a", playable=True, playability="LOGIN_REQUIRED")}
    assert len(hold(first_poll_decision(video("a")), facts=facts, check_playable=True).events) == 1


# -------------------------------------------------------------- premieres (API)

def test_an_upcoming_premiere_is_announced_once_with_its_schedule_and_tracked() -> None:
    start = NOW + timedelta(hours=2)
    facts = {"a": VideoFacts("a", short=False, live=LiveState.UPCOMING, scheduled_start_at=start)}
    out = hold(first_poll_decision(video("a")), facts=facts, check_playable=True)
    [event] = out.events
    assert dict(event.payload)["live"] == {"state": "upcoming", "scheduled_start_at": start.isoformat()}
    [track] = out.live
    assert (track.new_index, track.state, track.scheduled_start_at) == (0, LiveState.UPCOMING, start)
    assert "premiere or live stream" in (out.verdicts[0].note or "")


def test_plan_live_follows_upcoming_to_live_to_finished_and_ignores_unknowns() -> None:
    start = NOW + timedelta(hours=2)
    tracked = (TrackedLive(3, 30, "a", LiveState.UPCOMING, start),)
    assert plan_live(tracked, {"a": VideoFacts("a", live=LiveState.UPCOMING)}) == ()
    assert plan_live(tracked, {}) == ()  # the API failed or forgot it: nothing moves
    [live] = plan_live(tracked, {"a": VideoFacts("a", live=LiveState.LIVE, actual_start_at=start)})
    assert (live.item_id, live.state, live.edit, live.done) == (3, LiveState.LIVE, True, False)
    on_air = (TrackedLive(3, 30, "a", LiveState.LIVE, start),)
    end = start + timedelta(hours=1)
    [done] = plan_live(on_air, {"a": VideoFacts("a", live=LiveState.NONE, actual_end_at=end)})
    assert (done.state, done.actual_end_at, done.edit, done.done) == (LiveState.NONE, end, True, True)


def test_a_premiere_that_never_starts_is_followed_a_week_past_its_start_then_let_go() -> None:
    start = NOW + timedelta(hours=2)
    tracked = (TrackedLive(3, 30, "a", LiveState.UPCOMING, start),)
    upcoming = {"a": VideoFacts("a", live=LiveState.UPCOMING)}
    assert plan_live(tracked, upcoming, start + timedelta(days=6)) == ()
    [gone] = plan_live(tracked, upcoming, start + timedelta(days=7))
    assert (gone.state, gone.done, gone.edit) == (LiveState.NONE, True, False)  # no edit: nothing changed


def test_verdicts_with_holds_survive_json() -> None:
    out = hold(first_poll_decision(video("a")), TEN_MIN)
    assert verdict_from_json(verdict_to_json(out.verdicts[0])) == out.verdicts[0]


def test_events_of_released_items_route_once_per_channel() -> None:
    from bot.intents import PollState
    from bot.models import Platform, Route
    from bot.plan import plan_poll

    route = Route(1, Platform.DISCORD, "c1", frozenset({EventKind.VIDEO, EventKind.BOOK}))
    decision = Decision(
        new_items=(NewItem("guid:n", video("n"), None, None, "h"),),
        events=(EventIntent(EventKind.VIDEO, 0, "New", None),
                EventIntent(EventKind.BOOK, None, "Old", None, item_id=9),
                EventIntent(EventKind.VIDEO, None, "Old", None, item_id=9)))
    intent = plan_poll(decision, PollState(routes=(route,)))
    queued = [(e.item, e.item_id, e.kind, len(e.deliveries)) for e in intent.events]
    assert queued == [(0, None, EventKind.VIDEO, 1), (None, 9, EventKind.BOOK, 1), (None, 9, EventKind.VIDEO, 0)]


def test_live_moves_become_cumulative_edits_of_the_announcement_and_never_posts() -> None:
    from bot.edits import AlsoLink, EditSpec
    from bot.holds import LiveIntent
    from bot.plan import plan_live_edits
    from bot.intents import AnnouncedEvent, PlannedDelivery
    from bot.models import Destination, DestinationKind, Platform

    row = PlannedDelivery(Destination(Platform.DISCORD, DestinationKind.CHANNEL, "c1"), 1)
    merged = EditSpec(30, "merge", also=(AlsoLink("Podcast", "https://pod/e1"),))
    anchor = AnnouncedEvent(30, EventKind.VIDEO, 3, "yt", "Premiere", "http://x/watch?v=a", NOW, NOW,
                            deliveries=(row,), last_edit=merged)
    tracked = (TrackedLive(3, 30, "a", LiveState.UPCOMING, NOW, anchor),)
    [edit] = plan_live_edits(tracked, (LiveIntent(None, 3, LiveState.LIVE, edit=True),), "New video")
    assert edit.kind is EventKind.EDIT and edit.deliveries == (row,) and edit.item_id == 3
    assert edit.payload["heading"] == "Live now" and edit.payload["also"] == [{"label": "Podcast",
                                                                                "url": "https://pod/e1"}]
    [done] = plan_live_edits(tracked, (LiveIntent(None, 3, LiveState.NONE, edit=True, done=True),), "New video")
    assert done.payload["heading"] == "New video"
    gone = (TrackedLive(3, 30, "a", LiveState.UPCOMING, NOW, replace_deliveries(anchor)),)
    assert plan_live_edits(gone, (LiveIntent(None, 3, LiveState.LIVE, edit=True),), "New video") == ()


def replace_deliveries(anchor):  # type: ignore[no-untyped-def]
    from dataclasses import replace

    return replace(anchor, deliveries=())


def test_a_rename_and_the_premiere_going_live_in_one_poll_keep_the_new_title() -> None:
    """Edits carry the whole message and the last one delivered wins: the
    live edit must build on this poll's title edit, not on the stored one."""
    from bot.detect import KnownItem
    from bot.edits import CHANGE_LIVE, CHANGE_TITLE, next_edit, parse_edit
    from bot.intents import AnnouncedEvent, PlannedDelivery, PollState
    from bot.merge import MergeRules
    from bot.models import Destination, DestinationKind, Platform, Route, Source
    from bot.poller import decide_poll
    from bot.sources.rss import Fetched

    route = Route(1, Platform.DISCORD, "c1", frozenset({EventKind.VIDEO}))
    row = PlannedDelivery(Destination(Platform.DISCORD, DestinationKind.CHANNEL, "c1"), 1)
    was_b = next_edit(None, 30, CHANGE_TITLE, title="B")  # A was renamed to B by an earlier poll
    anchor = AnnouncedEvent(30, EventKind.VIDEO, 3, "yt", "A", "http://127.0.0.1:1/watch?v=a", NOW, NOW,
                            deliveries=(row,), last_edit=was_b)
    stored = video("a", title="B")
    seen = decide(spec=SPEC, synced=False, known=(), fetched=(stored,), now=NOW).new_items[0]
    state = PollState(
        known=(KnownItem(3, seen.identity, seen.norm_link, seen.title_key, content_hash(stored)),),
        routes=(route,), announced=(anchor,), last_event_id=30,
        live=(TrackedLive(3, 30, "a", LiveState.UPCOMING, NOW, anchor),))
    intent = decide_poll(Source(1, SPEC, synced=True), state, Fetched(items=(video("a", title="C"),)), now=NOW,
                         facts={"a": VideoFacts("a", live=LiveState.LIVE, actual_start_at=NOW)},
                         merge=MergeRules(window_s=48 * 3600))
    specs = [parse_edit(e.payload) for e in intent.events if e.kind is EventKind.EDIT]
    assert [(s.change, s.title, s.heading) for s in specs] == [(CHANGE_TITLE, "C", None),
                                                                (CHANGE_LIVE, "C", "Live now")]
