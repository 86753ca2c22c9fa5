"""`why`: an item's path through the pipeline, told from its decision records.

Pure: ``explain`` turns what storage read back (``ItemTrail``: the item's
verdict from detection, each event's routing from the planner, each outbox
row) plus the time and the adapters' state into numbered steps. Nothing is
re-decided here: a step says what was decided when it was decided, so a
filter removed since doesn't change why an item was held then.

The steps, in pipeline order:
1. first seen (when, by which source, published when);
2. its verdict: stored at the first sync (baseline), older than max_age,
   held by filter X, merged into event E (the same release another source
   announced: that announcement was edited instead), or announced;
3. per event: a follow-up of earlier book news, no route takes its kind,
   queued for N routes (and routes skipped: broken, or given the item as an
   earlier event); an edit: which announcement it changed in place, why;
4. per outbox row: delivered to C at T (with the message's link where the
   platform has one), waiting (behind earlier rows, for a retry, for a
   disconnected adapter), or failed because E.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.models import EventKind, Route
from bot.replies import format_duration
from bot.storage.records import DeliveryTrail, EventTrail, ItemTrail, OutboxStatus
from bot.verdicts import ItemFate, ItemVerdict, Routing


class StepKind(enum.StrEnum):
    SEEN = "seen"
    NO_RECORD = "no_record"  # stored before decision records existed
    BASELINE = "baseline"
    TOO_OLD = "too_old"
    FILTERED = "filtered"
    MERGED = "merged"
    HELD = "held"
    SHORT = "short"
    ANNOUNCED = "announced"
    FOLLOW_UP = "follow_up"
    EDIT = "edit"
    NO_ROUTE = "no_route"
    SKIPPED = "skipped"
    QUEUED = "queued"
    DELIVERED = "delivered"
    WAITING = "waiting"
    FAILED = "failed"


class Outcome(enum.StrEnum):
    """The answer in one word: the first line of a `why` reply."""

    DELIVERED = "delivered"  # every delivery went out
    PARTLY = "partly"  # some went out, some failed or wait
    WAITING = "waiting"  # queued, nothing out yet
    FAILED = "failed"  # every delivery failed
    NOT_ANNOUNCED = "not announced"  # baseline, too old, filtered, merged, a Short, no route
    HELD = "held"  # stored, its announcement waiting (settle, not playable yet)
    UNKNOWN = "unknown"  # no decision record and no event


@dataclass(frozen=True, slots=True)
class Step:
    kind: StepKind
    text: str
    url: str | None = None  # the posted message, for DELIVERED


@dataclass(frozen=True, slots=True)
class Explanation:
    title: str
    url: str | None
    source: str
    outcome: Outcome
    summary: str
    steps: tuple[Step, ...]


def at(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else "an unknown time"


def _span(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 2 * 86400:
        return f"{seconds // 86400} days"
    if seconds >= 3600:
        return format_duration(seconds // 60 * 60).replace(" 00s", "")
    return format_duration(seconds) or "0s"


def _when(value: datetime, now: datetime) -> str:
    delta = (value - now).total_seconds()
    if abs(delta) < 1:
        return "now"
    return f"in {_span(delta)}" if delta > 0 else f"{_span(-delta)} ago"


def route_name(route_id: int | None, routes: Mapping[int, Route]) -> str:
    route = routes.get(route_id) if route_id is not None else None
    if route is None:
        return f"a route since removed (#{route_id})" if route_id is not None else "a direct message"
    return f"{route.platform.value} {route.channel}"


def _verdict_step(v: ItemVerdict, source: str, published: datetime | None) -> Step:
    if v.fate is ItemFate.BASELINE:
        extra = (f" (announce_on_first_poll = {v.announce_first}: only the newest {v.announce_first} were)"
                 if v.announce_first else "")
        return Step(StepKind.BASELINE, f"Stored at the first sync of “{source}”, not announced: what a feed "
                                       f"already holds when it is first polled is the baseline{extra}.")
    if v.fate is ItemFate.TOO_OLD:
        limit = _span(v.max_age_s) if v.max_age_s is not None else "max_age"
        return Step(StepKind.TOO_OLD, f"Not announced: published {at(published)}, before the cutoff "
                                      f"{at(v.cutoff)} (max_age {limit}: new to us, but too old).")
    if v.fate is ItemFate.FILTERED:
        held = v.held_by
        if held is not None and held.mode == "exclude":
            text = f"Held back by the filter `exclude {held.patterns[0]}` of “{source}”."
        elif held is not None:
            rules = ", ".join(f"`include {p}`" for p in held.patterns)
            text = f"Held back: it matches none of the include filters of “{source}” ({rules})."
        else:
            text = f"Held back by a filter of “{source}”."
        return Step(StepKind.FILTERED, text)
    if v.fate is ItemFate.MERGED:
        grounds = {"title": "its title matches once episode numbers and show names are stripped",
                   "link": "one of them links the other"}.get(v.merged_by or "", "it is the same release")
        return Step(StepKind.MERGED, f"The same release as event #{v.merged_into} of another source ({grounds}, "
                                     "published within [merge] window): that announcement is edited to add "
                                     "this link instead of a second post.")
    if v.fate is ItemFate.HELD:
        bound = (f" (announced anyway at {at(v.give_up_at)} if it never becomes playable)"
                 if v.give_up_at is not None else "")
        return Step(StepKind.HELD, f"Held: {v.note or 'its announcement waits'}{bound}; a later poll "
                                   "announces it.")
    if v.fate is ItemFate.SHORT:
        return Step(StepKind.SHORT, f"Not announced: {v.note or 'a YouTube Short'} (stored and searchable; "
                                    f"set shorts = true on “{source}” to announce Shorts).")
    note = f" ({v.note})" if v.note else ""
    if v.first_sync:
        return Step(StepKind.ANNOUNCED, f"Announced at the first sync of “{source}”: one of the newest "
                                        f"{v.announce_first} (announce_on_first_poll){note}.")
    return Step(StepKind.ANNOUNCED, f"New, recent enough and let through by the filters: announced{note}.")


def _routing_steps(trail: EventTrail, routing: Routing, routes: Mapping[int, Route]) -> list[Step]:
    kind = trail.event.kind.value
    steps = []
    if routing.edit_of is not None:
        what = {"merge": "to add the link of the same release on another source",
                "title": "to show the new title"}.get(
            routing.change or "", f"({routing.change})")
        where = len(routing.queued) + routing.direct
        return [Step(StepKind.EDIT, f"Edits announcement #{routing.edit_of} in place {what}, wherever it went "
                                    f"({where} destination{'s' if where != 1 else ''}); never a new post.")]
    if routing.merged_into is not None:
        steps.append(Step(StepKind.SKIPPED, f"Channels that got announcement #{routing.merged_into} of this "
                                            "release are edited instead; only the others get this event."))
    if routing.follow_up_of is not None:
        if routing.new_link:
            text = (f"Book news already announced as event #{routing.follow_up_of} within the book window: "
                    "its link joins that announcement and goes as a reply in its channels.")
        else:
            text = (f"Book news already announced as event #{routing.follow_up_of} within the book window, "
                    "with this link already: nothing more was sent.")
        steps.append(Step(StepKind.FOLLOW_UP, text))
    for route_id in routing.broken:
        steps.append(Step(StepKind.SKIPPED, f"Route {route_name(route_id, routes)} takes {kind} but was broken "
                                            "then: nothing was queued there."))
    for route_id in routing.served:
        steps.append(Step(StepKind.SKIPPED, f"Route {route_name(route_id, routes)} had this item already as an "
                                            "earlier event (one announcement per item per channel)."))
    if routing.queued or routing.direct:
        names = ", ".join(route_name(r, routes) for r in routing.queued)
        parts = []
        if routing.queued:
            parts.append(f"{len(routing.queued)} route{'s' if len(routing.queued) != 1 else ''} ({names})")
        if routing.direct:
            parts.append(f"{routing.direct} direct message{'s' if routing.direct != 1 else ''}")
        steps.append(Step(StepKind.QUEUED, "Queued for " + " and ".join(parts) + "."))
    elif routing.follow_up_of is None:
        if routing.routes == 0:
            text = f"No route existed, so nothing was queued (`announce {kind} here` adds one)."
        elif routing.broken or routing.served:
            text = "Nothing else was queued."
        else:
            text = (f"No route takes {kind} (of the {routing.routes} route{'s' if routing.routes != 1 else ''} "
                    f"then), so nothing was queued.")
        steps.append(Step(StepKind.NO_ROUTE, text))
    return steps


def _delivery_step(d: DeliveryTrail, routes: Mapping[int, Route], now: datetime,
                   adapters: Mapping[str, bool] | None, *, edit: bool = False) -> Step:
    where = (f"{d.destination.platform.value} {d.destination.id}" if d.route_id is not None
             else f"a direct message to {d.destination.platform.value} user {d.destination.id}")
    if d.status is OutboxStatus.SENT:
        delay = f" ({_span((d.sent_at - d.created_at).total_seconds())} after it was queued)" if d.sent_at else ""
        link = f": {d.message_url}" if d.message_url else ""
        done = "Edited the message in" if edit else "Delivered to"
        return Step(StepKind.DELIVERED, f"{done} {where} at {at(d.sent_at)}{delay}{link}.", d.message_url)
    if d.status is OutboxStatus.FAILED:
        tries = f" after {d.attempts} attempt{'s' if d.attempts != 1 else ''}" if d.attempts else ""
        return Step(StepKind.FAILED, f"Failed for {where}{tries}: {d.last_error or 'given up'}.")
    platform = d.destination.platform.value
    if adapters is not None and not adapters.get(platform, False):
        state = "not connected" if platform in adapters else "not running (is its token set?)"
        reason = f"the {platform} adapter is {state}"
    elif d.status is OutboxStatus.SENDING:
        reason = ("being delivered now; an earlier attempt may have posted it, so the platform is asked first"
                  if d.outcome_unknown else "being delivered now")
    elif d.last_error and d.next_attempt_at > now:
        reason = (f"attempt {d.attempts} failed ({d.last_error}); next try {_when(d.next_attempt_at, now)}")
    elif d.ahead:
        reason = f"queued behind {d.ahead} earlier announcement{'s' if d.ahead != 1 else ''} to it"
    elif d.next_attempt_at > now:
        reason = f"held until {at(d.next_attempt_at)}"
    else:
        reason = "due now: the outbox takes it at its next round"
    return Step(StepKind.WAITING, f"Waiting for {where} since {at(d.created_at)}: {reason}.")


def explain(
    trail: ItemTrail, *, routes: Sequence[Route], now: datetime, adapters: Mapping[str, bool] | None = None,
) -> Explanation:
    """The steps of ``trail``. ``routes``: today's routes, to name route ids;
    ``adapters``: platform -> connected, when known (a running bot)."""
    by_id = {r.id: r for r in routes}
    item = trail.item
    source = item.source_name
    published = item.item.published_at
    steps = [Step(StepKind.SEEN, f"First seen {at(item.first_seen_at)} by a poll of “{source}” "
                                 f"({'published ' + at(published) if published else 'undated'}).")]
    verdict = trail.verdict
    if verdict is not None:
        steps.append(_verdict_step(verdict, source, published))
    elif not trail.events:
        steps.append(Step(StepKind.NO_RECORD, "Stored before showbot kept decision records, and never announced: "
                                              "the reason was not recorded."))
    else:
        steps.append(Step(StepKind.NO_RECORD, "Announced (stored before showbot kept decision records)."))
    deliveries: list[DeliveryTrail] = []
    posts: list[DeliveryTrail] = []  # the deliveries that are posts (not edits of one)
    for event in trail.events:
        steps.append(Step(StepKind.ANNOUNCED, f"Event #{event.event.id} ({event.event.kind.value}) created "
                                              f"{at(event.event.created_at)}."))
        if event.routing is not None:
            steps.extend(_routing_steps(event, event.routing, by_id))
        for d in event.deliveries:
            deliveries.append(d)
            if event.event.kind is not EventKind.EDIT:
                posts.append(d)
            steps.append(_delivery_step(d, by_id, now, adapters, edit=event.event.kind is EventKind.EDIT))
    # An announced item is told by its posts; a merged one, by its edits too.
    merged = verdict is not None and verdict.fate is ItemFate.MERGED
    outcome, summary = _summary(verdict, trail.events, deliveries if merged or not posts else posts, steps)
    return Explanation(item.item.title, item.item.link or item.item.enclosure_url, source, outcome, summary,
                       tuple(steps))


def _summary(verdict: ItemVerdict | None, events: Sequence[EventTrail], deliveries: Sequence[DeliveryTrail],
             steps: Sequence[Step]) -> tuple[Outcome, str]:
    if verdict is not None and verdict.fate is ItemFate.HELD:
        return Outcome.HELD, f"Held: {verdict.note or 'its announcement waits'}."
    if verdict is not None and verdict.fate is ItemFate.MERGED and deliveries:
        outcome, how = _summary(None, events, deliveries, steps)
        return outcome, f"Merged into event #{verdict.merged_into} (one announcement per release). {how}"
    if verdict is not None and verdict.fate is not ItemFate.ANNOUNCED:
        reason = {ItemFate.BASELINE: "stored at the first sync (baseline)", ItemFate.TOO_OLD: "older than max_age",
                  ItemFate.FILTERED: "held by a filter", ItemFate.MERGED: f"merged into event #{verdict.merged_into}",
                  ItemFate.SHORT: "a YouTube Short (shorts = false)"}
        return Outcome.NOT_ANNOUNCED, f"Not announced: {reason[verdict.fate]}."
    if not events:
        return Outcome.UNKNOWN, "Not announced; no decision record says why."
    if not deliveries:
        follow_up = any(s.kind is StepKind.FOLLOW_UP for s in steps)
        return Outcome.NOT_ANNOUNCED, ("Not sent: a follow-up of book news already announced." if follow_up
                                       else "Announced, but no route took it: nothing was sent.")
    sent = sum(1 for d in deliveries if d.status is OutboxStatus.SENT)
    failed = sum(1 for d in deliveries if d.status is OutboxStatus.FAILED)
    waiting = len(deliveries) - sent - failed
    n = len(deliveries)
    if sent == n:
        return Outcome.DELIVERED, f"Delivered to {'all ' + str(n) + ' destinations' if n > 1 else 'its destination'}."
    if failed == n:
        return Outcome.FAILED, f"Failed: {'every delivery' if n > 1 else 'the delivery'} was given up on."
    if sent == 0 and failed == 0:
        return Outcome.WAITING, f"Waiting: queued for {n} destination{'s' if n != 1 else ''}, not out yet."
    return Outcome.PARTLY, f"Partly delivered: {sent} sent, {waiting} waiting, {failed} failed, of {n}."


def render_text(explanation: Explanation, others: Sequence[str] = ()) -> str:
    """The chat and CLI text of an explanation: summary, then numbered steps."""
    link = f" — {explanation.url}" if explanation.url else ""
    lines = [f"Why “{explanation.title}”{link}", explanation.summary]
    lines += [f"{i}. {s.text}" for i, s in enumerate(explanation.steps, 1)]
    if others:
        lines.append("Other items with that title or link: " + "; ".join(others))
    return "\n".join(lines)
