"""Flood control: a route's ``pace``, ``daily_cap`` and ``digest``. Pure.

Decided at delivery time, per row, by the outbox (it knows what the route
has posted; the planner does not): ``decide_flood`` answers

- SEND: post it now;
- WAIT until a time: the row stays at the head of its destination's queue,
  pending, due then (the pace since the last post; the next UTC day once
  the daily cap is reached). Other destinations are not held up, nothing
  behind it overtakes it, nothing is lost;
- HOLD: not posted alone; kept for the route's next digest (a digest route,
  or a capped one that also has a digest: the first ``daily_cap`` posts go
  out one by one, the rest in the digest). A held row leaves the queue, so
  it blocks nothing behind it.

Exempt: moderator alerts (they must arrive at once) and test posts (a
moderator asked for this one now). A digest itself is paced but never
capped or held. Days and periods are UTC: a daily cap resets and a daily
digest goes out at 00:00 UTC; a weekly digest on Monday 00:00 UTC.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from bot.models import DigestPeriod, Event, EventKind, EventPurpose, Route
from bot.storage.records import RouteTally


class Verdict(enum.StrEnum):
    SEND = "send"
    WAIT = "wait"
    HOLD = "hold"


@dataclass(frozen=True, slots=True)
class FloodDecision:
    verdict: Verdict
    until: datetime | None = None  # WAIT: when the row is due again
    reason: str = ""


SEND = FloodDecision(Verdict.SEND)


def day_start(now: datetime) -> datetime:
    """00:00 UTC of ``now``'s day."""
    utc = now.astimezone(timezone.utc)
    return utc.replace(hour=0, minute=0, second=0, microsecond=0)


def period_end(period: DigestPeriod, now: datetime) -> datetime:
    """The latest digest boundary at or before ``now``: today's 00:00 UTC
    (daily), this week's Monday 00:00 UTC (weekly)."""
    start = day_start(now)
    if period is DigestPeriod.WEEKLY:
        return start - timedelta(days=start.weekday())
    return start


def next_period_end(period: DigestPeriod, now: datetime) -> datetime:
    return period_end(period, now) + timedelta(days=7 if period is DigestPeriod.WEEKLY else 1)


def exempt(event: Event) -> bool:
    # An edit changes a message already posted (and counted): not a post.
    return event.kind in (EventKind.ALERT, EventKind.EDIT) or event.purpose is EventPurpose.TEST


def counts_toward_cap(event: Event) -> bool:
    return not exempt(event) and event.kind is not EventKind.DIGEST


def decide_flood(route: Route, tally: RouteTally, event: Event, *, now: datetime) -> FloodDecision:
    """What to do with one row of ``route`` now, given its posts so far
    (``tally``: today's capped posts, the last paced one)."""
    if exempt(event):
        return SEND
    if event.kind is not EventKind.DIGEST:
        capped = route.daily_cap is not None and tally.capped_since >= route.daily_cap
        if route.digest is not None and (route.daily_cap is None or capped):
            return FloodDecision(Verdict.HOLD, reason=f"kept for the {route.digest.value} digest")
        if capped:
            return FloodDecision(Verdict.WAIT, day_start(now) + timedelta(days=1),
                                 f"daily cap of {route.daily_cap} reached")
    if route.pace_s and tally.last_sent_at is not None:
        due = tally.last_sent_at + timedelta(seconds=route.pace_s)
        if due > now:
            return FloodDecision(Verdict.WAIT, due, f"one post every {route.pace_s}s")
    return SEND


def after_sent(tally: RouteTally, event: Event, now: datetime) -> RouteTally:
    """The tally once ``event`` went out at ``now``."""
    if exempt(event):
        return tally
    return RouteTally(tally.capped_since + (1 if counts_toward_cap(event) else 0), now)
