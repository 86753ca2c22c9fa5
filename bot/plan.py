"""The second half of deciding a poll: from what is new (``bot.detect``) and
the pre-loaded ``PollState`` to one complete ``PollIntent`` -- events,
book-news follow-ups, the routes each event goes to, direct messages.

Pure: no I/O, no clock (``now`` is an argument). Storage writes the intent
and decides nothing, so every rule here is tested without a database.

The rules:
- Routing (``plan_deliveries``): each route gets the events whose kind it
  selects (and, for a route that names its feeds, only from those), at most one per item (a channel that takes ``episode`` and
  ``book`` hears about a book episode once, as book news, which ``decide``
  lists first); nothing is queued for a broken route.
- Book news already announced within the window (the same book seen on the
  podcast, then in the bio, then pinned) is not announced again: it is a
  follow-up of the first (the anchor). Its link joins the anchor's
  ``links``; when that link is new, each channel the anchor went to (and
  wasn't given up on) gets the follow-up, queued behind the anchor, so it
  can be posted as a reply to it. A route added since hears nothing of
  the old news.
- Subscriptions: a direct message per member whose topic matches an
  announced item, attached to the item's content event (its last event),
  at most one per item per member.
- Every event carries its ``Routing`` (bot.verdicts): the routes it was
  queued for, those that take its kind but were broken or had the item as
  an earlier event, and the anchor a follow-up joined -- the record `why`
  reads. The items' verdicts (bot.detect) pass through to the intent.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.detect import Decision, EventIntent
from bot.edits import CHANGE_LIVE, CHANGE_MERGE, CHANGE_TITLE, AlsoLink, EditSpec, edit_payload, next_edit
from bot.intents import (
    AnchorLinks,
    AnnouncedEvent,
    MergeCheck,
    PlannedDelivery,
    PlannedEvent,
    PollIntent,
    PollState,
    SnapshotRow,
)
from bot.models import Destination, DestinationKind, EventKind, Item, LiveState, Platform, Route, StoredItem
from bot.merge import MergeMatch, MergeRules, also_label, find_release
from bot.storage.records import QueuedDelivery, QueuedEvent
from bot.verdicts import ItemFate, ItemVerdict, Routing

if TYPE_CHECKING:
    from bot.holds import LiveIntent, TrackedLive


@dataclass(frozen=True, slots=True)
class Change:
    """An event that comes from no item (a profile change)."""

    kind: EventKind
    title: str
    url: str | None
    payload: dict[str, Any]


def plan_deliveries(
    events: Sequence[tuple[Hashable, EventKind]], routes: Sequence[Route], source: str | None = None,
) -> list[tuple[int, Route]]:
    """(event index, route) pairs: each route gets the events whose kind it
    selects (from ``source``, when the route names its feeds), but at most
    one per item (``events`` are (item key, kind))."""
    plan: list[tuple[int, Route]] = []
    for route in routes:
        if route.broken:
            continue  # nothing new is queued for a channel we can't post to
        served: set[Hashable] = set()
        for index, (item_key, kind) in enumerate(events):
            if not route.takes(kind, source):
                continue
            if item_key is not None:
                if item_key in served:
                    continue
                served.add(item_key)
            plan.append((index, route))
    return plan


# An item an event is about: ("new", index into new_items) or ("stored", item id).
ItemKey = tuple[str, int]


def _item_key(event: PlannedEvent) -> ItemKey | None:
    if event.item is not None:
        return ("new", event.item)
    if event.item_id is not None:
        return ("stored", event.item_id)
    return None


def route_delivery(route: Route) -> PlannedDelivery:
    return PlannedDelivery(Destination(route.platform, DestinationKind.CHANNEL, route.channel),
                           route_id=route.id, mention=route.mention)


def plan_poll(
    decision: Decision,
    state: PollState,
    *,
    changes: Sequence[Change] = (),
    direct_messages: Sequence[tuple[int, Platform, str]] = (),
    snapshot: SnapshotRow | None = None,
    source: str | None = None,
    now: datetime | None = None,
    merge: MergeRules | None = None,
    show_names: Sequence[str] = (),
    released_messages: Sequence[tuple[int, Platform, str]] = (),
    content_heading: str | None = None,
) -> PollIntent:
    """One poll's intent. ``direct_messages`` are (new item index, platform,
    user id) for members whose subscriptions match (``match_subscriptions``).
    ``source`` (the polled source's name) is what routes by feed select on.
    ``released_messages`` are the same for held items let go now (bot.holds), by item id.
    With ``merge`` (``[merge]`` on) and ``now``: new items that are a
    release another source announced within the window edit those
    announcements instead (``_merges``), and titles changed within the
    window edit theirs (``_title_edits``); ``show_names`` are stripped from
    titles when comparing (the polled feed's own title). The followed
    premieres that started or ended (``decision.live``, bot.holds) edit
    their announcements (``plan_live_edits``); ``content_heading`` is what
    one reads once it has ended ("New video"), needed when ``state.live``
    is not empty."""
    # Matched by item key: ("new", index) for a new item, ("stored", id)
    # for a held one released now (bot.holds) -- a video that settled after
    # its podcast episode was announced is the same release all the same.
    items = _event_items(decision, state)
    matches: dict[ItemKey, list[MergeMatch]] = {}
    if merge is not None and now is not None and source is not None and state.announced:
        for intent in decision.events:
            key = _intent_key(intent)
            if key is not None and intent.kind is not EventKind.BOOK and key in items and key not in matches:
                release = find_release(items[key], source, state.announced, merge, now=now, show_names=show_names)
                if release:
                    matches[key] = release
    raw: list[tuple[int | None, int | None, EventKind, str, str | None, dict[str, Any]]] = [
        (e.new_index, e.item_id, e.kind, e.title, e.url, dict(e.payload)) for e in decision.events
        # The release was announced already, book news or not: its book
        # event would be a second post about it.
        if not (e.kind is EventKind.BOOK and _intent_key(e) in matches)
    ] + [(None, None, c.kind, c.title, c.url, dict(c.payload)) for c in changes]

    anchor = state.book_anchor
    anchor_links = list(anchor.links) if anchor is not None else []
    anchor_changed = False
    planned_anchor: int | None = None  # index in ``events`` of an anchor planned now
    events: list[PlannedEvent] = []
    announced: list[int] = []  # indexes into ``events``
    follow_ups: list[int] = []  # indexes into ``events`` that need delivering
    for item, stored, kind, title, url, payload in raw:
        if kind is EventKind.BOOK and (anchor is not None or planned_anchor is not None):
            index = len(events)
            if anchor is not None:
                payload["follow_up_of"] = anchor.event_id
                events.append(PlannedEvent(kind, title, url, item, payload, follow_up_of=anchor.event_id,
                                           item_id=stored))
                if url and url not in anchor_links:
                    anchor_links.append(url)
                    anchor_changed = True
                    follow_ups.append(index)
            else:
                assert planned_anchor is not None
                events.append(PlannedEvent(kind, title, url, item, payload, follow_up_of_planned=planned_anchor,
                                           item_id=stored))
                first = events[planned_anchor]
                links = list(first.payload.get("links") or ([first.url] if first.url else []))
                if url and url not in links:
                    links.append(url)
                    events[planned_anchor] = replace(first, payload={**first.payload, "links": links})
                    follow_ups.append(index)
            continue
        if kind is EventKind.BOOK:
            planned_anchor = len(events)
        announced.append(len(events))
        events.append(PlannedEvent(kind, title, url, item, payload, item_id=stored))

    deliveries: dict[int, list[PlannedDelivery]] = {i: [] for i in range(len(events))}
    routed_to: dict[int, set[int]] = {}
    # One announcement per item a route: a new item by its index, a released
    # held one by its id (the two never meet: one is new, the other stored).
    keys = [(_item_key(events[i]), events[i].kind) for i in announced]
    for position, route in plan_deliveries(keys, state.routes, source):
        index = announced[position]
        deliveries[index].append(route_delivery(route))
        routed_to.setdefault(index, set()).add(route.id)

    # Follow-ups go to the anchor's channels only; they are listed after
    # every announcement, so a channel's follow-up queues behind its anchor.
    live = {r.id: r for r in state.routes if not r.broken}
    for index in follow_ups:
        event = events[index]
        if event.follow_up_of is not None:
            targets = anchor.route_ids if anchor is not None else frozenset()
        else:
            assert event.follow_up_of_planned is not None
            targets = frozenset(routed_to.get(event.follow_up_of_planned, set()))
        deliveries[index] = [route_delivery(live[r]) for r in sorted(targets) if r in live]

    content_event = {events[i].item: i for i in announced if events[i].item is not None}
    for new_index, platform, user_id in direct_messages:
        target = content_event.get(new_index)
        if target is not None:
            deliveries[target].append(PlannedDelivery(Destination(platform, DestinationKind.USER, user_id)))
    released_event = {events[i].item_id: i for i in announced if events[i].item_id is not None}
    for item_id, platform, user_id in released_messages:
        target = released_event.get(item_id)
        if target is not None:
            deliveries[target].append(PlannedDelivery(Destination(platform, DestinationKind.USER, user_id)))

    # A merged item: every destination an announcement of its release went
    # to gets an edit of that message; the item's own event keeps only the
    # destinations none of them reached (a route that takes videos and not
    # episodes still hears of the video), and is not made when none is left.
    edits: list[PlannedEvent] = []
    # Every edit carries the whole message and the last one delivered wins:
    # each edit of this poll builds on the one planned before it for the
    # same announcement (by event id), never on the stored edit alone.
    latest: dict[int, EditSpec] = {}
    dropped: set[int] = set()
    verdicts = list(decision.verdicts)
    releases = list(decision.releases)
    if matches:
        edits = _merges(items, matches, source or "", latest)
        for i in announced:
            joined = _joined(events[i], matches)
            if not joined:
                continue
            covered = {d.destination for m in joined for d in m.anchor.deliveries}
            deliveries[i] = [d for d in deliveries[i] if d.destination not in covered]
            if not deliveries[i]:
                dropped.add(i)
        for (tag, number), release in matches.items():
            merged = ItemVerdict(ItemFate.MERGED, merged_into=release[0].anchor.event_id, merged_by=release[0].by)
            if tag == "new" and number < len(verdicts):
                verdicts[number] = merged
            elif tag == "stored":
                releases = [replace(r, verdict=replace(merged, note=r.verdict.note)) if r.item_id == number else r
                            for r in releases]
    if merge is not None and state.announced:
        edits += _title_edits(decision, state.announced, latest)
    moves = [m for m in decision.live if m.edit]
    if state.live and moves:
        # A followed premiere started or ended: its announcement is edited in
        # place (after every announcement of this poll), never posted again.
        assert content_heading is not None, "a poll that follows premieres needs its content heading"
        edits += plan_live_edits(state.live, moves, content_heading, latest)

    routings = {i: _routing(events[i], deliveries[i], state.routes, i in follow_ups)
                for i in range(len(events))}
    for i in announced:
        joined = _joined(events[i], matches)
        if joined:  # the record says which announcement it joined
            routings[i] = replace(routings[i], merged_into=joined[0].anchor.event_id)

    ordered = [i for i in range(len(events)) if i not in follow_ups and i not in dropped] + follow_ups
    # The writer inserts events in list order; keep announcements' ids before
    # their follow-ups' so outbox rows queue in that order too.
    remap = {old: new for new, old in enumerate(ordered)}
    final = []
    for old in ordered:
        e = replace(events[old], deliveries=tuple(deliveries[old]), routing=routings[old])
        if e.follow_up_of_planned is not None:
            e = replace(e, follow_up_of_planned=remap[e.follow_up_of_planned])
        final.append(e)
    # Edits go last: each queues behind the post it edits, and behind
    # anything else this poll queued to that channel.
    final += edits
    return PollIntent(
        new_items=decision.new_items,
        updates=decision.updates,
        snapshot=snapshot,
        events=tuple(final),
        anchor_links=AnchorLinks(anchor.event_id, tuple(anchor_links)) if anchor and anchor_changed else None,
        verdicts=tuple(verdicts),
        merge_check=MergeCheck(state.last_event_id, frozenset(a.event_id for a in state.announced),
                               state.announced_since) if merge is not None and any(
            e.kind is not EventKind.EDIT and (e.item is not None or e.item_id is not None) for e in final) else None,
        holds=decision.holds,
        releases=tuple(releases),
        live=decision.live,
    )


def _joined(event: PlannedEvent, matches: Mapping[ItemKey, list[MergeMatch]]) -> list[MergeMatch]:
    key = _item_key(event)
    return matches.get(key, []) if key is not None else []


def _intent_key(intent: EventIntent) -> ItemKey | None:
    if intent.new_index is not None:
        return ("new", intent.new_index)
    return ("stored", intent.item_id) if intent.item_id is not None else None


def _event_items(decision: Decision, state: PollState) -> dict[ItemKey, Item]:
    """The item each event of the decision is about, by item key: a new
    item's, or a released held one's as stored now (or as this poll updates it)."""
    out: dict[ItemKey, Item] = {("new", i): n.item for i, n in enumerate(decision.new_items)}
    held = {h.item_id: h.item for h in state.held}
    held.update({u.item_id: u.item for u in decision.updates if u.item_id in held})
    out.update({("stored", r.item_id): held[r.item_id] for r in decision.releases if r.item_id in held})
    return out


def _newest(latest: Mapping[int, EditSpec], anchor: AnnouncedEvent) -> EditSpec | None:
    """What ``anchor``'s message shows by the end of the edits planned so
    far: this poll's newest spec for it, else its stored newest edit."""
    return latest.get(anchor.event_id) or anchor.last_edit


def _merges(items: Mapping[ItemKey, Item], matches: Mapping[ItemKey, list[MergeMatch]],
            source: str, latest: dict[int, EditSpec]) -> list[PlannedEvent]:
    """The edits that add each merged item's link to the announcements of
    its release: one edit per announcement, cumulative over this poll (two
    posts linking the same video add one link), each destination edited
    once even when two announcements of the release went there. ``latest``
    (event id -> newest spec this poll) is read and updated."""
    edits: list[PlannedEvent] = []
    for key in sorted(matches):
        tag, number = key
        item = items[key]
        url = item.link or item.enclosure_url
        if not url:
            continue
        reached: set[Destination] = set()
        for match in matches[key]:
            anchor = match.anchor
            deliveries = tuple(d for d in anchor.deliveries if d.destination not in reached)
            reached |= {d.destination for d in deliveries}
            if not deliveries:
                continue
            spec = next_edit(_newest(latest, anchor), anchor.event_id, CHANGE_MERGE,
                             also=AlsoLink(also_label(url, source), url))
            if spec == _newest(latest, anchor):
                continue  # that link is on the message already
            latest[anchor.event_id] = spec
            edits.append(plan_edit(replace(anchor, deliveries=deliveries), spec,
                                   item=number if tag == "new" else None,
                                   item_id=number if tag == "stored" else None, title=item.title, url=url))
    return edits


def _title_edits(decision: Decision, announced: Sequence[AnnouncedEvent],
                 latest: dict[int, EditSpec]) -> list[PlannedEvent]:
    """An item announced within the window whose title changed: each of its
    announcements is edited to the new title (never re-posted). Outside the
    window it is not in ``announced``, and nothing happens (as always).
    Builds on, and updates, ``latest`` (see ``_merges``)."""
    edits: list[PlannedEvent] = []
    by_item: dict[int, list[AnnouncedEvent]] = {}
    for a in announced:
        by_item.setdefault(a.item_id, []).append(a)
    for update in decision.updates:
        new_title = " ".join(update.item.title.split())
        if not new_title:
            continue
        for anchor in by_item.get(update.item_id, ()):
            newest = _newest(latest, anchor)
            shown = (newest.title if newest and newest.title else None) or anchor.title
            if " ".join(shown.split()) == new_title or not anchor.deliveries:
                continue
            spec = next_edit(newest, anchor.event_id, CHANGE_TITLE, title=new_title)
            latest[anchor.event_id] = spec
            edits.append(plan_edit(anchor, spec, item_id=update.item_id))
    return edits


def plan_live_edits(tracked: Sequence[TrackedLive], moves: Sequence[LiveIntent], content_heading: str,
                    latest: dict[int, EditSpec] | None = None) -> tuple[PlannedEvent, ...]:
    """The edits of the announcements whose premiere or stream moved
    (bot.holds ``plan_live``), through the edit path (bot.edits): "Live now"
    when it starts, the plain video (``content_heading``, "New video") once
    it has ended. Cumulative on the announcement's newest edit -- this
    poll's (``latest``, updated; see ``_merges``) or else the stored one;
    one row per destination the announcement went to, never a new post. A
    tracked video without its announcement's rows (given up everywhere)
    gets no edit."""
    latest = {} if latest is None else latest
    by_item = {t.item_id: t for t in tracked}
    out = []
    for move in moves:
        t = by_item.get(move.item_id) if move.item_id is not None else None
        if t is None or t.anchor is None or not move.edit or not t.anchor.deliveries:
            continue
        heading = "Live now" if move.state is LiveState.LIVE else content_heading
        spec = next_edit(_newest(latest, t.anchor), t.anchor.event_id, CHANGE_LIVE, heading=heading)
        latest[t.anchor.event_id] = spec
        out.append(plan_edit(t.anchor, spec))
    return tuple(out)


def _routing(event: PlannedEvent, deliveries: Sequence[PlannedDelivery], routes: Sequence[Route],
             sends_follow_up: bool) -> Routing:
    """The decision record of one event's routing (see bot.verdicts.Routing).
    A follow-up planned against an anchor of the same poll gets that
    anchor's id from the writer (``follow_up_of_planned``)."""
    queued = tuple(d.route_id for d in deliveries if d.route_id is not None)
    direct = sum(1 for d in deliveries if d.route_id is None)
    follow_up = event.follow_up_of is not None or event.follow_up_of_planned is not None
    takes = [r for r in routes if event.kind in r.kinds and r.id not in queued]
    return Routing(
        queued=queued, direct=direct,
        broken=tuple(r.id for r in takes if r.broken),
        # A live route that takes the kind and got nothing: the item went
        # there as an earlier event (book news); follow-ups go to the
        # anchor's channels only, so for them that isn't "served".
        served=() if follow_up else tuple(r.id for r in takes if not r.broken),
        routes=len(routes), follow_up_of=event.follow_up_of, new_link=follow_up and sends_follow_up,
    )


def plan_edit(anchor: AnnouncedEvent, spec: EditSpec, *, item: int | None = None,
              item_id: int | None = None, title: str | None = None, url: str | None = None) -> PlannedEvent:
    """An edit of ``anchor`` in place (bot.edits): an ``edit`` event whose
    payload is ``spec`` (cumulative: what the message shows now), with a
    row for every destination the anchor was queued to and not given up
    on. Written after the anchor, each row queues behind the anchor's own
    in its destination. ``item`` (a new item's index) or ``item_id`` (a
    stored item; default the anchor's) is the item the edit is about;
    ``title``/``url`` name the event (default: what the message shows)."""
    assert spec.edit_of == anchor.event_id
    queued = tuple(d.route_id for d in anchor.deliveries if d.route_id is not None)
    routing = Routing(queued=queued, direct=sum(1 for d in anchor.deliveries if d.route_id is None),
                      edit_of=anchor.event_id, change=spec.change)
    return PlannedEvent(
        EventKind.EDIT, title or spec.title or anchor.title, url or spec.url or anchor.url, item=item,
        payload=edit_payload(spec), deliveries=anchor.deliveries, routing=routing,
        item_id=None if item is not None else (item_id if item_id is not None else anchor.item_id),
    )


def plan_backfill(items: Sequence[StoredItem], routes: Sequence[Route], source_id: int) -> list[QueuedEvent]:
    """`feed backfill`: an announcement of each stored item (oldest first:
    channels read top-down) for every unbroken route that takes its kind
    from its feed. Items no route takes are left out, so they stay free to
    be backfilled once a channel wants them; storage skips any item that
    was announced before."""
    ordered = sorted(items, key=lambda s: (s.item.published_at is None, s.item.published_at or s.first_seen_at, s.id))
    planned: list[QueuedEvent] = []
    for stored in ordered:
        kind = EventKind(stored.kind.value)
        deliveries = tuple(
            QueuedDelivery(Destination(r.platform, DestinationKind.CHANNEL, r.channel), r.id, r.mention)
            for r in routes if not r.broken and r.takes(kind, stored.source_name)
        )
        if deliveries:
            planned.append(QueuedEvent(kind, stored.item.title, stored.item.link or stored.item.enclosure_url,
                                       stored.id, source_id, deliveries))
    return planned
